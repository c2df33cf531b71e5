"""Preparing data: split, scale, encode, batch. Names and shapes follow scikit-learn.

The scalers learn their statistics in ``fit`` on the training data only, then apply the same
transformation to any data with ``transform``, so no information leaks from the test set.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._checks import as_array, as_features, check_positive_int, check_same_length, check_seed


def train_test_split(X, y, test_size: float | int = 0.25, shuffle: bool = True,
                     stratify=None, seed: int | None = None):
    """Split ``(X, y)`` into ``X_train, X_test, y_train, y_test`` (scikit-learn's order).

    Parameters
    ----------
    test_size : a fraction in (0, 1) of the samples, or a number of samples.
    shuffle : shuffle before splitting (with a generator seeded by ``seed``); if False the
        last samples form the test set.
    stratify : labels (usually ``y``) whose class proportions both parts keep.
    seed : seeds the shuffling.

    Examples
    --------
    >>> X, y = np.arange(20).reshape(10, 2), np.array([0] * 5 + [1] * 5)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, stratify=y,
    ...                                                     seed=0)
    >>> X_train.shape, X_test.shape, np.bincount(y_test).tolist()
    ((6, 2), (4, 2), [2, 2])
    """
    X, y = np.asarray(X), np.asarray(y)
    check_same_length(X, y)
    n = len(X)
    n_test = _test_count(test_size, n)
    rng = np.random.default_rng(check_seed(seed))
    if stratify is not None:
        if not shuffle:
            raise ValueError("stratify needs shuffle=True")
        labels = np.asarray(stratify)
        if labels.ndim != 1:
            raise ValueError(f"stratify must be 1-D labels, got shape {labels.shape}")
        check_same_length(X, labels, "X", "stratify")
        test_rows = _stratified_test_rows(labels, n_test, rng)
    else:
        order = rng.permutation(n) if shuffle else np.arange(n)
        test_rows = order[n - n_test:]
    is_test = np.zeros(n, dtype=bool)
    is_test[test_rows] = True
    train_rows = np.flatnonzero(~is_test)
    if shuffle:
        train_rows = rng.permutation(train_rows)
        test_rows = rng.permutation(test_rows)
    else:
        test_rows = np.sort(test_rows)
    return X[train_rows], X[test_rows], y[train_rows], y[test_rows]


def _test_count(test_size, n: int) -> int:
    if isinstance(test_size, bool):
        raise TypeError("test_size must be a fraction or a number of samples")
    if isinstance(test_size, (int, np.integer)):
        count = int(test_size)
    elif isinstance(test_size, (float, np.floating)) and 0 < test_size < 1:
        count = int(np.ceil(test_size * n))
    else:
        raise ValueError(f"test_size must be a fraction in (0, 1) or a number of samples, "
                         f"got {test_size!r}")
    if not 0 < count < n:
        raise ValueError(f"test_size={test_size!r} leaves {count} of {n} samples for testing; "
                         "both parts need at least one")
    return count


def _stratified_test_rows(labels: np.ndarray, n_test: int, rng) -> np.ndarray:
    """Exactly ``n_test`` rows, each class contributing in proportion to its size and at
    least one row to each part."""
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse)
    n_classes, n_train = len(classes), len(labels) - n_test
    if counts.min() < 2:
        raise ValueError(f"stratify needs at least 2 samples of every class; class "
                         f"{classes[counts.argmin()]!r} has {counts.min()}")
    if min(n_test, n_train) < n_classes:
        raise ValueError(f"a stratified split of {n_classes} classes needs at least "
                         f"{n_classes} samples in each part; it would have {n_test} for "
                         f"testing and {n_train} for training")
    exact = counts * n_test / len(labels)
    per_class = np.floor(exact).astype(int)
    # Hand the remaining rows to the classes with the largest fractional parts ...
    for k in np.argsort(per_class - exact)[: n_test - per_class.sum()]:
        per_class[k] += 1
    # ... then make sure every class has a row on both sides, keeping the total.
    for k in np.flatnonzero(per_class == 0):
        donor = np.argmax(per_class)
        per_class[donor] -= 1
        per_class[k] += 1
    for k in np.flatnonzero(per_class == counts):
        taker = np.argmax(counts - per_class)
        per_class[k] -= 1
        per_class[taker] += 1
    rows = [rng.permutation(np.flatnonzero(inverse == k))[:m] for k, m in enumerate(per_class)]
    return np.concatenate(rows)


class StandardScaler:
    """Scale each feature to zero mean and unit variance: ``(x - mean_) / scale_``.

    A constant feature (zero variance) gets ``scale_ = 1``, so it becomes 0 instead of NaN.

    >>> scaler = StandardScaler().fit([[0.0, 5.0], [2.0, 5.0]])
    >>> scaler.transform([[1.0, 5.0], [3.0, 7.0]])
    array([[0., 0.],
           [2., 2.]])
    """

    def fit(self, X) -> StandardScaler:
        X = as_features(X, "X", np.float64)
        self.n_features_in_ = X.shape[1]
        self.mean_ = X.mean(axis=0)
        self.var_ = X.var(axis=0)
        std = np.sqrt(self.var_)
        # A constant column's computed deviation is rounding noise (about eps * |mean|), not 0.
        constant = std <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(self.mean_), 1)
        self.scale_ = np.where(constant, 1.0, std)
        return self

    def transform(self, X) -> np.ndarray:
        X = _fitted_input(self, X, "mean_")
        return ((X - self.mean_) / self.scale_).astype(_float_dtype(X), copy=False)

    def inverse_transform(self, X) -> np.ndarray:
        X = _fitted_input(self, X, "mean_")
        return (X * self.scale_ + self.mean_).astype(_float_dtype(X), copy=False)

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)


class MinMaxScaler:
    """Map each feature linearly onto ``feature_range`` (default [0, 1]) using the training
    minimum and maximum. A constant feature maps to the low end of the range.

    >>> scaler = MinMaxScaler().fit([[0.0, 1.0], [10.0, 1.0]])
    >>> scaler.transform([[5.0, 1.0], [20.0, 1.0]])
    array([[0.5, 0. ],
           [2. , 0. ]])
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        low, high = feature_range
        if not low < high:
            raise ValueError(f"feature_range must be (low, high) with low < high, got "
                             f"{feature_range!r}")
        self.feature_range = (float(low), float(high))

    def fit(self, X) -> MinMaxScaler:
        X = as_features(X, "X", np.float64)
        low, high = self.feature_range
        self.n_features_in_ = X.shape[1]
        self.data_min_, self.data_max_ = X.min(axis=0), X.max(axis=0)
        self.data_range_ = self.data_max_ - self.data_min_
        span = self.data_range_
        self.scale_ = (high - low) / np.where(span > 0, span, 1.0)
        self.min_ = low - self.data_min_ * self.scale_
        return self

    def transform(self, X) -> np.ndarray:
        X = _fitted_input(self, X, "scale_")
        return (X * self.scale_ + self.min_).astype(_float_dtype(X), copy=False)

    def inverse_transform(self, X) -> np.ndarray:
        X = _fitted_input(self, X, "scale_")
        return ((X - self.min_) / self.scale_).astype(_float_dtype(X), copy=False)

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)


def _fitted_input(scaler, X, attribute: str) -> np.ndarray:
    if not hasattr(scaler, attribute):
        raise RuntimeError(f"this {type(scaler).__name__} is not fitted yet; call fit(X_train)")
    X = as_array(X, "X")
    return as_features(X, "X", _float_dtype(X), len(getattr(scaler, attribute)),
                       expected_by=f"the {type(scaler).__name__} (as fitted)")


def _float_dtype(X: np.ndarray) -> np.dtype:
    """float32 data stay float32; anything else becomes float64."""
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def one_hot(labels, n_classes: int | None = None, dtype="float32") -> np.ndarray:
    """Rows of zeros with a one at each label's index: (n_samples, n_classes).

    >>> one_hot([0, 2, 1])
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    labels = as_array(labels, "labels")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.dtype.kind not in "iub" and not np.all(labels == np.round(labels)):
        raise ValueError("labels must be whole numbers")
    labels = labels.astype(np.intp)
    if labels.size == 0 and n_classes is None:
        raise ValueError("one_hot of no labels needs n_classes")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be non-negative, got {labels.min()}")
    n_classes = int(labels.max()) + 1 if n_classes is None else check_positive_int(
        n_classes, "n_classes")
    if labels.size and labels.max() >= n_classes:
        raise ValueError(f"label {labels.max()} does not fit n_classes={n_classes}")
    encoded = np.zeros((len(labels), n_classes), dtype=dtype)
    encoded[np.arange(len(labels)), labels] = 1
    return encoded


def minibatches(X, y=None, batch_size: int = 32, shuffle: bool = True,
                seed: int | None = None, drop_last: bool = False) -> Iterator:
    """Yield ``(X_batch, y_batch)`` (or ``X_batch`` without ``y``) covering the data once.

    >>> [b.tolist() for b in minibatches(np.arange(5), batch_size=2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    X = np.asarray(X)
    if y is not None:
        y = np.asarray(y)
        check_same_length(X, y)
    batch_size = check_positive_int(batch_size, "batch_size")
    n = len(X)
    order = np.random.default_rng(check_seed(seed)).permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        stop_row = start + batch_size
        rows = slice(start, stop_row) if order is None else order[start:stop_row]
        yield X[rows] if y is None else (X[rows], y[rows])

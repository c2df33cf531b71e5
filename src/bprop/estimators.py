"""scikit-learn-compatible estimators backed by bprop: MLPClassifier and MLPRegressor.

Parameter names and meanings follow ``sklearn.neural_network.MLPClassifier`` and
``MLPRegressor`` where they overlap, so the estimators drop into pipelines, grid searches and
cross-validation; ``dropout``, ``batch_norm``, ``dtype`` and ``device`` are bprop's
additions. They work without scikit-learn installed (with a small stand-in for its base
classes). ``device="cuda"`` trains on an NVIDIA GPU through CuPy (the data go over once per
``fit``); ``predict`` and ``predict_proba`` still return NumPy arrays.

What is computed, scikit-learn's way:

* loss: the log-loss for classifiers (softmax for several classes, one logistic output for
  two, independent logistic outputs for multilabel targets), half the squared error for
  regressors, each summed over outputs and averaged over the samples of a batch;
* ``alpha``: an L2 penalty :math:`\\frac{\\alpha}{2 m}\\sum W^2` on the weights of each batch of
  :math:`m` samples (so its gradient is :math:`\\alpha W / m`), included in ``loss_curve_``;
* initial weights and biases: uniform on :math:`\\pm\\sqrt{6/(n_{in}+n_{out})}`
  (:math:`\\sqrt{2/(\\ldots)}` for ``"logistic"``);
* ``sample_weight`` (``fit``, ``partial_fit``, ``score``): each batch's loss is the weighted
  mean of its samples' losses, and ``alpha``'s penalty is divided by the batch's weight sum
  instead of :math:`m`; with ``early_stopping`` the validation part is scored with its
  weights; a batch whose weights are all zero is skipped (scikit-learn divides by zero there);
* stopping: after ``n_iter_no_change`` epochs in which the training loss (or, with
  ``early_stopping``, the validation score) failed to improve by ``tol``.

Where bprop differs: ``solver="sgd"`` uses PyTorch's form of (Nesterov) momentum, which equals
scikit-learn's while the learning rate is constant; ``solver="adam"`` uses PyTorch's Adam
(the epsilon added after the bias correction of the second moment), which differs from
scikit-learn's in the last digits.
"""

from __future__ import annotations

import inspect
import sys
import warnings

import numpy as np

from ._checks import (
    as_array,
    as_features,
    check_bool,
    check_int,
    check_real,
    check_same_length,
    check_sample_weight,
    check_seed,
    refuse_complex,
    refuse_complex_data,
)
from .backend.devices import get_device, to_numpy
from .interop import sklearn_onnx
from .nn.builder import mlp
from .nn.history import History, TrainingDivergedError
from .nn.init import sklearn_weights
from .nn.layers import Dense
from .nn.losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .nn.metrics import accuracy, r2_score
from .nn.step import TrainingStep
from .optim.optimizers import get_optimizer
from .optim.regularizers import L2

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning, NotFittedError
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn is optional: a minimal stand-in for its base classes
    validate_data = None

    class ConvergenceWarning(UserWarning):
        """Training stopped at max_iter before the loss settled."""

    class NotFittedError(ValueError, AttributeError):
        """The estimator was used before ``fit``."""

    class BaseEstimator:
        """``get_params`` / ``set_params`` from the constructor's signature."""

        def get_params(self, deep: bool = True) -> dict:
            names = inspect.signature(type(self).__init__).parameters
            return {name: getattr(self, name) for name in names if name != "self"}

        def set_params(self, **params):
            valid = self.get_params()
            for name, value in params.items():
                if name not in valid:
                    raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}")
                setattr(self, name, value)
            return self

        def __repr__(self) -> str:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({args})"

    class ClassifierMixin:
        def score(self, X, y, sample_weight=None) -> float:
            """The (``sample_weight``-weighted) share of samples predicted right; for
            multilabel targets a sample counts only with every label right."""
            predicted, y = self.predict(X), np.asarray(y)
            if y.ndim == 2 and y.shape[1] > 1:  # (subset accuracy, as scikit-learn's)
                right = (predicted == y).all(axis=1)
                return accuracy(right, np.ones_like(right), sample_weight=sample_weight)
            return accuracy(y, predicted, sample_weight=sample_weight)

    class RegressorMixin:
        def score(self, X, y, sample_weight=None) -> float:
            """R² of the predictions (``sample_weight``-weighted)."""
            return r2_score(y, self.predict(X), sample_weight=sample_weight)


ACTIVATION_NAMES = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh",
                    "relu": "relu", "leaky_relu": "leaky_relu"}
SOLVERS = ("sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")


class PerSampleLoss(Loss):
    """``factor`` times a loss summed over outputs and averaged over samples (rows), which is
    how scikit-learn's MLPs define their losses."""

    def __init__(self, inner: Loss, factor: float = 1.0) -> None:
        super().__init__("mean")  # (a mean over samples, of sums over outputs)
        self.inner, self.factor = inner, factor
        self.task = inner.task

    def _check(self, pred, target) -> tuple[np.ndarray, np.ndarray]:
        return self.inner._check(pred, target)

    def _forward(self, pred: np.ndarray, target: np.ndarray, weight=None) -> float:
        # (with sample weights (m,): the weighted mean, over the batch's weight sum, as
        # scikit-learn's np.average(..., weights=sample_weight))
        if weight is None:
            scale = self.factor / len(pred)
            value = self.inner._forward(pred, target) * scale
        else:
            scale = self.factor / weight.sum()
            value = self.inner._forward(pred, target, weight) * scale
        self._grad = self.inner.backward() * scale
        return value


class _BaseMLP(BaseEstimator):
    _estimator_type = ""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=0.0,
                 batch_norm=False, dtype="float64", device="cpu"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.dtype = dtype
        self.device = device

    # -- the fitted network, as scikit-learn lays it out ----------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # multilabel / several regression targets
        tags.non_deterministic = bool(self.dropout)
        return tags

    def _check_data(self, X, y=None, reset: bool = True):
        """Validate ``X`` (and ``y``) with scikit-learn's own checks when it is installed (so
        its conventions and messages hold exactly), else with bprop's. Complex numbers are a
        TypeError either way, checked first (NumPy would drop their imaginary parts)."""
        refuse_complex_data(X, "X")
        refuse_complex_data(y, "y")
        dtype = np.dtype(self.dtype)
        if validate_data is not None:
            if y is None:
                return validate_data(self, X, reset=reset, dtype=dtype)
            return validate_data(self, X, y, reset=reset, dtype=dtype, multi_output=True,
                                 y_numeric=self._estimator_type == "regressor")
        n_features = None if reset else self.n_features_in_
        X = as_features(X, "X", dtype, n_features,
                        expected_by=f"the fitted {type(self).__name__}")
        if reset:
            self.n_features_in_ = X.shape[1]
        if y is None:
            return X
        y = as_array(y, "y") if self._estimator_type == "regressor" else np.asarray(y)
        check_same_length(X, y)
        return X, y

    # skl2onnx converts a pipeline that holds this estimator, unregistered, by asking it for
    # these two functions (see bprop.interop.sklearn_onnx); they need skl2onnx only when called.
    def onnx_shape_calculator(self):
        """skl2onnx's shape calculator for this estimator's step."""
        return sklearn_onnx.shape_calculator

    def onnx_converter(self):
        """skl2onnx's converter for this estimator's step."""
        return sklearn_onnx.converter

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit "
                                 "with appropriate arguments first")

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, ``coefs_[i]`` of shape (n_in, n_out) for layer i (the model's own
        arrays on the CPU, NumPy copies of them from a GPU)."""
        return [to_numpy(layer.weight) for layer in self._dense_layers()]

    @coefs_.setter
    def coefs_(self, values) -> None:
        for layer, value in zip(self._dense_layers(), values, strict=True):
            layer.weight = value

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``intercepts_[i]`` of shape (n_out,) for layer i (NumPy copies from a
        GPU, as ``coefs_``)."""
        return [to_numpy(layer.bias) for layer in self._dense_layers()]

    @intercepts_.setter
    def intercepts_(self, values) -> None:
        for layer, value in zip(self._dense_layers(), values, strict=True):
            layer.bias = value

    def _dense_layers(self) -> list[Dense]:
        self._check_fitted()
        return [layer for layer in self.model_.layers if isinstance(layer, Dense)]

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)`` from fresh weights (or the current ones with ``warm_start``).

        ``sample_weight`` (n_samples,), optional: each sample's weight in the loss, as in
        scikit-learn's MLPs: each batch's loss is the weighted mean of its samples' losses,
        and ``alpha``'s penalty is divided by the batch's weight sum instead of its size.
        (Batches whose weights are all zero are skipped.)"""
        if not self.warm_start:
            self._partial_classes = None  # classes come from this y, not an old partial_fit
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _score_weight(self, X, y, sample_weight) -> np.ndarray | None:
        """What ``score`` checks before scoring: no complex ``y``, and ``sample_weight``
        (checked for the samples of ``X``, or None)."""
        refuse_complex_data(y, "y")
        refuse_complex_data(sample_weight, "sample_weight")
        return check_sample_weight(sample_weight, _n_samples(X))

    def _validate_params(self) -> None:
        refuse_complex(self.random_state, "random_state")
        check_seed(self.random_state, "random_state")
        sizes = self.hidden_layer_sizes
        refuse_complex_data(sizes, "hidden_layer_sizes")
        sizes = [sizes] if isinstance(sizes, (int, np.integer)) else list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
               for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        self._hidden = [int(s) for s in sizes]
        choices = {"activation": (self.activation, tuple(ACTIVATION_NAMES)),
                   "solver": (self.solver, SOLVERS),
                   "learning_rate": (self.learning_rate, LEARNING_RATES),
                   "dtype": (str(np.dtype(self.dtype)) if self.dtype in (
                       "float32", "float64", np.float32, np.float64) else self.dtype,
                       ("float32", "float64"))}
        for name, (value, options) in choices.items():
            if value not in options:
                raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
        # Every number is checked for its type and range here, before anything is trained:
        # a count given as 2.5 would otherwise fail deep inside (range(2.5)), and a complex
        # number is a TypeError.
        for name in ("max_iter", "n_iter_no_change"):
            check_int(getattr(self, name), name)
        for name in ("learning_rate_init", "epsilon"):
            check_real(getattr(self, name), name, 0, low_open=True)
        for name in ("alpha", "tol", "power_t"):
            check_real(getattr(self, name), name, 0)
        check_real(self.momentum, "momentum", 0, 1)
        for name in ("beta_1", "beta_2", "dropout"):
            check_real(getattr(self, name), name, 0, 1, high_open=True)
        check_real(self.validation_fraction, "validation_fraction", 0, 1, low_open=True,
                   high_open=True)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping",
                     "batch_norm"):
            check_bool(getattr(self, name), name)
        refuse_complex(self.verbose, "verbose")
        if not isinstance(self.verbose, (bool, np.bool_)):
            check_int(self.verbose, "verbose", low=0)
        get_device(self.device)  # a clear error now for a device this machine lacks
        refuse_complex(self.batch_size, "batch_size")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            try:
                check_int(self.batch_size, "batch_size")
            except ValueError:
                raise ValueError(f"batch_size must be 'auto' or a positive integer, got "
                                 f"{self.batch_size!r}") from None

    def _fit(self, X, y, incremental: bool, sample_weight=None):
        if not incremental:  # (partial_fit has validated, in _refuse_early_stopping)
            self._validate_params()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None")
        refuse_complex_data(sample_weight, "sample_weight")
        dtype = np.dtype(self.dtype)
        first_time = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = self._check_data(X, y, reset=first_time)
        weight = check_sample_weight(sample_weight, len(X), dtype)
        Y = self._encode_targets(y, fitting=first_time)
        if first_time:
            self._initialize(X.shape[1], Y.shape[1], dtype)
        n_epochs = 1 if incremental else self.max_iter
        early_stopping = self.early_stopping and not incremental
        w_val = None
        if early_stopping:
            X, X_val, Y, Y_val, y_val, weight, w_val = self._validation_split(X, Y, y, weight)
        batch_size = min(200, len(X)) if self.batch_size == "auto" else min(
            self.batch_size, len(X))
        if not hasattr(self, "_optimizer") or first_time or not incremental:
            self._optimizer = self._make_optimizer()
            self._step = TrainingStep(self.model_, self._loss, self._optimizer,
                                      scale_penalty_by_batch=True)
        self._step.regularizer = L2(self.alpha) if self.alpha else None  # (set_params may
        # have changed alpha since the step was made)
        X_placed, Y_placed = self._step._place(X, Y)  # on the model's device, once
        weights = self._step._place_weights(weight, X_placed)  # (with them)
        for _ in range(n_epochs):
            self._run_epoch(X_placed, Y_placed, batch_size, weights)
            self.n_iter_ += 1
            self.t_ += len(X)
            if self.learning_rate == "invscaling" and self.solver == "sgd":
                self._optimizer.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            if incremental:
                continue
            self._update_no_improvement_count(early_stopping, X_val if early_stopping else None,
                                               y_val if early_stopping else None, w_val)
            if self._no_improvement_count > self.n_iter_no_change:
                criterion = "Validation score" if early_stopping else "Training loss"
                if self.solver == "sgd" and self.learning_rate == "adaptive" and \
                        self._optimizer.lr > 1e-6:
                    self._optimizer.lr /= 5
                    self._no_improvement_count = 0
                    continue
                if self.verbose:
                    print(f"{criterion} did not improve more than tol={self.tol} for "
                          f"{self.n_iter_no_change} consecutive epochs. Stopping.")
                break
        else:
            if not incremental:
                warnings.warn(f"{type(self).__name__}: the maximum of {self.max_iter} "
                              "iterations was reached and the optimization has not converged "
                              "yet", ConvergenceWarning, stacklevel=3)
        if early_stopping and self._best_state is not None:
            self.model_.load_state_dict(self._best_state)
        return self

    def _initialize(self, n_features: int, n_outputs: int, dtype: np.dtype) -> None:
        rng = np.random.default_rng(self.random_state)
        sizes = [n_features, *self._hidden, n_outputs]
        weights = sklearn_weights(sizes, rng, logistic=self.activation == "logistic")
        self.model_ = mlp(sizes, activation=ACTIVATION_NAMES[self.activation],
                          batch_norm=self.batch_norm, dropout=self.dropout,
                          seed=rng.integers(2**31), dtype=dtype, weights=weights,
                          device=self.device)
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self.best_loss_ = np.inf
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._no_improvement_count = 0
        self._best_state = None
        self._loss = self._make_loss()

    def _make_optimizer(self):
        if self.solver == "sgd":
            return get_optimizer("sgd", lr=self.learning_rate_init, momentum=self.momentum,
                                 nesterov=self.nesterovs_momentum and self.momentum > 0)
        return get_optimizer("adam", lr=self.learning_rate_init,
                             betas=(self.beta_1, self.beta_2), eps=self.epsilon)

    def _run_epoch(self, X: np.ndarray, Y: np.ndarray, batch_size: int, weights=None) -> None:
        """One epoch through bprop's training step (the one ``Sequential.fit`` runs), with
        ``alpha`` as an L2 penalty scaled by each batch's size (or weight sum), and the
        sample ``weights`` as the step placed them (or None)."""
        try:
            self.loss_ = self._step._epoch(X, Y, batch_size, self.shuffle,
                                           weights=weights).loss
        except TrainingDivergedError as error:
            history = History()
            for loss in self.loss_curve_:
                history.append({"loss": loss})
            raise TrainingDivergedError(
                f"{error} in iteration {self.n_iter_ + 1}; training stopped, the network keeps "
                "its last finite weights. Lower learning_rate_init or scale the inputs.",
                history) from None
        self.loss_curve_.append(self.loss_)

    def _update_no_improvement_count(self, early_stopping: bool, X_val, y_val,
                                     w_val=None) -> None:
        if early_stopping:
            score = self.score(X_val, y_val, sample_weight=w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:.6f}")
            self._no_improvement_count = (self._no_improvement_count + 1
                                          if score < self.best_validation_score_ + self.tol
                                          else 0)
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = self.model_.state_dict()
        else:
            self._no_improvement_count = (self._no_improvement_count + 1
                                          if self.loss_ > self.best_loss_ - self.tol else 0)
            self.best_loss_ = min(self.best_loss_, self.loss_)

    def _validation_split(self, X, Y, y, weight=None):
        """The training and validation parts of ``X``, ``Y``, ``y`` and the sample weights
        (None stays None); a validation part that weighs nothing scores nothing, and is
        scored unweighted."""
        from .data.preprocessing import train_test_split

        stratify = y if (self._estimator_type == "classifier" and y.ndim == 1) else None
        rows = np.arange(len(X))
        train, val = train_test_split(rows, rows, test_size=self.validation_fraction,
                                      stratify=stratify, seed=self.random_state)[:2]
        if len(val) < 2:
            raise ValueError("the validation set is too small for early_stopping; increase "
                             "validation_fraction or provide more samples")
        if weight is None:
            return X[train], X[val], Y[train], Y[val], y[val], None, None
        if not weight[train].any():
            raise ValueError("every sample of the training part of early_stopping's split "
                             "has weight 0; give more samples a weight above 0")
        w_val = weight[val] if weight[val].any() else None
        return X[train], X[val], Y[train], Y[val], y[val], weight[train], w_val

    def _forward(self, X) -> np.ndarray:
        self._check_fitted()
        X = self._check_data(X, reset=False)
        return to_numpy(self.model_._infer(X.astype(self.model_.dtype, copy=False)))


def _n_samples(X) -> int:
    """The number of samples (rows) of ``X`` in any form the estimators take."""
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(X)


def _refuse_early_stopping(estimator) -> None:
    estimator._validate_params()  # (early_stopping=1 is refused as not a bool, first)
    if estimator.early_stopping:
        raise ValueError("partial_fit does not support early_stopping=True: it trains one "
                         "epoch on the data it is given; use fit, or early_stopping=False")


def _check_classes(classes) -> np.ndarray:
    """The labels given to ``partial_fit`` as ``classes``, sorted and unique: numbers or
    strings (as ``fit`` takes them), never complex numbers or nested lists."""
    refuse_complex_data(classes, "classes")
    labels = np.asarray(classes)
    if labels.ndim != 1 or labels.dtype == object:
        raise ValueError(f"classes must be a 1-D list of labels (numbers or strings), got "
                         f"{classes!r}")
    if labels.dtype.kind not in "biufUS":
        raise TypeError(f"classes must hold numbers or strings, got dtype {labels.dtype}")
    return np.unique(labels)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by bprop (scikit-learn's interface).

    Targets may be labels of any kind (strings, integers; two classes or more) or a 2-D 0/1
    indicator matrix for multilabel problems. See the module docstring for what is computed.

    >>> from bprop.data import make_moons
    >>> X, y = make_moons(200, noise=0.1)
    >>> clf = MLPClassifier((16,), learning_rate_init=0.01, max_iter=500, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95, clf.predict_proba(X[:1]).shape, [c.shape for c in clf.coefs_]
    (True, (1, 2), [(2, 16), (16, 1)])
    """

    _estimator_type = "classifier"

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)`` (samples weighted by ``sample_weight``, as in
        :meth:`fit`); ``classes`` (every label, of any kind: numbers or strings) is required
        on the first call."""
        _refuse_early_stopping(self)
        if not hasattr(self, "model_"):
            if classes is None:
                raise ValueError("the first call to partial_fit needs classes=[...] with every "
                                 "label that can occur")
            self._partial_classes = _check_classes(classes)
        elif classes is not None:
            given = _check_classes(classes)
            if len(given) != len(self.classes_) or not np.array_equal(given, self.classes_):
                # (scikit-learn refuses this too: the output layer is one unit per class)
                raise ValueError(f"classes={list(given)!r} is not the same as on the first "
                                 f"call to partial_fit, {list(self.classes_)!r}; the network "
                                 "has one output per class")
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _encode_targets(self, y: np.ndarray, fitting: bool) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] > 1:  # a multilabel indicator matrix
            if not np.isin(y, (0, 1)).all():
                raise ValueError("a 2-D y must be a 0/1 indicator matrix (multilabel)")
            if fitting:
                self.classes_ = np.arange(y.shape[1])
                self._multilabel = True
            elif not getattr(self, "_multilabel", False) or y.shape[1] != len(self.classes_):
                raise ValueError("y does not match the labels the classifier was fitted with")
            return y.astype(np.dtype(self.dtype))
        y = y.ravel() if y.ndim == 2 else y
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D labels, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise ValueError("Unknown label type: continuous. A classifier needs class labels; "
                             "for a continuous target use MLPRegressor")
        if fitting:
            classes = getattr(self, "_partial_classes", None)
            self.classes_ = np.unique(y) if classes is None else classes
            self._multilabel = False
            if len(self.classes_) < 2:
                raise ValueError(f"the classifier needs samples of at least 2 classes; got 1 "
                                 f"class ({self.classes_.tolist()})")
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown.tolist()} that are not in classes_ "
                             f"{self.classes_.tolist()}")
        codes = np.searchsorted(self.classes_, y)
        if len(self.classes_) == 2:
            return codes.reshape(-1, 1).astype(np.dtype(self.dtype))
        return np.eye(len(self.classes_), dtype=np.dtype(self.dtype))[codes]

    def _make_loss(self) -> Loss:
        if self._multilabel or len(self.classes_) == 2:
            self.out_activation_ = "logistic"
            return PerSampleLoss(BinaryCrossEntropy(from_logits=True, reduction="sum"))
        self.out_activation_ = "softmax"
        return PerSampleLoss(SoftmaxCrossEntropy(reduction="sum"))

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities: (n_samples, n_classes); for multilabel, each label's probability."""
        out = self._forward(X)
        with np.errstate(over="ignore"):
            if self.out_activation_ == "logistic":
                positive = 1 / (1 + np.exp(-out))
                if self._multilabel:
                    return positive
                return np.hstack([1 - positive, positive])
            exp = np.exp(out - out.max(axis=1, keepdims=True))
            return exp / exp.sum(axis=1, keepdims=True)

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy on ``(X, y)`` (for multilabel targets, of whole rows), each sample weighted
        by ``sample_weight`` (n_samples,) when given, with or without scikit-learn."""
        return super().score(X, y, sample_weight=self._score_weight(X, y, sample_weight))

    def predict_log_proba(self, X) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable label of each sample (an indicator row for multilabel)."""
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba >= 0.5).astype(int)
        return self.classes_[proba.argmax(axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by bprop (scikit-learn's interface).

    The loss is half the squared error, summed over outputs and averaged over samples (for
    one output, exactly scikit-learn's), plus the ``alpha`` penalty.

    >>> from bprop.data import make_quadratic
    >>> X, y = make_quadratic()
    >>> reg = MLPRegressor((32, 32), learning_rate_init=0.01, max_iter=500, tol=1e-6,
    ...                    random_state=0).fit(X / 7, y / 30)
    >>> reg.score(X / 7, y / 30) > 0.99
    True
    """

    _estimator_type = "regressor"

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)`` (samples weighted by ``sample_weight``, as in
        :meth:`fit`)."""
        _refuse_early_stopping(self)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _encode_targets(self, y: np.ndarray, fitting: bool) -> np.ndarray:
        y = y.astype(np.dtype(self.dtype), copy=False)
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinite values")
        if fitting:
            self._single_output = y.ndim == 1
        Y = y.reshape(len(y), -1)
        if not fitting and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs but the regressor was fitted with "
                             f"{self.n_outputs_}")
        return Y

    def _make_loss(self) -> Loss:
        self.out_activation_ = "identity"
        return PerSampleLoss(MSE(reduction="sum"), factor=0.5)

    def score(self, X, y, sample_weight=None) -> float:
        """R² on ``(X, y)``, each sample weighted by ``sample_weight`` (n_samples,) when given,
        with or without scikit-learn."""
        return super().score(X, y, sample_weight=self._score_weight(X, y, sample_weight))

    def predict(self, X) -> np.ndarray:
        out = self._forward(X)
        return out.ravel() if self._single_output else out


def register_with_skl2onnx() -> None:
    """Register the estimators' converter with skl2onnx (done when this module is imported
    after skl2onnx), so that they convert inside ``GridSearchCV`` and other meta-estimators
    and take ``options={"zipmap": False}``; a pipeline converts without it."""
    sklearn_onnx.register(MLPClassifier, MLPRegressor)


if "skl2onnx" in sys.modules:  # (imported already: registering costs nothing more)
    register_with_skl2onnx()

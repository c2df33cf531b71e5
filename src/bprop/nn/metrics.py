"""Metrics reported during training and evaluation (scikit-learn's definitions).

Each takes an optional ``sample_weight`` of shape (n_samples,): a weighted mean over the
samples, as scikit-learn's metrics weigh them (an integer weight k counts a sample k times).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_sample_weight


def accuracy(y_true, y_pred, sample_weight=None) -> float:
    """Fraction of predictions equal to the true labels (weighted by ``sample_weight``).

    >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
    0.75
    >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0], sample_weight=[1, 1, 2, 0])
    0.5
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_lengths(y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1))
    correct = (y_true.ravel() == y_pred.ravel()).reshape(len(y_true), -1)
    return _weighted_mean(correct, sample_weight)


def mean_absolute_error(y_true, y_pred, sample_weight=None) -> float:
    """Mean of ``|y_true - y_pred|`` over all elements (samples weighted by
    ``sample_weight``).

    >>> mean_absolute_error([1.0, 2.0], [1.5, 1.0])
    0.75
    """
    y_true, y_pred = _as_same_shape(y_true, y_pred)
    return _weighted_mean(np.abs(y_true - y_pred), sample_weight)


def mean_squared_error(y_true, y_pred, sample_weight=None) -> float:
    """Mean of ``(y_true - y_pred) ** 2`` over all elements (samples weighted by
    ``sample_weight``)."""
    y_true, y_pred = _as_same_shape(y_true, y_pred)
    return _weighted_mean((y_true - y_pred) ** 2, sample_weight)


def r2_score(y_true, y_pred, sample_weight=None) -> float:
    """Coefficient of determination :math:`1 - SS_{res} / SS_{tot}`, averaged over outputs;
    with ``sample_weight``, both sums and the mean weighted, as in scikit-learn.

    1 is a perfect fit, 0 is no better than predicting the mean.

    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    y_true, y_pred = _as_same_shape(y_true, y_pred)
    y_true = y_true.reshape(len(y_true), -1).astype(np.float64)
    y_pred = y_pred.reshape(len(y_pred), -1).astype(np.float64)
    weight = check_sample_weight(sample_weight, len(y_true))
    column = np.ones((len(y_true), 1)) if weight is None else weight.reshape(-1, 1)
    residual = (column * (y_true - y_pred) ** 2).sum(axis=0)
    mean = np.average(y_true, axis=0, weights=None if weight is None else weight)
    total = (column * (y_true - mean) ** 2).sum(axis=0)
    # A constant target is fitted perfectly (1) or not at all (0), as scikit-learn scores it.
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(total > 0, 1 - residual / total, np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


def _weighted_mean(values: np.ndarray, sample_weight) -> float:
    """The mean of ``values`` (n_samples, ...) over all elements, each sample's weighted."""
    if sample_weight is None:
        return float(np.mean(values))
    weight = check_sample_weight(sample_weight, len(values))
    per_sample = values.reshape(len(values), -1).mean(axis=1)
    return float(np.average(per_sample, weights=weight))


def _check_lengths(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred have different lengths: {len(y_true)} and {len(y_pred)}"
        )


def _as_same_shape(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_lengths(y_true, y_pred)
    if y_true.size != y_pred.size:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    return y_true.reshape(y_pred.shape), y_pred


METRICS = {
    "accuracy": accuracy,
    "mae": mean_absolute_error,
    "mse": mean_squared_error,
    "r2": r2_score,
}

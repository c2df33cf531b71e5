"""Metrics reported during training and evaluation (scikit-learn's definitions)."""

from __future__ import annotations

import numpy as np


def accuracy(y_true, y_pred) -> float:
    """Fraction of predictions equal to the true labels.

    >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
    0.75
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    _check_lengths(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def mean_absolute_error(y_true, y_pred) -> float:
    """Mean of ``|y_true - y_pred|`` over all elements.

    >>> mean_absolute_error([1.0, 2.0], [1.5, 1.0])
    0.75
    """
    y_true, y_pred = _as_same_shape(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def mean_squared_error(y_true, y_pred) -> float:
    """Mean of ``(y_true - y_pred) ** 2`` over all elements."""
    y_true, y_pred = _as_same_shape(y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination :math:`1 - SS_{res} / SS_{tot}`, averaged over outputs.

    1 is a perfect fit, 0 is no better than predicting the mean.

    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    y_true, y_pred = _as_same_shape(y_true, y_pred)
    y_true = y_true.reshape(len(y_true), -1).astype(np.float64)
    y_pred = y_pred.reshape(len(y_pred), -1).astype(np.float64)
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    # A constant target is fitted perfectly (1) or not at all (0), as scikit-learn scores it.
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(total > 0, 1 - residual / total, np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


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

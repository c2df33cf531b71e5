"""The core's losses written with autograd operations only, so their gradients come from the
chain rule rather than from the hand-derived formulas of :mod:`bprop.nn.losses`."""

from __future__ import annotations

import numpy as np

from ..nn.losses import check_distributions, class_labels
from .tensor import Tensor, as_tensor, log, log_softmax, result, softplus


def _reduce(terms: Tensor, reduction: str, n_terms: int) -> Tensor:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"unknown reduction {reduction!r}; choose 'mean' or 'sum'")
    total = terms.sum()
    return total / n_terms if reduction == "mean" else total


def _target_like(pred: Tensor, target) -> Tensor:
    target = as_tensor(target, like=pred)
    if target.ndim == 1 and pred.shape == (target.shape[0], 1):
        target = target.reshape(-1, 1)
    if target.shape != pred.shape:
        raise ValueError(f"target has shape {target.shape} but predictions have shape "
                         f"{pred.shape}; they must match")
    return target


def mse(pred: Tensor, target, reduction: str = "mean") -> Tensor:
    """``mean((pred - target) ** 2)`` over all elements."""
    pred = as_tensor(pred)
    error = pred - _target_like(pred, target)
    return _reduce(error * error, reduction, pred.size)


def binary_cross_entropy(pred: Tensor, target, from_logits: bool = False,
                         reduction: str = "mean") -> Tensor:
    """``-mean(y log p + (1 - y) log(1 - p))``; with ``from_logits``, ``softplus(z) - z y``,
    which is the same for ``p = sigmoid(z)`` and never overflows.

    Probabilities are kept inside ``[eps, 1 - eps]`` before the logarithms, as
    :class:`bprop.BinaryCrossEntropy` does, by :func:`guard_probability`: its derivative is 1
    everywhere, so a saturated prediction still passes its gradient on (the convention of
    the core's loss, which the bridge compares against)."""
    pred = as_tensor(pred)
    y = _target_like(pred, target)
    if from_logits:
        terms = softplus(pred) - pred * y
    else:
        p = guard_probability(pred)
        terms = -(y * log(p) + (1 - y) * log(1 - p))
    return _reduce(terms, reduction, pred.size)


def softmax_cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """``-mean_i log softmax(z_i)[y_i]`` for integer labels ``y``, or
    ``-mean_i sum_j Y_ij log softmax(z_i)_j`` for one-hot / probability rows ``Y``."""
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (m, n_classes), got shape {logits.shape}")
    m, n_classes = logits.shape
    log_probs = log_softmax(logits, axis=1)
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.ndim == 1:
        labels = class_labels(target_array, n_classes)
        if len(labels) != m:
            raise ValueError(f"target has {len(labels)} labels but logits have {m} rows")
        picked = log_probs[np.arange(m), labels]
        return _reduce(-picked, reduction, m)
    if target_array.shape != logits.shape:
        raise ValueError(f"target must be labels of shape ({m},) or rows of shape "
                         f"{logits.shape}, got shape {target_array.shape}")
    target_array = target_array.astype(logits.dtype)
    check_distributions(target_array, "target")
    return _reduce(-(as_tensor(target_array) * log_probs), reduction, m)


def guard_probability(p: Tensor) -> Tensor:
    """``p`` clipped to ``[eps, 1 - eps]`` (machine epsilon of its dtype), passing gradients
    through unchanged."""
    eps = np.finfo(p.dtype).eps
    return result(np.clip(p.data, eps, 1 - eps), (p,), "guard", lambda g: (g,))

"""The core's losses written with autograd operations only, so their gradients come from the
chain rule rather than from the hand-derived formulas of :mod:`bprop.losses`."""

from __future__ import annotations

import numpy as np

from .tensor import Tensor, as_tensor, log, log_softmax, softplus


def _reduce(terms: Tensor, reduction: str, n_terms: int) -> Tensor:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"unknown reduction {reduction!r}; choose 'mean' or 'sum'")
    total = terms.sum()
    return total / n_terms if reduction == "mean" else total


def _target_like(pred: Tensor, target) -> Tensor:
    target = as_tensor(target)
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
    which is the same for ``p = sigmoid(z)`` and never overflows. (Probabilities are not
    clipped here: give values strictly inside (0, 1).)"""
    pred = as_tensor(pred)
    y = _target_like(pred, target)
    terms = (softplus(pred) - pred * y if from_logits
             else -(y * log(pred) + (1 - y) * log(1 - pred)))
    return _reduce(terms, reduction, pred.size)


def softmax_cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """``-mean_i log softmax(z_i)[y_i]`` for integer labels ``y``, or
    ``-mean_i sum_j Y_ij log softmax(z_i)_j`` for one-hot / probability rows ``Y``."""
    logits = as_tensor(logits)
    log_probs = log_softmax(logits, axis=1)
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.ndim == 1:
        labels = target_array.astype(np.intp)
        picked = log_probs[np.arange(len(labels)), labels]
        return _reduce(-picked, reduction, logits.shape[0])
    return _reduce(-(as_tensor(target_array) * log_probs), reduction, logits.shape[0])

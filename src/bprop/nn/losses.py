r"""Losses: a number measuring how wrong the predictions are, and its gradient.

``loss.forward(pred, target)`` returns the loss as a Python float and caches what
``loss.backward()`` needs to return :math:`\partial L / \partial\,\text{pred}` (same shape as
``pred``). This gradient is the first "delta" of backpropagation.

``reduction="mean"`` (the default) averages over all elements, as PyTorch and scikit-learn do;
``"sum"`` adds them up, as the classic tutorials' update rules implicitly do.

**Sample weights.** ``loss.forward(pred, target, sample_weight=w)`` weights each sample's
terms by ``w[i]`` (shape (m,)): ``"sum"`` adds :math:`\sum_i w_i \ell_i`, and ``"mean"``
divides that by :math:`\sum_i w_i` times the terms per sample, a weighted mean (scikit-learn's
``np.average(..., weights=w)``). An integer weight k thus counts a sample k times, a weight 0
leaves it out; weights of ones change nothing.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .._checks import as_array, check_choice, check_finite, check_sample_weight
from ..backend import kernels
from ..backend.devices import array_module, on_device, scalar
from .overrides import InnerPass, through_public

REDUCTIONS = ("mean", "sum")


class Loss:
    """Base class of the losses."""

    #: the kind of problem the loss is for: "regression", "binary" or "multiclass"
    task = "regression"

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        self._grad: np.ndarray | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # A loss written before the split overrides forward alone: the step runs that.
        if "forward" in vars(cls) and "_forward" not in vars(cls):
            cls._forward = through_public(cls, "forward", lambda loss, *args: loss.forward(*args))

    def forward(self, pred: np.ndarray, target, sample_weight=None) -> float:
        """The loss of predictions ``pred`` (m, n_outputs) against ``target``; keeps the
        gradient for :meth:`backward`. Checks both, then computes :meth:`_forward`.
        ``sample_weight`` (m,) weights each sample (see the module docstring)."""
        checked = self._check(pred, target)
        weight = self._check_weight(sample_weight, checked[0])
        with InnerPass(self, "forward"):
            value = self._forward(*checked) if weight is None else self._forward(*checked,
                                                                                   weight)
        return value if type(value) is float else float(value)  # (from a device: one copy)

    def _check_weight(self, sample_weight, pred):
        """``sample_weight`` checked for the ``len(pred)`` samples, in ``pred``'s dtype and
        memory; None stays None (every sample weighs 1)."""
        if sample_weight is None:
            return None
        if not takes_sample_weight(self):
            raise TypeError(f"{type(self).__name__} does not take sample weights: its "
                            "_forward(pred, target, weight=None) has no weight argument")
        weight = check_sample_weight(sample_weight, len(pred), pred.dtype)
        return weight if type(pred) is np.ndarray else array_module(pred).asarray(weight)

    def _check(self, pred, target) -> tuple[np.ndarray, np.ndarray]:
        """``pred`` and ``target`` checked and in the form :meth:`_forward` takes (a model's
        training step checks its data once, up front, and then calls ``_forward`` alone)."""
        return self._pred_and_target(pred, target)

    def _forward(self, pred: np.ndarray, target: np.ndarray, weight=None) -> float:
        """The loss's arithmetic, on checked input; sets ``self._grad``. Returns a float on the
        CPU and a 0-d array on a device (:func:`bprop.backend.devices.scalar`), so that a
        training step on a GPU never waits to read it. ``weight``, when given, is a checked
        1-D array of per-sample weights (m,) where ``pred`` is, in its dtype. A subclass writes
        this (and, for checks of its own, :meth:`_check`); one written before the split,
        which overrides ``forward`` alone, gets a ``_forward`` that runs it (and takes no
        weights)."""
        raise NotImplementedError(f"{type(self).__name__} must define _forward(pred, target)")

    def __call__(self, pred: np.ndarray, target) -> float:
        return self.forward(pred, target)

    def backward(self) -> np.ndarray:
        """Gradient of the last ``forward`` loss with respect to ``pred``."""
        if self._grad is None:
            raise RuntimeError(f"{self!r}: backward() was called before forward()")
        return self._grad

    def get_config(self) -> dict:
        return {"reduction": self.reduction}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _scale(self, n_terms: int, weight=None):
        """The factor that turns a sum over terms into the requested reduction: ``1 / n_terms``
        for a mean; with per-sample weights (m,), ``1 / (weight.sum() * n_terms / m)``, a
        weighted mean (a 0-d array where the weights are: a GPU step never reads it)."""
        if self.reduction != "mean":
            return 1.0
        if weight is None:
            return 1.0 / n_terms
        return 1.0 / (weight.sum() * (n_terms // len(weight)))

    def _pred_and_target(self, pred, target) -> tuple[np.ndarray, np.ndarray]:
        """Check ``pred`` and a same-shaped float ``target``.

        A 1-D target is accepted for a single-output prediction of shape (m, 1); any other
        mismatch is an error rather than a broadcast (an (m,) target against (m, 1)
        predictions would otherwise silently become an (m, m) loss).
        """
        pred = _check_pred(pred)
        target = as_array(target, "target", dtype=pred.dtype)
        if target.ndim == 1 and pred.shape == (target.shape[0], 1):
            target = target.reshape(-1, 1)
        if target.shape != pred.shape:
            raise ValueError(
                f"{type(self).__name__}: target has shape {target.shape} but predictions have "
                f"shape {pred.shape}; they must match"
            )
        check_finite(target, "target")
        return pred, target


def _check_pred(pred) -> np.ndarray:
    if not (type(pred) is np.ndarray or on_device(pred)) or pred.dtype.kind != "f":
        pred = as_array(pred, "pred", dtype=np.float64)
    if pred.ndim != 2:
        raise ValueError(f"predictions must be 2-D (m, n_outputs), got shape {pred.shape}")
    if pred.size == 0:
        raise ValueError(f"predictions are empty (shape {pred.shape}); a loss needs samples")
    return pred


class MSE(Loss):
    r"""Mean squared error :math:`L = \frac{1}{N}\sum (\hat y - y)^2` over all N elements.

    Gradient: :math:`\partial L / \partial \hat y = \frac{2}{N}(\hat y - y)` (without the
    :math:`1/N` for ``reduction="sum"``). scikit-learn's ``MLPRegressor`` reports half of this
    value; the gradient is then halved too.

    >>> loss = MSE()
    >>> loss.forward(np.array([[1.0], [3.0]]), np.array([0.0, 1.0]))
    2.5
    >>> loss.backward()
    array([[1.],
           [2.]])
    """

    def _forward(self, pred: np.ndarray, target: np.ndarray, weight=None) -> float:
        error = pred - target
        scale = self._scale(error.size, weight)
        weighted = error if weight is None else error * weight[:, None]
        self._grad = weighted * (2 * scale)
        xp = array_module(error)
        return scalar(xp.dot(weighted.ravel(), error.ravel()) * scale)


class BinaryCrossEntropy(Loss):
    r"""Binary cross-entropy :math:`L = -\frac{1}{N}\sum [y\log p + (1-y)\log(1-p)]`.

    With ``from_logits=False`` the predictions are probabilities ``p`` (a :class:`Sigmoid`
    output); they are clipped to :math:`[\epsilon, 1-\epsilon]`, :math:`\epsilon` the machine
    epsilon of the dtype, so that no prediction gives ``log(0)``. The gradient is
    :math:`\frac{1}{N}(p - y) / (p(1-p))`.

    With ``from_logits=True`` the predictions are logits ``z`` (a linear output) and
    :math:`p = \sigma(z)`; the loss is computed as
    :math:`\max(z, 0) - z y + \log(1 + e^{-|z|})`, which never overflows, and the gradient
    is simply :math:`\frac{1}{N}(\sigma(z) - y)`.

    Targets are in [0, 1], of the predictions' shape (or 1-D for one output column).

    >>> loss = BinaryCrossEntropy(from_logits=True)
    >>> round(loss.forward(np.array([[1000.0], [-1000.0]]), np.array([1.0, 0.0])), 12)
    0.0
    """

    task = "binary"

    def __init__(self, from_logits: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.from_logits = bool(from_logits)

    def _check(self, pred, target) -> tuple[np.ndarray, np.ndarray]:
        pred, target = self._pred_and_target(pred, target)
        if target.size and (target.min() < 0 or target.max() > 1):
            raise ValueError(
                "BinaryCrossEntropy targets must lie in [0, 1], got values from "
                f"{target.min()} to {target.max()}"
            )
        if not self.from_logits and (pred.min() < 0 or pred.max() > 1):
            raise ValueError(
                "BinaryCrossEntropy() takes probabilities in [0, 1], got predictions from "
                f"{pred.min():.4g} to {pred.max():.4g}; add a Sigmoid() output layer or use "
                "BinaryCrossEntropy(from_logits=True)"
            )
        return pred, target

    def _forward(self, pred: np.ndarray, target: np.ndarray, weight=None) -> float:
        xp, scale = array_module(pred), self._scale(pred.size, weight)
        if weight is not None:
            scale = weight[:, None] * scale  # (each sample's terms, weighted)
        if self.from_logits:
            losses = xp.maximum(pred, 0) - pred * target + xp.log1p(xp.exp(-xp.abs(pred)))
            with np.errstate(over="ignore"):  # exp(-z) -> inf gives the exact limit 0
                self._grad = (1 / (1 + xp.exp(-pred)) - target) * scale
        else:
            eps = np.finfo(pred.dtype).eps
            p = xp.clip(pred, eps, 1 - eps)
            losses = -(target * xp.log(p) + (1 - target) * xp.log1p(-p))
            self._grad = (p - target) / (p * (1 - p)) * scale
        if weight is not None:
            return scalar((losses * scale).sum())
        return scalar(losses.sum() * scale)

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits, "reduction": self.reduction}


class SoftmaxCrossEntropy(Loss):
    r"""Softmax followed by cross-entropy, fused, on logits ``z`` of shape (m, n_classes).

    .. math::
        L = \frac{1}{m}\sum_i \Big(\log\sum_j e^{z_{ij}} - z_{i,y_i}\Big), \qquad
        \frac{\partial L}{\partial z} = \frac{1}{m}\big(\mathrm{softmax}(z) - Y\big)

    where :math:`Y` is the one-hot target. Fusing the two is why the delta is simply
    "prediction minus target": the softmax Jacobian and the derivative of the log cancel.
    The log-sum-exp is shifted by each row's maximum, so no logit overflows.
    ``reduction="mean"`` averages over samples (rows), as PyTorch's ``cross_entropy`` does.

    The target is integer class labels of shape (m,) in ``0 .. n_classes-1``, or one-hot (or
    probability) rows of shape (m, n_classes).

    >>> loss = SoftmaxCrossEntropy()
    >>> round(loss.forward(np.array([[0.0, 0.0]]), np.array([1])), 6)
    0.693147
    >>> loss.backward()
    array([[ 0.5, -0.5]])
    """

    task = "multiclass"

    def _check(self, pred, target) -> tuple[np.ndarray, np.ndarray]:
        """The logits, and the target as integer labels (m,) or distributions (m, n_classes)."""
        logits = _check_pred(pred)
        n_samples, n_classes = logits.shape
        target = as_array(target, "target")
        if target.ndim == 1:
            labels = class_labels(target, n_classes)
            if len(labels) != n_samples:
                raise ValueError(
                    f"target has {len(labels)} labels but predictions have {n_samples} rows"
                )
            return logits, labels
        if target.shape == logits.shape:
            target = target.astype(logits.dtype, copy=False)
            check_distributions(target, "target")
            return logits, target
        raise ValueError(
            f"target must be labels of shape ({n_samples},) or one-hot rows of shape "
            f"{logits.shape}, got shape {target.shape}"
        )

    def _forward(self, logits: np.ndarray, target: np.ndarray, weight=None) -> float:
        n_samples, xp = len(logits), array_module(logits)
        scale = self._scale(n_samples, weight)
        kernel = (None if target.ndim != 1 or type(logits) is np.ndarray  # (a GPU kernel only)
                  or weight is not None  # (which takes no weights)
                  else kernels.compiled("softmax_cross_entropy", logits))
        if kernel is not None:  # (on a GPU: the lines below in one pass, see cuda_kernels)
            self._grad = xp.empty_like(logits)
            return kernel(logits, target, scale, self._grad)
        # The work runs on the transpose, a row per class (a copy: the caller's array is
        # never written): NumPy reduces a few rows of many samples several times faster than
        # many rows of a few classes, one small reduction per sample.
        shifted = logits.T.copy()                      # (n_classes, n_samples)
        shifted -= shifted.max(axis=0)
        probs = xp.exp(shifted)
        sum_exp = probs.sum(axis=0)
        probs /= sum_exp
        log_sum_exp = xp.log(sum_exp)                  # log_probs = shifted - log_sum_exp
        if target.ndim == 1:  # labels
            samples = xp.arange(n_samples)  # indexed [class, sample], as the arrays are
            if weight is None:
                loss = log_sum_exp.sum() - shifted[target, samples].sum()
            else:
                loss = xp.dot(weight, log_sum_exp - shifted[target, samples])
            probs[target, samples] -= 1
        else:  # one-hot or probability rows
            terms = target.T * (shifted - log_sum_exp)
            loss = -(terms.sum() if weight is None else xp.dot(terms.sum(axis=0), weight))
            probs -= target.T
        probs *= scale if weight is None else weight * scale  # (a sample per column)
        self._grad = probs.T.copy()  # (n_samples, n_classes), C-ordered like the logits
        return scalar(loss * scale)


def takes_logits(loss: Loss | None) -> bool:
    """Whether ``loss`` reads the network's output as logits, applying the softmax or the
    sigmoid itself (so that probabilities need it applied to the output)."""
    return isinstance(loss, SoftmaxCrossEntropy) or (
        isinstance(loss, BinaryCrossEntropy) and loss.from_logits)


def takes_sample_weight(loss: Loss) -> bool:
    """Whether ``loss`` computes weighted losses: its ``_forward`` has a ``weight`` argument
    (bprop's losses do; one written before weights, or overriding ``forward`` alone, does
    not, and is refused sample weights with a clear error)."""
    return _has_weight_argument(type(loss)._forward)


@functools.cache
def _has_weight_argument(forward) -> bool:
    """(Asked per batch when weights are given: inspecting a signature costs microseconds, so
    each ``_forward`` function is inspected once.)"""
    try:
        return "weight" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return False


def check_distributions(target: np.ndarray, name: str) -> None:
    """Check that each row of a 2-D target is a probability distribution (one-hot or soft).

    The fused gradient softmax(z) - Y is only the gradient when every row of Y sums to 1.
    """
    check_finite(target, name)
    sums = target.sum(axis=1)
    tolerance = 1e-3 if target.dtype == np.float32 else 1e-6
    if target.min() < 0 or np.abs(sums - 1).max() > tolerance:
        row = int(np.argmax((np.abs(sums - 1) > tolerance) | (target.min(axis=1) < 0)))
        raise ValueError(
            f"each row of a 2-D {name} must be one-hot or a probability distribution "
            f"(non-negative, summing to 1); row {row} is {target[row].tolist()}"
        )


def class_labels(target: np.ndarray, n_classes: int) -> np.ndarray:
    """Check that ``target`` holds integer labels in ``0 .. n_classes-1``; return them as ints."""
    if target.dtype.kind == "f":
        check_finite(target, "target")
        if not np.all(target == np.round(target)):
            raise ValueError("class labels must be whole numbers, got fractional values")
    elif target.dtype.kind not in "iub":
        raise TypeError(f"class labels must be integers, got dtype {target.dtype}")
    labels = target.astype(np.intp, copy=False)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"class labels must lie in 0..{n_classes - 1} for a network with {n_classes} "
            f"outputs, got labels from {labels.min()} to {labels.max()}; widen the output "
            "layer or re-encode the labels"
        )
    return labels


LOSSES = {
    "mse": MSE,
    "binary_cross_entropy": BinaryCrossEntropy,
    "bce": BinaryCrossEntropy,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
}


def get_loss(loss) -> Loss:
    """Return ``loss`` if it is a :class:`Loss`, or create one from its name."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str):
        return LOSSES[check_choice(loss, "loss", tuple(LOSSES))]()
    raise TypeError(f"loss must be a Loss or one of {sorted(LOSSES)}, got {loss!r}")

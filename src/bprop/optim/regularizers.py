r"""Weight penalties: L1 and L2 regularisation, added to the loss and to its gradient.

A penalty sees only parameters and applies to those marked ``decay=True`` (the weights of
:class:`~bprop.Dense`), never to biases or normalisation parameters. In an explicit loop::

    value = loss.forward(out, y) + penalty.forward(model.parameters())
    model.zero_grad()
    model.backward(loss.backward())
    penalty.backward(model.parameters())          # adds its gradient into param.grad
    optimizer.step(model.parameters())

``fit(..., regularizer=penalty)`` does the same and reports the penalised loss.

Conventions: ``L2(lam)`` is :math:`\frac{\lambda}{2}\sum w^2` with gradient :math:`\lambda w`,
so it equals ``SGD(weight_decay=lam)``. Keras's ``l2(lam)`` is :math:`\lambda\sum w^2`
(twice this); scikit-learn's ``alpha`` is ``L2(alpha / n_samples)`` with its mean loss.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._checks import check_positive_float
from ..backend.devices import array_module, scalar
from ..nn.parameter import Parameter


class Regularizer:
    """Base class: a penalty on the decayed parameters."""

    def forward(self, parameters: Iterable[Parameter]) -> float:
        """The penalty's value."""
        return float(self._forward(parameters))

    def _forward(self, parameters: Iterable[Parameter]):
        """The penalty's value where the weights are: a float on the CPU, a 0-d array on a
        device (which a training step keeps there)."""
        return scalar(sum(self._value(p.value) for p in parameters if p.decay))

    def backward(self, parameters: Iterable[Parameter]) -> None:
        """Add the penalty's gradient into each decayed parameter's ``grad``."""
        for param in parameters:
            if param.decay:
                param.grad += self._gradient(param.value)

    def scaled(self, factor: float) -> Regularizer:
        """The same penalty times ``factor``: how a training step charges scikit-learn's
        ``alpha / (2 m)`` on a batch of ``m`` samples (``L2(alpha).scaled(1 / m)``)."""
        raise NotImplementedError

    def _scaled_by(self, factor) -> Regularizer:
        """The same penalty times ``factor``: a Python number (:meth:`scaled`), or a 0-d array
        on a device, such as ``1 / sum(w)`` for a batch of sample weights ``w``, which a
        training step on a GPU computes there and never reads."""
        if isinstance(factor, (int, float, np.number)):
            return self.scaled(float(factor))
        return _Scaled(self, factor)

    def _value(self, weights: np.ndarray) -> float:
        raise NotImplementedError

    def _gradient(self, weights: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class _Scaled(Regularizer):
    """A penalty times a factor held as a 0-d array (see :meth:`Regularizer._scaled_by`)."""

    def __init__(self, inner: Regularizer, factor) -> None:
        self.inner, self.factor = inner, factor

    def scaled(self, factor: float) -> Regularizer:
        return _Scaled(self.inner, self.factor * factor)

    def _value(self, weights: np.ndarray):
        return self.inner._value(weights) * self.factor

    def _gradient(self, weights: np.ndarray) -> np.ndarray:
        return self.inner._gradient(weights) * self.factor


class L2(Regularizer):
    r""":math:`\frac{\lambda}{2}\sum w^2`; gradient :math:`\lambda w`.

    >>> from bprop.nn.parameter import Parameter
    >>> weights, bias = Parameter([[1.0, -2.0]]), Parameter([3.0], decay=False)
    >>> L2(0.1).forward([weights, bias])
    0.25
    >>> L2(0.1).backward([weights, bias]); weights.grad, bias.grad
    (array([[ 0.1, -0.2]]), array([0.]))
    """

    def __init__(self, strength: float) -> None:
        self.strength = check_positive_float(strength, "strength", allow_zero=True)

    def scaled(self, factor: float) -> L2:
        return L2(self.strength * factor)

    def _value(self, weights: np.ndarray) -> float:
        flat = weights.reshape(-1)
        return 0.5 * self.strength * scalar(array_module(flat).dot(flat, flat))

    def _gradient(self, weights: np.ndarray) -> np.ndarray:
        return self.strength * weights


class L1(Regularizer):
    r""":math:`\lambda\sum |w|`; (sub)gradient :math:`\lambda\,\mathrm{sign}(w)`, 0 at 0.

    >>> from bprop.nn.parameter import Parameter
    >>> weights = Parameter([[1.0, -2.0, 0.0]])
    >>> L1(0.1).forward([weights])
    0.30000000000000004
    >>> L1(0.1).backward([weights]); weights.grad
    array([[ 0.1, -0.1,  0. ]])
    """

    def __init__(self, strength: float) -> None:
        self.strength = check_positive_float(strength, "strength", allow_zero=True)

    def scaled(self, factor: float) -> L1:
        return L1(self.strength * factor)

    def _value(self, weights: np.ndarray) -> float:
        return self.strength * scalar(abs(weights).sum())

    def _gradient(self, weights: np.ndarray) -> np.ndarray:
        return self.strength * array_module(weights).sign(weights)


class L1L2(Regularizer):
    """Both penalties at once (elastic net): ``L1(l1)`` plus ``L2(l2)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1, self.l2 = L1(l1), L2(l2)

    def scaled(self, factor: float) -> L1L2:
        return L1L2(self.l1.strength * factor, self.l2.strength * factor)

    def _value(self, weights: np.ndarray) -> float:
        return self.l1._value(weights) + self.l2._value(weights)

    def _gradient(self, weights: np.ndarray) -> np.ndarray:
        return self.l1._gradient(weights) + self.l2._gradient(weights)

    def __repr__(self) -> str:
        return f"L1L2(l1={self.l1.strength!r}, l2={self.l2.strength!r})"

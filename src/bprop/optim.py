r"""Optimizers: turn gradients into parameter updates.

An optimizer is created without parameters and applied to them with ``step``::

    opt = SGD(lr=0.1, momentum=0.9)
    opt.step(model.parameters())

It sees only parameters (a value and its gradient), never layers. Each step works on the flat
views of all parameters given (see :func:`bprop.parameter.flat_views`), so one update of a
whole network is a few vectorised array operations. Per-parameter state (momentum buffers)
lives in the optimizer, keyed by the set of parameters it was stepped with, and survives
across ``fit`` calls.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ._checks import check_positive_float
from .parameter import Parameter, flat_views


class Optimizer:
    """Base class: subclasses implement :meth:`update` on flat value/gradient arrays."""

    def __init__(self, lr: float) -> None:
        self.lr = check_positive_float(lr, "lr")
        self._states: dict[tuple[int, ...], dict] = {}

    def step(self, parameters: Iterable[Parameter]) -> None:
        """Apply one update to ``parameters`` using their current ``grad``."""
        parameters = list(parameters)
        values, grads = flat_views(parameters)
        key = tuple(id(p) for p in parameters)
        state = self._states.get(key)
        if state is None or state["values"] is not values.base:
            # Holding the parameters keeps their ids from being reused by new objects.
            state = {"parameters": parameters, "values": values.base, "step": 0}
            self._states[key] = state
        state["step"] += 1
        self.update(values, grads, state)

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"lr": self.lr}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional momentum (PyTorch's definition).

    .. math::
        v \leftarrow \mu v + g, \qquad \theta \leftarrow \theta - \eta\, v

    with :math:`v` starting at zero (so without momentum, :math:`\theta \leftarrow \theta -
    \eta g`: the tutorials' "weights -= learning rate x gradient").

    >>> from bprop.parameter import Parameter
    >>> p = Parameter([1.0, 2.0])
    >>> p.grad[:] = [0.5, -0.5]
    >>> SGD(lr=0.1).step([p])
    >>> p.value
    array([0.95, 2.05])
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0) -> None:
        super().__init__(lr)
        self.momentum = check_positive_float(momentum, "momentum", allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        if self.momentum == 0:
            values -= self.lr * grads
            return
        velocity = state.get("velocity")
        if velocity is None:
            velocity = state["velocity"] = np.zeros_like(values)
        velocity *= self.momentum
        velocity += grads
        values -= self.lr * velocity

    def get_config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum}

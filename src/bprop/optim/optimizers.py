r"""Optimizers: turn gradients into parameter updates.

An optimizer is created without parameters and applied to them with ``step``::

    opt = SGD(lr=0.1, momentum=0.9)
    opt.step(model.parameters())

It sees only parameters (a value and its gradient), never layers. Each step works on the flat
views of all parameters given (see :func:`bprop.nn.parameter.flat_views`), so one update of a
whole network is a few vectorised array operations. Per-parameter state (momentum buffers,
moment estimates) lives in the optimizer, keyed by the set of parameters it was stepped with,
and survives across ``fit`` calls.

Weight decay applies to the parameters marked ``decay=True`` (weights), not to biases or
normalisation parameters. PyTorch applies an optimizer's ``weight_decay`` to every parameter
it is given; the same update is PyTorch with two parameter groups, weights with the decay and
the rest with ``weight_decay=0`` (which is how the tests compare the two).

Gradient clipping (:func:`clip_grad_value`, :func:`clip_grad_norm`) rewrites gradients in place
before a step.
"""

from __future__ import annotations

import inspect
import math
import weakref
from collections.abc import Iterable

import numpy as np

from .._checks import all_finite, check_choice, check_positive_float
from ..backend import kernels as _kernels
from ..nn.parameter import Parameter, flat_views

#: how often (in steps) an optimizer sets subnormal values in its state to zero; see
#: :meth:`Optimizer.step`
FLUSH_EVERY = 32


class Optimizer:
    """Base class: subclasses implement :meth:`update` on flat value/gradient arrays.

    ``lr`` is a plain attribute: learning-rate schedules (:mod:`bprop.optim.schedules`) change it
    between steps.
    """

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = check_positive_float(lr, "lr")
        self.weight_decay = check_positive_float(weight_decay, "weight_decay", allow_zero=True)
        self._states: dict[tuple[int, ...], dict] = {}

    def step(self, parameters: Iterable[Parameter]) -> None:
        """Apply one update to ``parameters`` using their current ``grad``.

        Every :data:`FLUSH_EVERY` steps, state values too small to be normal floating-point
        numbers (below about 1e-38 in float32, 1e-308 in float64) are set to zero. A weight
        whose gradient stays zero (a ReLU unit that never fires) has moments that shrink by
        a constant factor every step until they are subnormal, where x86 processors compute
        many times slower: after one MNIST epoch at batch 32, 4% of Adam's first moments were
        subnormal and made its update 1.7 times slower. Flushed, they stay exactly zero. The
        step that such a moment would have given a weight (below 1e-33 with Adam's defaults) is
        below the last bit of any weight that is not itself almost zero.
        """
        self._step(parameters, backup=None)

    def guarded_step(self, parameters: Iterable[Parameter], backup: np.ndarray) -> bool:
        """:meth:`step`, made undoable: the parameters' values are first copied into ``backup``
        (a 1-D array of their total size and dtype), and the result says whether every
        updated value is finite. ``fit`` takes its steps this way and, on False, puts
        ``backup`` back. (Adam copies, updates and checks in one compiled pass.)"""
        if type(self).step is not Optimizer.step:  # a subclass's own step: keep it
            parameters = list(parameters)
            values = flat_views(parameters)[0]
            self._check_backup(backup, values)
            backup[...] = values
            self.step(parameters)
            return all_finite(values)
        return self._step(parameters, backup)

    @staticmethod
    def _check_backup(backup, values: np.ndarray) -> None:
        if (not isinstance(backup, np.ndarray) or backup.shape != values.shape
                or backup.dtype != values.dtype):
            raise ValueError(
                f"backup must be a {values.dtype} array of shape {values.shape} (all the "
                f"parameters' values), got {getattr(backup, 'dtype', type(backup).__name__)} "
                f"{getattr(backup, 'shape', '')}"
            )

    def _step(self, parameters: Iterable[Parameter], backup: np.ndarray | None) -> bool:
        parameters = list(parameters)
        values, grads = flat_views(parameters)
        if backup is not None:
            self._check_backup(backup, values)  # before the state changes
        state = self._state(parameters, values)
        state["step"] += 1
        finite = True
        if backup is None:
            self.update(values, grads, state)
        else:
            finite = self._guarded_update(values, grads, state, backup)
        if state["step"] % FLUSH_EVERY == 0:
            for array in state["arrays"].values():
                flush_subnormals(array)
        return finite

    def _guarded_update(self, values: np.ndarray, grads: np.ndarray, state: dict,
                        backup: np.ndarray) -> bool:
        """:meth:`update` with the values first copied into ``backup``; whether the updated
        values are all finite. An optimizer may do this in one pass instead (Adam does)."""
        backup[...] = values
        self.update(values, grads, state)
        return all_finite(values)

    def _state(self, parameters: list[Parameter], values: np.ndarray) -> dict:
        key = tuple(id(p) for p in parameters)
        state = self._states.get(key)
        if state is None:
            mask = None
            if not all(p.decay for p in parameters):
                mask = np.concatenate([np.full(p.size, p.decay, dtype=values.dtype)
                                       for p in parameters])
            state = {"step": 0, "decay_mask": mask, "arrays": {}}
            self._states[key] = state
            # Forget the state when the parameters go (their ids could then be reused), so an
            # optimizer used for many models does not keep them all alive.
            weakref.finalize(parameters[0], self._states.pop, key, None)
        return state

    def _buffer(self, state: dict, name: str, like: np.ndarray) -> np.ndarray:
        """The state array ``name`` (zeros of ``like``'s shape the first time)."""
        arrays = state["arrays"]
        if name not in arrays:
            arrays[name] = np.zeros_like(like)
        return arrays[name]

    @staticmethod
    def _scratch(state: dict, like: np.ndarray) -> np.ndarray:
        """A work array of ``like``'s shape, reused from step to step (not part of the state
        that is saved), so that an update allocates nothing."""
        scratch = state.get("scratch")
        if scratch is None or scratch.shape != like.shape or scratch.dtype != like.dtype:
            scratch = state["scratch"] = np.empty_like(like)
        return scratch

    @staticmethod
    def _decayed(values: np.ndarray, state: dict) -> np.ndarray:
        """``values`` with the entries of parameters exempt from weight decay set to zero."""
        mask = state["decay_mask"]
        return values if mask is None else values * mask

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    # -- state, for saving and restoring -----------------------------------------------------
    def state_dict(self, parameters: Iterable[Parameter]) -> dict:
        """The step count and state arrays kept for ``parameters`` (copies)."""
        parameters = list(parameters)
        state = self._states.get(tuple(id(p) for p in parameters))
        if state is None:
            return {"step": 0, "arrays": {}}
        return {"step": state["step"],
                "arrays": {k: v.copy() for k, v in state["arrays"].items()}}

    def state_names(self) -> tuple[str, ...]:
        """Names of the state arrays this optimizer keeps once it has taken a step."""
        return ()

    def reset(self, parameters: Iterable[Parameter]) -> None:
        """Forget the state (step count, moments) kept for ``parameters``."""
        self._states.pop(tuple(id(p) for p in parameters), None)

    def load_state_dict(self, parameters: Iterable[Parameter], saved: dict) -> None:
        """Restore state saved by :meth:`state_dict` for the same parameter layout."""
        parameters = list(parameters)
        values, _ = flat_views(parameters)
        step, arrays = saved["step"], saved["arrays"]
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"the step count must be a whole number >= 0, got {step!r}")
        expected = set(self.state_names())
        if (set(arrays) != expected if step else not set(arrays) <= expected):
            raise ValueError(f"{type(self).__name__} after {step} steps keeps the arrays "
                             f"{sorted(expected) if step else []}, got {sorted(arrays)}")
        for name, array in arrays.items():
            if array.shape != values.shape:
                raise ValueError(
                    f"optimizer state {name!r} has shape {array.shape} but the parameters "
                    f"hold {values.shape[0]} values; was it saved for another model?"
                )
            if not np.isfinite(array).all() or (name.startswith("square") and array.min() < 0):
                raise ValueError(f"optimizer state {name!r} holds invalid values")
        state = self._state(parameters, values)
        state["step"] = int(step)
        state["arrays"] = {k: np.array(v, dtype=values.dtype) for k, v in saved["arrays"].items()}

    def get_config(self) -> dict:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum and weight decay.

    PyTorch's definition, with :math:`\lambda` the weight decay and :math:`v` starting at zero:

    .. math::
        g \leftarrow g + \lambda\theta, \qquad v \leftarrow \mu v + g, \qquad
        \theta \leftarrow \theta - \eta\,(g + \mu v \text{ if Nesterov, else } v)

    Without momentum this is the tutorials' ``weights -= learning_rate * gradient``.

    >>> from bprop.nn.parameter import Parameter
    >>> p = Parameter([1.0, 2.0])
    >>> p.grad[:] = [0.5, -0.5]
    >>> SGD(lr=0.1).step([p])
    >>> p.value
    array([0.95, 2.05])
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = check_positive_float(momentum, "momentum", allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        if self.weight_decay:
            grads = grads + self.weight_decay * self._decayed(values, state)
        if self.momentum:
            velocity = self._buffer(state, "velocity", values)
            velocity *= self.momentum
            velocity += grads
            grads = grads + self.momentum * velocity if self.nesterov else velocity
        step = self._scratch(state, values)
        np.multiply(grads, self.lr, out=step)
        values -= step

    def state_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum else ()

    def get_config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with PyTorch's hyper-parameters.

    .. math::
        g &\leftarrow g + \lambda\theta \quad\text{(L2-style weight decay, if any)}\\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2\\
        \theta &\leftarrow \theta - \eta\,\frac{m / (1-\beta_1^t)}
                 {\sqrt{v / (1-\beta_2^t)} + \epsilon}

    where :math:`t` counts the steps taken.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                or not all(0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = check_positive_float(eps, "eps")

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        if self.weight_decay:
            grads = grads + self.weight_decay * self._decayed(values, state)
        self._adam_step(values, grads, state)

    def _guarded_update(self, values: np.ndarray, grads: np.ndarray, state: dict,
                        backup: np.ndarray) -> bool:
        if (type(self).update is not Adam.update  # AdamW, or a subclass's own update
                or type(self)._adam_step is not Adam._adam_step):
            return super()._guarded_update(values, grads, state, backup)
        if self.weight_decay:
            grads = grads + self.weight_decay * self._decayed(values, state)
        return self._adam_step(values, grads, state, backup)

    def _adam_step(self, values: np.ndarray, grads: np.ndarray, state: dict,
                   backup: np.ndarray | None = None) -> bool:
        """The update (after any weight decay). With ``backup``, the values are first copied
        into it and the result says whether every updated value is finite (True without)."""
        beta1, beta2 = self.betas
        step = state["step"]
        # The moments are kept as sums, M = m / (1 - b1) and V = v / (1 - b2), which update
        # in fewer passes (M = b1 M + g, V = b2 V + g^2); the constant factors join the
        # scalars below. Every operation writes into existing arrays: an update of the whole
        # network allocates nothing and makes ten passes over one contiguous buffer.
        mean_sum = self._buffer(state, "mean_sum", values)
        square_sum = self._buffer(state, "square_sum", values)
        # With m = (1 - b1) M, v = (1 - b2) V and the bias corrections folded in:
        #   (lr / (1 - b1^t)) m / (sqrt(v / (1 - b2^t)) + eps)
        #   = M / ((sqrt(V) + eps / s) / k),   s = sqrt((1 - b2) / (1 - b2^t)),
        #                                       k = lr (1 - b1) / ((1 - b1^t) s).
        s = math.sqrt((1 - beta2) / (1 - beta2**step))
        k = self.lr * (1 - beta1) / ((1 - beta1**step) * s)
        scalar = values.dtype.type
        arrays = (values, grads, mean_sum, square_sum) + ((backup,) if backup is not None else ())
        fused = _kernels.compiled("adam", *arrays)
        if fused is not None:  # one compiled pass, the same arithmetic (see _fused.c)
            finite = fused(*arrays[:4], scalar(beta1), scalar(beta2), scalar(self.eps / s),
                           scalar(1 / k), *arrays[4:])
            return finite or backup is None
        if backup is not None:
            backup[...] = values
        work = self._scratch(state, values)
        mean_sum *= beta1
        mean_sum += grads
        np.multiply(grads, grads, out=work)
        square_sum *= beta2
        square_sum += work
        np.sqrt(square_sum, out=work)
        work += self.eps / s
        work *= 1 / k
        np.divide(mean_sum, work, out=work)
        values -= work
        return backup is None or all_finite(values)

    def state_names(self) -> tuple[str, ...]:
        return ("mean_sum", "square_sum")

    def get_config(self) -> dict:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    The decay shrinks the weights directly, :math:`\theta \leftarrow \theta(1 - \eta\lambda)`,
    instead of entering the gradient, so it is not rescaled by Adam's adaptive denominator.
    Then the Adam step runs without decay. Default :math:`\lambda = 0.01`, as in PyTorch.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(lr, betas, eps, weight_decay)

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        if self.weight_decay:
            values -= (self.lr * self.weight_decay) * self._decayed(values, state)
        self._adam_step(values, grads, state)


class RMSProp(Optimizer):
    r"""RMSProp (Hinton, 2012), with PyTorch's hyper-parameters.

    .. math::
        v \leftarrow \alpha v + (1-\alpha) g^2, \qquad
        \theta \leftarrow \theta - \eta\, \frac{g}{\sqrt{v} + \epsilon}

    With ``momentum`` :math:`\mu > 0` the step is accumulated,
    :math:`b \leftarrow \mu b + g / (\sqrt{v} + \epsilon)`, :math:`\theta \leftarrow \theta -
    \eta b`; with ``centered=True`` :math:`v` is replaced by the variance estimate
    :math:`v - \bar g^2`, :math:`\bar g \leftarrow \alpha \bar g + (1-\alpha) g`.
    """

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)
        self.eps = check_positive_float(eps, "eps")
        self.momentum = check_positive_float(momentum, "momentum", allow_zero=True)
        self.centered = bool(centered)

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        if self.weight_decay:
            grads = grads + self.weight_decay * self._decayed(values, state)
        square = self._buffer(state, "square", values)
        square *= self.alpha
        square += (1 - self.alpha) * grads * grads
        if self.centered:
            mean = self._buffer(state, "mean", values)
            mean *= self.alpha
            mean += (1 - self.alpha) * grads
            denominator = np.sqrt(square - mean * mean)
        else:
            denominator = np.sqrt(square)
        denominator += self.eps
        if self.momentum:
            buffer = self._buffer(state, "momentum", values)
            buffer *= self.momentum
            buffer += grads / denominator
            values -= self.lr * buffer
        else:
            values -= self.lr * grads / denominator

    def state_names(self) -> tuple[str, ...]:
        return ("square",) + ("mean",) * self.centered + ("momentum",) * (self.momentum > 0)

    def get_config(self) -> dict:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "centered": self.centered, "weight_decay": self.weight_decay}


OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSProp)}


def get_optimizer(optimizer: str | Optimizer | type[Optimizer], **kwargs) -> Optimizer:
    """Return ``optimizer`` if it is an :class:`Optimizer`, or create one from its name.

    Parameters
    ----------
    optimizer : str, Optimizer or Optimizer subclass
        ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"`` (in any case), a class to create,
        or an optimizer, returned as it is.
    **kwargs
        The settings of the optimizer to create (``lr``, ``momentum``, ...), as its class
        takes them.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the choices).
    TypeError
        For a keyword the optimizer does not take (the message lists those it takes), or for
        settings given with an optimizer that already exists.

    Examples
    --------
    >>> get_optimizer("SGD", lr=0.1, momentum=0.9)
    SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0)
    >>> get_optimizer("adam", betas=(0.9, 0.99)).betas
    (0.9, 0.99)
    """
    if isinstance(optimizer, Optimizer):
        if kwargs:
            raise TypeError(f"settings ({', '.join(sorted(kwargs))}) are for an optimizer "
                            f"created by name; {optimizer!r} already exists")
        return optimizer
    if isinstance(optimizer, str):
        choices = {name.lower(): cls for name, cls in OPTIMIZERS.items()}
        cls = choices[check_choice(optimizer.lower(), "optimizer", tuple(choices))]
    elif isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        cls = optimizer
    else:
        names = ", ".join(repr(name.lower()) for name in OPTIMIZERS)
        raise TypeError(f"optimizer must be an Optimizer or one of {names}, got {optimizer!r}")
    accepted = list(inspect.signature(cls).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{cls.__name__} takes no {', '.join(map(repr, unknown))}; its "
                        f"settings are {', '.join(accepted)}")
    return cls(**kwargs)


def fused_adam_available() -> bool:
    """Whether Adam and AdamW run their compiled one-pass update (the C extension built by
    ``pip install`` where a C compiler is found, and not switched off with
    ``BPROP_NO_FUSED=1``). The extension also computes ReLU's backward pass, so this says
    whether that is compiled too. The results are the same either way; only the speed
    differs."""
    return _kernels.extension() is not None


def flush_subnormals(array: np.ndarray) -> None:
    """Set the subnormal elements of a float array (magnitudes below ``np.finfo(dtype).tiny``)
    to zero, keeping their sign, in place. See :meth:`Optimizer.step` for why."""
    compiled = _kernels.compiled("flush_subnormals", array)
    if compiled is not None:
        compiled(array)
    else:
        array *= np.abs(array) >= np.finfo(array.dtype).tiny  # x * 1 = x, x * 0 = +-0


# -- gradient clipping -----------------------------------------------------------------------
def clip_grad_value(parameters: Iterable[Parameter], limit: float) -> None:
    """Clip every gradient element to ``[-limit, limit]`` in place (the tutorials' "delta
    trimming").

    >>> from bprop.nn.parameter import Parameter
    >>> p = Parameter([0.0, 0.0, 0.0])
    >>> p.grad[:] = [-5.0, 0.5, 5.0]
    >>> clip_grad_value([p], 1.0)
    >>> p.grad
    array([-1. ,  0.5,  1. ])
    """
    limit = check_positive_float(limit, "limit")
    _, grads = flat_views(parameters)
    np.clip(grads, -limit, limit, out=grads)


def clip_grad_norm(parameters: Iterable[Parameter], max_norm: float) -> float:
    r"""Rescale all gradients together so that their global L2 norm is at most ``max_norm``.

    :math:`g \leftarrow g \cdot \min(1, \text{max\_norm} / \lVert g \rVert_2)`, the norm taken
    over every gradient element of every parameter; the direction of the step is kept. Returns
    the norm before clipping (as PyTorch's ``clip_grad_norm_`` does).

    >>> from bprop.nn.parameter import Parameter
    >>> p = Parameter([0.0, 0.0])
    >>> p.grad[:] = [3.0, 4.0]
    >>> clip_grad_norm([p], 1.0)
    5.0
    >>> p.grad
    array([0.6, 0.8])
    """
    max_norm = check_positive_float(max_norm, "max_norm")
    _, grads = flat_views(parameters)
    with np.errstate(over="ignore"):
        norm = float(np.sqrt(np.dot(grads, grads)))
    if not np.isfinite(norm):
        # The sum of squares overflowed (float32 beyond ~1e19): measure in units of the largest.
        largest = float(np.abs(grads).max())
        if np.isfinite(largest) and largest > 0:
            scaled = grads / largest
            norm = largest * float(np.sqrt(np.dot(scaled, scaled)))
    if norm > max_norm:
        grads *= max_norm / norm
    return norm

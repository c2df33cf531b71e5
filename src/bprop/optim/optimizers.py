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
from collections.abc import Callable, Iterable
from typing import ClassVar

import numpy as np

from .._checks import (
    all_finite,
    check_choice,
    check_positive_float,
    check_real,
    finite_flag,
    refuse_complex_data,
)
from ..backend import kernels as _kernels
from ..backend.devices import array_module, to_numpy
from ..nn.parameter import Parameter, flat_views

#: how often (in steps) an optimizer sets subnormal values in its state to zero; see
#: :meth:`Optimizer.step`
FLUSH_EVERY = 32

#: state arrays that hold averages of squares, which are never negative
_SQUARES = ("exp_avg_sq", "square_avg")


class Optimizer:
    """Base class: subclasses implement :meth:`update` on flat value/gradient arrays.

    ``lr`` is a plain attribute: learning-rate schedules (:mod:`bprop.optim.schedules`) change it
    between steps. The state an update keeps (moments, momentum buffers) is a dict of flat
    arrays, one value per parameter value, named as PyTorch names them (:meth:`state_dict`).

    **Which update runs.** :meth:`update` is the reference: NumPy, written as the formulas
    read. When :attr:`kernel` names a function of the C extension (:mod:`bprop.backend.kernels`)
    and the extension is built and takes the arrays, :meth:`run_kernel` runs that function
    instead, with the same result bit for bit (the tests compare them). The base class decides
    this in one place, for :meth:`step` and :meth:`guarded_step` alike. A subclass

    * opts out with ``kernel = None``;
    * that writes its own ``update`` is opted out (its ``kernel`` becomes None), unless its
      class body names a kernel again, with a :meth:`run_kernel` that computes that update;
    * that writes its own ``step`` gets a :meth:`guarded_step` that backs up the values, calls
      that ``step`` and tests the result;
    * that writes its own ``update`` or ``step`` has :attr:`carries_nonfinite_gradients` False
      unless its class body sets it.
    """

    #: The name of the compiled kernel (a function of ``bprop.backend._fused``) that computes
    #: this optimizer's update, run by :meth:`run_kernel`; None (the default) for none, when
    #: :meth:`update` runs in NumPy. See the class's description for how subclasses inherit it.
    kernel: ClassVar[str | None] = None

    #: Whether every update turns a NaN or infinite gradient element into a NaN or infinite
    #: value, so that :meth:`guarded_step`'s test of the new values also catches non-finite
    #: gradients and a training step need not test the gradients first. True for bprop's
    #: optimizers (each gradient element reaches its value through sums, products and
    #: quotients); False, the safe answer, for any other update.
    carries_nonfinite_gradients: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs) -> None:
        # A class that writes its own arithmetic keeps it: a kernel, an answer about
        # non-finite gradients or a guarded step inherited from its parent were about the
        # parent's arithmetic. (What a class body writes, not what it inherits.)
        super().__init_subclass__(**kwargs)
        written = vars(cls)
        if "update" in written and "kernel" not in written:
            cls.kernel = None
        if (("update" in written or "step" in written)
                and "carries_nonfinite_gradients" not in written):
            cls.carries_nonfinite_gradients = False
        if "step" in written and "guarded_step" not in written:
            cls.guarded_step = Optimizer._guarded_own_step

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

    def guarded_step(self, parameters: Iterable[Parameter], backup: np.ndarray,
                     healthy=True) -> bool:
        """:meth:`step`, made undoable: the parameters' values are first copied into ``backup``
        (a 1-D array of their total size and dtype), and the result says whether every
        updated value, and every value of the optimizer's state, is finite. On False the
        optimizer's own state (step count, moments) is already as it was before the step,
        and the caller puts ``backup`` back into the values, as the training step does.
        (Adam's compiled kernel copies, updates and checks in one pass.)

        On a device the result is a 0-d boolean array, which the training step does not read
        (reading it would make the step wait for the GPU): the state arrays are put back
        where it is False, by masked copies, and the step count is put right by
        :meth:`_set_step_count` once the caller has read how many steps were kept. ``healthy`` (a
        0-d device flag) makes the step count as failed whatever its result: a device step
        passes the result of its own earlier tests (the loss, the gradients) here."""
        return self._step(parameters, backup, healthy)

    def _step(self, parameters: Iterable[Parameter], backup: np.ndarray | None,
              healthy=True) -> bool:
        """The one place where the compiled or the NumPy update is chosen (see the class)."""
        parameters = list(parameters)
        values, grads = flat_views(parameters)
        if backup is not None:
            self._check_backup(backup, values)  # before the state changes
        state = self._state(parameters, values)
        arrays = (values, grads) if backup is None else (values, grads, backup)
        kernel = None if self.kernel is None else _kernels.compiled(self.kernel, *arrays)
        # Guarded, the step must leave the state as it was if it fails: a kernel writes the
        # new state into spare arrays (see run_kernel), swapped in when the step is kept; the
        # NumPy update works in place on a state copied first, and so does every update on a
        # device, where the arrays a step writes must be the same at every step (a captured
        # CUDA graph replays the addresses it recorded).
        on_host = type(values) is np.ndarray
        kept = None if backup is None else self._keep(state,
                                                      copy_arrays=kernel is None or not on_host)
        state["step"] += 1
        if kernel is not None:
            finite = self.run_kernel(kernel, values, grads, state, backup)
        else:
            if backup is not None:
                backup[...] = values
            self.update(values, grads, state)
            finite = backup is None or self._all_finite(values, state)
        if kept is not None and not on_host:
            finite = self._settle_on_device(state, kept, finite & healthy)
        elif kept is not None:
            if not finite:
                self._restore(state, kept)
                return False
            if kernel is not None:
                self._adopt_new_state(state)
        # (A GPU computes with subnormal numbers at full speed, and CuPy's float32 kernels
        # flush them anyway: only the CPU needs the flush. Its condition, a step count on the
        # host, is also one that a recorded step could not follow.)
        if state["step"] % FLUSH_EVERY == 0 and on_host:
            for array in state["arrays"].values():
                flush_subnormals(array)
        return finite

    def _guarded_own_step(self, parameters: Iterable[Parameter], backup: np.ndarray,
                          healthy=True) -> bool:
        """:meth:`guarded_step` for a class that writes its own ``step``: back up the values
        and the state, that step, test the values (and on failure put the state back)."""
        parameters = list(parameters)
        values = flat_views(parameters)[0]
        self._check_backup(backup, values)
        state = self._state(parameters, values)
        kept = self._keep(state, copy_arrays=True)
        backup[...] = values
        self.step(parameters)
        finite = self._all_finite(values, state)
        if type(values) is not np.ndarray:
            return self._settle_on_device(state, kept, finite & healthy)
        if finite:
            return True
        self._restore(state, kept)
        return False

    @staticmethod
    def _all_finite(values: np.ndarray, state: dict) -> bool:
        """Whether the updated values and the state are all finite: a gradient whose square
        overflows (above about 1.8e19 in float32) makes Adam's or RMSProp's average of squares
        infinite and every later step of that value 0, a stall nothing else would show. (On
        a device: a 0-d flag, see :func:`~bprop._checks.finite_flag`.)"""
        if type(values) is not np.ndarray:
            flag = finite_flag(values)
            for array in state["arrays"].values():
                flag = flag & finite_flag(array)
            return flag
        return all_finite(values) and all(all_finite(a) for a in state["arrays"].values())

    @staticmethod
    def _settle_on_device(state: dict, kept: tuple, kept_flag):
        """Keep a device step where ``kept_flag`` (a 0-d device bool) is true and put the state
        arrays back where it is false, without reading the flag: masked copies from what
        :meth:`_keep` copied. Arrays the step created go back to the zeros they started as,
        and a step count in device memory (Adam's on a GPU) goes back by one."""
        xp = array_module(kept_flag)
        failed = ~kept_flag
        for name, array in state["arrays"].items():
            if name not in kept[1]:
                xp.copyto(array, xp.zeros((), array.dtype), where=failed)
            else:
                _kernels.restore_where(failed, kept[1][name], array)
        if "device_step" in state:
            state["device_step"] -= failed.astype(state["device_step"].dtype)
        return kept_flag

    def _state_arrays(self, parameters: Iterable[Parameter]) -> list:
        """Every array the state kept for ``parameters`` holds (moments, copies, work arrays):
        what a recorded CUDA graph of a step reads and writes in place."""
        state = self._states.get(tuple(id(p) for p in parameters))
        if state is None:
            return []
        arrays = []
        for value in state.values():
            for array in (value.values() if isinstance(value, dict) else [value]):
                if hasattr(array, "shape"):
                    arrays.append(array)
        return arrays

    def _step_count(self, parameters: Iterable[Parameter]) -> int:
        """The number of steps taken for ``parameters`` (0 before the first)."""
        state = self._states.get(tuple(id(p) for p in parameters))
        return 0 if state is None else state["step"]

    def _set_step_count(self, parameters: Iterable[Parameter], steps: int) -> None:
        """Set the step count kept for ``parameters`` on the host: after a device epoch, to the
        steps it kept (which the host learns only when it reads the epoch's flags)."""
        state = self._states.get(tuple(id(p) for p in parameters))
        if state is not None:
            state["step"] = int(steps)

    @staticmethod
    def _keep(state: dict, copy_arrays: bool) -> tuple[int, dict[str, np.ndarray | None]]:
        """What :meth:`_restore` needs to undo a step: the step count, the names of the state
        arrays and, with ``copy_arrays``, a copy of them (into arrays kept for the purpose,
        ``state["kept"]``, so that a guarded step allocates nothing)."""
        if not copy_arrays:
            return state["step"], dict.fromkeys(state["arrays"])
        copies = {name: Optimizer._spare(state, "kept", name, array)
                  for name, array in state["arrays"].items()}
        for name, array in state["arrays"].items():
            array_module(array).copyto(copies[name], array)
        return state["step"], copies

    @staticmethod
    def _restore(state: dict, kept: tuple[int, dict[str, np.ndarray | None]]) -> None:
        """Put back the step count and the state arrays that :meth:`_keep` kept: arrays the
        step created are dropped, the others get their old values (a kernel left them
        untouched)."""
        step, copies = kept
        state["step"] = step
        arrays = state["arrays"]
        for name in list(arrays):
            if name not in copies:
                del arrays[name]
            elif copies[name] is not None:
                array_module(arrays[name]).copyto(arrays[name], copies[name])

    @staticmethod
    def _new_state(state: dict, name: str, like: np.ndarray) -> np.ndarray:
        """The spare array into which a guarded kernel writes the new value of the state
        array ``name`` (reading the current one), swapped in by :meth:`_adopt_new_state`
        when the step is kept."""
        return Optimizer._spare(state, "new", name, like)

    @staticmethod
    def _spare(state: dict, store: str, name: str, like: np.ndarray) -> np.ndarray:
        """The array ``state[store][name]``, of ``like``'s shape and dtype, kept from step to
        step (made, uninitialised, the first time or when ``like`` changed)."""
        arrays = state.setdefault(store, {})
        array = arrays.get(name)
        if (array is None or array.shape != like.shape or array.dtype != like.dtype
                or array_module(array) is not array_module(like)):
            array = arrays[name] = array_module(like).empty_like(like)
        return array

    @staticmethod
    def _adopt_new_state(state: dict) -> None:
        """Make the arrays a guarded kernel wrote (:meth:`_new_state`) the state, and the
        old ones the spares for the next step."""
        arrays, spare = state["arrays"], state.get("new", {})
        for name, new in spare.items():
            if name in arrays:
                arrays[name], spare[name] = new, arrays[name]

    @staticmethod
    def _check_backup(backup, values: np.ndarray) -> None:
        if (array_module(backup) is not array_module(values) or not hasattr(backup, "shape")
                or backup.shape != values.shape
                or backup.dtype != values.dtype):
            raise ValueError(
                f"backup must be a {values.dtype} array of shape {values.shape} (all the "
                f"parameters' values), got {getattr(backup, 'dtype', type(backup).__name__)} "
                f"{getattr(backup, 'shape', '')}"
            )

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        """One update of the flat ``values`` (in place) from the flat ``grads``, both of shape
        ``(n,)``; ``state["step"]`` is the step's number (1 for the first) and
        ``state["arrays"]`` the arrays it keeps (see :meth:`_buffer`)."""
        raise NotImplementedError

    def run_kernel(self, kernel: Callable, values: np.ndarray, grads: np.ndarray, state: dict,
                   backup: np.ndarray | None) -> bool:
        """:meth:`update`, computed by the compiled ``kernel`` (the function :attr:`kernel`
        names); with ``backup``, the values are first copied into it, and the new state
        arrays are written into ``self._new_state(state, name, like)`` instead of the
        current ones, which stay as they were (so that a step that is not finite leaves the
        state untouched). Returns whether every updated value is finite."""
        raise NotImplementedError(f"{type(self).__name__} names the kernel {self.kernel!r} "
                                  "but does not say how to run it (run_kernel)")

    # -- the machinery the updates share ----------------------------------------------------
    def _state(self, parameters: list[Parameter], values: np.ndarray) -> dict:
        key = tuple(id(p) for p in parameters)
        state = self._states.get(key)
        if state is not None and state.get("xp", "numpy") != array_module(values).__name__:
            self._move_state(state, array_module(values))  # the model moved to another device
        if state is None:
            mask, xp = None, array_module(values)
            if not all(p.decay for p in parameters):
                mask = xp.concatenate([xp.full(p.size, p.decay, dtype=values.dtype)
                                       for p in parameters])
            # (the array module by name: an optimizer pickles)
            state = {"step": 0, "decay_mask": mask, "arrays": {}, "xp": xp.__name__}
            self._adopt_state(parameters, state)
        return state

    def _adopt_state(self, parameters: list[Parameter], state: dict) -> None:
        """Keep ``state`` for ``parameters``: under their ids, with weak references to them (for
        pickling), and forgotten when they go (their ids could then be reused), so that an
        optimizer used for many models does not keep them all alive."""
        key = tuple(id(p) for p in parameters)
        self._states[key] = state
        owners = self.__dict__.setdefault("_owners", {})
        owners[key] = [weakref.ref(p) for p in parameters]
        weakref.finalize(parameters[0], self._states.pop, key, None)
        weakref.finalize(parameters[0], owners.pop, key, None)

    # -- pickling: the state is keyed by the parameters' ids, which a pickle cannot keep -------
    def __getstate__(self) -> dict:
        """The optimizer's attributes, its state kept as ``(parameters, state)`` pairs: pickled
        with the model whose parameters they are (``pickle.dumps((model, optimizer))``, or an
        estimator), the pairs name the very parameters the copy of the model has, and
        :meth:`__setstate__` keys the state by their new ids. (Work arrays are left out:
        they are made anew when needed.)"""
        attributes = dict(self.__dict__)
        owners = attributes.pop("_owners", {})
        pairs = []
        for key, state in self._states.items():
            parameters = [ref() for ref in owners.get(key, ())]
            if parameters and all(p is not None for p in parameters):
                pairs.append((parameters, {name: value for name, value in state.items()
                                           if name not in _WORK_ARRAYS}))
        attributes["_states"] = pairs
        return attributes

    def __setstate__(self, attributes: dict) -> None:
        attributes = dict(attributes)
        pairs = attributes.pop("_states", [])
        self.__dict__.update(attributes)
        self._states, self._owners = {}, {}
        if isinstance(pairs, dict):  # (pickled before the state kept its parameters: the ids
            pairs = []               # it is keyed by mean nothing now)
        for parameters, state in pairs:
            self._adopt_state(list(parameters), state)

    @staticmethod
    def _move_state(state: dict, xp) -> None:
        """Move the state arrays into the memory of the array module ``xp`` (one copy each);
        the work arrays are made anew there when next needed."""
        def move(array):
            return np.array(to_numpy(array)) if xp is np else xp.asarray(array)

        state["arrays"] = {name: move(array) for name, array in state["arrays"].items()}
        if state["decay_mask"] is not None:
            state["decay_mask"] = move(state["decay_mask"])
        for store in _WORK_ARRAYS:
            state.pop(store, None)
        state["xp"] = xp.__name__

    @staticmethod
    def _buffer(state: dict, name: str, like: np.ndarray) -> np.ndarray:
        """The state array ``name`` (zeros of ``like``'s shape the first time)."""
        arrays = state["arrays"]
        if name not in arrays:
            arrays[name] = array_module(like).zeros_like(like)
        return arrays[name]

    @staticmethod
    def _scratch(state: dict, like: np.ndarray, count: int = 1) -> np.ndarray:
        """``count`` work arrays of ``like``'s shape (one array of shape ``(count, n)``),
        reused from step to step (not part of the state that is saved), so that an update
        allocates nothing."""
        scratch = state.get("scratch")
        if scratch is None or scratch.shape != (count, *like.shape) or scratch.dtype != like.dtype:
            scratch = state["scratch"] = array_module(like).empty((count, *like.shape),
                                                                  dtype=like.dtype)
        return scratch

    @staticmethod
    def _decayed(values: np.ndarray, state: dict) -> np.ndarray:
        """``values`` with the entries of parameters exempt from weight decay set to zero."""
        mask = state["decay_mask"]
        return values if mask is None else values * mask

    def _with_weight_decay(self, values: np.ndarray, grads: np.ndarray,
                           state: dict) -> np.ndarray:
        r"""The gradient with L2 weight decay, :math:`g + \lambda\theta` (``grads`` itself
        without decay)."""
        if not self.weight_decay:
            return grads
        return grads + self.weight_decay * self._decayed(values, state)

    # -- state, for saving and restoring -----------------------------------------------------
    #: The names this optimizer's state arrays had in bprop's first model-file format (before
    #: they took PyTorch's), mapped to their names now; see :meth:`load_state_dict`.
    _PREVIOUS_NAMES: ClassVar[dict[str, str]] = {}

    def state_dict(self, parameters: Iterable[Parameter]) -> dict:
        """The step count and state arrays kept for ``parameters`` (copies): ``{"step": t,
        "arrays": {name: array of shape (n,)}}``, the arrays flat in parameter order and named
        as PyTorch names them (``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``,
        ``square_avg``, ``grad_avg``).

        >>> from bprop.nn.parameter import Parameter
        >>> p = Parameter([1.0, 2.0])
        >>> p.grad[:] = [0.5, -0.5]
        >>> optimizer = SGD(lr=0.1, momentum=0.9)
        >>> optimizer.step([p])
        >>> optimizer.state_dict([p])
        {'step': 1, 'arrays': {'momentum_buffer': array([ 0.5, -0.5])}}
        """
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
        """Restore state saved by :meth:`state_dict` for the same parameter layout.

        State saved under the names of bprop's first model-file format (Adam's ``mean_sum``
        and ``square_sum``, SGD's ``velocity``, RMSProp's ``square``, ``mean`` and
        ``momentum``) is converted to today's names and values.
        """
        parameters = list(parameters)
        values, _ = flat_views(parameters)
        step, arrays = saved["step"], saved["arrays"]
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"the step count must be a whole number >= 0, got {step!r}")
        if arrays and set(arrays) <= set(self._PREVIOUS_NAMES):
            arrays = {self._PREVIOUS_NAMES[name]: self._from_previous_format(name, array)
                      for name, array in arrays.items()}
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
            host = to_numpy(array)
            if not np.isfinite(host).all() or (name in _SQUARES and host.min() < 0):
                raise ValueError(f"optimizer state {name!r} holds invalid values")
        state = self._state(parameters, values)
        state["step"] = int(step)
        state.pop("device_step", None)  # (made again from the step count when needed)
        xp = array_module(values)
        state["arrays"] = {k: (np.array(to_numpy(v), dtype=values.dtype) if xp is np
                               else xp.array(xp.asarray(v), dtype=values.dtype))
                           for k, v in arrays.items()}

    def _from_previous_format(self, name: str, array: np.ndarray) -> np.ndarray:
        """The state array ``name`` of the first model-file format as it is kept now (only
        its name changed, unless a subclass says otherwise)."""
        return array

    def get_config(self) -> dict:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum and weight decay.

    PyTorch's definition, with :math:`\lambda` the weight decay and the momentum buffer
    :math:`b` (``momentum_buffer``) starting at zero:

    .. math::
        g \leftarrow g + \lambda\theta, \qquad b \leftarrow \mu b + g, \qquad
        \theta \leftarrow \theta - \eta\,(g + \mu b \text{ if Nesterov, else } b)

    Without momentum this is the tutorials' ``weights -= learning_rate * gradient``.

    >>> from bprop.nn.parameter import Parameter
    >>> p = Parameter([1.0, 2.0])
    >>> p.grad[:] = [0.5, -0.5]
    >>> SGD(lr=0.1).step([p])
    >>> p.value
    array([0.95, 2.05])
    """

    carries_nonfinite_gradients = True
    _PREVIOUS_NAMES = {"velocity": "momentum_buffer"}

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
        grads = self._with_weight_decay(values, grads, state)
        if self.momentum:
            momentum_buffer = self._buffer(state, "momentum_buffer", values)
            momentum_buffer *= self.momentum
            momentum_buffer += grads
            grads = grads + self.momentum * momentum_buffer if self.nesterov else momentum_buffer
        step = self._scratch(state, values)[0]
        array_module(values).multiply(grads, self.lr, out=step)
        values -= step

    def state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum else ()

    def get_config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with PyTorch's hyper-parameters and arithmetic.

    .. math::
        g &\leftarrow g + \lambda\theta \quad\text{(L2-style weight decay, if any)}\\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2\\
        \theta &\leftarrow \theta - \frac{\eta}{1-\beta_1^t}\,
                 \frac{m}{\sqrt{v} / \sqrt{1-\beta_2^t} + \epsilon}

    where :math:`t` counts the steps taken; the last line is the paper's
    :math:`\theta - \eta\,\hat m / (\sqrt{\hat v} + \epsilon)` with the bias-corrected moments
    :math:`\hat m = m / (1-\beta_1^t)`, :math:`\hat v = v / (1-\beta_2^t)`, with the bias
    corrections applied as PyTorch applies them (equal to PyTorch's to rounding: 1e-12 in
    float64, 1e-6 in float32, tested). The moments are the state arrays ``exp_avg`` (:math:`m`) and
    ``exp_avg_sq`` (:math:`v`). The compiled kernel ``adam`` computes the same operations in
    one pass over the arrays.

    >>> from bprop.nn.parameter import Parameter
    >>> p = Parameter([1.0, 2.0])
    >>> p.grad[:] = [0.5, -0.5]
    >>> optimizer = Adam(lr=0.1)
    >>> optimizer.step([p])  # the first step moves each value by about lr
    >>> p.value.round(6)
    array([0.9, 2.1])
    >>> optimizer.state_dict([p])["arrays"]["exp_avg"]
    array([ 0.05, -0.05])
    """

    kernel = "adam"
    carries_nonfinite_gradients = True
    _PREVIOUS_NAMES = {"mean_sum": "exp_avg", "square_sum": "exp_avg_sq"}

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        refuse_complex_data(betas, "betas")
        try:
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                raise ValueError
            self.betas = tuple(check_real(beta, "betas", 0, 1, high_open=True)
                               for beta in betas)
        except ValueError:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}") from None
        self.eps = check_positive_float(eps, "eps")

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        self._adam_update(values, self._with_weight_decay(values, grads, state), state)

    def run_kernel(self, kernel: Callable, values: np.ndarray, grads: np.ndarray, state: dict,
                   backup: np.ndarray | None) -> bool:
        return self._adam_kernel(kernel, values, self._with_weight_decay(values, grads, state),
                                 state, backup, guarded=_spares_undo(values, backup))

    def _bias_corrections(self, step: int) -> tuple[float, float]:
        """``(lr / (1 - beta1**t), sqrt(1 - beta2**t))`` for step ``t``."""
        beta1, beta2 = self.betas
        return self.lr / (1 - beta1**step), math.sqrt(1 - beta2**step)

    def _adam_update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        """The update from ``grads`` after any weight decay, in NumPy. Every operation writes
        into an existing array: an update of the whole network allocates nothing."""
        xp, (beta1, beta2) = array_module(values), self.betas
        exp_avg = self._buffer(state, "exp_avg", values)
        exp_avg_sq = self._buffer(state, "exp_avg_sq", values)
        if type(values) is np.ndarray:
            step_size, bias_correction2_sqrt = self._bias_corrections(state["step"])
        else:  # (0-d arrays on the device, in the values' dtype as a Python float would be)
            step_size, bias_correction2_sqrt = (
                s.astype(values.dtype) for s in self._device_bias_corrections(state, values))
        work, step = self._scratch(state, values, 2)
        # m <- b1 m + (1 - b1) g
        exp_avg *= beta1
        exp_avg += xp.multiply(1 - beta1, grads, out=work)
        # v <- b2 v + (1 - b2) g^2
        exp_avg_sq *= beta2
        xp.multiply(1 - beta2, grads, out=work)
        exp_avg_sq += xp.multiply(work, grads, out=work)
        # theta <- theta - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        denominator = xp.sqrt(exp_avg_sq, out=work)
        denominator /= bias_correction2_sqrt
        denominator += self.eps
        xp.multiply(step_size, exp_avg, out=step)
        step /= denominator
        values -= step

    def _adam_kernel(self, kernel: Callable, values: np.ndarray, grads: np.ndarray, state: dict,
                     backup: np.ndarray | None, guarded: bool) -> bool:
        """:meth:`_adam_update` in one compiled pass (see ``_fused.c``), with the values
        first copied into ``backup`` if given and, when ``guarded``, the new moments written
        into the spare arrays (see :meth:`run_kernel`); whether the new values are all
        finite."""
        beta1, beta2 = self.betas
        exp_avg = self._buffer(state, "exp_avg", values)
        exp_avg_sq = self._buffer(state, "exp_avg_sq", values)
        new_moments = (None, None) if not guarded else (
            self._new_state(state, "exp_avg", values),
            self._new_state(state, "exp_avg_sq", values))
        if type(values) is not np.ndarray:  # (on any device, from its own step count)
            step_size, bias_correction2_sqrt = self._device_bias_corrections(state, values)
        else:
            step_size, bias_correction2_sqrt = self._bias_corrections(state["step"])
        return kernel(values, grads, exp_avg, exp_avg_sq, beta1, beta2, step_size,
                      bias_correction2_sqrt, self.eps, backup, *new_moments)

    def _device_bias_corrections(self, state: dict, like):
        """The bias corrections as 0-d arrays on the GPU, computed there from a step count
        kept in device memory too (``state["device_step"]``, the steps kept), so that a step
        captured in a CUDA graph takes each replay's own step number."""
        xp = array_module(like)
        if "device_step" not in state:  # (state["step"] already counts this step)
            state["device_step"] = xp.full((), state["step"] - 1, dtype=xp.int64)
            state["device_scalars"] = xp.empty(2, dtype=xp.float64)
        counter, scalars = state["device_step"], state["device_scalars"]
        counter += 1
        beta1, beta2 = self.betas
        kernel = _kernels.compiled("adam_scalars", like)
        if kernel is not None:
            kernel(self.lr, beta1, beta2, counter, scalars[0], scalars[1])
        else:  # lr / (1 - beta1**t) and sqrt(1 - beta2**t), as _bias_corrections has them
            t = counter.astype(xp.float64)
            xp.divide(self.lr, 1 - xp.power(beta1, t), out=scalars[0])
            xp.sqrt(1 - xp.power(beta2, t), out=scalars[1])
        return scalars[0], scalars[1]

    def _from_previous_format(self, name: str, array: np.ndarray) -> np.ndarray:
        # The first format kept the moments as sums, M = m / (1 - b1) and V = v / (1 - b2).
        beta1, beta2 = self.betas
        return array * (1 - beta1 if name == "mean_sum" else 1 - beta2)

    def state_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def get_config(self) -> dict:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    The decay shrinks the weights directly, :math:`\theta \leftarrow \theta - \eta\lambda\theta`,
    instead of entering the gradient, so it is not rescaled by Adam's adaptive denominator.
    Then the Adam step runs without decay. Default :math:`\lambda = 0.01`, as in PyTorch.
    """

    kernel = "adam"  # Adam's step, after the decay (see run_kernel)
    carries_nonfinite_gradients = True

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(lr, betas, eps, weight_decay)

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        self._decay_values(values, state)
        self._adam_update(values, grads, state)

    def run_kernel(self, kernel: Callable, values: np.ndarray, grads: np.ndarray, state: dict,
                   backup: np.ndarray | None) -> bool:
        if backup is not None:
            backup[...] = values  # before the decay changes them
        self._decay_values(values, state)
        return self._adam_kernel(kernel, values, grads, state, None,
                                 guarded=_spares_undo(values, backup))

    def _decay_values(self, values: np.ndarray, state: dict) -> None:
        if self.weight_decay:
            values -= (self.lr * self.weight_decay) * self._decayed(values, state)


class RMSProp(Optimizer):
    r"""RMSProp (Hinton, 2012), with PyTorch's hyper-parameters.

    .. math::
        v \leftarrow \alpha v + (1-\alpha) g^2, \qquad
        \theta \leftarrow \theta - \eta\, \frac{g}{\sqrt{v} + \epsilon}

    With ``momentum`` :math:`\mu > 0` the step is accumulated,
    :math:`b \leftarrow \mu b + g / (\sqrt{v} + \epsilon)`, :math:`\theta \leftarrow \theta -
    \eta b`; with ``centered=True`` :math:`v` is replaced by the variance estimate
    :math:`v - \bar g^2`, :math:`\bar g \leftarrow \alpha \bar g + (1-\alpha) g`. The state
    arrays are PyTorch's ``square_avg`` (:math:`v`), ``grad_avg`` (:math:`\bar g`) and
    ``momentum_buffer`` (:math:`b`).
    """

    carries_nonfinite_gradients = True
    _PREVIOUS_NAMES = {"square": "square_avg", "mean": "grad_avg", "momentum": "momentum_buffer"}

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.alpha = check_real(alpha, "alpha", 0, 1, high_open=True)
        self.eps = check_positive_float(eps, "eps")
        self.momentum = check_positive_float(momentum, "momentum", allow_zero=True)
        self.centered = bool(centered)

    def update(self, values: np.ndarray, grads: np.ndarray, state: dict) -> None:
        grads = self._with_weight_decay(values, grads, state)
        square_avg = self._buffer(state, "square_avg", values)
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * grads * grads
        if self.centered:
            grad_avg = self._buffer(state, "grad_avg", values)
            grad_avg *= self.alpha
            grad_avg += (1 - self.alpha) * grads
            denominator = array_module(values).sqrt(square_avg - grad_avg * grad_avg)
        else:
            denominator = array_module(values).sqrt(square_avg)
        denominator += self.eps
        if self.momentum:
            momentum_buffer = self._buffer(state, "momentum_buffer", values)
            momentum_buffer *= self.momentum
            momentum_buffer += grads / denominator
            values -= self.lr * momentum_buffer
        else:
            values -= self.lr * grads / denominator

    def state_names(self) -> tuple[str, ...]:
        return (("square_avg",) + ("grad_avg",) * self.centered
                + ("momentum_buffer",) * (self.momentum > 0))

    def get_config(self) -> dict:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "centered": self.centered, "weight_decay": self.weight_decay}


#: what an optimizer's state keeps beyond its step count, mask and arrays: work arrays and
#: device copies, made anew when needed (not moved, nor pickled)
_WORK_ARRAYS = ("kept", "new", "scratch", "device_step", "device_scalars")


def _spares_undo(values, backup) -> bool:
    """Whether a guarded kernel writes the new state into spare arrays (on the CPU) rather
    than in place (on a device, which undoes by masked copies: see _settle_on_device)."""
    return backup is not None and type(values) is np.ndarray


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
    else:  # x * 1 = x, x * 0 = +-0
        array *= array_module(array).abs(array) >= np.finfo(array.dtype).tiny


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
    array_module(grads).clip(grads, -limit, limit, out=grads)


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
    if type(grads) is not np.ndarray:
        return float(_clip_device_norm(grads, max_norm))
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


def _clip_device_norm(grads, max_norm: float):
    """:func:`clip_grad_norm` on a device, with nothing read back: the norm (a 0-d array) is
    computed, measured in units of the largest gradient where the sum of squares overflows,
    and the factor applied, all where the gradients are."""
    xp = array_module(grads)
    norm = xp.sqrt(xp.dot(grads, grads))
    largest = xp.abs(grads).max()
    scaled = grads / xp.where(largest > 0, largest, 1)
    norm = xp.where(xp.isfinite(norm), norm, largest * xp.sqrt(xp.dot(scaled, scaled)))
    grads *= xp.where(norm > max_norm, max_norm / norm, 1).astype(grads.dtype)
    return norm

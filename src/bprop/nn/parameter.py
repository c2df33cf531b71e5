"""Learnable parameters, and the flat buffer that lets an optimizer update them all at once.

A :class:`Parameter` is a value and the gradient of the loss with respect to it. Layers read
and write parameters only through ``param.value`` and ``param.grad``, so the arrays behind those
names can be *views* into one contiguous buffer shared by a whole model. An optimizer then updates
every weight and bias of the network in a handful of vectorised operations over that buffer
instead of a Python loop over dozens of small arrays, which on a CPU is where a plain NumPy
training loop loses much of its time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class FlatBuffer:
    """Two 1-D arrays (values and gradients) that the parameters packed into it are views of."""

    __slots__ = ("values", "grads")

    def __init__(self, size: int, dtype: np.dtype):
        self.values = np.zeros(size, dtype=dtype)
        self.grads = np.zeros(size, dtype=dtype)


class Parameter:
    """A learnable array ``value`` and its gradient ``grad`` (same shape and dtype).

    Parameters
    ----------
    value : array_like
        Initial value; copied.
    decay : bool
        Whether weight penalties (L1/L2, weight decay) apply to it: True for weights,
        False for biases and normalisation shifts.

    Assigning ``param.value = array`` copies into the existing storage (after checking the shape),
    so the parameter never silently leaves the buffer its model packed it into.

    Layers add their gradients with :meth:`accumulate_matmul` and :meth:`accumulate_sum`: right
    after :meth:`zero_grad` these write the result straight into ``grad`` (saving a temporary
    array and a pass over it), otherwise they add to it; either way ``grad`` ends up holding
    the sum, exactly as ``grad += ...`` would. For the same reason :meth:`zero_grad` only
    notes that the gradient is zero: the array is filled with zeros when it is next read
    without having been written (``param.grad``, :func:`flat_views`).

    >>> p = Parameter([[1.0, 2.0]])
    >>> p.value = [[3.0, 4.0]]
    >>> p.value, p.grad
    (array([[3., 4.]]), array([[0., 0.]]))
    """

    __slots__ = ("_value", "_grad", "decay", "_home", "_zeroed", "_fill_pending", "__weakref__")

    def __init__(self, value, *, decay: bool = True):
        array = np.array(value, copy=True)
        self._value = array if array.dtype.kind == "f" else array.astype(np.float64)
        self._grad = np.zeros_like(self._value)
        # _zeroed: the gradient is zero and no one has been handed the array since, so the next
        # accumulate may overwrite it. _fill_pending: the gradient is zero but zero_grad has not
        # filled the array yet (so _fill_pending implies _zeroed).
        self._zeroed, self._fill_pending = True, False
        self.decay = decay
        self._home: tuple[FlatBuffer, int, int] | None = None

    @property
    def value(self) -> np.ndarray:
        return self._value

    @value.setter
    def value(self, new_value) -> None:
        new_value = np.asarray(new_value)
        if new_value.shape != self._value.shape:
            raise ValueError(
                f"cannot set a parameter of shape {self._value.shape} "
                f"to an array of shape {new_value.shape}"
            )
        if not np.issubdtype(new_value.dtype, np.number):
            raise TypeError(f"parameter values must be numbers, got dtype {new_value.dtype}")
        if not np.all(np.isfinite(new_value)):
            raise ValueError("parameter values must be finite (no NaN or infinity)")
        self._value[...] = new_value

    @property
    def grad(self) -> np.ndarray:
        # Whoever holds the array may write into it, so it can no longer be assumed zero.
        self._fill_if_pending()
        self._zeroed = False
        return self._grad

    @grad.setter
    def grad(self, new_grad) -> None:
        # ``param.grad += g`` adds in place and then assigns the same array back.
        if new_grad is not self._grad:
            if np.shape(new_grad) != self._grad.shape:
                raise ValueError(f"cannot set a gradient of shape {self._grad.shape} to an "
                                 f"array of shape {np.shape(new_grad)}")
            self._grad[...] = new_grad
        self._zeroed = self._fill_pending = False

    def zero_grad(self) -> None:
        """Set the gradient to zero. (The array is filled when the gradient is next read or
        written: an array taken from ``grad`` before this call keeps its values until then.)"""
        self._zeroed = self._fill_pending = True

    def _fill_if_pending(self) -> None:
        if self._fill_pending:
            self._grad.fill(0)
            self._fill_pending = False

    def accumulate_matmul(self, a: np.ndarray, b: np.ndarray) -> None:
        """``grad += a @ b``."""
        if self._zeroed:
            np.matmul(a, b, out=self._grad)
            self._zeroed = self._fill_pending = False
        else:
            self._grad += a @ b

    def accumulate_sum(self, array: np.ndarray, axis: int = 0) -> None:
        """``grad += array.sum(axis)``."""
        if self._zeroed:
            np.add.reduce(array, axis=axis, out=self._grad)  # np.sum, minus its Python wrapper
            self._zeroed = self._fill_pending = False
        else:
            self._grad += array.sum(axis=axis)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def size(self) -> int:
        return self._value.size

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    def astype(self, dtype) -> None:
        """Convert value and gradient to ``dtype`` in place (leaving any shared buffer)."""
        self._fill_if_pending()
        self._value = self._value.astype(dtype)
        self._grad = self._grad.astype(dtype)
        self._home = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"

    def __getstate__(self):
        # Copies (deepcopy, pickling by the user) own their arrays; they are not in a buffer.
        grad = np.zeros_like(self._grad) if self._fill_pending else self._grad.copy()
        return {"value": self._value.copy(), "grad": grad, "decay": self.decay}

    def __setstate__(self, state):
        self._value = state["value"]
        self._grad = state["grad"]
        self.decay = state["decay"]
        self._home = None
        self._zeroed, self._fill_pending = not state["grad"].any(), False


def pack(parameters: Sequence[Parameter]) -> FlatBuffer:
    """Move ``parameters`` into one new :class:`FlatBuffer`, keeping their values.

    Afterwards each ``param.value`` / ``param.grad`` is a reshaped view of a slice of the
    buffer's ``values`` / ``grads``, in the order given.
    """
    parameters = list(parameters)
    if not parameters:
        raise ValueError("there are no parameters to pack")
    dtypes = {p.dtype for p in parameters}
    if len(dtypes) > 1:
        raise TypeError(f"parameters have mixed dtypes {sorted(map(str, dtypes))}")
    buffer = FlatBuffer(sum(p.size for p in parameters), parameters[0].dtype)
    start = 0
    for param in parameters:
        stop = start + param.size
        buffer.values[start:stop] = param.value.ravel()
        param._fill_if_pending()  # (not param.grad, which would give up a known zero)
        buffer.grads[start:stop] = param._grad.ravel()
        param._value = buffer.values[start:stop].reshape(param.shape)
        param._grad = buffer.grads[start:stop].reshape(param.shape)
        param._home = (buffer, start, stop)
        start = stop
    return buffer


def flat_views(parameters: Iterable[Parameter]) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(values, grads)``: 1-D arrays sharing memory with every parameter given.

    When the parameters already lie one after another in one buffer (as a model's do), this is
    free: two slices. Otherwise they are first packed into a new buffer (see :func:`pack`).
    """
    parameters = list(parameters)
    if not parameters:
        raise ValueError("no parameters were given to the optimizer")
    for param in parameters:
        if not isinstance(param, Parameter):
            raise TypeError(
                f"expected Parameter objects (from model.parameters()), got {type(param).__name__}"
            )
        # The caller gets the gradients to read (and may write them), as through param.grad.
        param._fill_if_pending()
        param._zeroed = False
    first = parameters[0]._home
    if first is not None:
        buffer, start, position = first
        for param in parameters[1:]:
            home = param._home
            if home is None or home[0] is not buffer or home[1] != position:
                break
            position = home[2]
        else:
            return buffer.values[start:position], buffer.grads[start:position]
    buffer = pack(parameters)
    # Slices, like the fast path, so that ``values.base`` always names the buffer.
    return buffer.values[:], buffer.grads[:]

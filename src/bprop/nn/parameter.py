"""Learnable parameters, and the flat buffer that lets an optimizer update them all at once.

A :class:`Parameter` is a value and the gradient of the loss with respect to it. Layers read
and write parameters only through ``param.value`` and ``param.grad``, so the arrays behind those
names can be *views* into one contiguous buffer shared by a whole model. An optimizer then updates
every weight and bias of the network in a handful of vectorised operations over that buffer
instead of a Python loop over dozens of small arrays, which on a CPU is where a plain NumPy
training loop loses much of its time.

A model costs its size: a parameter made with :meth:`Parameter.zeros` takes no memory until it
is packed (:func:`pack` allocates the model's values once, in the model's dtype, and the
layers draw their initial weights straight into it) or first read, and a gradient is allocated
only when something first writes or reads it (a model that only predicts never does).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .._checks import all_finite
from ..backend.devices import array_module, to_numpy


class FlatBuffer:
    """One 1-D array of values that the parameters packed into it are views of, and one of
    gradients, allocated (as zeros) when it is first asked for; both in the memory of the
    array module ``xp`` (NumPy's, or a GPU's through CuPy)."""

    __slots__ = ("values", "_grads", "xp")

    def __init__(self, size: int, dtype: np.dtype, xp=np):
        # zeros, not empty: the parameters not yet drawn or set read as zeros, and the
        # operating system gives zeroed pages only as they are first written.
        self.xp = xp
        self.values = xp.zeros(size, dtype=dtype)
        self._grads: np.ndarray | None = None

    @property
    def grads(self) -> np.ndarray:
        if self._grads is None:
            self._grads = self.xp.zeros(self.values.size, dtype=self.values.dtype)
        return self._grads


class Parameter:
    """A learnable array ``value`` and its gradient ``grad`` (same shape and dtype).

    Parameters
    ----------
    value : array_like
        Initial value; copied.
    decay : bool
        Whether weight penalties (L1/L2, weight decay) apply to it: True for weights,
        False for biases and normalisation shifts.

    Notes
    -----
    Assigning ``param.value = array`` copies into the existing storage (after checking the
    shape, and that the values are finite numbers), so the parameter never silently leaves the
    buffer its model packed it into.

    Layers add their gradients with :meth:`accumulate_matmul` and :meth:`accumulate_sum`: right
    after :meth:`zero_grad` these write the result straight into ``grad`` (saving a temporary
    array and a pass over it), otherwise they add to it; either way ``grad`` ends up holding
    the sum, exactly as ``grad += ...`` would. For the same reason :meth:`zero_grad` only
    notes that the gradient is zero: the array is filled with zeros when it is next read
    without having been written (``param.grad``, :func:`flat_views`), and it is allocated
    only when first needed.

    >>> p = Parameter([[1.0, 2.0]])
    >>> p.value = [[3.0, 4.0]]
    >>> p.value, p.grad
    (array([[3., 4.]]), array([[0., 0.]]))
    """

    __slots__ = ("_value", "_grad", "_shape", "_dtype", "decay", "_home", "_zeroed",
                 "_fill_pending", "__weakref__")

    def __init__(self, value, *, decay: bool = True):
        array = np.array(to_numpy(value), copy=True)  # (a new parameter lives on the host)
        if array.dtype.kind != "f":
            array = array.astype(np.float64)
        self._setup(array.shape, array.dtype, decay)
        self._value = array

    @classmethod
    def zeros(cls, shape: tuple[int, ...], dtype="float64", *, decay: bool = True) -> Parameter:
        """A parameter of zeros whose memory is allocated only when first needed: when a model
        packs it, when it is drawn or set, or when its value is read.

        >>> p = Parameter.zeros((2, 3))
        >>> p.shape, p.dtype.name, float(p.value.sum())
        ((2, 3), 'float64', 0.0)
        """
        param = cls.__new__(cls)
        param._setup(tuple(int(n) for n in shape), np.dtype(dtype), decay)
        return param

    def _setup(self, shape: tuple[int, ...], dtype: np.dtype, decay: bool) -> None:
        self._shape, self._dtype, self.decay = shape, dtype, decay
        # None until first needed (a gradient of None is zero).
        self._value: np.ndarray | None = None
        self._grad: np.ndarray | None = None
        # _zeroed: the gradient is zero and no one has been handed the array since, so the next
        # accumulate may overwrite it. _fill_pending: the gradient is zero but zero_grad has not
        # filled the array yet (so _fill_pending implies _zeroed).
        self._zeroed, self._fill_pending = True, False
        self._home: tuple[FlatBuffer, int, int] | None = None

    @property
    def xp(self):
        """The array module of the memory this parameter lives in (numpy, or cupy on a GPU)."""
        if self._home is not None:
            return self._home[0].xp
        return np if self._value is None else array_module(self._value)

    @property
    def value(self) -> np.ndarray:
        if self._value is None:
            self._value = self.xp.zeros(self._shape, self._dtype)
        return self._value

    @value.setter
    def value(self, new_value) -> None:
        xp = self.xp
        if array_module(new_value) is np:  # (an array of a device is checked where it is)
            new_value = np.asarray(new_value)
        if new_value.shape != self._shape:
            raise ValueError(
                f"cannot set a parameter of shape {self._shape} "
                f"to an array of shape {new_value.shape}"
            )
        if not np.issubdtype(new_value.dtype, np.number):
            raise TypeError(f"parameter values must be numbers, got dtype {new_value.dtype}")
        finite = (all_finite(new_value) if new_value.dtype.kind == "f"
                  else new_value.dtype.kind != "c"
                  or bool(array_module(new_value).isfinite(new_value).all()))
        if not finite:
            raise ValueError("parameter values must be finite (no NaN or infinity)")
        if self._value is None:
            self._value = xp.empty(self._shape, self._dtype)  # every element is written next
        # (into this parameter's memory: a host array is copied to the device, and back)
        self._value[...] = xp.asarray(new_value) if xp is not np else to_numpy(new_value)

    @property
    def grad(self) -> np.ndarray:
        grad = self._grad_array()
        # Whoever holds the array may write into it, so it can no longer be assumed zero.
        self._fill_if_pending()
        self._zeroed = False
        return grad

    @grad.setter
    def grad(self, new_grad) -> None:
        # ``param.grad += g`` adds in place and then assigns the same array back.
        if new_grad is not self._grad:
            shape = getattr(new_grad, "shape", None)  # (an array of any device)
            shape = np.shape(new_grad) if shape is None else shape
            if tuple(shape) != self._shape:
                raise ValueError(f"cannot set a gradient of shape {self._shape} to an "
                                 f"array of shape {tuple(shape)}")
            xp = self.xp
            self._grad_array()[...] = (xp.asarray(new_grad) if xp is not np
                                       else to_numpy(new_grad))
        self._zeroed = self._fill_pending = False

    def zero_grad(self) -> None:
        """Set the gradient to zero. (The array is filled when the gradient is next read or
        written: an array taken from ``grad`` before this call keeps its values until then.)"""
        self._zeroed = True
        self._fill_pending = self._grad is not None

    def _grad_array(self) -> np.ndarray:
        """The gradient's array, allocated as zeros on first need (in the buffer, if packed)."""
        if self._grad is None:
            if self._home is None:
                self._grad = self.xp.zeros(self._shape, self._dtype)
            else:
                buffer, start, stop = self._home
                self._grad = buffer.grads[start:stop].reshape(self._shape)
        return self._grad

    def _fill_if_pending(self) -> None:
        if self._fill_pending:
            self._grad.fill(0)
            self._fill_pending = False

    def accumulate_matmul(self, a: np.ndarray, b: np.ndarray) -> None:
        """``grad += a @ b``."""
        if self._zeroed:
            array_module(a).matmul(
                a, b, out=self._grad if self._grad is not None else self._grad_array())
            self._zeroed = self._fill_pending = False
        else:
            self._grad += a @ b

    def accumulate_sum(self, array: np.ndarray, axis: int = 0) -> None:
        """``grad += array.sum(axis)``."""
        if self._zeroed:
            out = self._grad if self._grad is not None else self._grad_array()
            if type(array) is np.ndarray:
                np.add.reduce(array, axis=axis, out=out)  # np.sum minus its Python wrapper
            else:
                array_module(array).sum(array, axis=axis, out=out)
            self._zeroed = self._fill_pending = False
        else:
            self._grad += array.sum(axis=axis)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def size(self) -> int:
        return math.prod(self._shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def astype(self, dtype) -> None:
        """Convert value and gradient to ``dtype`` in place (leaving any shared buffer)."""
        self._fill_if_pending()
        if self._value is not None:
            self._value = self._value.astype(dtype)
        if self._grad is not None:
            self._grad = self._grad.astype(dtype)
        self._dtype = np.dtype(dtype)
        self._home = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"

    def __getstate__(self):
        # Copies (deepcopy, pickling by the user) own their arrays; they are not in a buffer.
        # A value never allocated, or a gradient known to be zero, is not copied.
        return {"value": None if self._value is None else self._value.copy(),
                "grad": None if self._zeroed else self._grad.copy(),
                "decay": self.decay, "shape": self._shape, "dtype": self._dtype.str}

    def __setstate__(self, state):
        value, grad = state["value"], state["grad"]
        if value is None:
            self._setup(tuple(state["shape"]), np.dtype(state["dtype"]), state["decay"])
        else:
            self._setup(value.shape, value.dtype, state["decay"])
            self._value = value
        # (A parameter pickled before gradients were lazy always carries its gradient array.)
        if grad is not None and bool(grad.any()):
            self._grad, self._zeroed = grad, False


def pack(parameters: Sequence[Parameter], dtype=None, xp=np) -> FlatBuffer:
    """Move ``parameters`` into one new :class:`FlatBuffer` in the memory of the array module
    ``xp`` (NumPy by default), keeping their values.

    Afterwards each ``param.value`` / ``param.grad`` is a reshaped view of a slice of the
    buffer's ``values`` / ``grads``, in the order given. With ``dtype`` the buffer has that
    dtype and the values are cast into it; without, the parameters must share one dtype.
    A parameter whose value was never allocated (:meth:`Parameter.zeros`) costs nothing here:
    its slice stays zero until it is drawn or set. A gradient known to be zero is not copied.
    """
    parameters = list(parameters)
    if not parameters:
        raise ValueError("there are no parameters to pack")
    if dtype is None:
        dtypes = {p.dtype for p in parameters}
        if len(dtypes) > 1:
            raise TypeError(f"parameters have mixed dtypes {sorted(map(str, dtypes))}")
        dtype = parameters[0].dtype
    dtype = np.dtype(dtype)
    buffer = FlatBuffer(sum(p.size for p in parameters), dtype, xp)
    start = 0
    for param in parameters:
        stop = start + param.size
        values = buffer.values[start:stop].reshape(param.shape)
        if param._value is not None:
            values[...] = _into(xp, param._value)
        grad = None
        if not param._zeroed:  # (param._zeroed: a zero gradient, to be allocated when needed)
            grad = buffer.grads[start:stop].reshape(param.shape)
            grad[...] = _into(xp, param._grad)
        param._value, param._grad, param._dtype = values, grad, dtype
        param._fill_pending = False
        param._home = (buffer, start, stop)
        start = stop
    return buffer


def move(parameters: Sequence[Parameter], xp) -> FlatBuffer:
    """Move ``parameters`` into a new buffer in the memory of the array module ``xp``, keeping
    their values (one copy of all of them when they lie in one buffer, as a model's do). Their
    gradients start again at zero: the next backward pass writes them where the values are."""
    parameters = list(parameters)
    for param in parameters:
        param._fill_if_pending()
        param._grad, param._zeroed, param._fill_pending = None, True, False
    home = parameters[0]._home
    values = None
    if home is not None and all(p._home is not None and p._home[0] is home[0]
                                for p in parameters):
        old, start = home[0], home[1]
        stop = parameters[-1]._home[2]
        pairs = zip(parameters[:-1], parameters[1:], strict=True)
        if stop - start == sum(p.size for p in parameters) and all(
                a._home[2] == b._home[1] for a, b in pairs):
            values = old.values[start:stop]
    if values is None:
        return pack(parameters, xp=xp)
    buffer = FlatBuffer(values.size, values.dtype, xp)
    buffer.values[...] = _into(xp, values)
    position = 0
    for param in parameters:
        stop = position + param.size
        param._value = buffer.values[position:stop].reshape(param.shape)
        param._home = (buffer, position, stop)
        position = stop
    return buffer


def _into(xp, array):
    """``array`` as an array of ``xp``, to be copied into its memory (moved between host and
    device when it lives in the other)."""
    if xp is np:
        return to_numpy(array)
    return xp.asarray(array)


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
    first = parameters[0]._home
    if first is not None:
        buffer, start, position = first
        for param in parameters[1:]:
            home = param._home
            if home is None or home[0] is not buffer or home[1] != position:
                break
            position = home[2]
        else:
            _hand_out_gradients(parameters)
            return buffer.values[start:position], buffer.grads[start:position]
    buffer = pack(parameters, xp=parameters[0].xp)
    _hand_out_gradients(parameters)
    # Slices, like the fast path, so that ``values.base`` always names the buffer.
    return buffer.values[:], buffer.grads[:]


def _hand_out_gradients(parameters: list[Parameter]) -> None:
    """The caller gets the gradients to read (and may write them), as through param.grad."""
    for param in parameters:
        if param._grad is None:
            param._grad_array()
        param._fill_if_pending()
        param._zeroed = False

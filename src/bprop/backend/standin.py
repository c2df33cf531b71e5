"""A stand-in for CuPy that runs on the CPU: the array module of the tests and of dry runs.

bprop computes through an array module ``xp`` (NumPy, or CuPy on an NVIDIA GPU). Machines
without a GPU cannot run CuPy, so this module takes its place: ``xp = standin`` works as
``xp = cupy`` would, with NumPy doing the arithmetic underneath. Its arrays (:class:`ndarray`)
behave like CuPy's where a test needs them to:

- They refuse implicit conversion to NumPy: ``np.asarray(x)`` raises CuPy's own TypeError, and
  so does a NumPy array given as an operand, a key, a value or an ``xp`` function's argument.
  Here the stand-in is stricter than CuPy: ``np.exp(x)`` and ``np.concatenate([x])`` raise too,
  where CuPy would hand them to ``cupy.exp`` and ``cupy.concatenate``, so a test proves that
  every operation goes through ``xp``. (A NumPy scalar's operator, ``np.float32(2) * x``, reaches
  NumPy's ufunc first; it is computed on the device, as CuPy computes it.)
- Every explicit copy between host and device is counted in :data:`transfers`: host data given
  to :func:`asarray` or :func:`array` goes to the device; ``.get()``, ``.item()``,
  ``.tolist()``, ``float(x)``, ``int(x)``, ``bool(x)``, ``f"{x:.3f}"``, :func:`asnumpy` and
  pickling come back (unpickling goes to the device again). Arithmetic, reductions, indexing,
  copies and random draws stay on the device.
- Reductions and single elements are 0-d arrays (``x.sum()``, ``x[0]``), not NumPy scalars.

- CUDA graphs, as CuPy's stream capture makes them: between ``stream.begin_capture()`` and
  ``stream.end_capture()`` (on a :data:`cuda` ``Stream``) every operation is recorded and has
  no effect on the arrays that existed before (a recording runs nothing); ``graph.launch()``
  runs the recorded operations again on the very arrays they were recorded on, so a step that
  relies on a value the host decided at recording time, or that replaces an array instead of
  writing into it, is caught as it would be on a GPU. A transfer while recording raises, as
  a synchronising call does in a CUDA capture.

What it does not model: asynchrony (streams exist but everything happens at once), a memory
limit, several devices, and CuPy's own arithmetic: results are bit for bit NumPy's (CuPy's may
differ in the last bits, and its random numbers are different ones). ``repr`` and ``str`` show the
values without counting a transfer (CuPy's copy them to the host), as they are for debugging.

Example
-------
>>> from bprop.backend import standin as xp
>>> with xp.count_transfers() as counts:
...     x = xp.asarray([1.0, 2.0, 3.0])          # to the device: 1 transfer
...     total = float(xp.exp(x - x.max()).sum())  # back: 1 transfer
>>> (counts.to_device, counts.to_host, counts.bytes_to_device, counts.bytes_to_host)
(1, 1, 24, 8)
"""

from __future__ import annotations

import contextlib as _contextlib
import functools as _functools
import operator as _operator
import sys as _sys
import types as _types
import weakref as _weakref
from collections.abc import Callable as _Callable
from collections.abc import Iterator as _Iterator
from typing import Any as _Any

import numpy as np

# (every name here is private: the module's other attributes are NumPy's, found by __getattr__)
_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")  # CuPy's words
_SCALARS = (int, float, complex, np.generic)  # what CuPy takes beside its arrays (bool is int)


class TransferCounter:
    """Counts of the copies between host and device since the last :meth:`reset`.

    Attributes ``to_device`` and ``to_host`` count copies, ``bytes_to_device`` and
    ``bytes_to_host`` the bytes they moved (the arrays' ``nbytes``).
    """

    __slots__ = ("to_device", "to_host", "bytes_to_device", "bytes_to_host")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Set every count to 0."""
        self.to_device = self.to_host = self.bytes_to_device = self.bytes_to_host = 0

    def __repr__(self) -> str:
        return (f"TransferCounter(to_device={self.to_device}, to_host={self.to_host}, "
                f"bytes_to_device={self.bytes_to_device}, bytes_to_host={self.bytes_to_host})")


#: the module's one counter, which every counted transfer increments
transfers = TransferCounter()


@_contextlib.contextmanager
def count_transfers() -> _Iterator[TransferCounter]:
    """Reset :data:`transfers` and yield it: ``with count_transfers() as counts: ...``."""
    transfers.reset()
    yield transfers


def _counted_to_host(data: np.ndarray) -> None:
    _refuse_while_recording("a copy to the host")
    transfers.to_host += 1
    transfers.bytes_to_host += data.nbytes


def _unsupported(value: object) -> TypeError:
    return TypeError(f"Unsupported type {type(value)}: a stand-in device array does not mix "
                     "with host data; move it to the device with xp.asarray first")


def _unwrap(value: _Any, seen: dict[int, ndarray]) -> _Any:
    """NumPy's view of an argument: a stand-in array's data (remembered in ``seen``, so that a
    result which is that very array, such as ``out=``, maps back to it), lists and tuples item
    by item; a NumPy array is refused, as CuPy refuses one."""
    if isinstance(value, ndarray):
        seen[id(value._data)] = value
        return value._data
    if isinstance(value, np.ndarray):
        raise _unsupported(value)
    if type(value) in (list, tuple):
        return type(value)(_unwrap(item, seen) for item in value)
    return value  # scalars, dtypes, None, slices, strings...


def _wrap(result: _Any, seen: dict[int, ndarray]) -> _Any:
    """The device's view of a NumPy result: arrays and NumPy scalars become stand-in arrays
    (a scalar a 0-d one, as CuPy's reductions give), lists and tuples item by item."""
    if isinstance(result, np.ndarray):
        known = seen.get(id(result))  # (never `or`: a stand-in's truth value is a transfer)
        return ndarray(result) if known is None else known
    if isinstance(result, np.generic):
        return ndarray(np.asarray(result))
    if type(result) in (list, tuple):
        return type(result)(_wrap(item, seen) for item in result)
    return result


def _call(func: _Callable, args: tuple, kwargs: dict, seen: dict | None = None) -> _Any:
    seen = {} if seen is None else seen
    args = _unwrap(args, seen)
    kwargs = {name: _unwrap(value, seen) for name, value in kwargs.items()}
    return _recorded(lambda: func(*args, **kwargs), seen)


# --- CUDA graphs: recording and replaying ---------------------------------------------------
#: the operations of the graph being recorded (None when nothing is): (run, result) pairs
_tape: list | None = None
#: every array's memory (by id), so that a recording can leave the arrays as they were
_memory: _weakref.WeakValueDictionary = _weakref.WeakValueDictionary()


def _recorded(run: _Callable[[], _Any], seen: dict | None = None) -> _Any:
    """``run()``'s result as the device's; while a graph is recorded, also the operation, to
    be run again on replay into the same result arrays."""
    result = _wrap(run(), {} if seen is None else seen)
    if _tape is not None:
        _tape.append((run, result))
    return result


def _refuse_while_recording(what: str) -> None:
    if _tape is not None:
        raise RuntimeError(f"{what} is not permitted while a CUDA graph is being recorded "
                           "(operation not permitted when stream is capturing)")


def _replay_into(result: _Any, value: _Any) -> None:
    if isinstance(result, ndarray):
        if result._data is not value:
            result._data[...] = value
    elif type(result) in (list, tuple):
        for item, item_value in zip(result, value, strict=True):
            _replay_into(item, item_value)


class _Graph:
    """A recorded sequence of operations; :meth:`launch` runs it again."""

    def __init__(self, tape: list) -> None:
        self._tape = tape

    def launch(self, stream: _Any = None) -> None:
        for run, result in self._tape:
            _replay_into(result, run())


class _Stream:
    """A stream (everything here runs at once, so it orders nothing) that records graphs."""

    def __init__(self, non_blocking: bool = False, null: bool = False) -> None:
        self._snapshot: list | None = None

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: _Any) -> None:
        return None

    def synchronize(self) -> None:
        return None

    def record(self) -> _types.SimpleNamespace:
        """An event at this point of the stream (here everything has happened already)."""
        return _types.SimpleNamespace(synchronize=lambda: None)

    def wait_event(self, event: _Any) -> None:
        return None

    def begin_capture(self, mode: _Any = None) -> None:
        global _tape
        if _tape is not None:
            raise RuntimeError("a graph is already being recorded")
        # What exists now must look untouched afterwards: a recording computes nothing.
        self._snapshot = [(data, data.copy()) for data in list(_memory.values())
                          if data.flags.writeable]
        _tape = []

    def end_capture(self) -> _Graph:
        global _tape
        tape, _tape = _tape, None
        for data, before in self._snapshot or ():
            data[...] = before
        self._snapshot = None
        if tape is None:
            raise RuntimeError("no graph is being recorded")
        return _Graph(tape)


_Stream.null = _Stream(null=True)

#: what bprop uses of ``cupy.cuda``: streams that record graphs, and memory pools (the
#: stand-in's memory is NumPy's, so a pool allocates nothing of its own)
cuda = _types.SimpleNamespace(
    Stream=_Stream, get_current_stream=lambda: _Stream.null,
    MemoryPool=lambda: _types.SimpleNamespace(malloc=None),
    using_allocator=lambda allocator=None: _contextlib.nullcontext(),
    Device=lambda index=0: _contextlib.nullcontext())


class _DeviceFunction:
    """A NumPy function or ufunc that takes and gives stand-in arrays; a ufunc's methods
    (``xp.add.at``, ``xp.add.reduce``) are device functions too."""

    def __init__(self, func: _Callable, name: str) -> None:
        self._func, self.__name__, self.__qualname__ = func, name, name
        self.__doc__, self.__wrapped__ = func.__doc__, func

    def __call__(self, *args: _Any, **kwargs: _Any) -> _Any:
        return _call(self._func, args, kwargs)

    def __getattr__(self, name: str) -> _Any:
        if name.startswith("__"):  # (copy and pickle probe for these before __init__ has run)
            raise AttributeError(name)
        return _device(getattr(self._func, name), f"{self.__name__}.{name}")

    def __repr__(self) -> str:
        return f"<stand-in device function {self.__name__}>"


class _Namespace:
    """A NumPy submodule (``xp.linalg``, ``xp.fft``) whose functions are device functions."""

    def __init__(self, module: _types.ModuleType, name: str) -> None:
        self._module, self._name, self._cache = module, name, {}

    def __getattr__(self, name: str) -> _Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._cache:
            self._cache[name] = _device(getattr(self._module, name), f"{self._name}.{name}")
        return self._cache[name]


def _device(attr: _Any, name: str) -> _Any:
    if isinstance(attr, _types.ModuleType):
        return _Namespace(attr, name)
    if isinstance(attr, type) or not callable(attr):
        return attr  # dtypes, finfo, iinfo, errstate, constants: host objects, NumPy's own
    return _DeviceFunction(attr, name)


class ndarray:  # (named as cupy.ndarray is, for isinstance(x, xp.ndarray))
    """A stand-in device array: a NumPy array (``_data``) that keeps its values "on the device".

    Not made directly: use :func:`asarray`, ``xp.zeros`` and the like. Operators, indexing,
    and the methods of NumPy's arrays that bprop uses, compute on the wrapped array and give
    stand-in arrays; views share memory as NumPy's do. Operators binary, reflected and in
    place (``+ - * / // % ** @ & | ^ << >>``, ``divmod``), comparisons and ``- + abs ~`` are
    installed on the class below.
    """

    __slots__ = ("_data", "__weakref__")
    __hash__ = None  # type: ignore[assignment]  (mutable, as NumPy's and CuPy's arrays are)

    def __init__(self, data: np.ndarray) -> None:
        if not isinstance(data, np.ndarray):
            raise TypeError(f"a stand-in array wraps a numpy.ndarray, not {type(data)}")
        self._data = data
        owner = data if data.base is None else data.base
        if isinstance(owner, np.ndarray):
            _memory[id(owner)] = owner

    # --- refusing NumPy --------------------------------------------------------------------
    def __array__(self, dtype: _Any = None, copy: _Any = None) -> np.ndarray:
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: _Any, **kwargs: _Any):
        other = inputs[0] if len(inputs) == 2 and inputs[1] is self else None
        if (method == "__call__" and not kwargs and isinstance(other, (np.generic, np.ndarray))
                and np.ndim(other) == 0):
            # a NumPy scalar's operator (np.float32(2) * x, np.float32(2) < x) arrives here as
            # np.multiply(scalar, x) or np.less(scalar as a 0-d array, x): compute it on the
            # device, as CuPy does (so an explicit np.multiply(np.float32(2), x) passes too)
            scalar, data = other[()], self._data
            return _recorded(lambda: ufunc(scalar, data))
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        raise TypeError(f"numpy.{name} was called on a stand-in device array; "
                        f"compute through the array module (xp.{name})")

    def __array_function__(self, func: _Callable, types: tuple, args: tuple, kwargs: dict):
        module = getattr(func, "__module__", None) or "numpy"
        xp_name = "xp" + module.removeprefix("numpy") + "." + func.__name__
        raise TypeError(f"{module}.{func.__name__} was called on a stand-in device array; "
                        f"compute through the array module ({xp_name})")

    # --- attributes --------------------------------------------------------------------------
    shape = property(lambda self: self._data.shape, doc="The shape, a tuple of ints.")
    dtype = property(lambda self: self._data.dtype, doc="The NumPy dtype.")
    ndim = property(lambda self: self._data.ndim, doc="The number of dimensions.")
    size = property(lambda self: self._data.size, doc="The number of elements.")
    itemsize = property(lambda self: self._data.itemsize, doc="Bytes per element.")
    nbytes = property(lambda self: self._data.nbytes, doc="Bytes of all the elements.")
    strides = property(lambda self: self._data.strides, doc="Bytes to step in each dimension.")
    flags = property(lambda self: self._data.flags, doc="NumPy's flags (contiguity...).")
    T = property(lambda self: ndarray(self._data.T), doc="The transpose, a view.")

    @property
    def base(self) -> ndarray | None:
        """None for an array that owns its memory; else a stand-in array over the memory it
        views (a new wrapper, not the object it was taken from)."""
        base = self._data.base
        return ndarray(base) if isinstance(base, np.ndarray) else None

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> _Iterator[ndarray]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._data)))

    # --- indexing ----------------------------------------------------------------------------
    def __getitem__(self, key: _Any) -> ndarray:
        key, data = _key(key), self._data

        def run() -> np.ndarray:
            result = data[key]
            if not isinstance(result, np.ndarray):
                # NumPy gives one element as a scalar, CuPy as a 0-d array that views it
                result = data[(*key, ...) if isinstance(key, tuple) else (key, ...)]
            return result

        return _recorded(run)

    def __setitem__(self, key: _Any, value: _Any) -> None:
        if isinstance(value, ndarray):
            value = value._data
        elif not isinstance(value, _SCALARS):
            raise _unsupported(value)
        key, data = _key(key), self._data

        def run() -> None:
            data[key] = value

        _recorded(run)

    # --- explicit copies to the host, each counted -------------------------------------------
    def get(self) -> np.ndarray:
        """A NumPy copy of the array (a device-to-host transfer)."""
        _counted_to_host(self._data)
        return self._data.copy()

    def item(self) -> _Any:
        """The one element as a Python scalar (a transfer); ValueError unless size is 1."""
        value = self._data.item()
        _counted_to_host(self._data)
        return value

    def tolist(self) -> _Any:
        """The values as nested Python lists (a transfer)."""
        value = self._data.tolist()
        _counted_to_host(self._data)
        return value

    def _scalar(self, convert: _Callable) -> _Any:
        value = convert(self._data)  # NumPy's errors for arrays of several elements
        _counted_to_host(self._data)
        return value

    def __float__(self) -> float:
        return self._scalar(float)

    def __int__(self) -> int:
        return self._scalar(int)

    def __complex__(self) -> complex:
        return self._scalar(complex)

    def __bool__(self) -> bool:
        return self._scalar(bool)

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return self._scalar(lambda data: int(data.reshape(())))

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else self._scalar(lambda data: format(data, spec))

    def __repr__(self) -> str:
        return "standin." + repr(self._data).replace("\n", "\n" + " " * len("standin."))

    __str__ = __repr__

    # --- copies on the device, and pickling through the host ---------------------------------
    def __copy__(self) -> ndarray:
        return ndarray(self._data.copy())

    def __deepcopy__(self, memo: dict) -> ndarray:
        return ndarray(self._data.copy())

    def __reduce__(self) -> tuple:
        return array, (self.get(),)  # as CuPy's: to the host and, when unpickled, back


def _key(key: _Any) -> _Any:
    """NumPy's view of an index: stand-in arrays unwrapped; host arrays and lists refused (CuPy
    would copy them to the device behind the caller's back)."""
    if isinstance(key, ndarray):
        if key.dtype == bool:  # (the result's size depends on the values: CuPy reads them)
            _refuse_while_recording("indexing with a boolean mask")
        return key._data
    if isinstance(key, tuple):
        return tuple(_key(item) for item in key)
    if isinstance(key, (np.ndarray, list)):
        raise _unsupported(key)
    return key


#: what sizes its result by the values, so that CuPy waits for them: not in a CUDA graph
_SIZED_BY_VALUES = frozenset({"nonzero", "argwhere", "flatnonzero", "unique", "extract"})


def _method(name: str) -> _Callable:
    def method(self: ndarray, *args: _Any, **kwargs: _Any) -> _Any:
        if name in _SIZED_BY_VALUES:
            _refuse_while_recording(f"{name}()")
        return _call(getattr(self._data, name), args, kwargs, {id(self._data): self})

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"NumPy's ``ndarray.{name}``, on the device (arrays in and out are stand-ins)."
    return method


def _operand(value: _Any) -> _Any:
    if isinstance(value, ndarray):
        return value._data
    if isinstance(value, np.ndarray):
        raise _unsupported(value)
    return value if isinstance(value, _SCALARS) else NotImplemented


def _install_operators() -> None:
    def binary(op: _Callable, reflected: bool) -> _Callable:
        def method(self: ndarray, other: _Any) -> _Any:
            other = _operand(other)
            if other is NotImplemented:
                return NotImplemented
            data = self._data
            return _recorded(lambda: op(other, data) if reflected else op(data, other))
        return method

    def inplace(op: _Callable) -> _Callable:
        def method(self: ndarray, other: _Any) -> _Any:
            other = _operand(other)
            if other is NotImplemented:
                return NotImplemented
            data = self._data
            _recorded(lambda: op(data, other))  # into the array itself, so views see it
            return self
        return method

    def unary(op: _Callable) -> _Callable:
        return lambda self: _recorded(lambda data=self._data: op(data))

    for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
                 "and", "or", "xor", "lshift", "rshift"):
        op = getattr(_operator, name + "_" if name in ("and", "or") else name)
        setattr(ndarray, f"__{name}__", binary(op, False))
        setattr(ndarray, f"__r{name}__", binary(op, True))
        setattr(ndarray, f"__i{name}__", inplace(getattr(_operator, "i" + name)))
    ndarray.__divmod__, ndarray.__rdivmod__ = binary(divmod, False), binary(divmod, True)
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        setattr(ndarray, f"__{name}__", binary(getattr(_operator, name), False))
    for name in ("neg", "pos", "abs", "invert"):
        setattr(ndarray, f"__{name}__", unary(getattr(_operator, name)))
    for name in ("sum", "prod", "max", "min", "mean", "var", "std", "argmax", "argmin", "any",
                 "all", "reshape", "ravel", "flatten", "astype", "copy", "fill", "clip", "dot",
                 "transpose", "swapaxes", "squeeze", "round", "cumsum", "take", "view",
                 "nonzero", "repeat", "sort", "argsort"):
        setattr(ndarray, name, _method(name))


_install_operators()

#: another name for the class, clearer where ``ndarray`` would read as NumPy's
StandinArray = ndarray


# --- module functions ------------------------------------------------------------------------
def asarray(a: _Any, dtype: _Any = None, order: _Any = None) -> ndarray:
    """``a`` on the device: a stand-in array as it is (cast to ``dtype`` if given, on the
    device); host data (a NumPy array, list or scalar) copied there, one counted transfer."""
    if isinstance(a, ndarray):
        return _call(np.asarray, (a, dtype), {"order": order})
    _refuse_while_recording("a copy to the device")
    data = np.array(a, dtype=dtype, order=order, copy=True)
    transfers.to_device += 1
    transfers.bytes_to_device += data.nbytes
    return ndarray(data)


def array(obj: _Any, dtype: _Any = None, copy: bool = True, order: _Any = "K") -> ndarray:
    """As :func:`asarray`, but a stand-in array is copied (on the device) unless ``copy`` is
    False; host data is always copied to the device (one counted transfer)."""
    if isinstance(obj, ndarray) and copy:
        return _call(np.array, (obj, dtype), {"order": order, "copy": True})
    return asarray(obj, dtype, order)


def asnumpy(a: _Any) -> np.ndarray:
    """A NumPy copy of a stand-in array (a counted transfer); host data passes through
    uncounted, as with ``cupy.asnumpy``."""
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*args: _Any) -> _types.ModuleType:
    """This module if any argument is a stand-in array, else NumPy (``cupy.get_array_module``)."""
    return _sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


class _Generator:
    """NumPy's random Generator, drawing "on the device": results are stand-in arrays, no
    transfer is counted, and the numbers are those of ``numpy.random.default_rng(seed)``
    (CuPy's generator would draw others). ``shuffle`` shuffles a stand-in array in place."""

    def __init__(self, seed: _Any = None) -> None:
        self._rng = np.random.default_rng(seed)

    def __getattr__(self, name: str) -> _Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _device(getattr(self._rng, name), f"Generator.{name}")


def _default_rng(seed: _Any = None) -> _Generator:
    return seed if isinstance(seed, _Generator) else _Generator(seed)


#: ``xp.random.default_rng(seed)``, as ``cupy.random`` offers it
random = _types.SimpleNamespace(default_rng=_default_rng, Generator=_Generator)

# functions whose NumPy versions answer a Python bool where CuPy's answer a 0-d device array
_DEVICE_BOOLS = frozenset({"array_equal", "array_equiv", "allclose"})
_cache: dict[str, _Any] = {}


def __getattr__(name: str) -> _Any:
    """NumPy's attribute ``name`` made a device one (a function that takes and gives stand-in
    arrays), or NumPy's own for types and constants; made once, then cached."""
    if name not in _cache:
        if name.startswith("__") or not hasattr(np, name):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        attr = getattr(np, name)
        if name in _SIZED_BY_VALUES:
            attr = _functools.wraps(attr)(
                lambda *a, _f=attr, _n=name, **k: (_refuse_while_recording(f"{_n}()"),
                                                   _f(*a, **k))[1])
        if name in _DEVICE_BOOLS:
            attr = _functools.wraps(attr)(lambda *a, _f=attr, **k: np.asarray(_f(*a, **k)))
        _cache[name] = _device(attr, name)
    return _cache[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(dir(np)))

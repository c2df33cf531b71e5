"""Devices, and the array module each computes through: NumPy on the CPU, CuPy on a CUDA GPU.

A model's layers, losses, regularizers and optimizers are written once, against an array
module ``xp`` (the idea of Chainer's ``get_array_module``): ``xp.maximum(x, 0)`` runs on
NumPy arrays on the CPU and on CuPy arrays on the GPU. :func:`get_device` turns what a user
writes (``"cpu"``, ``"cuda"``, ``"auto"``) into a :class:`Device`, or into one
clear error that says what is missing and how to get it; :func:`array_module` gives the
module an array belongs to.

CuPy is optional (``pip install "bprop[gpu]"``) and imported only when a GPU is asked for.
For tests and dry runs without a GPU, :func:`stand_in_for_cuda` makes ``"cuda"`` mean
:mod:`bprop.backend.standin`, NumPy wrapped so that its arrays refuse implicit conversion to
NumPy (as CuPy's do) and count every host-device transfer.

>>> get_device("cpu")
Device('cpu')
>>> array_module(np.zeros(2)) is np
True
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import ModuleType

import numpy as np

#: how to install CuPy, for the error messages
INSTALL_HINT = ('install CuPy for your CUDA version: pip install "bprop[gpu]" (CUDA 12, '
                'cupy-cuda12x) or pip install cupy-cuda13x (CUDA 13); nvidia-smi shows the '
                'CUDA version of the driver')

#: the module that "cuda" stands for while stand_in_for_cuda is active (None: real CuPy)
_stand_in: ModuleType | None = None
#: devices are told once that "auto" chose the CPU
_told_auto = False


class DeviceUnavailableError(RuntimeError):
    """A device was asked for that this machine cannot provide (no CuPy, no visible GPU).
    ``reason`` says what is missing, without the advice that follows it in the message."""

    def __init__(self, reason: str, advice: str) -> None:
        super().__init__(f"{reason}; {advice}")
        self.reason = reason


class Device:
    """Where a model's arrays live and compute: ``Device('cpu')`` or ``Device('cuda:0')``.

    Attributes
    ----------
    kind : {"cpu", "cuda"}
    index : int
        The GPU's number (0 for the CPU).
    xp : module
        The array module the device computes through (numpy, cupy, or the stand-in).
    """

    def __init__(self, kind: str, index: int, xp: ModuleType):
        self.kind, self.index, self.xp = kind, index, xp
        self._entered: list = []  # CuPy's device contexts, one per enclosing `with`

    @property
    def name(self) -> str:
        """``"cpu"`` or ``"cuda"``."""
        if self.kind == "cpu":
            return "cpu"
        return "cuda" if self.index == 0 else f"cuda:{self.index}"

    @property
    def is_cpu(self) -> bool:
        return self.kind == "cpu"

    def asarray(self, array, dtype=None):
        """``array`` as an array of this device (copied there only when it is elsewhere)."""
        with self:
            if self.is_cpu:
                return np.asarray(to_numpy(array), dtype=dtype)
            return self.xp.asarray(array, dtype=dtype)

    def __enter__(self) -> Device:
        # Arrays made inside land on this GPU (CuPy's current device).
        if self.kind == "cuda" and self.xp.__name__ == "cupy":
            gpu = self.xp.cuda.Device(self.index)
            gpu.__enter__()
            self._entered.append(gpu)
        return self

    def __exit__(self, *exc) -> None:
        if self._entered:
            self._entered.pop().__exit__(*exc)

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = _parse(other)
            return other is not None and (self.kind, self.index) == other
        return isinstance(other, Device) and (self.kind, self.index) == (other.kind, other.index)

    def __hash__(self) -> int:
        return hash((self.kind, self.index))

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    def __reduce__(self):
        # A pickled model remembers the device's name; unpickling asks for it again.
        return (get_device, (self.name,))


CPU = Device("cpu", 0, np)


def get_device(device: str | Device | None = "cpu") -> Device:
    """The :class:`Device` for ``device``.

    Parameters
    ----------
    device : {"cpu", "cuda", "auto"} or Device or None
        ``"auto"`` is the GPU when CuPy sees one, else the CPU (said once, on standard
        error). None means the CPU. ``"cuda"`` is the first visible GPU (``"cuda:0"``);
        another is chosen with ``CUDA_VISIBLE_DEVICES``.

    Raises
    ------
    ValueError
        For a name that is not a device.
    DeviceUnavailableError
        For ``"cuda"`` without CuPy, or without a visible GPU: the message says what is
        missing and how to get it.
    """
    global _told_auto
    if device is None:
        return CPU
    if isinstance(device, Device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device.strip().lower() == "auto":
        try:
            return get_device("cuda")
        except DeviceUnavailableError as why:
            if not _told_auto:
                _told_auto = True
                print(f"bprop: device='auto' uses the CPU: {why.reason}", file=sys.stderr)
            return CPU
    parsed = _parse(device)
    if parsed is None:
        raise ValueError(f"unknown device {device!r}; choose 'cpu', 'cuda' or 'auto'")
    kind, index = parsed
    if kind == "cpu":
        return CPU
    if index > 0:
        # Every array a model makes would have to be made inside that GPU's context; until
        # bprop does that, the other GPUs are reached by renumbering them.
        raise ValueError(f"device={device!r}: bprop runs on the first visible GPU only; to "
                         f"train on GPU {index}, start Python with CUDA_VISIBLE_DEVICES={index} "
                         "and use device='cuda'")
    if _stand_in is not None:
        return Device("cuda", index, _stand_in)
    return Device("cuda", index, _cupy(index))


def _parse(name: str) -> tuple[str, int] | None:
    name = name.strip().lower()
    if name == "cpu":
        return "cpu", 0
    if name in ("cuda", "gpu"):
        return "cuda", 0
    if name.startswith("cuda:") and name[5:].isdigit():
        return "cuda", int(name[5:])
    return None


def _cupy(index: int) -> ModuleType:
    """CuPy, once it is known to see GPU ``index``; else a DeviceUnavailableError."""
    try:
        import cupy
    except ImportError as error:
        raise DeviceUnavailableError(
            f"device='cuda' needs CuPy, which is not installed ({error})",
            f"{INSTALL_HINT}, or use device='cpu'") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError without a driver, and the like
        raise DeviceUnavailableError(
            f"device='cuda': CuPy is installed but finds no usable NVIDIA GPU or driver "
            f"({type(error).__name__}: {error})", "check nvidia-smi, or use device='cpu'"
        ) from None
    if index >= count:
        raise DeviceUnavailableError(
            f"device='cuda:{index}' asks for GPU {index}, but CuPy sees {count} GPU(s)",
            "check nvidia-smi, or use device='cpu'")
    return cupy


def array_module(array) -> ModuleType:
    """The array module ``array`` belongs to: numpy for anything that is not a device array."""
    if type(array) is np.ndarray:  # (the common case first: this runs in every layer pass)
        return np
    module = type(array).__module__
    if module.startswith("cupy"):
        return sys.modules["cupy"]
    if _stand_in is not None and isinstance(array, _stand_in.ndarray):
        return _stand_in
    if module == "bprop.backend.standin":
        return sys.modules[module]
    return np


def is_cupy(array_or_module) -> bool:
    """Whether ``array_or_module`` is CuPy or one of its arrays: where the CuPy kernels, CUDA
    graphs and page-locked copies apply. (The stand-in is a device too, but none of those:
    it takes the array module's NumPy-style code, as CuPy does where it has no kernel.)"""
    if isinstance(array_or_module, ModuleType):
        return array_or_module.__name__ == "cupy"
    return type(array_or_module).__module__.startswith("cupy")


def on_device(array) -> bool:
    """Whether ``array`` is a device array (CuPy's or the stand-in's), not host memory."""
    return array_module(array) is not np


def scalar(value):
    """A result of a reduction as the caller should keep it: a Python float on the CPU, the
    0-d array itself on a device (turning it into a float would wait for the device and copy
    it back)."""
    if type(value) is float:
        return value
    if array_module(value) is np:
        return float(value)
    return value


def to_numpy(array):
    """``array`` in host memory as a NumPy array (a copy from a device; a host array as it is)."""
    xp = array_module(array)
    if xp is np:
        return array
    return xp.asnumpy(array)


@contextlib.contextmanager
def stand_in_for_cuda(module: ModuleType | None = None) -> Iterator[ModuleType]:
    """Within this block, ``"cuda"`` means the stand-in array module (default
    :mod:`bprop.backend.standin`), so that the GPU code path runs, and is tested, on a CPU."""
    global _stand_in
    if module is None:
        from . import standin as module
    previous, _stand_in = _stand_in, module
    try:
        yield module
    finally:
        _stand_in = previous

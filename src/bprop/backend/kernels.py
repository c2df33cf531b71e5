"""The optional compiled kernels: the C extension ``bprop.backend._fused``, built at install time.

NumPy cannot fuse element-wise operations, so Adam's update is thirteen passes over the parameter
buffer, limited by memory bandwidth. The extension does the same float operations in the same
order in one pass, so its results are identical (the tests compare the two bit for bit), and
for ``fit`` it keeps the old values and tests the new ones for NaN and infinity in the same
pass. The extension also computes ReLU's backward pass, tests any array for NaN and infinity,
and flushes subnormal numbers to zero, each in one pass and exactly as the NumPy code does.

Callers ask :func:`compiled` for a kernel and run their NumPy code when it answers None: when
the extension was not built (no C compiler at install time), is an old build, is switched off
with the environment variable ``BPROP_NO_FUSED=1``, or cannot take the arrays given.

The same seam serves the GPU: for CuPy arrays, :func:`compiled` answers with the CuPy kernel
of that name (:mod:`bprop.backend.cuda_kernels`, also switched off by ``BPROP_NO_FUSED=1``),
whose results equal the NumPy code's to rounding, and which returns its flags (``adam``'s
"all finite") as 0-d device arrays instead of Python booleans, so that a step never waits
for the GPU. Other device arrays (the CPU stand-in for CuPy in the tests) get None: their
NumPy code runs through their own array module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType

import numpy as np

from .devices import array_module, is_cupy

#: the version of the extension's functions that this code expects (``_fused.API_VERSION``);
#: an editable install keeps an old build until it is rebuilt
API_VERSION = 5

_module: ModuleType | None = None
_tried = False
_off: bool | None = None  # BPROP_NO_FUSED, as last read (None: not read yet)


def extension() -> ModuleType | None:
    """The extension module, or None when it is missing, out of date or switched off."""
    global _module, _tried
    if not _tried:
        _tried = True
        _module = None
        if not os.environ.get("BPROP_NO_FUSED"):
            try:
                from . import _fused
            except ImportError:
                pass
            else:
                if getattr(_fused, "API_VERSION", None) == API_VERSION:
                    _module = _fused
    return _module


def compiled(name: str, *arrays: np.ndarray) -> Callable | None:
    """The kernel ``name`` if the extension is there and every array is one it takes: a
    contiguous NumPy array of float32 or float64 in the machine's byte order (all of one
    dtype). Anything else (a list, say) is for the caller's NumPy code."""
    if type(arrays[0]) is not np.ndarray and is_cupy(arrays[0]):  # (NumPy's case first)
        if _switched_off():
            return None
        from . import cuda_kernels  # (on a GPU only: nothing of it is needed at start-up)

        return getattr(cuda_kernels, name, None)
    module = extension()
    if module is None:
        return None
    dtype = getattr(arrays[0], "dtype", None)
    if dtype not in (np.float32, np.float64):  # also refuses the other byte order
        return None
    for array in arrays:  # (a loop, not all(...): this runs several times a training step)
        if (not isinstance(array, np.ndarray) or array.dtype != dtype
                or not array.flags.c_contiguous):
            return None
    return getattr(module, name, None)  # (None for a kernel only the GPU has)


def restore_where(failed, backup, array) -> None:
    """``array[...] = backup`` where the 0-d device flag ``failed`` is true: a device step's
    undo, which never reads the flag on the host. The GPU kernel reads ``backup`` only when
    the step failed; elsewhere (the stand-in) it is ``copyto(where=)``."""
    kernel = compiled("restore_where", array)
    if kernel is not None:
        kernel(failed, backup, array)
    else:
        array_module(array).copyto(array, backup, where=failed)


def _switched_off() -> bool:
    """Whether ``BPROP_NO_FUSED`` switches the GPU kernels off: read once, as
    :func:`extension` reads it, not at every call of a training step."""
    global _off
    if _off is None:
        _off = bool(os.environ.get("BPROP_NO_FUSED"))
    return _off


def reset() -> None:
    """Look for the extension, and at BPROP_NO_FUSED, again at the next call (for tests that
    switch them off)."""
    global _tried, _off
    _tried, _off = False, None

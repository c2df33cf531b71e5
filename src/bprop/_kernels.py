"""The optional compiled kernels (the C extension ``bprop._fused``, built at install time).

NumPy cannot fuse element-wise operations, so Adam's update is ten passes over the parameter
buffer, limited by memory bandwidth. The extension does the same float operations in the same
order in one pass, so its results are identical (the tests compare the two bit for bit). It
also tests an array for NaN and infinity in one pass, which ``fit`` does after every step,
and flushes subnormal numbers to zero (again exactly as the NumPy fallback does).
When the extension was not built (no C compiler at install time), or with the environment
variable ``BPROP_NO_FUSED=1``, the NumPy code runs.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np

_module: ModuleType | None = None
_tried = False


def _fused() -> ModuleType | None:
    global _module, _tried
    if not _tried:
        _tried = True
        _module = None
        if not os.environ.get("BPROP_NO_FUSED"):
            try:
                from . import _fused as module
            except ImportError:
                pass
            else:
                _module = module
    return _module


def adam_kernel():
    """``adam(values, grads, mean_sum, square_sum, beta1, beta2, eps_over_s, inverse_k)``,
    the fused update, or None when the extension is missing or switched off."""
    module = _fused()
    return None if module is None else module.adam


def all_finite_kernel():
    """``all_finite(array) -> bool`` for contiguous float arrays, or None (as above)."""
    module = _fused()
    return None if module is None else module.all_finite


def flush_subnormals(array: np.ndarray) -> None:
    """Set the subnormal elements of a float array to zero (keeping their sign), in place.

    Arithmetic on subnormal numbers (magnitudes below ``np.finfo(dtype).tiny``) is many times
    slower on x86 processors. See :meth:`bprop.optim.Optimizer.step` for why this is done.
    """
    module = _fused()
    if module is not None and array.flags.c_contiguous and array.dtype.char in "fd":
        module.flush_subnormals(array)
    else:
        array *= np.abs(array) >= np.finfo(array.dtype).tiny  # x * 1 = x, x * 0 = +-0


def reset() -> None:
    """Look for the extension again at the next call (for tests that switch it off)."""
    global _tried
    _tried = False

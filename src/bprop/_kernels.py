"""The optional compiled Adam update (the C extension ``bprop._fused``, built at install time).

NumPy cannot fuse element-wise operations, so Adam's update is ten passes over the parameter
buffer, limited by memory bandwidth. The extension does the same float operations in the same
order in one pass, so its results are identical (the tests compare the two bit for bit).
When it was not built (no C compiler at install time), or with the environment variable
``BPROP_NO_FUSED=1``, the NumPy code runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable

_kernel: Callable | None = None
_tried = False


def adam_kernel() -> Callable | None:
    """``adam(values, grads, mean_sum, square_sum, beta1, beta2, eps_over_s, inverse_k)``,
    the fused update, or None when the extension is missing or switched off."""
    global _kernel, _tried
    if not _tried:
        _tried = True
        _kernel = None
        if not os.environ.get("BPROP_NO_FUSED"):
            try:
                from . import _fused
            except ImportError:
                pass
            else:
                _kernel = _fused.adam
    return _kernel


def reset() -> None:
    """Look for the extension again at the next update (for tests that switch it off)."""
    global _tried
    _tried = False

"""Optional compiled kernels (Numba), used when installed: ``pip install "bprop[fast]"``.

NumPy cannot fuse element-wise operations, so Adam's update is ten passes over the parameter
buffer, limited by memory bandwidth. With Numba installed it becomes one multi-threaded pass
that performs the same float operations in the same order, so its results are identical (the
tests compare the two bit for bit). Without Numba, or with the environment variable
``BPROP_NO_NUMBA=1``, the NumPy code runs. Numba is imported only when a large enough update
first needs it, so small scripts never pay for its import or compilation.
"""

from __future__ import annotations

import os

import numpy as np

#: buffers smaller than this stay on the NumPy path (compiling would cost more than it saves)
MIN_SIZE = 50_000

_kernel = None
_numba = None
_tried = False


def adam_kernel():
    """A function running the fused Adam update, or None when Numba is unavailable or
    switched off."""
    global _kernel, _numba, _tried
    if _tried:
        return _kernel and fused_adam
    _tried = True
    if os.environ.get("BPROP_NO_NUMBA"):
        return None
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, cache=True)
    def adam(values, grads, mean_sum, square_sum, beta1, beta2, eps_over_s, inverse_k):
        # Element by element, exactly the NumPy path's operations (see optim.Adam).
        for i in numba.prange(values.size):
            g = grads[i]
            m = mean_sum[i] * beta1 + g
            v = square_sum[i] * beta2 + g * g
            mean_sum[i] = m
            square_sum[i] = v
            values[i] -= m / ((np.sqrt(v) + eps_over_s) * inverse_k)

    _kernel, _numba = adam, numba
    return fused_adam


def fused_adam(values, grads, mean_sum, square_sum, beta1, beta2, eps_over_s, inverse_k):
    """Run the kernel on one thread. OpenBLAS's worker threads keep spinning between matrix
    products; Numba threads competing with them for two cores made an epoch ten times slower.
    The loop is still compiled as a parallel one because that compilation vectorises it (the
    serial one cannot rule out that the arrays overlap, and ran ten times slower)."""
    threads = _numba.get_num_threads()
    _numba.set_num_threads(1)
    try:
        _kernel(values, grads, mean_sum, square_sum, beta1, beta2, eps_over_s, inverse_k)
    finally:
        _numba.set_num_threads(threads)


def reset() -> None:
    """Look for Numba again at the next update (for tests that switch it on and off)."""
    global _kernel, _numba, _tried
    _kernel, _numba, _tried = None, None, False

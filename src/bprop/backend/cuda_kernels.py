"""The GPU's fused kernels: CuPy counterparts of ``_fused.c``, and the softmax cross-entropy.

A small network's training step on a GPU is bound by kernel launches, not by arithmetic: each
launch costs a few microseconds of overhead whatever it computes, and a layer of a small MLP
is a few microseconds of work. CuPy's array expressions launch one kernel per operation (and
allocate a temporary for each result), so Adam's NumPy code, which CuPy runs line for line,
is thirteen launches per step. Each kernel here does one whole piece of the step in one launch
(or two), reading and writing every array once:

- :func:`adam`: Adam's update of the values and both moments, the copy of the old values into
  a backup, and the test that the new values and moments are finite, in one launch after a
  one-byte fill. (The test is a flag in device memory that the update clears where it meets a
  NaN or an infinity, not a ``ReductionKernel``: CuPy reduces three arrays to one value in a
  single thread block, slower than the update itself on a large buffer, and one array, with
  its CUB accelerator, in two launches through a temporary buffer of its own.)
- :func:`adam_scalars`: the bias corrections ``lr / (1 - beta1**t)`` and
  ``sqrt(1 - beta2**t)`` computed on the device from a step count in device memory, so that a
  captured CUDA graph can replay every step without the host.
- :func:`relu_backward`, :func:`all_finite`, :func:`flush_subnormals`: ``_fused.c``'s helpers.
- :func:`softmax_cross_entropy`: the loss and its gradient from the logits in one kernel (a
  warp per sample) and one sum, where the NumPy formula is about ten operations.

No function here moves data between host and device or waits for the device: results are
CuPy arrays (a flag is a 0-d boolean array), so the functions can be captured into a CUDA graph.
The host only decides by shapes and dtypes, never by values.

The NumPy code is the reference: Adam's in ``optim.Adam``, the loss's in
``nn.losses.SoftmaxCrossEntropy``, the helpers' in ``_fused.c`` and its NumPy fallbacks. The
kernels perform the same operations in the same order, and the tests compare them, but equal
to rounding, not bit for bit: the GPU's ``exp`` and ``log`` are not NumPy's, a warp adds a row
in a different order, and CuPy builds every kernel with ``-ftz=true``, so float32 subnormal
numbers count as zero (float64 is not affected). Floating-point contraction is off
(``--fmad=false``), as it is for ``_fused.c``, so that ``a * b + c`` rounds twice, as NumPy
rounds it.

CuPy is optional: it is imported on first use, and each kernel is built (and compiled by CuPy,
once per dtype) on its first call. :func:`available` says whether the GPU path can run.

>>> isinstance(available(), bool)
True
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import cupy

__all__ = [
    "adam",
    "adam_scalars",
    "all_finite",
    "available",
    "flush_subnormals",
    "relu_backward",
    "restore_where",
    "softmax_cross_entropy",
]

#: NVRTC options for every kernel: no contraction of a * b + c into one fused multiply-add,
#: so that each operation rounds as it does in NumPy (and in _fused.c, built the same way)
_OPTIONS = ("--fmad=false",)

_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


@functools.cache
def _cupy() -> ModuleType:
    """CuPy, imported on first use (the rest of bprop runs without it)."""
    import cupy

    return cupy


def available() -> bool:
    """Whether the GPU kernels can run: CuPy imports and sees at least one CUDA device.

    Never raises: a missing CuPy, a missing driver or a CUDA error all answer False.
    """
    try:
        return _cupy().cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDARuntimeError, a broken installation...
        return False


def _check_arrays(function: str, reference_name: str, reference: cupy.ndarray,
                  **others: cupy.ndarray | None) -> None:
    """Check that ``reference`` is float32 or float64 and that each other array (None
    skipped) has its dtype and shape. Metadata only: nothing is read from the device."""
    if reference.dtype not in _FLOAT_TYPES:
        raise TypeError(f"{function}: {reference_name} must be float32 or float64, "
                        f"got {reference.dtype}")
    for name, array in others.items():
        if array is not None and (array.dtype != reference.dtype
                                  or array.shape != reference.shape):
            raise ValueError(f"{function}: {name} ({array.dtype}, shape {array.shape}) must "
                             f"have the dtype and shape of {reference_name} "
                             f"({reference.dtype}, shape {reference.shape})")


# -- Adam -------------------------------------------------------------------------------------
# Every scalar is a float64 parameter rounded to the arrays' type T inside the kernel, as the C
# code rounds its doubles and NumPy a Python float: the same kernel then takes step_size and
# bias_correction2_sqrt either as Python floats or as 0-d float64 device arrays (which
# CuPy broadcasts), for a graph that reads them from device memory.
_ADAM_SCALARS_PARAMS = ("float64 beta1, float64 one_minus_beta1, float64 beta2, "
                        "float64 one_minus_beta2, float64 step_size, "
                        "float64 bias_correction2_sqrt, float64 eps")


@functools.cache
def _adam_kernel(keep: bool, new: bool):
    """The update as an ElementwiseKernel, one variant per (``keep``: copy the old values
    into ``backup``; ``new``: write the moments to new arrays, reading the old ones).

    Its arguments: grads, [exp_avg, exp_avg_sq,] the seven scalars, values, the moments that
    are written, [backup,] and a 0-d boolean flag that it sets False on a non-finite result.
    """
    moments_read = "T exp_avg, T exp_avg_sq, " if new else ""
    moments_written = "T new_exp_avg, T new_exp_avg_sq" if new else "T exp_avg, T exp_avg_sq"
    backup = ", T backup" if keep else ""
    # m and v: the operations of optim.Adam._adam_update, in its order
    operation = f"""
        const T g = grad;
        const T m = exp_avg * (T)beta1 + (T)one_minus_beta1 * g;
        const T v = exp_avg_sq * (T)beta2 + (T)one_minus_beta2 * g * g;
        {"new_exp_avg" if new else "exp_avg"} = m;
        {"new_exp_avg_sq" if new else "exp_avg_sq"} = v;
        const T denominator = sqrt(v) / (T)bias_correction2_sqrt + (T)eps;
        {"backup = value;" if keep else ""}
        value -= (T)step_size * m / denominator;
        // Threads that meet a NaN or an infinity all store the same false: no atomics needed.
        if (!(isfinite(value) && isfinite(m) && isfinite(v))) finite_out[0] = false;
    """
    return _cupy().ElementwiseKernel(
        f"T grad, {moments_read}{_ADAM_SCALARS_PARAMS}",
        f"T value, {moments_written}{backup}, raw bool finite_out",
        operation,
        name=f"bprop_adam{'_keep' if keep else ''}{'_new' if new else ''}",
        options=_OPTIONS,
    )


def adam(values: cupy.ndarray, grads: cupy.ndarray, exp_avg: cupy.ndarray,
         exp_avg_sq: cupy.ndarray, beta1: float, beta2: float,
         step_size: float | cupy.ndarray, bias_correction2_sqrt: float | cupy.ndarray,
         eps: float, backup: cupy.ndarray | None = None,
         new_exp_avg: cupy.ndarray | None = None,
         new_exp_avg_sq: cupy.ndarray | None = None) -> cupy.ndarray:
    """One Adam step over device arrays, as ``_fused.c``'s ``adam`` computes it.

    Per element, with ``m`` the first moment (``exp_avg``) and ``v`` the second
    (``exp_avg_sq``)::

        m = beta1 m + (1 - beta1) g
        v = beta2 v + (1 - beta2) g g
        value -= step_size m / (sqrt(v) / bias_correction2_sqrt + eps)

    where ``1 - beta`` is computed in float64 and every scalar is then rounded to the arrays'
    dtype, as NumPy rounds a Python float.

    Parameters
    ----------
    values, grads, exp_avg, exp_avg_sq : cupy.ndarray
        Arrays of one shape (any, usually the flat parameter buffer (n,)) and one dtype,
        float32 or float64. ``values`` is updated in place; so are the moments unless
        ``new_exp_avg`` and ``new_exp_avg_sq`` are given.
    beta1, beta2, eps : float
        Adam's hyper-parameters.
    step_size, bias_correction2_sqrt : float or 0-d cupy.ndarray of float64
        ``lr / (1 - beta1**t)`` and ``sqrt(1 - beta2**t)``: Python floats, or device scalars
        (see :func:`adam_scalars`) that a captured graph reads at each replay.
    backup : cupy.ndarray, optional
        Receives the old values (same shape and dtype), so that the caller can undo the step.
    new_exp_avg, new_exp_avg_sq : cupy.ndarray, optional
        Both or neither: receive the updated moments, and ``exp_avg``, ``exp_avg_sq`` are only
        read (an undone step then leaves the optimizer's state as it was).

    Returns
    -------
    cupy.ndarray
        0-d bool: whether every updated value and both updated moments are finite (a square
        gradient that overflows makes ``v`` infinite and the step silently zero).
    """
    new = new_exp_avg is not None
    if new != (new_exp_avg_sq is not None):
        raise TypeError("adam: give both new_exp_avg and new_exp_avg_sq, or neither")
    _check_arrays("adam", "values", values, grads=grads, exp_avg=exp_avg,
                  exp_avg_sq=exp_avg_sq, backup=backup, new_exp_avg=new_exp_avg,
                  new_exp_avg_sq=new_exp_avg_sq)
    keep = backup is not None
    beta1, beta2 = float(beta1), float(beta2)  # (host numbers: these read nothing from a device)
    scalars = (beta1, 1.0 - beta1, beta2, 1.0 - beta2, step_size, bias_correction2_sqrt,
               float(eps))
    finite = _cupy().ones((), dtype=bool)
    if new:
        arguments = (grads, exp_avg, exp_avg_sq, *scalars, values, new_exp_avg, new_exp_avg_sq)
    else:
        arguments = (grads, *scalars, values, exp_avg, exp_avg_sq)
    if keep:
        arguments += (backup,)
    _adam_kernel(keep, new)(*arguments, finite)
    return finite


# beta**t as Python computes it: Python calls the C library's pow, within about 0.52 ulp with
# glibc and so nearly always the correctly rounded value (it was for all but about 0.1% of the
# steps t up to 2e6, for the usual betas), while CUDA's pow may be 2 ulps off, and an ulp of
# beta**t near 1 is a large relative error in 1 - beta**t (about 1e-13 in the first steps with
# beta2 = 0.999). So the power is taken by repeated squaring in double-double arithmetic (a
# value and the error of its rounding, about 106 bits) and rounded to a double once, at the end:
# the correctly rounded power, but for results near underflow, where 1 - beta**t is 1 anyway.
_POWER_SOURCE = r"""
// (hi, lo) *= (other_hi, other_lo) in double-double arithmetic, the result normalised so that
// hi is the double nearest to hi + lo
__device__ void bprop_dd_multiply(double &hi, double &lo, double other_hi, double other_lo) {
    const double product = hi * other_hi;
    double error = fma(hi, other_hi, -product);  // exactly hi * other_hi - product
    error += hi * other_lo + lo * other_hi;      // lo * other_lo is below the precision kept
    hi = product + error;
    lo = error - (hi - product);
}

// base ** exponent (exponent >= 0) rounded once to a double
__device__ double bprop_power(double base, long long exponent) {
    double hi = 1.0, lo = 0.0;                // the product so far
    double base_hi = base, base_lo = 0.0;     // base ** (2 ** k)
    while (exponent > 0) {
        if (exponent & 1) bprop_dd_multiply(hi, lo, base_hi, base_lo);
        exponent >>= 1;
        if (exponent > 0) bprop_dd_multiply(base_hi, base_lo, base_hi, base_lo);
    }
    return hi;
}
"""


@functools.cache
def _adam_scalars_kernel():
    return _cupy().ElementwiseKernel(
        "float64 lr, float64 beta1, float64 beta2, int64 step",
        "float64 step_size, float64 bias_correction2_sqrt",
        """
        step_size = lr / (1.0 - bprop_power(beta1, step));
        bias_correction2_sqrt = sqrt(1.0 - bprop_power(beta2, step));
        """,
        name="bprop_adam_scalars",
        preamble=_POWER_SOURCE,
        options=_OPTIONS,
    )


def adam_scalars(lr: float | cupy.ndarray, beta1: float, beta2: float, step: cupy.ndarray,
                 step_size_out: cupy.ndarray, bias_correction2_sqrt_out: cupy.ndarray) -> None:
    """Adam's bias corrections for step ``t``, computed on the device in float64.

    ``step_size_out = lr / (1 - beta1**t)`` and ``bias_correction2_sqrt_out =
    sqrt(1 - beta2**t)``, as ``optim.Adam`` computes them in Python: bit for bit but where
    Python's ``beta**t`` is not correctly rounded (rarely), and then to what an ulp of
    ``beta**t`` changes in ``1 - beta**t``.

    Parameters
    ----------
    lr : float or 0-d cupy.ndarray of float64
        The learning rate (a device scalar lets a graph follow a schedule).
    beta1, beta2 : float
        Adam's betas.
    step : cupy.ndarray
        0-d int64: the number ``t`` (>= 1) of the step about to be taken, in device memory.
    step_size_out, bias_correction2_sqrt_out : cupy.ndarray
        0-d float64, written.
    """
    _adam_scalars_kernel()(lr, float(beta1), float(beta2), step, step_size_out,
                           bias_correction2_sqrt_out)


# -- ReLU's backward pass, finiteness, subnormals ---------------------------------------------
@functools.cache
def _relu_backward_kernel():
    # (T)(out > 0) is 1 or 0, so that NaN * 0 is NaN and -1 * 0 is -0, as in NumPy
    return _cupy().ElementwiseKernel(
        "T grad_out, T out", "T grad_in", "grad_in = grad_out * (T)(out > 0);",
        name="bprop_relu_backward", options=_OPTIONS)


def relu_backward(grad_out: cupy.ndarray, out: cupy.ndarray, grad_in: cupy.ndarray) -> None:
    """ReLU's backward pass, ``grad_in = grad_out * (out > 0)``, in one kernel.

    Parameters
    ----------
    grad_out, out : cupy.ndarray
        The gradient arriving from above and ReLU's output, one shape, float32 or float64.
    grad_in : cupy.ndarray
        Same shape and dtype, written (it must not overlap the others).
    """
    _check_arrays("relu_backward", "grad_out", grad_out, out=out, grad_in=grad_in)
    _relu_backward_kernel()(grad_out, out, grad_in)


@functools.cache
def _all_finite_kernel():
    return _cupy().ElementwiseKernel(
        "T x", "raw bool finite_out", "if (!isfinite(x)) finite_out[0] = false;",
        name="bprop_all_finite", options=_OPTIONS)


def all_finite(array: cupy.ndarray) -> cupy.ndarray:
    """Whether every element of a float32 or float64 device array is finite (no NaN, no
    infinity), as a 0-d bool device array; True for an empty array.

    One pass that clears a flag where it meets a non-finite element (see the module's
    docstring for why not a reduction); reading the answer on the host is the caller's
    choice (``bool(result)`` is a transfer and a synchronisation).
    """
    _check_arrays("all_finite", "the array", array)
    finite = _cupy().ones((), dtype=bool)
    _all_finite_kernel()(array, finite)  # (no launch for an empty array: the flag stays True)
    return finite


@functools.cache
def _flush_subnormals_kernel():
    # x * 1 is x and x * 0 a zero of x's sign, as the NumPy fallback computes it
    return _cupy().ElementwiseKernel(
        "float64 tiny", "T x", "x *= (T)(fabs(x) >= (T)tiny);",
        name="bprop_flush_subnormals", options=_OPTIONS)


def flush_subnormals(array: cupy.ndarray) -> None:
    """Set the subnormal elements of a float32 or float64 device array (magnitude below
    ``numpy.finfo(dtype).tiny``) to zero, keeping their sign, in place."""
    _check_arrays("flush_subnormals", "the array", array)
    _flush_subnormals_kernel()(float(np.finfo(array.dtype).tiny), array)


@functools.cache
def _restore_where_kernel():
    # A raw backup is read only where the body reads it: when the step was kept, each thread
    # reads the one-byte flag and writes nothing, where copyto(where=) reads and writes all.
    return _cupy().ElementwiseKernel(
        "raw bool failed, raw T backup", "T array", "if (failed[0]) array = backup[i];",
        name="bprop_restore_where", options=_OPTIONS)


def restore_where(failed: cupy.ndarray, backup: cupy.ndarray, array: cupy.ndarray) -> None:
    """``array[...] = backup`` if the 0-d bool device flag ``failed`` is true, else nothing:
    how a training step on the GPU undoes itself without reading the flag on the host.

    ``backup`` and ``array`` are C-contiguous, of one shape and dtype (float32 or float64).
    """
    _check_arrays("restore_where", "array", array, backup=backup)
    if not (array.flags.c_contiguous and backup.flags.c_contiguous):
        raise ValueError("restore_where: array and backup must be C-contiguous")
    _restore_where_kernel()(failed, backup, array)


# -- softmax cross-entropy --------------------------------------------------------------------
_WARP = 32
_ROWS_PER_BLOCK = 8  # a block of 8 warps, one row (sample) each
_SUM_THREADS = 256

_SOFTMAX_SOURCE = f"#define WARP {_WARP}\n#define SUM_THREADS {_SUM_THREADS}\n" + r"""
template <typename T>
__device__ T warp_max(T x) {
    // butterfly: every lane ends with the same value
    for (int offset = WARP / 2; offset > 0; offset /= 2) {
        const T other = __shfl_xor_sync(0xffffffffu, x, offset);
        x = other > x ? other : x;
    }
    return x;
}

template <typename T>
__device__ T warp_sum(T x) {
    // a + b == b + a in IEEE arithmetic, so every lane ends with the same sum
    for (int offset = WARP / 2; offset > 0; offset /= 2)
        x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

// One warp per row i of the logits z (n_rows, n_classes), C-ordered; the lanes take the
// columns in turn. As nn.losses.SoftmaxCrossEntropy computes it, with shifted = z_i - max(z_i):
//     row_losses[i] = log(sum(exp(shifted))) - shifted[label_i]
//     grad_i = (exp(shifted) / sum(exp(shifted)) - onehot(label_i)) * scale
// The exponentials are kept in grad between the two passes over the row.
template <typename T, typename Label>
__global__ void softmax_cross_entropy_rows(const T *logits, const Label *labels,
                                           long long n_rows, long long n_classes, T scale,
                                           T *grad, T *row_losses) {
    const int lane = threadIdx.x % WARP;
    const long long row = (long long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (row >= n_rows)
        return;  // (the whole warp: the shuffles below need every lane of it)
    const T *z = logits + row * n_classes;
    T *g = grad + row * n_classes;

    T largest = z[0];
    for (long long j = lane; j < n_classes; j += WARP)
        largest = z[j] > largest ? z[j] : largest;
    largest = warp_max(largest);

    T sum_exp = 0;
    for (long long j = lane; j < n_classes; j += WARP) {
        const T e = exp(z[j] - largest);
        g[j] = e;
        sum_exp += e;
    }
    sum_exp = warp_sum(sum_exp);

    const long long label = (long long)labels[row];
    for (long long j = lane; j < n_classes; j += WARP) {
        T p = g[j] / sum_exp;
        if (j == label)
            p -= 1;
        g[j] = p * scale;
    }
    if (lane == 0)
        row_losses[row] = log(sum_exp) - (z[label] - largest);
}

// total = scale * sum(terms[:count]), by one block (count is a batch size: small)
template <typename T>
__global__ void sum_scaled(const T *terms, long long count, T scale, T *total) {
    __shared__ T partial[SUM_THREADS];
    T s = 0;
    for (long long k = threadIdx.x; k < count; k += SUM_THREADS)
        s += terms[k];
    partial[threadIdx.x] = s;
    __syncthreads();
    for (int half = SUM_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        *total = partial[0] * scale;
}
"""

_C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
            np.dtype(np.int32): "int", np.dtype(np.int64): "long long"}


def _rows_name(dtype: np.dtype, label_dtype: np.dtype) -> str:
    return f"softmax_cross_entropy_rows<{_C_TYPES[dtype]}, {_C_TYPES[label_dtype]}>"


def _sum_name(dtype: np.dtype) -> str:
    return f"sum_scaled<{_C_TYPES[dtype]}>"


@functools.cache
def _softmax_module():
    """Both kernels of the loss, for float32 and float64 logits and int32 or int64 labels."""
    names = [_rows_name(dtype, label_dtype) for dtype in _FLOAT_TYPES
             for label_dtype in (np.dtype(np.int32), np.dtype(np.int64))]
    names += [_sum_name(dtype) for dtype in _FLOAT_TYPES]
    return _cupy().RawModule(code=_SOFTMAX_SOURCE, options=_OPTIONS, name_expressions=names)


def softmax_cross_entropy(logits: cupy.ndarray, labels: cupy.ndarray, scale: float,
                          grad: cupy.ndarray) -> cupy.ndarray:
    """Softmax cross-entropy of ``logits`` against class ``labels``, and its gradient.

    With ``s_i = z_i - max(z_i)`` for row ``i`` of the logits (shifted, so that no
    exponential overflows)::

        loss = scale * sum_i (log(sum_j exp(s_ij)) - s_i[labels_i])
        grad_i = scale * (exp(s_i) / sum_j exp(s_ij) - onehot(labels_i))

    Parameters
    ----------
    logits : cupy.ndarray
        (m, n_classes), float32 or float64 (copied first if it is not C-contiguous).
    labels : cupy.ndarray
        (m,) integers, already checked to lie in ``0 .. n_classes-1`` (not checked here:
        that would read them on the host).
    scale : float
        The reduction's factor: ``1 / m`` for a mean, 1 for a sum.
    grad : cupy.ndarray
        (m, n_classes), C-contiguous, the logits' dtype, apart from them: written.

    Returns
    -------
    cupy.ndarray
        The loss, 0-d, of the logits' dtype. (A view into a buffer that also holds the rows'
        terms, so that a graph that replays this call writes only into memory the result
        keeps alive.)
    """
    cp = _cupy()
    _check_arrays("softmax_cross_entropy", "logits", logits, grad=grad)
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError("softmax_cross_entropy: logits must be (m, n_classes) with "
                         f"n_classes >= 1, got shape {logits.shape}")
    n_rows, n_classes = logits.shape
    if labels.shape != (n_rows,) or labels.dtype.kind not in "iu":
        raise ValueError(f"softmax_cross_entropy: labels must be integers of shape ({n_rows},),"
                         f" got {labels.dtype}, shape {labels.shape}")
    if not grad.flags.c_contiguous:
        raise ValueError("softmax_cross_entropy: grad must be C-contiguous")
    if cp.may_share_memory(grad, logits):  # (bounds only: reads nothing from the device)
        raise ValueError("softmax_cross_entropy: grad must not overlap the logits, which the "
                         "kernel reads after writing the gradient")
    logits = cp.ascontiguousarray(logits)
    if labels.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        labels = labels.astype(np.int64)
    labels = cp.ascontiguousarray(labels)
    dtype = logits.dtype
    scale = dtype.type(scale)  # rounded to the logits' dtype, as NumPy rounds a Python float
    work = cp.empty(n_rows + 1, dtype=dtype)  # each row's term, then the loss
    loss = work[n_rows]
    module = _softmax_module()
    if n_rows:
        rows = module.get_function(_rows_name(dtype, labels.dtype))
        blocks = (n_rows + _ROWS_PER_BLOCK - 1) // _ROWS_PER_BLOCK
        rows((blocks,), (_ROWS_PER_BLOCK * _WARP,),
             (logits, labels, np.int64(n_rows), np.int64(n_classes), scale, grad, work))
    module.get_function(_sum_name(dtype))((1,), (_SUM_THREADS,),
                                          (work, np.int64(n_rows), scale, loss))
    return loss

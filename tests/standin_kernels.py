"""Models of the GPU kernels' contracts (:mod:`bprop.backend.cuda_kernels`), computed through
the CPU stand-in for CuPy: the same names, arguments, in-place writes and 0-d flags, with
NumPy's arithmetic in the kernels' order. Given to the kernel seam in the tests, they make the
code that calls the GPU kernels (Adam's with its step count in device memory and its undo in
place, ReLU's backward pass, the fused softmax cross-entropy) run, and be recorded in graphs,
on a machine without a GPU. The kernels themselves are tested against NumPy on a GPU
(``tests/test_gpu_kernels.py``)."""

from __future__ import annotations

import numpy as np

from bprop.backend import standin as xp


def _scalar(value, dtype):
    """A scalar argument rounded to the arrays' dtype, as the kernels round it."""
    if isinstance(value, xp.ndarray):
        return value.astype(dtype)
    return np.dtype(dtype).type(value)


def adam(values, grads, exp_avg, exp_avg_sq, beta1, beta2, step_size, bias_correction2_sqrt,
         eps, backup=None, new_exp_avg=None, new_exp_avg_sq=None):
    dtype = values.dtype
    beta1_, beta2_ = _scalar(beta1, dtype), _scalar(beta2, dtype)
    one_minus_beta1, one_minus_beta2 = _scalar(1.0 - beta1, dtype), _scalar(1.0 - beta2, dtype)
    m = exp_avg * beta1_ + one_minus_beta1 * grads
    v = exp_avg_sq * beta2_ + one_minus_beta2 * grads * grads
    if backup is not None:
        backup[...] = values
    denominator = xp.sqrt(v) / _scalar(bias_correction2_sqrt, dtype) + _scalar(eps, dtype)
    values -= _scalar(step_size, dtype) * m / denominator
    new = new_exp_avg is not None
    (new_exp_avg if new else exp_avg)[...] = m
    (new_exp_avg_sq if new else exp_avg_sq)[...] = v
    return xp.isfinite(values).all() & xp.isfinite(m).all() & xp.isfinite(v).all()


def adam_scalars(lr, beta1, beta2, step, step_size_out, bias_correction2_sqrt_out):
    t = step.astype(np.float64)
    step_size_out[...] = lr / (1 - xp.power(beta1, t))
    bias_correction2_sqrt_out[...] = xp.sqrt(1 - xp.power(beta2, t))


def relu_backward(grad_out, out, grad_in):
    grad_in[...] = grad_out * (out > 0).astype(grad_out.dtype)


def all_finite(array):
    return xp.isfinite(array).all()


def flush_subnormals(array):
    array *= xp.abs(array) >= np.finfo(array.dtype).tiny


def softmax_cross_entropy(logits, labels, scale, grad):
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    rows = xp.arange(len(logits))
    loss = (xp.log(sum_exp[:, 0]) - shifted[rows, labels]).sum() * _scalar(scale, logits.dtype)
    grad[...] = exp / sum_exp
    grad[rows, labels] -= 1
    grad *= _scalar(scale, logits.dtype)
    return loss.astype(logits.dtype)


def restore_where(failed, backup, array):
    xp.copyto(array, backup, where=failed)

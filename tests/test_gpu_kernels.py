"""The GPU kernels (backend/cuda_kernels.py) against the NumPy code they stand in for.

Each GPU test runs a kernel on CuPy arrays and the NumPy reference on host copies of the same
arrays, in float32 and float64, and asks for equality to rounding (the GPU's exp, log and
summation order are not NumPy's). They need CuPy and an NVIDIA GPU and are skipped, with a
message, without them. The tests at the top run anywhere: the module imports and answers
"unavailable" without CuPy, and the NumPy reference used for Adam is the optimizer's own.
"""

from __future__ import annotations

import importlib
import math
import sys
import types

import numpy as np
import pytest

import bprop.backend
from bprop.backend import cuda_kernels
from bprop.nn.losses import SoftmaxCrossEntropy
from bprop.optim import Adam

GPU_AVAILABLE = cuda_kernels.available()
SKIP_REASON = ("the GPU kernels' tests need CuPy and an NVIDIA GPU (CuPy is not installed, or "
               "no CUDA device is visible); install cupy-cuda12x on a machine with one to run them")
DTYPES = [np.float32, np.float64]


@pytest.fixture
def cp():
    """CuPy, or a skip with the reason when the GPU path cannot run here."""
    if not GPU_AVAILABLE:
        pytest.skip(SKIP_REASON)
    import cupy

    return cupy


# -- without a GPU ----------------------------------------------------------------------------
def test_the_module_imports_and_is_unavailable_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    monkeypatch.delitem(sys.modules, "bprop.backend.cuda_kernels")
    monkeypatch.setattr(bprop.backend, "cuda_kernels", cuda_kernels)  # (put back afterwards)
    fresh = importlib.import_module("bprop.backend.cuda_kernels")
    assert fresh is not cuda_kernels
    assert fresh.available() is False
    # the module already imported, with its cache of CuPy forgotten, answers the same
    cuda_kernels._cupy.cache_clear()
    try:
        assert cuda_kernels.available() is False
    finally:
        cuda_kernels._cupy.cache_clear()  # (the next caller imports the real one, if any)


@pytest.mark.parametrize("device_count", [0, RuntimeError("no CUDA driver")],
                         ids=["no_device", "no_driver"])
def test_available_is_false_with_cupy_but_no_device(monkeypatch, device_count):
    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=get_device_count))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    cuda_kernels._cupy.cache_clear()
    try:
        assert cuda_kernels.available() is False
    finally:
        cuda_kernels._cupy.cache_clear()


def numpy_adam(values, grads, exp_avg, exp_avg_sq, beta1, beta2, step_size,
               bias_correction2_sqrt, eps):
    """Adam's update in NumPy, operation for operation as optim.Adam computes it (the next
    test proves it), in place."""
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grads
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grads * grads
    denominator = np.sqrt(exp_avg_sq)
    denominator /= bias_correction2_sqrt
    denominator += eps
    values -= step_size * exp_avg / denominator


def adam_inputs(dtype, n=10_007, seed=0):
    """values, grads, exp_avg, exp_avg_sq: a mid-training state (n is not a multiple of a
    block of threads)."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=n).astype(dtype), rng.normal(size=n).astype(dtype),
            (0.1 * rng.normal(size=n)).astype(dtype), (0.01 * rng.random(n)).astype(dtype))


def bias_corrections(lr, beta1, beta2, step):
    return lr / (1 - beta1**step), math.sqrt(1 - beta2**step)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_reference_adam_is_the_optimizers(dtype):
    values, grads, exp_avg, exp_avg_sq = adam_inputs(dtype, n=1000)
    lr, (beta1, beta2), eps, step = 1e-3, (0.9, 0.999), 1e-8, 5
    state = {"step": step, "arrays": {"exp_avg": exp_avg.copy(), "exp_avg_sq": exp_avg_sq.copy()}}
    expected = values.copy()
    Adam(lr=lr, betas=(beta1, beta2), eps=eps).update(expected, grads, state)
    numpy_adam(values, grads, exp_avg, exp_avg_sq, beta1, beta2,
               *bias_corrections(lr, beta1, beta2, step), eps)
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal(exp_avg, state["arrays"]["exp_avg"])
    np.testing.assert_array_equal(exp_avg_sq, state["arrays"]["exp_avg_sq"])


# -- Adam on the GPU --------------------------------------------------------------------------
def assert_rounding_close(actual, expected):
    """Equal to an ulp or two: relative to each element, or to the largest one where an
    element is the difference of two larger numbers (value - step, b1 m + (1 - b1) g)."""
    eps = np.finfo(expected.dtype).eps
    scale = np.abs(expected).max() if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=2 * eps, atol=2 * eps * scale)


def run_adam(cp, inputs, *, keep, new, device_scalars, step=5, lr=1e-3, betas=(0.9, 0.999),
             eps=1e-8):
    """The kernel on device copies of ``inputs``: (finite flag, values, the moments written,
    the moments given, backup)."""
    values, grads, exp_avg, exp_avg_sq = (cp.asarray(a) for a in inputs)
    step_size, bias_correction2_sqrt = bias_corrections(lr, *betas, step)
    if device_scalars:  # as a captured graph gives them: 0-d float64 arrays
        step_size = cp.asarray(step_size, dtype=cp.float64)
        bias_correction2_sqrt = cp.asarray(bias_correction2_sqrt, dtype=cp.float64)
    backup = cp.full_like(values, np.nan) if keep else None
    new_moments = ((cp.full_like(values, np.nan), cp.full_like(values, np.nan)) if new
                   else (None, None))
    finite = cuda_kernels.adam(values, grads, exp_avg, exp_avg_sq, *betas, step_size,
                               bias_correction2_sqrt, eps, backup, *new_moments)
    written = new_moments if new else (exp_avg, exp_avg_sq)
    return finite, values, written, (exp_avg, exp_avg_sq), backup


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep", [False, True], ids=["in_place", "backup"])
@pytest.mark.parametrize("new", [False, True], ids=["same_moments", "new_moments"])
@pytest.mark.parametrize("device_scalars", [False, True], ids=["host_scalars", "device_scalars"])
def test_adam_matches_numpy(cp, dtype, keep, new, device_scalars):
    inputs = adam_inputs(dtype)
    lr, (beta1, beta2), eps, step = 1e-3, (0.9, 0.999), 1e-8, 5
    finite, values, written, given, backup = run_adam(
        cp, inputs, keep=keep, new=new, device_scalars=device_scalars, step=step, lr=lr,
        betas=(beta1, beta2), eps=eps)
    expected = [a.copy() for a in inputs]
    numpy_adam(expected[0], expected[1], expected[2], expected[3], beta1, beta2,
               *bias_corrections(lr, beta1, beta2, step), eps)

    assert isinstance(finite, cp.ndarray) and finite.shape == () and finite.dtype == bool
    assert bool(finite)
    for actual, reference in zip([values, *written], [expected[0], *expected[2:]], strict=True):
        assert actual.dtype == dtype
        assert_rounding_close(actual.get(), reference)
    if new:  # the moments given were only read
        np.testing.assert_array_equal(given[0].get(), inputs[2])
        np.testing.assert_array_equal(given[1].get(), inputs[3])
    if keep:
        np.testing.assert_array_equal(backup.get(), inputs[0])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep", [False, True], ids=["in_place", "backup"])
@pytest.mark.parametrize("new", [False, True], ids=["same_moments", "new_moments"])
def test_adam_reports_what_is_not_finite(cp, dtype, keep, new):
    # an infinite gradient: the moments and the value become infinite or NaN
    inputs = adam_inputs(dtype, n=4099)
    inputs[1][4000] = np.inf
    finite, values, *_ = run_adam(cp, inputs, keep=keep, new=new, device_scalars=False)
    assert finite.shape == () and not bool(finite)
    assert not np.isfinite(values.get()[4000])

    # a gradient whose (1 - b2) g g overflows: v is infinite, the step 0 and the value finite
    inputs = adam_inputs(dtype, n=4099)
    inputs[1][17] = 1e21 if dtype == np.float32 else 1e160
    finite, values, written, *_ = run_adam(cp, inputs, keep=keep, new=new, device_scalars=True)
    assert not bool(finite)
    assert np.isfinite(values.get()).all()
    assert np.isinf(written[1].get()[17])

    # nothing wrong, and nothing at all
    assert bool(run_adam(cp, adam_inputs(dtype, n=4099), keep=keep, new=new,
                         device_scalars=False)[0])
    assert bool(run_adam(cp, adam_inputs(dtype, n=0), keep=keep, new=new,
                         device_scalars=False)[0])


@pytest.mark.gpu
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.99), (0.0, 0.9999)])
@pytest.mark.parametrize("lr_on_device", [False, True])
def test_adam_scalars_match_python(cp, betas, lr_on_device):
    beta1, beta2 = betas
    lr = 3e-4
    steps = [*range(1, 3001), 10_000, 123_457, 10**6, 10**9]
    device_steps = cp.asarray(steps, dtype=cp.int64)
    step_sizes = cp.full(len(steps), np.nan)
    roots = cp.full(len(steps), np.nan)
    device_lr = cp.asarray(lr, dtype=cp.float64) if lr_on_device else lr
    for k in range(len(steps)):  # 0-d views, as the optimizer's scalars are
        cuda_kernels.adam_scalars(device_lr, beta1, beta2, device_steps[k], step_sizes[k],
                                  roots[k])
    step_sizes, roots = step_sizes.get(), roots.get()
    eps = np.finfo(np.float64).eps
    for k, step in enumerate(steps):
        expected_step_size, expected_root = bias_corrections(lr, beta1, beta2, step)
        # A few ulps of the result, plus what one ulp of beta**t (Python's pow is not always
        # correctly rounded) changes in 1 - beta**t.
        assert step_sizes[k] == pytest.approx(
            expected_step_size, rel=4 * eps + eps / (1 - beta1**step), abs=0), step
        assert roots[k] == pytest.approx(
            expected_root, rel=4 * eps + eps / (1 - beta2**step), abs=0), step


# -- ReLU's backward pass, finiteness, subnormals ---------------------------------------------
def assert_same_numbers(actual, expected):
    """Equal, NaN where NaN, and each zero of the same sign."""
    np.testing.assert_array_equal(actual, expected)
    numbers = ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(actual[numbers]), np.signbit(expected[numbers]))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_matches_numpy(cp, dtype):
    rng = np.random.default_rng(1)
    grad_out = rng.normal(size=(257, 33)).astype(dtype)
    out = np.maximum(rng.normal(size=(257, 33)), 0).astype(dtype)
    special_grads = [np.nan, np.inf, -np.inf, -2.0, 0.0, -0.0, 3.0, -1.0, np.nan, -np.inf]
    special_outs = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, -0.0, -1.0, 2.0, np.nan]
    grad_out[0, :10] = special_grads  # NaN and inf times 0 are NaN, -2 times 0 is -0, ...
    out[0, :10] = special_outs
    expected = grad_out * (out > 0)
    device_grad_in = cp.full_like(cp.asarray(grad_out), 7.0)
    assert cuda_kernels.relu_backward(cp.asarray(grad_out), cp.asarray(out),
                                      device_grad_in) is None
    assert_same_numbers(device_grad_in.get(), expected)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_finite(cp, dtype):
    array = np.random.default_rng(2).normal(size=1_000_003).astype(dtype)
    array[5] = np.finfo(dtype).max

    def answer(host):
        result = cuda_kernels.all_finite(cp.asarray(host))
        assert isinstance(result, cp.ndarray) and result.shape == () and result.dtype == bool
        return bool(result)

    assert answer(array) is True
    for bad in (np.nan, np.inf, -np.inf):
        for where in (0, len(array) // 2, len(array) - 1):
            spoiled = array.copy()
            spoiled[where] = bad
            assert answer(spoiled) is False, (bad, where)
    assert answer(np.empty(0, dtype)) is True
    assert answer(np.array([[1.0, np.nan], [2.0, 3.0]], dtype)) is False


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_flush_subnormals_matches_numpy(cp, dtype):
    info = np.finfo(dtype)
    tiny, smallest = info.tiny, info.smallest_subnormal
    special = np.array([tiny, -tiny, tiny / 2, -tiny / 2, smallest, -smallest,
                        np.nextafter(tiny, 0), 0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan,
                        info.max], dtype)
    array = np.concatenate([special, np.random.default_rng(3).normal(size=5000).astype(dtype)
                            * np.array(tiny * 4, dtype)])  # around tiny: some of each kind
    expected = array * (np.abs(array) >= tiny)  # optim.flush_subnormals's NumPy code
    device = cp.asarray(array)
    assert cuda_kernels.flush_subnormals(device) is None
    assert_same_numbers(device.get(), expected)
    assert np.count_nonzero(expected == 0) > 100  # (the test did meet subnormals)


# -- softmax cross-entropy --------------------------------------------------------------------
def check_softmax_cross_entropy(cp, logits, labels, reduction="mean", device_logits=None):
    """The kernel against nn.losses.SoftmaxCrossEntropy on the same logits and labels."""
    reference = SoftmaxCrossEntropy(reduction=reduction)
    expected_loss = reference.forward(logits, labels)
    expected_grad = reference.backward()
    scale = 1.0 / len(logits) if reduction == "mean" else 1.0

    if device_logits is None:
        device_logits = cp.asarray(logits)
    grad = cp.full(logits.shape, np.nan, dtype=logits.dtype)
    loss = cuda_kernels.softmax_cross_entropy(device_logits, cp.asarray(labels), scale, grad)

    assert isinstance(loss, cp.ndarray) and loss.shape == () and loss.dtype == logits.dtype
    rtol = 1e-12 if logits.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(float(loss.get()), expected_loss, rtol=rtol)
    # the label's entry is p - 1: where p is near 1 it keeps only p's absolute error, an ulp
    # or two of 1 (times the scale)
    np.testing.assert_allclose(grad.get(), expected_grad, rtol=rtol,
                               atol=4 * np.finfo(logits.dtype).eps * scale)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(256, 10), (37, 1000), (5, 33), (1, 10), (9, 1)])
def test_softmax_cross_entropy_matches_numpy(cp, dtype, shape):
    rng = np.random.default_rng(4)
    logits = (3 * rng.normal(size=shape)).astype(dtype)
    labels = rng.integers(0, shape[1], size=shape[0])
    check_softmax_cross_entropy(cp, logits, labels)
    check_softmax_cross_entropy(cp, logits, labels, reduction="sum")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_with_huge_logits(cp, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4], [-1e4, -1e4, -1e4],
                       [1e4, 1e4 - 1, 1e4 - 2]], dtype)
    for labels in ([0, 0, 2, 1], [1, 2, 0, 2]):
        check_softmax_cross_entropy(cp, logits, np.array(labels))


@pytest.mark.gpu
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
def test_softmax_cross_entropy_labels_and_layouts(cp, label_dtype):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(70, 12))
    labels = rng.integers(0, 12, size=70).astype(label_dtype)
    check_softmax_cross_entropy(cp, logits, labels)
    # logits that are not C-contiguous (a Fortran-ordered copy) give the same
    check_softmax_cross_entropy(cp, logits, labels,
                                device_logits=cp.asfortranarray(cp.asarray(logits)))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_restore_where_copies_only_when_the_step_failed(cp, dtype):
    backup = np.arange(7, dtype=dtype)
    for failed in (False, True):
        array = cp.full(7, -1.0, dtype=dtype)
        cuda_kernels.restore_where(cp.asarray(failed), cp.asarray(backup), array)
        np.testing.assert_array_equal(array.get(), backup if failed else np.full(7, -1.0))

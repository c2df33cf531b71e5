"""The fast paths compute what the plain, textbook code computes.

Speed comes from (1) one flat buffer for all parameters and one for all gradients, updated in a
few vectorised operations; (2) optimizers writing into preallocated arrays, Adam with its bias
corrections folded into two scalars; (3) gradients written straight into ``grad`` after
``zero_grad``; (4) no gradient computed for the input data; (5) checks for NaN made in slices.
Each is compared here with the straightforward version.
"""

import numpy as np
import pytest

import bprop as bp
from bprop._checks import check_finite


def network(seed=0, dtype="float64"):
    return bp.Sequential([bp.Dense(6, 8), bp.ReLU(), bp.Dense(8, 5), bp.Tanh(),
                          bp.Dense(5, 3)], seed=seed, dtype=dtype)


def data(rng, n=16):
    return rng.standard_normal((n, 6)), rng.integers(0, 3, n)


def textbook_gradients(model, X, y):
    """Each layer's gradients with plain NumPy and ``+=``, nothing fused or skipped."""
    activations = [X]
    for layer in model.layers:
        activations.append(layer.forward(activations[-1], training=True))
    logits = activations[-1]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    grad = probs - np.eye(3)[y]
    grad /= len(X)
    grads = {}
    for i in range(len(model.layers) - 1, -1, -1):
        layer, x = model.layers[i], activations[i]
        if isinstance(layer, bp.Dense):
            grads[f"{i}.weight"] = np.zeros_like(layer.weight) + x.T @ grad
            grads[f"{i}.bias"] = np.zeros_like(layer.bias) + grad.sum(axis=0)
            grad = grad @ layer.weight.T
        elif isinstance(layer, bp.ReLU):
            grad = grad * (activations[i + 1] > 0)
        else:
            grad = grad * (1 - activations[i + 1] ** 2)
    return grads


def test_gradients_written_in_place_equal_the_textbook_ones_exactly(rng):
    model = network()
    X, y = data(rng)
    expected = textbook_gradients(model, X, y)
    loss = bp.SoftmaxCrossEntropy()
    model.zero_grad()
    loss.forward(model.forward(X, training=True), y)
    assert model.backward(loss.backward(), need_input_grad=False) is None
    for name, param in model.named_parameters():
        np.testing.assert_array_equal(param.grad, expected[name], err_msg=name)
    # A second backward without zero_grad adds, exactly like grad += ...
    model.backward(loss.backward())
    for name, param in model.named_parameters():
        np.testing.assert_array_equal(param.grad, expected[name] + expected[name], err_msg=name)


def test_skipping_the_input_gradient_changes_no_parameter_gradient(rng):
    X, y = data(rng)
    grads = []
    for need in (True, False):
        model = network()
        loss = bp.SoftmaxCrossEntropy()
        loss.forward(model.forward(X, training=True), y)
        model.zero_grad()
        result = model.backward(loss.backward(), need_input_grad=need)
        assert (result is None) == (not need)
        grads.append([p.grad.copy() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_array_equal(a, b)


def textbook_adam(values, grads_per_step, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    values, m, v = values.copy(), np.zeros_like(values), np.zeros_like(values)
    for t, g in enumerate(grads_per_step, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        values = values - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return values


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-13), ("float32", 2e-6)])
def test_fused_adam_on_the_flat_buffer_equals_textbook_adam_per_parameter(dtype, tolerance,
                                                                          rng):
    model = network(dtype=dtype)
    start = [p.value.copy() for p in model.parameters()]
    steps = [[rng.standard_normal(p.shape).astype(dtype) for p in model.parameters()]
             for _ in range(10)]
    optimizer = bp.Adam(lr=1e-2)
    for grads in steps:
        for param, grad in zip(model.parameters(), grads, strict=True):
            param.grad[...] = grad
        optimizer.step(model.parameters())
    for k, param in enumerate(model.parameters()):
        expected = textbook_adam(start[k].astype(np.float64),
                                 [s[k].astype(np.float64) for s in steps], lr=1e-2)
        np.testing.assert_allclose(param.value, expected, rtol=tolerance, atol=tolerance)


def test_sgd_on_the_flat_buffer_equals_per_parameter_sgd_exactly(rng):
    model = network()
    expected = []
    for param in model.parameters():
        param.grad[...] = rng.standard_normal(param.shape)
        expected.append(param.value - 0.1 * param.grad)
    bp.SGD(lr=0.1).step(model.parameters())
    for param, value in zip(model.parameters(), expected, strict=True):
        np.testing.assert_array_equal(param.value, value)


def test_the_optimizer_allocates_no_new_arrays_between_steps(rng):
    model = network()
    optimizer = bp.Adam()
    for param in model.parameters():
        param.grad[...] = rng.standard_normal(param.shape)
    optimizer.step(model.parameters())
    state = next(iter(optimizer._states.values()))
    arrays = {name: id(array) for name, array in state["arrays"].items()}
    scratch = id(state["scratch"])
    optimizer.step(model.parameters())
    assert {name: id(array) for name, array in state["arrays"].items()} == arrays
    assert id(state["scratch"]) == scratch


@pytest.mark.parametrize("where", [None, (0, 0), (5_000, 3), (-1, -1)])
def test_the_sliced_nan_check_finds_what_the_whole_check_finds(where):
    X = np.ones((6_000, 300), dtype=np.float32)  # more than one slice of a million values
    if where is None:
        check_finite(X, "X")
        return
    X[where] = np.inf
    row = where[0] % len(X)
    with pytest.raises(ValueError, match=rf"the first at index \({row}, {where[1] % 300}\)"):
        check_finite(X, "X")


def test_training_results_do_not_depend_on_the_fast_paths(rng):
    """fit (flat buffer, fused Adam, no input gradient) against an explicit loop over
    separate layers with textbook Adam."""
    X, y = data(rng, 40)
    fitted = network()
    start = [p.value.copy() for p in fitted.parameters()]
    fitted.fit(X, y, loss="cross_entropy", optimizer=bp.Adam(lr=0.01), epochs=3,
               batch_size=40, shuffle=False)
    plain = network()
    history = [[] for _ in plain.parameters()]
    for _ in range(3):
        grads = textbook_gradients(plain, X, y)
        for k, (name, param) in enumerate(plain.named_parameters()):
            history[k].append(grads[name])
            param.value = textbook_adam(start[k], history[k], lr=0.01)
    for a, b in zip(fitted.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("values, expected", [
    ([1.0, 2.0], True), ([1.0, np.inf], False), ([np.nan, 1.0], False),
    ([-np.inf, 0.0], False), ([1e30, -1e30], True),  # finite, though their squares overflow
])
def test_the_quick_finiteness_test_agrees_with_isfinite(values, expected):
    from bprop.model import all_finite

    for dtype in (np.float32, np.float64):
        array = np.array(values, dtype=dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            assert all_finite(array) == expected == bool(np.isfinite(array).all())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_adam_gives_exactly_the_numpy_result(dtype, monkeypatch):
    numba = pytest.importorskip("numba", reason="the compiled kernel needs bprop[fast] (numba)")
    from bprop import _kernels

    results = []
    for switched_off in (False, True):
        if switched_off:
            monkeypatch.setenv("BPROP_NO_NUMBA", "1")
        _kernels.reset()
        rng = np.random.default_rng(0)
        param = bp.Parameter(rng.standard_normal(2 * _kernels.MIN_SIZE).astype(dtype))
        optimizer = bp.Adam(lr=1e-2)
        threads = numba.get_num_threads()
        for _ in range(5):
            param.grad[...] = rng.standard_normal(param.size).astype(dtype)
            optimizer.step([param])
        assert numba.get_num_threads() == threads  # the kernel leaves Numba's setting alone
        assert (_kernels.adam_kernel() is None) == switched_off
        results.append(param.value.copy())
    monkeypatch.delenv("BPROP_NO_NUMBA")
    _kernels.reset()
    np.testing.assert_array_equal(results[0], results[1])

"""The fast paths compute what the plain, textbook code computes.

Speed comes from (1) one flat buffer for all parameters and one for all gradients, updated in a
few vectorised operations; (2) optimizers writing into preallocated arrays, and Adam compiled
into one pass when the C extension was built (``_fused.c``); (3) gradients written straight
into ``grad`` after ``zero_grad``; (4) no gradient computed for the input data; (5) checks for
NaN made in slices.
Each is compared here with the straightforward version.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from kernel_switch import use_compiled_kernels

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


def test_zero_grad_fills_nothing_until_a_gradient_is_read(rng):
    model = network()
    for param in model.parameters():
        param.grad[...] = 1.0
    model.zero_grad()
    buffer = model.parameters()[0]._home[0].grads
    assert buffer.min() == 1.0  # the fill is put off ...
    grads = [p.grad for p in model.parameters()]  # ... until someone reads a gradient
    assert all(not g.any() for g in grads)
    model.zero_grad()
    assert not bp.nn.parameter.flat_views(model.parameters())[1].any()  # or all of them


def test_a_gradient_written_by_hand_after_zero_grad_is_added_to(rng):
    model = network()
    X, y = data(rng)
    expected = textbook_gradients(model, X, y)
    loss = bp.SoftmaxCrossEntropy()
    loss.forward(model.forward(X, training=True), y)
    model.zero_grad()
    for param in model.parameters():
        param.grad[...] = 1.0  # through the array, not the setter
    model.backward(loss.backward())
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad, expected[name] + 1.0, rtol=1e-12, err_msg=name)


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


@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "compiled"])
def test_the_optimizer_allocates_no_new_arrays_between_steps(rng, fused, monkeypatch):
    use_compiled_kernels(fused, monkeypatch)
    model = network()
    optimizer = bp.Adam()
    for param in model.parameters():
        param.grad[...] = rng.standard_normal(param.shape)
    optimizer.step(model.parameters())
    state = next(iter(optimizer._states.values()))
    arrays = {name: id(array) for name, array in state["arrays"].items()}
    scratch = id(state.get("scratch"))
    optimizer.step(model.parameters())
    assert {name: id(array) for name, array in state["arrays"].items()} == arrays
    assert id(state.get("scratch")) == scratch
    assert ("scratch" in state) == (not fused)  # the compiled pass needs no scratch array


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


@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "compiled"])
@pytest.mark.parametrize("values, expected", [
    ([1.0, 2.0], True), ([1.0, np.inf], False), ([np.nan, 1.0], False),
    ([-np.inf, 0.0], False), ([1e30, -1e30], True),  # finite, though their squares overflow
])
def test_the_quick_finiteness_test_agrees_with_isfinite(values, expected, fused, monkeypatch):
    from bprop._checks import all_finite

    use_compiled_kernels(fused, monkeypatch)
    for dtype in (np.float32, np.float64):
        for size in (2, 17, 1000):  # around and beyond the vector widths, bad value anywhere
            for position in {0, size // 2, size - 1}:
                array = np.ones(size, dtype=dtype)
                array[position] = values[0]
                array[(position + 1) % size] = values[1]
                with np.errstate(over="ignore", invalid="ignore"):
                    assert all_finite(array) == expected == bool(np.isfinite(array).all())
                    assert all_finite(array.reshape(-1, 1)[::-1]) == expected  # not contiguous


def test_inference_in_slices_of_rows_equals_one_pass(rng, monkeypatch):
    import bprop.nn.model

    model = bp.Sequential([bp.Dense(6, 8), bp.BatchNorm(8), bp.ReLU(), bp.Dropout(0.5),
                           bp.Dense(8, 3)], seed=0, dtype="float64")
    X, y = data(rng, 300)
    model.fit(X, y, loss="softmax_cross_entropy", epochs=2, batch_size=32, verbose=0)
    # forward itself is never sliced: a backward pass may follow it
    whole = bp.Softmax().forward(model.forward(X))
    monkeypatch.setattr(bprop.nn.model, "_INFERENCE_SLICE_BYTES", 8 * 8 * 64)  # 64-row slices
    assert model._infer(X).shape == (300, 3)
    np.testing.assert_allclose(model.predict_proba(X), whole, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(model.predict(X), whole.argmax(axis=1))
    loss = bp.SoftmaxCrossEntropy().forward(model.forward(X), y)
    np.testing.assert_allclose(model.evaluate(X, y)["loss"], loss, rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X[:10]), whole[:10], rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])  # float32: X is cast first
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 150, 299])  # first, a middle and the last slice
def test_inference_in_slices_still_refuses_nan_and_infinity(bad, row, dtype, rng, monkeypatch):
    import bprop.nn.model

    model = bp.Sequential([bp.Dense(6, 8), bp.ReLU(), bp.Dense(8, 3)], seed=0, dtype=dtype)
    monkeypatch.setattr(bprop.nn.model, "_INFERENCE_SLICE_BYTES", 8 * 8 * 64)  # 64-row slices
    X = rng.standard_normal((300, 6))
    X[row, 4] = bad
    X[row + 1:, 2] = np.nan  # not the first: the message names the first
    for method in (model.predict, model.predict_proba):
        with pytest.raises(ValueError, match=rf"X contains .* the first at index \({row}, 4\)"):
            method(X)


def _train_adam(dtype, size, steps, optimizer, fused: bool, monkeypatch):
    use_compiled_kernels(fused, monkeypatch)
    rng = np.random.default_rng(size)
    # Magnitudes from 1e-6 to 1e3, so that the square roots and divisions are exercised far
    # from 1 and rounding differences, if any, would show.
    scale = 10.0 ** rng.uniform(-6, 3, size)
    param = bp.Parameter((rng.standard_normal(size) * scale).astype(dtype))
    for _ in range(steps):
        param.grad[...] = (rng.standard_normal(size) * scale).astype(dtype)
        optimizer.step([param])
    state = optimizer.state_dict([param])["arrays"]
    return param.value.copy(), [state[name] for name in ("exp_avg", "exp_avg_sq")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 1003, 100_000])  # around and beyond vector widths
@pytest.mark.parametrize("make_optimizer", [
    lambda: bp.Adam(lr=1e-2),
    lambda: bp.Adam(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2),
    lambda: bp.AdamW(lr=1e-3),
], ids=["adam", "adam-decay", "adamw"])
def test_the_compiled_adam_gives_exactly_the_numpy_result(dtype, size, make_optimizer,
                                                          monkeypatch):
    fused = _train_adam(dtype, size, 6, make_optimizer(), True, monkeypatch)
    plain = _train_adam(dtype, size, 6, make_optimizer(), False, monkeypatch)
    np.testing.assert_array_equal(fused[0], plain[0])
    assert len(fused[1]) == len(plain[1]) == 2
    for a, b in zip(fused[1], plain[1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("poison", [None, np.nan, np.inf], ids=["finite", "nan", "inf"])
def test_the_guarded_step_keeps_the_old_values_and_sees_divergence(dtype, poison, monkeypatch):
    """guarded_step = copy the values, step, test the result: in one compiled pass for Adam,
    in three for the NumPy code, with the same results either way."""
    results = []
    for fused in (True, False):
        use_compiled_kernels(fused, monkeypatch)
        rng = np.random.default_rng(1)
        param = bp.Parameter(rng.standard_normal(1003).astype(dtype))
        optimizer = bp.Adam(lr=1e-2)
        backup = np.empty(param.size, dtype=dtype)
        for step in range(3):
            param.grad[...] = rng.standard_normal(param.size).astype(dtype)
            if step == 2 and poison is not None:
                param.grad[500] = poison
            before = param.value.copy()
            with np.errstate(invalid="ignore", over="ignore"):  # as fit runs it
                finite = optimizer.guarded_step([param], backup)
            np.testing.assert_array_equal(backup, before)
            assert finite == (step < 2 or poison is None)
        state = optimizer.state_dict([param])["arrays"]
        results.append([param.value.copy(), state["exp_avg"], state["exp_avg_sq"]])
    for compiled, plain in zip(*results, strict=True):
        np.testing.assert_array_equal(compiled, plain)


@pytest.mark.parametrize("make_optimizer", [
    lambda: bp.SGD(lr=0.1, momentum=0.9), lambda: bp.RMSProp(), lambda: bp.AdamW(),
    lambda: bp.Adam(weight_decay=0.1), lambda: _AdamWithItsOwnUpdate(),
], ids=["sgd", "rmsprop", "adamw", "adam-l2", "adam-subclass"])
def test_every_optimizer_s_guarded_step_is_its_step(make_optimizer):
    params, guarded = [], []
    for use_guard in (False, True):
        rng = np.random.default_rng(2)
        param = bp.Parameter(rng.standard_normal(50))
        optimizer = make_optimizer()
        backup = np.empty(50)
        for _ in range(3):
            param.grad[...] = rng.standard_normal(50)
            before = param.value.copy()
            if use_guard:
                assert optimizer.guarded_step([param], backup)
                np.testing.assert_array_equal(backup, before)
            else:
                optimizer.step([param])
        params.append(param.value.copy())
        param.grad[0] = np.nan
        guarded.append(optimizer.guarded_step([param], backup))
    np.testing.assert_array_equal(params[0], params[1])
    assert guarded == [False, False]  # a NaN gradient is seen whichever way the step is taken


class _SGDWithItsOwnStep(bp.SGD):
    """A subclass that wraps step (here: every step taken twice): fit must keep it."""

    def step(self, parameters):
        parameters = list(parameters)
        super().step(parameters)
        super().step(parameters)


def test_a_subclass_s_own_step_is_what_the_guarded_step_takes():
    optimizer = _SGDWithItsOwnStep(lr=0.5)
    param = bp.Parameter([1.0, 2.0])
    param.grad[...] = [1.0, 1.0]
    backup = np.empty(2)
    assert optimizer.guarded_step([param], backup)
    np.testing.assert_array_equal(backup, [1.0, 2.0])
    np.testing.assert_array_equal(param.value, [0.0, 1.0])  # two steps of 0.5


@pytest.mark.parametrize("backup", [np.empty(3), np.empty(2, np.float32), [0.0, 0.0]],
                         ids=["size", "dtype", "list"])
def test_a_backup_that_does_not_fit_is_refused_before_anything_changes(backup):
    optimizer = bp.Adam()
    param = bp.Parameter([1.0, 2.0])
    param.grad[...] = [1.0, 1.0]
    with pytest.raises(ValueError, match=r"backup must be a float64 array of shape \(2,\)"):
        optimizer.guarded_step([param], backup)
    assert optimizer.state_dict([param])["step"] == 0
    np.testing.assert_array_equal(param.value, [1.0, 2.0])


class _AdamWithItsOwnUpdate(bp.Adam):
    """Adam's state, plain gradient descent: its guarded step must run this update."""

    def update(self, values, grads, state):
        values -= self.lr * grads


def _spy_on_the_adam_kernel(monkeypatch) -> list:
    """Turn the compiled kernels on and record each call of the adam kernel."""
    module = pytest.importorskip("bprop.backend._fused", reason="the C extension was not built")
    calls, kernel = [], module.adam

    def counted(*args):
        calls.append(args)
        return kernel(*args)

    monkeypatch.setattr(module, "adam", counted)
    use_compiled_kernels(True, monkeypatch)
    return calls


class _AdamInNumPy(bp.Adam):
    """Adam that opts out of its compiled kernel."""

    kernel = None


class _KernelWithoutARunner(bp.Optimizer):
    kernel = "adam"
    carries_nonfinite_gradients = True

    def update(self, values, grads, state):
        values -= self.lr * grads


@pytest.mark.parametrize("use_guard", [False, True], ids=["step", "guarded_step"])
def test_which_update_runs_is_the_optimizer_s_kernel_attribute(use_guard, monkeypatch):
    calls = _spy_on_the_adam_kernel(monkeypatch)
    assert bp.Adam.kernel == bp.AdamW.kernel == "adam"
    assert bp.SGD.kernel is bp.RMSProp.kernel is bp.Optimizer.kernel is None
    # Its own update: the kernel it inherited computes something else, so it is not used.
    assert _AdamWithItsOwnUpdate.kernel is None
    results = {}
    for make in (bp.Adam, bp.AdamW, _AdamInNumPy, _AdamWithItsOwnUpdate):
        param = bp.Parameter([1.0, -2.0, 3.0])
        param.grad[...] = [0.5, 0.25, -1.0]
        optimizer, before = make(lr=0.1), len(calls)
        if use_guard:
            assert optimizer.guarded_step([param], np.empty(3))
        else:
            optimizer.step([param])
        assert len(calls) - before == (make.kernel is not None), make.__name__
        results[make] = param.value.copy()
    np.testing.assert_array_equal(results[_AdamWithItsOwnUpdate], [0.95, -2.025, 3.1])
    np.testing.assert_array_equal(results[_AdamInNumPy], results[bp.Adam])  # bit for bit
    with pytest.raises(NotImplementedError, match="names the kernel 'adam' but does not say "
                                                  "how to run it"):
        _KernelWithoutARunner(lr=0.1).step([bp.Parameter([1.0])])
    monkeypatch.setenv("BPROP_NO_FUSED", "1")
    bp.backend.kernels.reset()
    param = bp.Parameter([1.0])
    param.grad[...] = 1.0
    _KernelWithoutARunner(lr=0.5).step([param])  # no extension: its NumPy update runs
    assert param.value[0] == 0.5


class _AdamWithOtherSettings(bp.Adam):
    def __init__(self):
        super().__init__(lr=0.1)


def test_whether_an_update_carries_non_finite_gradients_is_declared():
    for cls in (bp.SGD, bp.Adam, bp.AdamW, bp.RMSProp, _AdamWithOtherSettings,
                _KernelWithoutARunner):
        assert cls.carries_nonfinite_gradients, cls.__name__
    # Arithmetic of their own that does not say: perhaps not (a clip, a sign), so False.
    for cls in (bp.Optimizer, _AdamWithItsOwnUpdate, _SGDWithItsOwnStep):
        assert not cls.carries_nonfinite_gradients, cls.__name__
    # What it says for bprop's own optimizers is true, for NaN and both infinities.
    for make in (lambda: bp.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                 lambda: bp.Adam(weight_decay=0.1), bp.AdamW,
                 lambda: bp.RMSProp(momentum=0.5, centered=True)):
        for bad in (np.nan, np.inf, -np.inf):
            param = bp.Parameter([1.0, -1.0, 0.0])
            param.grad[...] = [bad, bad, bad]
            with np.errstate(invalid="ignore"):
                make().step([param])
            assert not np.isfinite(param.value).any(), (make(), bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_moments_that_decay_into_subnormals_are_flushed_identically(dtype, monkeypatch):
    tiny = np.finfo(dtype).tiny
    results = []
    for fused in (True, False):
        use_compiled_kernels(fused, monkeypatch)
        param = bp.Parameter(np.linspace(-1, 1, 1001).astype(dtype))
        optimizer = bp.Adam(lr=1e-3)
        seen_subnormal = False
        # One small gradient, then none: the first moments shrink by 0.9 a step and pass
        # below the smallest normal number in the third flush period.
        for step in range(1, 4 * bp.optim.optimizers.FLUSH_EVERY + 1):
            param.grad[...] = 1e3 * tiny if step == 1 else 0.0
            optimizer.step([param])
            moments = optimizer.state_dict([param])["arrays"]["exp_avg"]
            subnormal = (moments != 0) & (np.abs(moments) < tiny)
            seen_subnormal |= bool(subnormal.any())
            if step % bp.optim.optimizers.FLUSH_EVERY == 0:
                assert not subnormal.any(), step
        assert seen_subnormal  # the test did reach the case it is about
        state = optimizer.state_dict([param])["arrays"]
        results.append([param.value.copy(), state["exp_avg"], state["exp_avg_sq"]])
    for compiled, plain in zip(*results, strict=True):
        np.testing.assert_array_equal(compiled, plain)
        np.testing.assert_array_equal(np.signbit(compiled), np.signbit(plain))


def test_the_compiled_flush_equals_numpys_on_every_kind_of_value(monkeypatch):

    for dtype in (np.float32, np.float64):
        tiny = np.finfo(dtype).tiny
        special = np.array([tiny / 10, -tiny / 10, tiny, -tiny, tiny * (1 - 2**-20), -3.0,
                            0.0, -0.0, np.nan, np.inf, -np.inf, 1.0], dtype=dtype)
        array = np.tile(special, 9)  # long enough for the vector loop and its remainder
        flushed = []
        for fused in (True, False):
            use_compiled_kernels(fused, monkeypatch)
            copy = array.copy()
            bp.optim.flush_subnormals(copy)
            flushed.append(copy)
        np.testing.assert_array_equal(flushed[0], flushed[1])
        np.testing.assert_array_equal(np.signbit(flushed[0]), np.signbit(flushed[1]))
        expected = np.where(np.abs(array) < tiny, 0.0, array)
        np.testing.assert_array_equal(flushed[0], expected)


def test_the_extension_is_built_wherever_a_c_compiler_is_found():
    # The build marks the extension optional, so a broken build would only show as slowness.
    import sysconfig

    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) here, so bprop runs Adam in NumPy")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no Python headers (python3-dev) here, so bprop runs Adam in NumPy")
    import bprop.backend._fused

    assert bprop.backend._fused.API_VERSION == bp.backend.kernels.API_VERSION  # not an old build


def test_an_old_build_of_the_extension_is_not_used(monkeypatch):
    fused = pytest.importorskip("bprop.backend._fused", reason="the C extension was not built")
    monkeypatch.setattr(fused, "API_VERSION", bp.backend.kernels.API_VERSION - 1)
    bp.backend.kernels.reset()
    assert not bp.optim.fused_adam_available()
    monkeypatch.undo()
    bp.backend.kernels.reset()
    assert bp.optim.fused_adam_available()


def test_arrays_the_kernels_cannot_take_go_to_numpy():
    big_endian = np.array([1.0, np.nan, 3e-320, -2.0], dtype=">f8")
    assert bp.backend.kernels.compiled("all_finite", big_endian) is None
    assert not bp._checks.all_finite(big_endian)
    bp.optim.flush_subnormals(big_endian)
    np.testing.assert_array_equal(big_endian, [1.0, np.nan, 0.0, -2.0])
    mixed = (np.zeros(3, np.float32), np.zeros(3, np.float64))
    assert bp.backend.kernels.compiled("adam", *mixed) is None


def references(arrays) -> list[int]:
    """Each array's reference count: a buffer the extension took and did not release holds
    one more. (Resizing is no test of it: NumPy lets an array with a live buffer resize.)"""
    return [sys.getrefcount(array) for array in arrays]


def test_the_extension_refuses_arrays_it_cannot_update():
    fused = pytest.importorskip("bprop.backend._fused", reason="the C extension was not built")
    good = [np.zeros(5, np.float32) for _ in range(4)]
    backups = [np.zeros(5, np.float32), np.zeros(5)]
    halves = np.zeros(8, np.float32)
    read_only = np.zeros(5, np.float32)
    read_only.flags.writeable = False
    other_dtype, other_size = np.zeros(5), np.zeros(4, np.float32)
    kept = [*good, halves, *backups, read_only, other_dtype, other_size]
    held_before = references(kept)
    fused.adam(*good, 0.9, 0.999, 1e-3, 1.0, 1e-8)
    with pytest.raises(TypeError, match="float32 or float64"):
        fused.adam(np.zeros(5, np.int64), *good[1:], 0.9, 0.999, 1e-3, 1.0, 1e-8)
    with pytest.raises(TypeError, match="float32 or float64"):
        fused.all_finite(np.zeros(5, np.float16))
    with pytest.raises(TypeError, match="float32 or float64"):
        fused.flush_subnormals(np.zeros(5, np.int32))
    with pytest.raises(ValueError, match="exp_avg must have the same dtype and size"):
        fused.adam(good[0], good[1], other_dtype, good[3], 0.9, 0.999, 1e-3, 1.0, 1e-8)
    with pytest.raises(ValueError, match="exp_avg_sq must have the same dtype and size"):
        fused.adam(*good[:3], other_size, 0.9, 0.999, 1e-3, 1.0, 1e-8)
    with pytest.raises((BufferError, ValueError), match="contiguous"):
        fused.adam(np.zeros(10, np.float32)[::2], *good[1:], 0.9, 0.999, 1e-3, 1.0, 1e-8)
    assert fused.adam(*good, 0.9, 0.999, 1e-3, 1.0, 1e-8, backups[0]) is True
    with pytest.raises(ValueError, match="backup must have the same dtype and size"):
        fused.adam(*good, 0.9, 0.999, 1e-3, 1.0, 1e-8, backups[1])
    with pytest.raises(ValueError, match="values and backup share memory"):
        fused.adam(*good, 0.9, 0.999, 1e-3, 1.0, 1e-8, good[0])
    with pytest.raises(ValueError, match="values and exp_avg share memory"):
        fused.adam(good[0], good[1], good[0], good[3], 0.9, 0.999, 1e-3, 1.0, 1e-8)
    with pytest.raises(ValueError, match="grads and exp_avg_sq share memory"):
        fused.adam(good[0][:4], halves[:4], good[2][:4], halves[3:7], 0.9, 0.999, 1e-3, 1.0, 1e-8)
    with pytest.raises((BufferError, ValueError), match="read-only|not writeable"):
        fused.adam(read_only, *good[1:], 0.9, 0.999, 1e-3, 1.0, 1e-8)
    with pytest.raises((BufferError, ValueError), match="read-only|not writeable"):
        fused.flush_subnormals(read_only)
    with pytest.raises((BufferError, ValueError), match="read-only|not writeable"):
        fused.adam(*good, 0.9, 0.999, 1e-3, 1.0, 1e-8, read_only)
    assert references(kept) == held_before  # every buffer released


def _special_values(dtype) -> np.ndarray:
    """Signed zeros, subnormals, NaN, infinities and ordinary numbers (12), repeated 11 times:
    long enough for the vector loops and their remainders."""
    tiny = np.finfo(dtype).tiny
    special = np.array([0.0, -0.0, tiny / 10, -tiny / 10, tiny, -3.0, 2.5, np.nan, -np.nan,
                        np.inf, -np.inf, 1e-300 if dtype == np.float64 else 1e-30], dtype=dtype)
    return np.tile(special, 11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_forward_against_kept_zeros_equals_maximum_with_zero(dtype):
    layer = bp.ReLU()
    values = _special_values(dtype)
    inputs = [values[:132].reshape(12, 11),
              values[:33].reshape(3, 11),                      # fewer rows: the same zeros
              np.asfortranarray(values[:132].reshape(12, 11)),  # Fortran order
              values[:132].reshape(11, 12)[:, ::2],            # strided, another width
              values[:132].reshape(12, 11)]                    # the first width again
    kept = []
    for x in inputs:
        out = layer.forward(x)
        plain = np.maximum(x, 0)
        assert out.dtype == dtype and out.shape == x.shape
        np.testing.assert_array_equal(out, plain)
        np.testing.assert_array_equal(np.signbit(out), np.signbit(plain))
        kept.append(layer._zeros)
    assert kept[1] is kept[0]  # a smaller batch (the last of an epoch) allocates nothing
    # The kept zeros follow the input's dtype and stay zero.
    other = np.float32 if dtype == np.float64 else np.float64
    assert layer.forward(np.full((12, 11), -1.0, other)).dtype == other
    assert not layer._zeros.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_relu_backward_gives_exactly_the_numpy_result(dtype, monkeypatch):
    special = _special_values(dtype)[:12]
    # every kind of gradient against every kind of forward input, and a remainder of 7
    # elements after the vector loop
    forward_in = np.concatenate([np.tile(special, 12), special[:7]]).reshape(-1, 1)
    grad_out = np.concatenate([np.repeat(special, 12), special[5:12]]).reshape(-1, 1)
    results = []
    for fused in (True, False):
        use_compiled_kernels(fused, monkeypatch)
        layer = bp.ReLU()
        layer.forward(forward_in)
        with np.errstate(invalid="ignore"):  # infinity times 0 (NumPy warns, C does not)
            grad_in = layer.backward(grad_out)
        assert grad_in.dtype == dtype and grad_in is not grad_out
        results.append(grad_in)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(np.signbit(results[0]), np.signbit(results[1]))
    with np.errstate(invalid="ignore"):
        expected = grad_out * (np.maximum(forward_in, 0) > 0)
    np.testing.assert_array_equal(results[1], expected)


def test_relu_backward_takes_any_gradient_the_compiled_loop_cannot(monkeypatch):
    use_compiled_kernels(True, monkeypatch)
    layer = bp.ReLU()
    x = np.array([[-1.0, 2.0, 3.0], [4.0, -5.0, 0.0]])
    layer.forward(x)
    mask = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    grads = [np.arange(6.0).reshape(2, 3, order="F"),               # not C-ordered
             np.arange(6, dtype=np.float32).reshape(2, 3),          # another dtype
             np.arange(6.0).astype(">f8").reshape(2, 3),            # the other byte order
             np.arange(6.0).reshape(2, 3).tolist()]                 # a list
    for grad_out in grads:
        np.testing.assert_array_equal(layer.backward(grad_out), np.asarray(grad_out) * mask)


def test_the_extension_refuses_relu_arrays_it_cannot_take():
    fused = pytest.importorskip("bprop.backend._fused", reason="the C extension was not built")
    good = [np.ones(6), np.ones(6), np.empty(6)]
    shared, other_dtype, other_size = np.ones(12), np.ones(6, np.float32), np.empty(5)
    kept = [*good, shared, other_dtype, other_size]
    held_before = references(kept)
    fused.relu_backward(*good)
    np.testing.assert_array_equal(good[2], 1.0)
    fused.relu_backward(good[0], good[0], good[2])  # the two it only reads may be one array
    with pytest.raises(ValueError, match="out must have the same dtype and size as grad_out"):
        fused.relu_backward(good[0], other_dtype, good[2])
    with pytest.raises(ValueError, match="grad_in must have the same dtype and size"):
        fused.relu_backward(good[0], good[1], other_size)
    with pytest.raises(TypeError, match="relu_backward: grad_out must be float32 or float64"):
        fused.relu_backward(np.ones(6, np.int64), *good[1:])
    with pytest.raises(TypeError, match="relu_backward: grad_in must be float32 or float64"):
        fused.relu_backward(*good[:2], np.empty(6, np.float16))
    with pytest.raises(ValueError, match="grad_out and grad_in share memory"):
        fused.relu_backward(good[0], good[1], good[0])
    with pytest.raises(ValueError, match="out and grad_in share memory"):
        fused.relu_backward(good[0], shared[:6], shared[5:11])
    read_only = np.empty(6)
    read_only.flags.writeable = False
    with pytest.raises((BufferError, ValueError), match="read-only|not writeable"):
        fused.relu_backward(*good[:2], read_only)
    assert references(kept) == held_before  # every buffer released


@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "compiled"])
def test_training_calls_the_compiled_kernels_exactly_when_they_are_on(fused, monkeypatch, rng):
    # The bit-for-bit tests would pass if the kernels were never called at all.
    module = pytest.importorskip("bprop.backend._fused", reason="the C extension was not built")
    calls = []

    def spy(name):
        kernel = getattr(module, name)

        def counted(*args):
            calls.append(name)
            return kernel(*args)
        return counted

    for name in ("adam", "relu_backward"):
        monkeypatch.setattr(module, name, spy(name))
    use_compiled_kernels(fused, monkeypatch)
    X, y = data(rng)
    network().fit(X, y, loss="softmax_cross_entropy", optimizer=bp.Adam(), epochs=1,
                  batch_size=16, verbose=0)
    assert sorted(set(calls)) == (["adam", "relu_backward"] if fused else [])


def test_the_adam_kernel_can_write_the_new_moments_elsewhere_and_leave_the_old_ones():
    """A guarded step writes the new moments into spare arrays (swapped in when the step is
    kept), so an undone step needs no copy of the state: the same numbers as in place."""
    fused = pytest.importorskip("bprop.backend._fused", reason="the C extension was not built")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        values, grads, m, v = (rng.standard_normal(1000).astype(dtype) for _ in range(4))
        v = np.abs(v)
        scalars = (0.9, 0.999, 1e-3 / (1 - 0.9**3), np.sqrt(1 - 0.999**3), 1e-8)
        in_place = [a.copy() for a in (values, m, v)]
        fused.adam(in_place[0], grads, in_place[1], in_place[2], *scalars)
        out = [values.copy(), np.empty_like(m), np.empty_like(v)]
        backup = np.empty_like(values)
        old_m, old_v = m.copy(), v.copy()
        assert fused.adam(out[0], grads, m, v, *scalars, backup, out[1], out[2]) is True
        for got, expected in zip(out, in_place, strict=True):
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(backup, values)
        np.testing.assert_array_equal(m, old_m)   # only read
        np.testing.assert_array_equal(v, old_v)
        out = [values.copy(), np.empty_like(m), np.empty_like(v)]
        fused.adam(out[0], grads, m, v, *scalars, None, out[1], out[2])  # no backup
        np.testing.assert_array_equal(out[1], in_place[1])
    good = [np.zeros(5) for _ in range(6)]
    with pytest.raises(TypeError, match="both new_exp_avg and new_exp_avg_sq, or neither"):
        fused.adam(*good[:4], *scalars, None, good[4])
    with pytest.raises(ValueError, match="exp_avg and new_exp_avg share memory"):
        fused.adam(*good[:4], *scalars, None, good[2], good[5])
    read_only = np.zeros(5)
    read_only.flags.writeable = False  # the old moments need not be writable then
    fused.adam(good[0], good[1], read_only, good[3].copy(), *scalars, None, good[4], good[5])

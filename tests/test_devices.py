"""The GPU code path, proven on a CPU: models on ``device="cuda"`` with CuPy replaced by the
stand-in array module (:mod:`bprop.backend.standin`), whose arrays refuse every implicit
conversion to NumPy, as CuPy's do, and count every host-device copy. A NumPy call left in the
layers, losses, optimizers or the step raises here; so does a mixed host/device operation.
Where CuPy and an NVIDIA GPU are present, each test that does not count copies runs on the GPU
too (marked ``gpu``). Also: the clear errors on a machine without CuPy or without a GPU."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import standin_kernels

import bprop as bp
from bprop.backend import cuda_kernels, devices, kernels, standin
from bprop.backend.devices import DeviceUnavailableError, get_device, stand_in_for_cuda
from bprop.cli import main
from bprop.nn import step as step_module

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}  # the bound for 20 steps


@pytest.fixture(params=["stand-in", "stand-in, GPU kernels",
                        pytest.param("cupy", marks=pytest.mark.gpu)])
def gpu(request, monkeypatch):
    """The array module of ``"cuda"`` while a test runs: the stand-in, once with the GPU's
    kernels modelled in it (``standin_kernels``), so that the code calling them runs too, and
    real CuPy where an NVIDIA GPU is present (the same test, then on the GPU)."""
    if request.param == "stand-in, GPU kernels":
        real = kernels.compiled

        def compiled(name, *arrays):
            if isinstance(arrays[0], standin.ndarray):
                return getattr(standin_kernels, name, None)
            return real(name, *arrays)

        monkeypatch.setattr(kernels, "compiled", compiled)
    if request.param == "cupy":
        if not cuda_kernels.available():
            pytest.skip("the GPU variant needs CuPy and an NVIDIA GPU (CuPy is not installed, "
                        "or no CUDA device is visible); the stand-in variant ran")
        import cupy

        yield cupy
        return
    with stand_in_for_cuda() as module:
        yield module


@pytest.fixture
def stand_in():
    """The stand-in alone: for the tests that count host-device copies, which only it can."""
    with stand_in_for_cuda() as module:
        yield module


@pytest.fixture
def no_cupy(monkeypatch):
    """A machine where ``import cupy`` fails, whatever this one has installed."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(devices, "_told_auto", False)


def host(array):
    return devices.to_numpy(array)


def relative_difference(a, b) -> float:
    a, b = np.asarray(host(a), np.float64), np.asarray(host(b), np.float64)
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-30)
    return float(np.abs(a - b).max()) / scale


def assert_same_state(model_a, model_b, dtype="float64"):
    """Every layer's parameters (together) and statistics equal to the issue's tolerance,
    relative to the layer's largest value: a bias that a BatchNorm cancels has a gradient of
    rounding noise only, and values near 1e-11 that no relative test of its own would pass."""
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for layer in sorted({name.split(".")[0] for name in state_a}):
        names = [name for name in state_a if name.split(".")[0] == layer]
        parameters = [n for n in names if n.split(".")[1] in ("weight", "bias")]
        for group in (parameters, [n for n in names if n not in parameters]):
            if group:
                a = np.concatenate([np.ravel(host(state_a[n])) for n in group])
                b = np.concatenate([np.ravel(host(state_b[n])) for n in group])
                assert relative_difference(a, b) <= TOLERANCE[dtype], group


def data(n=64, features=4, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)).astype(dtype)
    return X, rng


# -- devices and their errors --------------------------------------------------------------
def test_device_names_resolve():
    assert get_device("cpu") is devices.CPU and get_device(None) is devices.CPU
    assert get_device("cpu") == "cpu" and get_device("cpu").xp is np
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        get_device("tpu")
    with pytest.raises(TypeError, match="device must be"):
        get_device(3)


def test_cuda_without_cupy_is_one_clear_error(no_cupy):
    with pytest.raises(DeviceUnavailableError, match=r"needs CuPy.*pip install \"bprop\[gpu\]\""):
        get_device("cuda")
    with pytest.raises(DeviceUnavailableError, match="needs CuPy"):
        bp.Sequential([bp.Dense(2, 1)], device="cuda")
    with pytest.raises(DeviceUnavailableError, match="needs CuPy"):
        bp.mlp([2, 3, 1], device="cuda")
    X = np.zeros((10, 2))
    with pytest.raises(DeviceUnavailableError, match="needs CuPy"):
        bp.MLPClassifier(device="cuda").fit(X, np.arange(10) % 2)
    with pytest.raises(DeviceUnavailableError, match="needs CuPy"):
        bp.Sequential([bp.Dense(2, 1)]).to("cuda")


def test_cupy_without_a_gpu_says_so(monkeypatch):
    def no_driver():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_driver))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(DeviceUnavailableError, match="no usable NVIDIA GPU.*nvidia-smi"):
        get_device("cuda")
    fake.cuda.runtime.getDeviceCount = lambda: 0
    with pytest.raises(DeviceUnavailableError, match="asks for GPU 0, but CuPy sees 0"):
        get_device("cuda:0")
    with pytest.raises(ValueError, match="first visible GPU only.*CUDA_VISIBLE_DEVICES=2"):
        get_device("cuda:2")


def test_auto_uses_the_cpu_and_says_so_once(no_cupy, capsys):
    assert get_device("auto") is devices.CPU
    assert get_device("auto") is devices.CPU
    message = capsys.readouterr().err
    assert message.count("device='auto' uses the CPU: device='cuda' needs CuPy") == 1
    assert "use device='cpu'" not in message  # (the advice is for those who asked for cuda)


def test_auto_takes_the_gpu_when_there_is_one(gpu):
    assert get_device("auto") == "cuda" and get_device("auto").xp is gpu


def test_loading_onto_a_missing_gpu_fails_before_reading(no_cupy, tmp_path):
    path = tmp_path / "model.npz"
    bp.Sequential([bp.Dense(2, 1)], seed=0).save(path)
    with pytest.raises(DeviceUnavailableError, match="needs CuPy"):
        bp.load(path, device="cuda")


@pytest.mark.parametrize("command", [
    ["train", "--device", "cuda", "--quiet", "--epochs", "1"],
    ["compare", "--device", "cuda", "--peers", "bprop", "--epochs", "1"],
])
def test_command_line_says_what_is_missing(no_cupy, command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bprop {command[0]}: error: device='cuda' needs CuPy")
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before anything was trained or written


# -- one code path: the same answers on the stand-in as on the CPU ---------------------------
LAYER_STACKS = {
    "relu": lambda: [bp.Dense(4, 8), bp.ReLU(), bp.Dense(8, 3)],
    "tanh-sigmoid": lambda: [bp.Dense(4, 8), bp.Tanh(), bp.Dense(8, 8), bp.Sigmoid(),
                             bp.Dense(8, 3)],
    "leaky-identity": lambda: [bp.Dense(4, 8), bp.LeakyReLU(0.1), bp.Dense(8, 3),
                               bp.Identity()],
    "batchnorm": lambda: [bp.Dense(4, 8), bp.BatchNorm(8), bp.ReLU(), bp.Dense(8, 3)],
    "softmax-out": lambda: [bp.Dense(4, 8), bp.ReLU(), bp.Dense(8, 3), bp.Softmax()],
}
OPTIMIZERS = {
    "sgd": lambda: bp.SGD(lr=0.05),
    "nesterov": lambda: bp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: bp.Adam(lr=1e-2, weight_decay=1e-3),
    "adamw": lambda: bp.AdamW(lr=1e-2),
    "rmsprop": lambda: bp.RMSProp(lr=1e-3, momentum=0.5, centered=True),
}


def targets(kind: str, X: np.ndarray, rng):
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    if kind == "labels":
        return "softmax_cross_entropy", labels
    if kind == "one-hot":
        return "softmax_cross_entropy", np.eye(3)[labels]
    if kind == "mse":
        return "mse", X[:, :3] * 0.5 + rng.normal(size=(len(X), 3)) * 0.1
    if kind == "bce":
        return bp.BinaryCrossEntropy(from_logits=True), (X[:, :3] > 0).astype(float)
    raise ValueError(kind)


def train_both(build, optimizer, loss, X, y, dtype, **fit):
    """The same model trained on the CPU and on the stand-in: 20 steps (5 epochs of 4)."""
    models = []
    for device in ("cpu", "cuda"):
        model = bp.Sequential(build(), seed=3, dtype=dtype, device=device)
        history = model.fit(X, y, loss=loss, optimizer=optimizer(), epochs=5, batch_size=16,
                            metrics=[], **fit)
        models.append((model, history))
    return models


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("stack", sorted(LAYER_STACKS))
def test_every_layer_trains_to_the_same_weights(gpu, stack, dtype):
    X, rng = data(dtype=dtype)
    loss, y = targets("mse" if stack == "softmax-out" else "labels", X, rng)
    (cpu, h_cpu), (dev, h_dev) = train_both(LAYER_STACKS[stack], OPTIMIZERS["adam"], loss, X, y,
                                            dtype)
    assert isinstance(dev.parameters()[0].value, gpu.ndarray)
    assert_same_state(cpu, dev, dtype)
    assert np.allclose(h_cpu["loss"], h_dev["loss"], rtol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss", ["labels", "one-hot", "mse", "bce"])
def test_every_loss_and_optimizer_trains_to_the_same_weights(gpu, optimizer, loss, dtype):
    X, rng = data(dtype=dtype)
    loss, y = targets(loss, X, rng)
    (cpu, h_cpu), (dev, h_dev) = train_both(LAYER_STACKS["relu"], OPTIMIZERS[optimizer], loss,
                                            X, y, dtype)
    assert_same_state(cpu, dev, dtype)
    assert np.allclose(h_cpu["loss"], h_dev["loss"], rtol=TOLERANCE[dtype])


@pytest.mark.parametrize("extra", [
    {"regularizer": bp.L2(1e-2)}, {"regularizer": bp.L1(1e-3)},
    {"regularizer": bp.L1L2(l1=1e-3, l2=1e-2)}, {"clip_value": 0.05}, {"clip_norm": 0.1},
])
def test_penalties_and_clipping_give_the_same_weights(gpu, extra):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    (cpu, h_cpu), (dev, h_dev) = train_both(LAYER_STACKS["batchnorm"], OPTIMIZERS["nesterov"],
                                            loss, X, y, "float64", **extra)
    assert_same_state(cpu, dev)
    assert np.allclose(h_cpu["loss"], h_dev["loss"], rtol=1e-10)


def test_optimizer_state_lives_on_the_device_and_matches(gpu):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    results = []
    for device in ("cpu", "cuda"):
        model = bp.Sequential(LAYER_STACKS["relu"](), seed=1, dtype="float64", device=device)
        optimizer = bp.Adam(lr=1e-2)
        model.fit(X, y, loss=loss, optimizer=optimizer, epochs=2, batch_size=16)
        results.append(optimizer.state_dict(model.parameters()))
    cpu_state, dev_state = results
    assert cpu_state["step"] == dev_state["step"] == 8
    for name, array in dev_state["arrays"].items():
        assert isinstance(array, gpu.ndarray)
        assert relative_difference(array, cpu_state["arrays"][name]) <= 1e-10


def test_dropout_draws_its_masks_on_the_device_from_the_seed(gpu):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    weights = []
    for _ in range(2):
        model = bp.Sequential([bp.Dense(4, 16), bp.ReLU(), bp.Dropout(0.5), bp.Dense(16, 3)],
                              seed=5, dtype="float64", device="cuda")
        assert isinstance(model.layers[2].rng, gpu.random.Generator)
        model.fit(X, y, loss=loss, optimizer=bp.SGD(lr=0.1), epochs=2, batch_size=16)
        weights.append(host(model.layers[0].weight))
    np.testing.assert_array_equal(weights[0], weights[1])


def test_initial_weights_are_the_same_on_both_devices(gpu):
    cpu = bp.mlp([5, 7, 3], seed=11)
    dev = bp.mlp([5, 7, 3], seed=11, device="cuda")
    for a, b in zip(cpu.parameters(), dev.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, host(b.value))


# -- transfers -----------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_training_step_makes_no_transfer(stand_in, optimizer):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    model = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=0, dtype="float64", device="cuda")
    step = bp.TrainingStep(model, loss, OPTIMIZERS[optimizer](), regularizer=bp.L2(1e-3),
                           clip_norm=1.0)
    X_dev, y_dev = step._place(*model._check_data(X, y, step.loss, "X", "y"))
    step._start_device_epoch()
    with stand_in.count_transfers() as transfers:
        for start in range(0, 64, 16):
            step._device_step(X_dev[start:start + 16], y_dev[start:start + 16], True)
    assert (transfers.to_device, transfers.to_host) == (0, 0)


@pytest.mark.parametrize("epochs", [1, 3])
@pytest.mark.parametrize("batch_size", [8, 32])
@pytest.mark.parametrize("metrics", [[], ["accuracy"]])
def test_fit_makes_a_fixed_number_of_transfers_per_epoch(stand_in, epochs, batch_size, metrics):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    model = bp.Sequential(LAYER_STACKS["relu"](), seed=0, dtype="float64", device="cuda")
    with stand_in.count_transfers() as transfers:
        model.fit(X, y, loss=loss, optimizer=bp.Adam(), epochs=epochs, batch_size=batch_size,
                  metrics=metrics)
    # The data once; each epoch its permutation over, and its loss and flags (and, for
    # metrics, its outputs) back: whatever the number of batches.
    assert transfers.to_device == 2 + epochs
    assert transfers.to_host == epochs * (1 + len(metrics))


def test_data_too_large_for_the_device_go_over_batch_by_batch(stand_in, monkeypatch):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    models = []
    for free in (1 << 40, 0):
        monkeypatch.setattr(step_module, "device_free_bytes", lambda device, free=free: free)
        model = bp.Sequential(LAYER_STACKS["relu"](), seed=0, dtype="float64", device="cuda")
        with stand_in.count_transfers() as transfers:
            model.fit(X, y, loss=loss, optimizer=bp.Adam(), epochs=2, batch_size=16, metrics=[])
        models.append((model, transfers.to_device))
    (resident, resident_copies), (streamed, streamed_copies) = models
    assert_same_state(resident, streamed)
    assert resident_copies == 2 + 2 and streamed_copies == 2 * 4 * 2  # (X, y) per batch


# -- divergence: the device stops where the CPU stops ----------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_a_diverging_step_is_undone_on_the_device_as_on_the_cpu(gpu, optimizer):
    X, rng = data(dtype="float32")
    loss, y = targets("labels", X, rng)
    X[40:48] = 3e38  # the third batch of 16 overflows float32
    outcomes = []
    for device in ("cpu", "cuda"):
        model = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=0, device=device)
        opt = OPTIMIZERS[optimizer]()
        with pytest.raises(bp.TrainingDivergedError) as caught:
            model.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=16, shuffle=False)
        outcomes.append((model, opt.state_dict(model.parameters()), str(caught.value)))
    (cpu, cpu_state, cpu_message), (dev, dev_state, dev_message) = outcomes
    assert_same_state(cpu, dev, "float32")
    assert cpu_state["step"] == dev_state["step"] == 2
    for name, array in cpu_state["arrays"].items():
        assert relative_difference(array, dev_state["arrays"][name]) <= 1e-5
    assert "in epoch 1" in dev_message
    # the same reason, by the same words
    assert dev_message.split(" in epoch")[0] in cpu_message


def test_the_public_step_call_raises_at_once_on_the_device(gpu):
    model = bp.Sequential([bp.Dense(2, 1)], seed=0, device="cuda")
    step = bp.TrainingStep(model, "mse", bp.SGD(lr=1.0))
    before = host(model.layers[0].weight).copy()
    with pytest.raises(bp.TrainingDivergedError, match="loss became NaN or infinite"):
        step(np.full((4, 2), 1e30, np.float32), np.zeros(4))
    np.testing.assert_array_equal(host(model.layers[0].weight), before)
    result = step(np.ones((4, 2), np.float32), np.zeros(4))
    assert isinstance(result.loss, float)


# -- moving, saving, predicting ------------------------------------------------------------
def test_to_moves_there_and_back_and_the_optimizer_follows(gpu):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    reference = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=2, dtype="float64")
    moved = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=2, dtype="float64")
    opt_ref, opt_moved = bp.Adam(lr=1e-2), bp.Adam(lr=1e-2)
    for model, opt in ((reference, opt_ref), (moved, opt_moved)):
        model.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=16)
    assert moved.to("cuda") is moved and moved.device == "cuda"
    assert isinstance(moved.layers[1].buffers["running_mean"], gpu.ndarray)
    for model, opt in ((reference, opt_ref), (moved, opt_moved)):
        model.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=16)
    assert_same_state(reference, moved)
    moved.to("cpu")
    assert moved.device == "cpu" and isinstance(moved.layers[0].weight, np.ndarray)
    assert_same_state(reference, moved)
    assert "device='cuda'" in repr(bp.Sequential([bp.Dense(1, 1)], device="cuda"))


def test_a_model_saved_on_one_device_loads_on_the_other(gpu, tmp_path):
    X, rng = data(dtype="float32")
    loss, y = targets("labels", X, rng)
    on_gpu = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=0, device="cuda")
    opt = bp.Adam(lr=1e-2)
    on_gpu.fit(X, y, loss=loss, optimizer=opt, epochs=2, batch_size=16)
    on_gpu.save(tmp_path / "gpu.npz", optimizer=opt)
    on_cpu, opt_cpu = bp.load(tmp_path / "gpu.npz", optimizer=True)
    assert on_cpu.device == "cpu"
    np.testing.assert_array_equal(on_cpu.predict_proba(X), on_gpu.predict_proba(X))
    assert opt_cpu.state_dict(on_cpu.parameters())["step"] == 8
    on_cpu.save(tmp_path / "cpu.npz")
    back = bp.load(tmp_path / "cpu.npz", device="cuda")
    assert back.device == "cuda"
    np.testing.assert_array_equal(back.predict(X), on_cpu.predict(X))


def test_state_dicts_load_across_devices(gpu):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    on_gpu = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=0, dtype="float64", device="cuda")
    on_gpu.fit(X, y, loss=loss, optimizer=bp.Adam(lr=1e-2), epochs=1, batch_size=16)
    on_cpu = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=9, dtype="float64")
    on_cpu.load_state_dict(on_gpu.state_dict())  # device arrays into host memory
    assert_same_state(on_cpu, on_gpu)
    fresh = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=9, dtype="float64", device="cuda")
    fresh.load_state_dict(on_cpu.state_dict())  # host arrays into device memory
    assert isinstance(fresh.layers[0].weight, gpu.ndarray)
    assert_same_state(fresh, on_gpu)


def test_predict_takes_host_or_device_arrays_and_returns_numpy(gpu):
    X, rng = data(dtype="float32")
    model = bp.Sequential(LAYER_STACKS["relu"](), seed=0, device="cuda")
    model.loss = bp.SoftmaxCrossEntropy()  # (a classifier: predict_proba needs to know)
    X_dev = gpu.asarray(X)
    for method in (model.predict, model.predict_proba):
        from_host, from_device = method(X), method(X_dev)
        assert type(from_host) is np.ndarray and type(from_device) is np.ndarray
        np.testing.assert_array_equal(from_host, from_device)
    scores = model.evaluate(X, (X[:, 0] > 0).astype(int), loss="softmax_cross_entropy")
    assert isinstance(scores["loss"], float)
    X_bad = X.copy()
    X_bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.predict(gpu.asarray(X_bad))


@pytest.mark.filterwarnings("ignore::UserWarning")  # (five iterations do not converge)
def test_the_estimators_fit_on_the_device_as_on_the_cpu(gpu):
    X, rng = data(n=120)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    fitted = [bp.MLPClassifier((8,), max_iter=5, random_state=0, device=device, tol=0).fit(X, y)
              for device in ("cpu", "cuda")]
    for a, b in zip(fitted[0].coefs_, fitted[1].coefs_, strict=True):
        assert type(b) is np.ndarray and relative_difference(a, b) <= 1e-10
    assert np.allclose(fitted[0].loss_curve_, fitted[1].loss_curve_, rtol=1e-10)
    proba = fitted[1].predict_proba(X)
    assert type(proba) is np.ndarray
    np.testing.assert_allclose(proba, fitted[0].predict_proba(X), rtol=1e-10)
    regressor = bp.MLPRegressor((8,), max_iter=5, random_state=0, device="cuda", tol=0)
    assert type(regressor.fit(X, X[:, 0]).predict(X)) is np.ndarray


def test_bprop_train_runs_on_the_device(gpu, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--device", "cuda", "--epochs", "2", "--quiet",
                 "--out", str(out)]) == 0
    assert 'device = "cuda"' in (out / "config.toml").read_text()
    model = bp.load(out / "model.npz")
    assert model.device == "cpu" and model.n_inputs == 2


# -- recorded steps (CUDA graphs; the stand-in records and replays as CuPy's capture does) ---
def epoch_runs(graphs: bool, optimizer: str, dtype="float64", epochs=3):
    X, rng = data(dtype=dtype)
    loss, y = targets("labels", X, rng)
    model = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=4, dtype=dtype,
                          device="cuda" if graphs is not None else "cpu")
    step = bp.TrainingStep(model, loss, OPTIMIZERS[optimizer](), regularizer=bp.L2(1e-3),
                           clip_norm=2.0)
    if graphs is False:
        step._no_graphs = True
    losses = [step.epoch(X, y, batch_size=16).loss for _ in range(epochs)]
    return model, step, losses


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_recorded_steps_replay_to_the_cpus_weights(gpu, optimizer):
    cpu, _, cpu_losses = epoch_runs(None, optimizer)
    for graphs in (True, False):
        dev, step, losses = epoch_runs(graphs, optimizer)
        recorded = [entry for entry in step._graphs.values() if isinstance(entry, tuple)]
        assert bool(recorded) is graphs  # (the eager run records nothing)
        assert_same_state(cpu, dev)
        np.testing.assert_allclose(losses, cpu_losses, rtol=1e-10)
        assert step.optimizer._step_count(step.parameters) == 12


def test_a_step_that_cannot_be_recorded_runs_as_it_is(gpu, monkeypatch):
    cpu, _, cpu_losses = epoch_runs(None, "adam")
    real_forward = bp.SoftmaxCrossEntropy._forward

    def reads_back(self, logits, target):  # a loss that waits for the device: not recordable
        value = real_forward(self, logits, target)
        float(value)
        return value

    monkeypatch.setattr(bp.SoftmaxCrossEntropy, "_forward", reads_back)
    dev, step, losses = epoch_runs(True, "adam")
    assert step._no_graphs and not step._graphs
    assert_same_state(cpu, dev)
    np.testing.assert_allclose(losses, cpu_losses, rtol=1e-10)


def test_a_schedule_records_the_step_again_for_each_learning_rate(gpu):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    models = []
    for device in ("cpu", "cuda"):
        model = bp.Sequential(LAYER_STACKS["relu"](), seed=0, dtype="float64", device=device)
        optimizer = bp.SGD(lr=0.1, momentum=0.9)
        model.fit(X, y, loss=loss, optimizer=optimizer, epochs=4, batch_size=16,
                  schedule=bp.StepLR(optimizer, step_size=1, gamma=0.5))
        models.append(model)
    assert_same_state(*models)


def test_gradcheck_and_explain_check_a_gpu_model_on_a_cpu_copy(gpu):
    X, rng = data(n=8)
    loss, y = targets("labels", X, rng)
    model = bp.Sequential(LAYER_STACKS["relu"](), seed=0, dtype="float64", device="cuda")
    report = bp.gradcheck(model, X, y, loss=loss)
    assert report.passed(1e-6)
    assert model.device == "cuda"  # (the model itself stays where it was)
    from bprop.tools.explain import explain

    assert "layers" in explain(model, X, y, loss).description


def test_recorded_steps_follow_batches_of_other_shapes_and_validation(gpu):
    X, rng = data(n=70)  # batches of 16 and a last one of 6; 70 % 23 == 1 for BatchNorm
    loss, y = targets("labels", X, rng)
    for stack, batch_size in (("relu", 16), ("batchnorm", 23)):
        histories, models = [], []
        for device in ("cpu", "cuda"):
            model = bp.Sequential(LAYER_STACKS[stack](), seed=0, dtype="float64", device=device)
            history = model.fit(X, y, loss=loss, optimizer=bp.Adam(lr=1e-2), epochs=4,
                                batch_size=batch_size, validation_data=(X[:50], y[:50]))
            histories.append(history)
            models.append(model)
        assert_same_state(*models)
        for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
            np.testing.assert_allclose(histories[0][name], histories[1][name], rtol=1e-10)


@pytest.mark.parametrize("change", ["move", "load", "reset", "settings"])
def test_a_step_is_recorded_again_when_its_arrays_or_settings_change(gpu, change):
    X, rng = data()
    loss, y = targets("labels", X, rng)
    results = []
    for device in ("cpu", "cuda"):
        model = bp.Sequential(LAYER_STACKS["batchnorm"](), seed=0, dtype="float64", device=device)
        optimizer = bp.Adam(lr=1e-2)
        step = bp.TrainingStep(model, loss, optimizer)
        step.epoch(X, y, batch_size=16)
        if change == "move":
            model.to("cpu").to(device)
        elif change == "load":
            saved = optimizer.state_dict(model.parameters())
            step.epoch(X, y, batch_size=16)
            optimizer.load_state_dict(model.parameters(), saved)
        elif change == "reset":
            optimizer.reset(model.parameters())
        else:
            optimizer.betas = (0.5, 0.9)
        losses = [step.epoch(X, y, batch_size=16).loss for _ in range(2)]
        results.append((model, losses, optimizer.state_dict(model.parameters())))
    (cpu, cpu_losses, cpu_state), (dev, dev_losses, dev_state) = results
    assert_same_state(cpu, dev)
    np.testing.assert_allclose(dev_losses, cpu_losses, rtol=1e-10)
    assert dev_state["step"] == cpu_state["step"]
    for name, array in cpu_state["arrays"].items():
        assert relative_difference(array, dev_state["arrays"][name]) <= 1e-10


def test_weights_from_a_device_array_go_where_the_layer_is(gpu):
    W, b = gpu.asarray(np.arange(6.0).reshape(2, 3)), gpu.asarray(np.ones(3))
    layer = bp.Dense.from_weights(W, bias=b)
    np.testing.assert_array_equal(layer.weight, np.arange(6.0).reshape(2, 3))
    model = bp.mlp([2, 3], seed=0, dtype="float64", weights=[(W, b)], device="cuda")
    np.testing.assert_array_equal(host(model.layers[0].weight), host(W))
    model.layers[0].weight = gpu.asarray(np.zeros((2, 3)))
    assert float(abs(model.layers[0].weight).sum()) == 0.0
    on_cpu = bp.mlp([2, 3], seed=0, dtype="float64")
    on_cpu.layers[0].weight = W  # a device array into host memory
    np.testing.assert_array_equal(on_cpu.layers[0].weight, host(W))
    np.testing.assert_array_equal(bp.Parameter(b).value, np.ones(3))


def test_redrawing_weights_on_the_device_draws_what_the_cpu_draws(gpu):
    models = [bp.mlp([4, 5, 2], seed=0, device=device) for device in ("cpu", "cuda")]
    for model in models:
        model.layers[0].reset_parameters(np.random.default_rng(7))
    np.testing.assert_array_equal(models[0].layers[0].weight, host(models[1].layers[0].weight))


def test_a_copy_in_another_precision_keeps_dropout_on_the_device(gpu):
    X, rng = data(dtype="float32")
    loss, y = targets("labels", X, rng)
    model = bp.Sequential([bp.Dense(4, 8), bp.ReLU(), bp.Dropout(0.3), bp.Dense(8, 3)], seed=0,
                          device="cuda")
    copy64 = model.astype("float64")
    assert isinstance(copy64.layers[2].rng, gpu.random.Generator)
    copy64.fit(X.astype(np.float64), y, loss=loss, optimizer=bp.SGD(lr=0.1), epochs=1)


def test_inference_on_the_device_goes_in_slices(gpu, monkeypatch):
    from bprop.nn import model as model_module

    X, rng = data(n=300, dtype="float32")
    model = bp.Sequential(LAYER_STACKS["relu"](), seed=0, device="cuda")
    whole = host(model._infer(X))  # (300 rows: one slice of the default size)
    monkeypatch.setattr(model_module, "_DEVICE_SLICE_BYTES", 8 * 4 * 64)  # 64 rows a slice
    forwards = []
    real = model._forward
    monkeypatch.setattr(model, "_forward", lambda x, training: forwards.append(len(x))
                        or real(x, training))
    np.testing.assert_allclose(host(model._infer(X)), whole, rtol=1e-6)
    assert forwards == [64, 64, 64, 64, 44]


def test_gradcheck_of_a_loss_takes_device_predictions(gpu):
    pred = gpu.asarray(np.random.default_rng(0).normal(size=(4, 3)))
    assert bp.gradcheck(bp.SoftmaxCrossEntropy(), pred, np.array([0, 1, 2, 1])).passed(1e-6)


def test_a_torch_tensor_is_still_converted_by_a_layer():
    torch = pytest.importorskip("torch")
    layer = bp.Dense.from_weights(np.eye(2), bias=np.zeros(2))
    out = layer.forward(torch.ones(3, 2, dtype=torch.float64))
    assert type(out) is np.ndarray and out.tolist() == [[1.0, 1.0]] * 3
    assert bp.MSE().forward(torch.zeros(2, 1, dtype=torch.float64), np.zeros(2)) == 0.0

"""bprop models to PyTorch and back: same outputs, identical weights, the mode carried, copies
not views, and a clear error for everything without a counterpart."""

from __future__ import annotations

import numpy as np
import pytest
from support import relative_error

import bprop as bp
from bprop.estimators import MLPClassifier
from bprop.interop.common import ConversionError, MissingPackageError
from bprop.interop.torch import from_torch, to_torch
from bprop.nn.layer import Layer

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the PyTorch interop tests "
                                            "skip")

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}


def torch_out(module, X) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


def every_kind(dtype, seed=0) -> bp.Sequential:
    """A model with every layer kind, BatchNorm's gamma, beta and running statistics set to
    values far from their initial 1 and 0."""
    model = bp.Sequential([
        bp.Dense(5, 7), bp.BatchNorm(7, momentum=0.3, eps=1e-3), bp.ReLU(),
        bp.Dense(7, 6, bias=False), bp.LeakyReLU(alpha=0.15), bp.Dropout(0.25),
        bp.Dense(6, 6), bp.Sigmoid(), bp.Dense(6, 5), bp.Tanh(), bp.Identity(),
        bp.Dense(5, 4), bp.Softmax(),
    ], seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    state = model.state_dict()
    state["1.weight"] = rng.uniform(0.5, 2.0, 7)
    state["1.bias"] = rng.normal(size=7)
    state["1.running_mean"] = rng.normal(size=7)
    state["1.running_var"] = rng.uniform(0.2, 3.0, 7)
    model.load_state_dict(state)
    return model


def data(dtype, m=16, n=5, seed=3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(m, n)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_torch_computes_what_the_model_computes(dtype):
    model = every_kind(dtype)
    module = to_torch(model)
    X = data(dtype)
    assert not module.training
    assert all(p.dtype == getattr(torch, np.dtype(dtype).name) for p in module.parameters())
    assert [type(m).__name__ for m in module] == [
        "Linear", "BatchNorm1d", "ReLU", "Linear", "LeakyReLU", "Dropout", "Linear", "Sigmoid",
        "Linear", "Tanh", "Identity", "Linear", "Softmax"]
    assert module[3].bias is None
    assert relative_error(torch_out(module, X), model.predict_proba(X)) <= TOLERANCE[dtype]
    assert relative_error(torch_out(module, X), model.forward(X)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_every_weight_and_setting(dtype):
    model = every_kind(dtype, seed=5)
    back = from_torch(to_torch(model))
    assert back.dtype == model.dtype
    assert [repr(layer) for layer in back.layers] == [repr(layer) for layer in model.layers]
    before, after = model.state_dict(), back.state_dict()
    assert set(before) == set(after)
    for name, value in before.items():
        assert after[name].dtype == value.dtype, name
        assert np.array_equal(after[name], value), name
    norm = back.layers[1]
    assert (norm.momentum, norm.eps) == (0.3, 1e-3)
    assert back.layers[4].alpha == 0.15 and back.layers[5].p == 0.25
    X = data(dtype)
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))


def test_the_weights_are_transposed_as_pytorch_lays_them_out():
    model = bp.Sequential([bp.Dense(3, 2)], seed=1, dtype="float64")
    linear = to_torch(model)[0]
    assert tuple(linear.weight.shape) == (2, 3)
    np.testing.assert_array_equal(linear.weight.detach().numpy(), model.layers[0].weight.T)
    np.testing.assert_array_equal(linear.bias.detach().numpy(), model.layers[0].bias)


def test_a_trained_batchnorm_carries_its_running_statistics():
    X = data(np.float32, m=64, n=5, seed=7)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = bp.Sequential([bp.Dense(5, 6), bp.BatchNorm(6), bp.Tanh(), bp.Dense(6, 2)], seed=2)
    model.fit(X, y, loss="softmax_cross_entropy", epochs=2, batch_size=8)
    running_mean = model.layers[1].buffers["running_mean"]
    assert np.abs(running_mean).max() > 1e-3  # (training moved them away from zero)
    module = to_torch(model)
    np.testing.assert_array_equal(module[1].running_mean.numpy(), running_mean)
    np.testing.assert_array_equal(module[1].running_var.numpy(),
                                  model.layers[1].buffers["running_var"])
    assert relative_error(torch_out(module, X), model.forward(X)) <= 1e-5


def test_the_mode_is_carried_both_ways():
    model = every_kind(np.float64)
    assert to_torch(model.train()).training
    assert all(m.training for m in to_torch(model))
    assert not to_torch(model.eval()).training
    module = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Dropout(0.5))
    assert from_torch(module.train()).training
    assert not from_torch(module.eval()).training


def test_both_sides_hold_copies():
    model = every_kind(np.float64)
    module = to_torch(model)
    weight = model.layers[0].weight.copy()
    running_var = model.layers[1].buffers["running_var"].copy()
    with torch.no_grad():
        module[0].weight.add_(1.0)
        module[1].running_var.mul_(2.0)
    np.testing.assert_array_equal(model.layers[0].weight, weight)
    np.testing.assert_array_equal(model.layers[1].buffers["running_var"], running_var)
    torch_weight = module[0].weight.detach().clone()
    model.layers[0].weight = weight + 5.0
    assert torch.equal(module[0].weight.detach(), torch_weight)

    back = from_torch(module)
    copied = back.state_dict()
    with torch.no_grad():
        module[0].weight.mul_(3.0)
        module[0].bias.add_(1.0)
        module[1].running_mean.add_(1.0)
    for name, value in back.state_dict().items():
        np.testing.assert_array_equal(value, copied[name])


def pytorch_trained(dtype=torch.float32):
    """A PyTorch model after a few optimizer steps in training mode (so its running statistics
    and BatchNorm's gamma and beta are not their initial values), and its data."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(4, 10), torch.nn.BatchNorm1d(10), torch.nn.ReLU(), torch.nn.Dropout(0.2),
        torch.nn.Linear(10, 3), torch.nn.Softmax(dim=1)).to(dtype)
    X = torch.randn(32, 4, dtype=dtype) * 2 + 1
    y = torch.randint(0, 3, (32,))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    module.train()
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.nll_loss(torch.log(module(X)), y).backward()
        optimizer.step()
    return module, X


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_torch_of_a_pytorch_trained_model(dtype):
    module, X = pytorch_trained(dtype)
    assert int(module[1].num_batches_tracked) == 3
    model = from_torch(module)
    np_dtype = np.dtype(str(dtype).removeprefix("torch."))
    assert model.dtype == np_dtype and model.training
    assert np.abs(model.layers[1].buffers["running_mean"]).max() > 1e-2
    assert np.abs(model.layers[1].params["weight"].value - 1).max() > 1e-4
    module.eval()
    model.eval()
    X = X.numpy()
    assert relative_error(model.predict_proba(X), torch_out(module, X)) <= TOLERANCE[np_dtype.type]


def test_nested_sequentials_are_flattened_in_order():
    module = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh()),
        torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(4, 2)), torch.nn.Sigmoid()))
    model = from_torch(module.double())
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Tanh", "Dense",
                                                                "Sigmoid"]
    X = np.random.default_rng(0).normal(size=(6, 3))
    assert relative_error(model.forward(X), torch_out(module, X)) <= 1e-10


def test_a_single_module_is_a_one_layer_model():
    linear = torch.nn.Linear(3, 2, bias=False)
    model = from_torch(linear)
    assert len(model.layers) == 1 and not model.layers[0].use_bias
    assert model.dtype == np.float32
    np.testing.assert_array_equal(model.layers[0].weight, linear.weight.detach().numpy().T)


def test_a_module_without_parameters_is_float32():
    model = from_torch(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Softmax(dim=-1)))
    assert model.dtype == np.float32
    assert [type(layer).__name__ for layer in model.layers] == ["ReLU", "Softmax"]


def test_batchnorm_without_affine_has_gamma_one_and_beta_zero():
    norm = torch.nn.BatchNorm1d(3, affine=False, momentum=0.2, eps=1e-4).double()
    norm.train()
    norm(torch.randn(8, 3, dtype=torch.float64) * 3 + 2)
    model = from_torch(norm)
    layer = model.layers[0]
    np.testing.assert_array_equal(layer.params["weight"].value, np.ones(3))
    np.testing.assert_array_equal(layer.params["bias"].value, np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_mean"], norm.running_mean.numpy())
    assert (layer.momentum, layer.eps) == (0.2, 1e-4)
    norm.eval()
    X = np.random.default_rng(1).normal(size=(5, 3))
    assert relative_error(model.eval().forward(X), torch_out(norm, X)) <= 1e-10


def test_half_precision_needs_an_explicit_dtype():
    module = torch.nn.Sequential(torch.nn.Linear(3, 2)).half()
    with pytest.raises(ConversionError, match="dtype='float32'"):
        from_torch(module)
    model = from_torch(module, dtype="float32")
    assert model.dtype == np.float32
    np.testing.assert_array_equal(model.layers[0].weight,
                                  module[0].weight.detach().float().numpy().T)
    bfloat = torch.nn.Linear(2, 2).to(torch.bfloat16)
    with pytest.raises(ConversionError, match="float32"):
        from_torch(bfloat)
    assert from_torch(bfloat, dtype="float64").dtype == np.float64


@pytest.mark.filterwarnings("ignore::bprop.estimators.ConvergenceWarning")
def test_an_estimator_converts_to_its_network():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, 60)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y)
    module = to_torch(clf)
    network = clf.model_
    inputs = X.astype(network.dtype)
    with torch.no_grad():
        proba = torch.softmax(module(torch.from_numpy(inputs)), dim=1).numpy()
    assert proba.shape == (60, 3)
    assert relative_error(proba, clf.predict_proba(X)) <= TOLERANCE[network.dtype.type]


def test_an_unfitted_estimator_says_to_fit_first():
    with pytest.raises(ValueError, match="not fitted yet: call fit"):
        to_torch(MLPClassifier())


class Doubler(Layer):
    def _forward(self, x, training):
        return 2 * x

    def _backward(self, grad_out, need_input_grad):
        return 2 * grad_out


class MyDense(bp.Dense):
    pass


@pytest.mark.parametrize("layer", [Doubler(), MyDense(3, 3)])
def test_an_unsupported_bprop_layer_is_named(layer):
    model = bp.Sequential([bp.Dense(2, 3), layer, bp.ReLU()], seed=0)
    with pytest.raises(ConversionError) as caught:
        to_torch(model)
    message = str(caught.value)
    assert f"layer 1 ({layer!r})" in message
    assert "Dense, BatchNorm, ReLU" in message


class Custom(torch.nn.Module):
    def forward(self, x):
        return x


@pytest.mark.parametrize("bad, shown", [
    (torch.nn.GELU(), "GELU(approximate='none')"),
    (torch.nn.Conv1d(1, 1, 1), "Conv1d"),
    (Custom(), "Custom()"),
    (torch.nn.LogSoftmax(dim=1), "LogSoftmax"),
])
def test_an_unsupported_torch_module_is_named(bad, shown):
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), bad)
    with pytest.raises(ConversionError) as caught:
        from_torch(module)
    message = str(caught.value)
    assert f"module 2 ({shown}" in message
    assert "Linear, BatchNorm1d" in message


def test_a_nested_unsupported_module_is_named_by_its_path():
    module = torch.nn.Sequential(torch.nn.Linear(2, 2),
                                 torch.nn.Sequential(torch.nn.ReLU(), torch.nn.GELU()))
    with pytest.raises(ConversionError, match=r"module 1\.1 \(GELU"):
        from_torch(module)


def test_softmax_over_another_dim_is_refused():
    with pytest.raises(ConversionError, match="dim=0"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(dim=0)))
    # PyTorch's default dim (None) is row-wise on a 2-D input, as bprop's
    model = from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Softmax()))
    assert type(model.layers[-1]) is bp.Softmax


@pytest.mark.parametrize("norm", [torch.nn.BatchNorm1d(3, track_running_stats=False),
                                  torch.nn.BatchNorm1d(3, momentum=None)])
def test_batchnorm_without_exponential_running_statistics_is_refused(norm):
    with pytest.raises(ConversionError, match="running statistics.*momentum"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3), norm))


@pytest.mark.parametrize("thing", [np.ones((2, 2)), "model", None])
def test_from_torch_refuses_what_is_not_a_module(thing):
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch(thing)


def test_to_torch_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="Sequential"):
        to_torch(torch.nn.Linear(2, 2))


def test_a_missing_pytorch_says_what_to_install(hide_package):
    hide_package("torch")
    model = bp.Sequential([bp.Dense(2, 2)], seed=0)
    with pytest.raises(MissingPackageError, match="pip install torch"):
        to_torch(model)
    with pytest.raises(MissingPackageError, match="pip install torch"):
        from_torch(object())

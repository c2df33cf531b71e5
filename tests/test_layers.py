import numpy as np
import pytest

import bprop as bp

ACTIVATIONS = [bp.Identity(), bp.Sigmoid(), bp.Tanh(), bp.ReLU(), bp.LeakyReLU(0.1),
               bp.Softmax()]


def away_from_kinks(rng, shape):
    """Random inputs at least 0.05 from zero, where ReLU-type slopes jump."""
    x = rng.standard_normal(shape)
    return x + 0.05 * np.sign(x)


@pytest.mark.parametrize("layer", ACTIVATIONS, ids=lambda a: type(a).__name__)
def test_activation_gradients_match_finite_differences(layer, rng):
    report = bp.gradcheck(layer, away_from_kinks(rng, (5, 4)))
    assert report.passed(1e-6), report


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 3, 5), (4, 10, 2)])
def test_dense_gradients_match_finite_differences(bias, shape, rng):
    m, n_in, n_out = shape
    layer = bp.Dense(n_in, n_out, bias=bias).build(rng)
    report = bp.gradcheck(layer, rng.standard_normal((m, n_in)))
    assert report.passed(1e-6), report
    assert set(report.errors) == ({"weight", "bias", "input"} if bias else {"weight", "input"})


@pytest.mark.parametrize("layer, reference", [
    (bp.Identity(), lambda x: x),
    (bp.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (bp.Tanh(), np.tanh),
    (bp.ReLU(), lambda x: np.maximum(x, 0)),
    (bp.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (bp.Softmax(), lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)),
], ids=lambda v: type(v).__name__)
def test_activation_values(layer, reference, rng):
    x = rng.standard_normal((6, 3))
    np.testing.assert_allclose(layer.forward(x), reference(x), rtol=1e-12, atol=1e-15)


def test_dense_forward_is_affine_map(rng):
    layer = bp.Dense(3, 2).build(rng)
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(layer.forward(x), x @ layer.weight + layer.bias)


@pytest.mark.parametrize("layer", ACTIVATIONS + [bp.Dense(4, 4)], ids=lambda a: type(a).__name__)
def test_float32_stays_float32(layer, rng):
    layer.build(rng, "float32")
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())


def test_extreme_inputs_give_finite_outputs_without_warnings():
    x = np.array([[-1e300, -800.0, 0.0, 800.0, 1e300]])
    for layer in [bp.Sigmoid(), bp.Tanh(), bp.Softmax(), bp.ReLU(), bp.LeakyReLU()]:
        out = layer.forward(x)
        assert np.all(np.isfinite(out)), type(layer).__name__
        assert np.all(np.isfinite(layer.backward(np.ones_like(out))))
    np.testing.assert_array_equal(bp.Sigmoid().forward(np.array([[-1e4, 1e4]])), [[0.0, 1.0]])


def test_sigmoid_keeps_relative_precision_for_tiny_outputs():
    np.testing.assert_allclose(bp.Sigmoid().forward(np.array([[-40.0]])), [[np.exp(-40.0)]],
                               rtol=1e-12)


def test_backward_accumulates_until_zero_grad(rng):
    layer = bp.Dense(2, 2).build(rng)
    x, g = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    layer.forward(x)
    layer.backward(g)
    once = layer.params["weight"].grad.copy()
    layer.backward(g)
    np.testing.assert_allclose(layer.params["weight"].grad, 2 * once)
    layer.zero_grad()
    assert not layer.params["weight"].grad.any()


@pytest.mark.parametrize("init, check", [
    ("he", lambda w: abs(w.std() - np.sqrt(2 / 400)) < 0.005),
    ("lecun", lambda w: abs(w.std() - np.sqrt(1 / 400)) < 0.003),
    ("xavier", lambda w: np.abs(w).max() <= np.sqrt(6 / 600)
     and abs(w.std() - np.sqrt(2 / 600)) < 0.003),
    ("normal", lambda w: abs(w.std() - 0.01) < 0.001),
    ("uniform", lambda w: w.min() >= -1 and w.max() < 1 and abs(w.std() - 1 / np.sqrt(3)) < 0.02),
    ("zeros", lambda w: not w.any()),
])
def test_init_schemes(init, check):
    layer = bp.Dense(400, 200, init=init).build(0)
    assert check(layer.weight), init
    assert not layer.bias.any()


def test_weights_can_be_set_from_user_arrays_and_survive_model_building():
    weight = np.arange(6.0).reshape(3, 2)
    layer = bp.Dense(3, 2)
    layer.weight = weight
    layer.bias = [1.0, -1.0]
    model = bp.Sequential([layer, bp.Sigmoid()], seed=0, dtype="float64")
    np.testing.assert_array_equal(model.layers[0].weight, weight)
    np.testing.assert_array_equal(model.layers[0].bias, [1.0, -1.0])
    # Setting weights after packing writes into the model's buffer, where optimizers look.
    layer.weight = np.ones((3, 2))
    assert model.parameters()[0]._home is not None
    np.testing.assert_array_equal(model.parameters()[0].value, np.ones((3, 2)))


def test_bad_arguments_raise_clear_errors(rng):
    with pytest.raises(ValueError, match="unknown init 'glorot'"):
        bp.Dense(2, 2, init="glorot")
    with pytest.raises(ValueError, match="n_out must be a positive integer"):
        bp.Dense(2, 0)
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        bp.activation("relu6")
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*shape \(2, 2\)"):
        bp.Dense(3, 2).weight = np.zeros((2, 2))
    with pytest.raises(ValueError, match="bias=False"):
        bp.Dense(3, 2, bias=False).bias = np.zeros(2)
    with pytest.raises(RuntimeError, match="has no weights yet"):
        bp.Dense(3, 2).forward(np.zeros((1, 3)))
    layer = bp.Dense(3, 2).build(rng)
    with pytest.raises(ValueError, match=r"expects input of shape \(m, 3\)"):
        layer.forward(np.zeros((1, 4)))
    with pytest.raises(TypeError, match="no silent upcasting"):
        layer.forward(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        bp.Dense(3, 2).build(rng).backward(np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        bp.ReLU().backward(np.zeros((1, 2)))
    relu = bp.ReLU()
    relu.forward(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="grad_out has shape"):
        relu.backward(np.zeros((2, 3)))


def test_activation_by_name():
    assert isinstance(bp.activation("tanh"), bp.Tanh)
    assert isinstance(bp.activation("leaky_relu"), bp.LeakyReLU)


@pytest.mark.parametrize("layer", ACTIVATIONS + [bp.Dense(2, 2).build(0)],
                         ids=lambda a: type(a).__name__)
def test_layers_on_their_own_accept_lists_and_reject_bad_shapes(layer):
    assert layer.forward([[1, 2]]).dtype == np.float64   # ints and lists become floats
    with pytest.raises(ValueError, match="expects a 2-D input"):
        layer.forward(np.zeros(2))
    with pytest.raises(TypeError, match="must hold numbers"):
        layer.forward([["a", "b"]])

"""The layer contract: public passes that check, inner passes that compute, and a model that
checks once and then runs only the inner passes."""

import numpy as np
import pytest

import bprop as bp


def every_layer_kind():
    """One built layer of each kind, with the width it takes (None: any width)."""
    return [(bp.Dense(3, 2).build(0), 3), (bp.BatchNorm(3), 3), (bp.Dropout(0.5).build(0), None),
            (bp.Identity(), None), (bp.Sigmoid(), None), (bp.Tanh(), None), (bp.ReLU(), None),
            (bp.LeakyReLU(0.1), None), (bp.Softmax(), None)]


KINDS = [type(layer).__name__ for layer, _ in every_layer_kind()]


@pytest.fixture(params=range(len(KINDS)), ids=KINDS)
def layer_and_width(request):
    return every_layer_kind()[request.param]


def test_a_layer_on_its_own_refuses_input_that_is_not_2_d(layer_and_width):
    layer, width = layer_and_width
    with pytest.raises(ValueError, match=r"expects a 2-D input \(m, n_features\), got shape"):
        layer.forward(np.zeros(width or 3))
    with pytest.raises(TypeError, match="must hold numbers"):
        layer.forward([["a"] * (width or 3)])


def test_a_layer_on_its_own_refuses_the_wrong_width(layer_and_width):
    layer, width = layer_and_width
    if width is None:
        assert layer.forward(np.ones((2, 7)), training=True).shape == (2, 7)  # any width
        return
    with pytest.raises(ValueError, match=rf"expects input of shape \(m, {width}\), got \(2, 7\)"):
        layer.forward(np.ones((2, 7)))


def test_a_layer_on_its_own_refuses_input_of_another_dtype_than_its_parameters(layer_and_width):
    layer, width = layer_and_width
    x = np.ones((2, width or 3), np.float32)
    if not layer.params:
        assert layer.forward(x, training=True).dtype == np.float32  # follows its input
        return
    with pytest.raises(TypeError, match="holds float64 parameters but got float32 input"):
        layer.forward(x)


def test_a_layer_on_its_own_refuses_backward_before_forward(layer_and_width):
    layer, width = layer_and_width
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        layer.backward(np.ones((2, layer.n_outputs or 3)))


def test_a_layer_on_its_own_refuses_a_grad_out_of_the_wrong_shape(layer_and_width):
    layer, width = layer_and_width
    out = layer.forward(np.ones((4, width or 3)), training=True)
    with pytest.raises(ValueError, match=r"grad_out has shape \(4, 9\) but the forward output "
                                         rf"had shape \(4, {out.shape[1]}\)"):
        layer.backward(np.ones((4, 9)))
    with pytest.raises(ValueError, match=r"grad_out has shape \(3, "):
        layer.backward(np.ones((3, out.shape[1])))
    assert layer.backward(np.ones(out.shape)).shape == (4, width or 3)


def test_a_layer_refuses_a_grad_out_that_would_lose_precision():
    layer = bp.Dense(3, 2).build(0, dtype="float32")
    layer.forward(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="float32 parameters but got a float64 grad_out"):
        layer.backward(np.ones((2, 2)))
    # Whole numbers (a list) and float32 into float64 lose nothing, and are taken.
    assert layer.backward([[1, 2], [3, 4]]).dtype == np.float32
    wide = bp.Dense(3, 2).build(0)
    wide.forward(np.ones((2, 3)))
    assert wide.backward(np.ones((2, 2), np.float32)).dtype == np.float64


def test_an_unbuilt_layer_says_how_to_give_it_weights():
    with pytest.raises(RuntimeError, match="has no weights yet"):
        bp.Dense(3, 2).forward(np.zeros((1, 3)))
    with pytest.raises(RuntimeError, match="has no random generator"):
        bp.Dropout(0.5).forward(np.zeros((1, 3)), training=True)


@pytest.fixture
def public_calls(monkeypatch):
    """Counts the calls of every layer's public passes."""
    calls = []
    for name in ("forward", "backward"):
        original = getattr(bp.Layer, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            calls.append((type(self).__name__, _name))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(bp.Layer, name, counting)
    return calls


def test_a_model_checks_once_and_runs_only_the_inner_passes(public_calls, rng):
    model = bp.Sequential([bp.Dense(4, 8), bp.BatchNorm(8), bp.ReLU(), bp.Dropout(0.2),
                           bp.Dense(8, 3)], seed=0)
    X, y = rng.standard_normal((20, 4)), rng.integers(0, 3, 20)
    out = model.forward(X, training=True)
    model.backward(np.ones_like(out))
    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=5)
    model.predict(X)
    assert public_calls == []
    layer = bp.Dense(2, 2).build(0)  # (the counting itself works)
    layer.forward(np.ones((1, 2)))
    layer.backward(np.ones((1, 2)))
    assert public_calls == [("Dense", "forward"), ("Dense", "backward")]


def test_the_model_s_checks_stand_for_the_layers(rng):
    model = bp.Sequential([bp.Dense(4, 3), bp.ReLU()], seed=0)
    with pytest.raises(ValueError, match="x has 5 features per sample but the model's first"):
        model.forward(np.ones((2, 5)))
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        bp.Sequential([bp.Dense(4, 3)], seed=0).backward(np.ones((2, 3)))
    model.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"grad_out has shape \(2, 4\) but the model's last "
                                         r"output had shape \(2, 3\)"):
        model.backward(np.ones((2, 4)))
    # A layer of a model can still be run backward on its own after the model's forward pass.
    assert model.layers[1].backward(np.ones((2, 3))).shape == (2, 3)
    with pytest.raises(ValueError, match="needs at least 2 samples per batch while training"):
        bp.Sequential([bp.Dense(2, 2), bp.BatchNorm(2)]).forward(np.ones((1, 2)), training=True)


def test_the_unchecked_passes_compute_what_the_checked_ones_do(rng):
    model = bp.Sequential([bp.Dense(4, 6), bp.Tanh(), bp.Dense(6, 2)], seed=1, dtype="float64")
    X, grad = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    out = model.forward(X)
    model.zero_grad()
    grad_in = model.backward(grad)
    grads = [p.grad.copy() for p in model.parameters()]
    np.testing.assert_array_equal(model._forward(X, False), out)
    model.zero_grad()
    np.testing.assert_array_equal(model._backward(grad, True), grad_in)
    for param, expected in zip(model.parameters(), grads, strict=True):
        np.testing.assert_array_equal(param.grad, expected)
    assert model._backward(grad, False) is None


class Doubled(bp.Dense):
    """Builds on Dense's public passes, as a subclass written before the inner passes would."""

    calls = 0

    def forward(self, x, training=False):
        type(self).calls += 1
        return 2 * super().forward(x, training)

    def backward(self, grad_out, need_input_grad=True):
        return super().backward(2 * grad_out, need_input_grad)


class Negated(bp.Identity):
    """Replaces the public passes altogether."""

    def forward(self, x, training=False):
        return -x

    def backward(self, grad_out):  # (the old habit: no need_input_grad)
        return -grad_out


def test_a_subclass_s_own_public_passes_are_what_a_model_runs(rng):
    Doubled.calls = 0
    model = bp.Sequential([Doubled(3, 2), Negated()], seed=0, dtype="float64")
    X, grad = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    W, b = model.layers[0].weight, model.layers[0].bias
    np.testing.assert_allclose(model.forward(X), -2 * (X @ W + b))
    assert Doubled.calls == 1  # once, although Doubled.forward goes through Dense's
    model.zero_grad()
    grad_in = model.backward(grad)
    np.testing.assert_allclose(model.layers[0].params["weight"].grad, X.T @ (-2 * grad))
    np.testing.assert_allclose(grad_in, (-2 * grad) @ W.T)
    assert model.backward(grad, need_input_grad=False) is None
    # On its own, too, each pass runs once.
    layer = Doubled(3, 2).build(0)
    Doubled.calls = 0
    layer.zero_grad()
    np.testing.assert_allclose(layer.forward(X), 2 * (X @ layer.weight + layer.bias))
    layer.backward(grad)
    np.testing.assert_allclose(layer.params["bias"].grad, 2 * grad.sum(axis=0))
    assert Doubled.calls == 1


def test_a_new_layer_writes_only_its_inner_passes(rng):
    class Square(bp.Layer):
        def _forward(self, x, training):
            self._x = x
            return x * x

        def _backward(self, grad_out, need_input_grad):
            return 2 * self._x * grad_out

    layer = Square()
    assert bp.gradcheck(layer, rng.standard_normal((3, 4))).passed(1e-6)
    with pytest.raises(ValueError, match="expects a 2-D input"):
        layer.forward(np.ones(3))
    model = bp.Sequential([bp.Dense(2, 3), Square()], seed=0)
    assert model.forward(np.ones((1, 2))).min() >= 0
    with pytest.raises(NotImplementedError, match="Unfinished does not define _forward"):
        type("Unfinished", (bp.Layer,), {})().forward(np.ones((1, 1)))


def test_a_dense_layer_pickled_before_its_weights_were_drawn_is_still_drawn_when_built():
    layer = bp.Dense.__new__(bp.Dense)
    state = bp.Dense(3, 2).__dict__.copy()
    del state["_initialised"]
    layer.__setstate__({**state, "_weight_ready": False})
    with pytest.raises(RuntimeError, match="has no weights yet"):
        layer.forward(np.ones((1, 3)))
    assert layer.build(0).weight.any()

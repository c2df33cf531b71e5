"""Hand-written backward passes against the autograd graph, for every layer and loss."""

import zlib

import numpy as np
import pytest

import bprop as bp
from bprop.autograd import compare_gradients

ACTIVATIONS = [bp.Identity, bp.Sigmoid, bp.Tanh, bp.ReLU, lambda: bp.LeakyReLU(0.1), bp.Softmax]
LOSSES = {
    "mse": (bp.MSE(), "regression"),
    "mse-sum": (bp.MSE(reduction="sum"), "regression"),
    "bce": (bp.BinaryCrossEntropy(), "binary"),
    "bce-logits": (bp.BinaryCrossEntropy(from_logits=True), "binary"),
    "bce-logits-sum": (bp.BinaryCrossEntropy(from_logits=True, reduction="sum"), "binary"),
    "softmax-ce": (bp.SoftmaxCrossEntropy(), "multiclass"),
    "softmax-ce-sum": (bp.SoftmaxCrossEntropy(reduction="sum"), "multiclass"),
}


def targets(task, rng, m, n_out, one_hot=False):
    if task == "regression":
        return rng.standard_normal((m, n_out))
    if task == "binary":
        return rng.integers(0, 2, (m, n_out)).astype(float)
    labels = rng.integers(0, n_out, m)
    return np.eye(n_out)[labels] if one_hot else labels


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: getattr(a, "__name__", "Leaky"))
@pytest.mark.parametrize("loss_name", LOSSES)
def test_every_activation_with_every_loss_agrees(activation, loss_name):
    loss, task = LOSSES[loss_name]
    name = getattr(activation, "__name__", "LeakyReLU")
    rng = np.random.default_rng(zlib.crc32(f"{loss_name}-{name}".encode()))
    m, n_in, hidden, n_out = rng.integers(2, 7, 4)
    layers = [bp.Dense(n_in, hidden), activation(), bp.Dense(hidden, n_out)]
    if task == "binary" and not loss.from_logits:
        layers.append(bp.Sigmoid())
    model = bp.Sequential(layers, seed=int(rng.integers(1000)))
    X = rng.standard_normal((m, n_in))
    errors = compare_gradients(model, X, targets(task, rng, m, n_out), loss)
    assert all(e < 1e-10 for e in errors.values()), errors
    assert len(errors) == len(model.parameters()) + 2  # parameters, input and the loss value


@pytest.mark.parametrize("seed", range(40))
def test_relu_networks_whose_logits_are_exactly_zero(seed):
    # Zero biases and dead ReLUs give logits of exactly 0, where a loss written with kinked
    # pieces (max, |z|) would pick the wrong one-sided slope.
    rng = np.random.default_rng(seed)
    m, n_in, hidden, n_out = rng.integers(2, 7, 4)
    model = bp.Sequential([bp.Dense(n_in, hidden), bp.ReLU(), bp.Dense(hidden, n_out)],
                          seed=int(rng.integers(1000)))
    X = rng.standard_normal((m, n_in))
    errors = compare_gradients(model, X, targets("binary", rng, m, n_out),
                               bp.BinaryCrossEntropy(from_logits=True))
    assert all(e < 1e-10 for e in errors.values()), errors


def test_one_hot_targets_and_a_deep_model_with_every_layer_type():
    rng = np.random.default_rng(7)
    model = bp.Sequential([
        bp.Dense(5, 8), bp.BatchNorm(8), bp.Tanh(), bp.Dropout(0.3),
        bp.Dense(8, 6, bias=False), bp.LeakyReLU(0.05), bp.BatchNorm(6), bp.Sigmoid(),
        bp.Dense(6, 6), bp.ReLU(), bp.Identity(), bp.Dense(6, 4), bp.Softmax(),
        bp.Dense(4, 3),
    ], seed=3)
    X = rng.standard_normal((9, 5))
    y = targets("multiclass", rng, 9, 3, one_hot=True)
    errors = compare_gradients(model, X, y, "softmax_cross_entropy")
    assert all(e < 1e-10 for e in errors.values()), errors
    # In inference mode: Dropout off, BatchNorm on its running statistics.
    model.fit(X, y.argmax(axis=1), loss="cross_entropy", epochs=2, batch_size=3)
    errors = compare_gradients(model, X, y, "softmax_cross_entropy", training=False)
    assert all(e < 1e-10 for e in errors.values()), errors


def test_the_bridge_notices_a_wrong_backward_pass():
    class WrongSigmoid(bp.Sigmoid):
        def backward(self, grad_out):
            return grad_out * self._out  # forgets the (1 - out) factor

    model = bp.Sequential([bp.Dense(3, 4), WrongSigmoid(), bp.Dense(4, 1)], seed=0)
    rng = np.random.default_rng(0)
    errors = compare_gradients(model, rng.standard_normal((5, 3)), rng.standard_normal(5), "mse")
    assert errors["2.weight"] < 1e-10 and errors["0.weight"] > 1e-2


def test_unknown_layers_are_refused():
    class Custom(bp.Identity):
        pass

    from bprop.autograd.bridge import layer_forward
    with pytest.raises(TypeError, match="does not know the layer"):
        layer_forward(object(), None, {}, True)
    model = bp.Sequential([bp.Dense(2, 2), Custom()], seed=0)
    assert all(e < 1e-10 for e in compare_gradients(model, np.ones((2, 2)), np.ones((2, 2)),
                                                    "mse").values())


def test_a_subclass_with_its_own_forward_is_refused_not_misjudged():
    class Double(bp.Identity):
        def forward(self, x, training=False):
            self._out = 2 * x
            return self._out

        def backward(self, grad_out):
            return 2 * grad_out

    model = bp.Sequential([bp.Dense(2, 2), Double()], seed=0)
    with pytest.raises(TypeError, match="does not know the layer Double"):
        compare_gradients(model, np.ones((2, 2)), np.ones((2, 2)), "mse")


def test_saturated_probabilities_agree_and_nan_never_passes():
    model = bp.Sequential([bp.Dense(2, 1), bp.Sigmoid()], seed=0)
    model.layers[0].weight = [[50.0], [50.0]]
    errors = compare_gradients(model, np.ones((3, 2)), [0.0, 1.0, 0.0], bp.BinaryCrossEntropy())
    assert all(e < 1e-10 for e in errors.values()), errors
    from bprop.tools.gradcheck import relative_error
    assert relative_error(np.array([np.nan, 1.0]), np.array([1.0, 1.0])) == float("inf")


def test_dropout_masks_must_come_from_a_forward_pass_on_the_same_data():
    from bprop.autograd import autograd_gradients

    model = bp.Sequential([bp.Dense(2, 4), bp.Dropout(0.5), bp.Dense(4, 1)], seed=0)
    with pytest.raises(ValueError, match="needs the masks"):
        autograd_gradients(model, np.ones((3, 2)), np.ones(3), "mse")
    _, grads = autograd_gradients(model, np.ones((3, 2)), np.ones(3), "mse", training=False)
    assert grads["0.weight"].shape == (2, 4)

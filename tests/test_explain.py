"""explain's finite-difference checks near a ReLU kink: a correct network is not flagged, the
elements whose difference crossed the kink are counted, and a real bug is still caught."""

import numpy as np

import bprop as bp
from bprop.tools.explain import explain

X = np.array([[0.5, -0.2], [0.1, 0.9], [-0.7, 0.3]])
Y = np.array([[0.3], [0.8], [-0.1]])
H = 1e-5  # explain's default step


def relu_net_on_a_kink():
    """A correct 2-4-1 ReLU network whose first hidden unit's input is 3e-6 (less than the step
    away from its kink) on the first row."""
    model = bp.mlp([2, 4, 1], "relu", seed=0, dtype="float64")
    dense = model.layers[0]
    z = X @ dense.weight + dense.bias
    dense.params["bias"].value[0] -= z[0, 0] - 3e-6
    return model


def step(report, name):
    return next(s for s in report.backward if s.name == name)


def test_the_network_really_sits_on_a_kink():
    # Without leaving elements out, the central difference along the first bias is off: one of
    # its two evaluations turns the unit off.
    model = relu_net_on_a_kink()
    bias = model.layers[0].params["bias"].value
    loss = bp.MSE()

    def loss_at(shift):
        bias[0] += shift
        value = loss.forward(model.forward(X, training=True), Y)
        bias[0] -= shift
        return value

    numeric = (loss_at(H) - loss_at(-H)) / (2 * H)
    exact = step(explain(model, X, Y, "mse"), "db1").value[0]
    assert abs(numeric - exact) > 0.1 * abs(exact)


def test_a_correct_relu_network_near_a_kink_passes_and_says_what_it_left_out():
    report = explain(relu_net_on_a_kink(), X, Y, "mse")
    assert report.all_checked()
    assert step(report, "db1").at_kinks == 1  # the unit's bias moves z1[0, 0] by +-h
    assert step(report, "dW1").at_kinks == 1  # only W1[0, 0] moves it by more than 3e-6
    assert step(report, "delta1").at_kinks == 1
    assert step(report, "dW2").at_kinks == 0  # after the last ReLU: nothing crosses
    text = report.to_text()
    assert "1 left out at ReLU kinks" in text and "MISMATCH" not in text
    assert "left out at ReLU kinks" in report.to_markdown() and "left out" in report.to_html()


def test_away_from_kinks_nothing_is_left_out():
    report = explain(bp.mlp([2, 4, 1], "relu", seed=0, dtype="float64"), X, Y, "mse")
    assert report.all_checked() and all(s.at_kinks == 0 for s in report.backward)
    assert "left out" not in report.to_text()


class SigmoidWithoutOneMinus(bp.Sigmoid):
    """A sigmoid whose backward forgets the (1 - s) factor."""

    def _backward(self, grad_out, need_input_grad):
        return grad_out * self._out


def test_a_wrong_backward_is_still_caught_beside_a_kink():
    model = relu_net_on_a_kink()
    model.layers.append(SigmoidWithoutOneMinus())
    report = explain(model, X, Y, "mse")
    assert not report.all_checked()
    assert "MISMATCH" in report.to_text()
    # The mismatch is in the gradients below the broken layer, not an artefact of the kink.
    assert step(report, "db2").check > 1e-2 and step(report, "db2").at_kinks == 0

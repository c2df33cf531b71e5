import numpy as np
import pytest

import bprop as bp


class WrongTanh(bp.Tanh):
    """A deliberately broken backward pass (forgets to square): gradcheck must notice."""

    def backward(self, grad_out):
        return grad_out * (1 - self._out)


class WrongDense(bp.Dense):
    """Forgets to add the bias gradient."""

    def backward(self, grad_out):
        self.params["weight"].grad += self._x.T @ grad_out
        return grad_out @ self.weight.T


def test_gradcheck_catches_a_wrong_activation_gradient(rng):
    report = bp.gradcheck(WrongTanh(), rng.standard_normal((4, 3)))
    assert not report.passed(1e-6)
    assert report["input"] > 1e-2


def test_gradcheck_catches_a_missing_parameter_gradient(rng):
    report = bp.gradcheck(WrongDense(3, 2).build(0), rng.standard_normal((4, 3)))
    assert report["weight"] < 1e-6 and report["bias"] == pytest.approx(1.0)


def test_gradcheck_catches_a_wrong_gradient_inside_a_model(rng):
    model = bp.Sequential([bp.Dense(2, 3), WrongTanh(), bp.Dense(3, 1)], seed=0)
    report = bp.gradcheck(model, rng.standard_normal((5, 2)), rng.standard_normal(5), loss="mse")
    assert report["2.weight"] < 1e-6  # above the broken layer all is well
    assert report["0.weight"] > 1e-3 and report["0.bias"] > 1e-3


def test_gradcheck_leaves_the_original_untouched_and_reports(rng):
    model = bp.Sequential([bp.Dense(2, 2)], seed=0)
    before = model.parameters()[0].value.copy()
    report = bp.gradcheck(model, rng.standard_normal((3, 2)), rng.standard_normal((3, 2)),
                          loss="mse")
    np.testing.assert_array_equal(model.parameters()[0].value, before)
    assert model.dtype == np.float32
    text = str(report)
    assert "0.weight" in text and "worst relative error" in text


def test_relative_error_definition():
    from bprop.tools.gradcheck import relative_error
    assert relative_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert relative_error(np.array([2.0, 0.0]), np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    # A zero gradient with numerical noise far below the scale is not an error ...
    assert relative_error(np.array([1.0, 0.0]), np.array([1.0, 1e-12])) < 1e-11
    # ... but a small element that is 50% wrong is not hidden by a large correct one ...
    assert relative_error(np.array([100.0, 0.5]), np.array([100.0, 0.25])) == pytest.approx(0.5)
    # ... and below 1e-3 of the scale, where finite differences lose their relative precision,
    # an error still counts against the scale.
    assert relative_error(np.array([100.0, 0.02]), np.array([100.0, 0.01])) == pytest.approx(1e-4)


class HalfWrongDense(bp.Dense):
    """Gets one small weight-gradient element 50% wrong."""

    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        self.params["weight"].grad[0, 0] *= 1.5
        return grad_in


def test_gradcheck_catches_one_wrong_element_among_large_ones(rng):
    layer = HalfWrongDense(2, 2).build(0)
    x = np.array([[1.0, 50.0], [2.0, 40.0]])
    report = bp.gradcheck(layer, x)
    assert report["weight"] > 0.3 and report["bias"] < 1e-6


def test_gradcheck_usage_errors():
    with pytest.raises(ValueError, match="needs loss="):
        bp.gradcheck(bp.Sequential([bp.Dense(1, 1)]), np.zeros((1, 1)), np.zeros(1))
    with pytest.raises(TypeError, match="takes a Layer, Loss or Sequential"):
        bp.gradcheck(lambda x: x, np.zeros(1))

import numpy as np
import pytest

import bprop as bp


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_value_and_gradient(reduction, rng):
    pred, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    loss = bp.MSE(reduction=reduction)
    squared = (pred - target) ** 2
    expected = squared.mean() if reduction == "mean" else squared.sum()
    assert loss.forward(pred, target) == pytest.approx(expected, rel=1e-12)
    assert bp.gradcheck(loss, pred, target).passed(1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_cross_entropy_on_probabilities(reduction, rng):
    p = rng.uniform(0.05, 0.95, (6, 2))
    y = rng.integers(0, 2, (6, 2)).astype(float)
    terms = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    expected = terms.mean() if reduction == "mean" else terms.sum()
    loss = bp.BinaryCrossEntropy(reduction=reduction)
    assert loss.forward(p, y) == pytest.approx(expected, rel=1e-12)
    assert bp.gradcheck(loss, p, y).passed(1e-6)


def test_binary_cross_entropy_from_logits_equals_sigmoid_then_bce(rng):
    z = rng.standard_normal((8, 1)) * 3
    y = rng.integers(0, 2, 8).astype(float)
    p = 1 / (1 + np.exp(-z))
    with_logits = bp.BinaryCrossEntropy(from_logits=True)
    assert with_logits.forward(z, y) == pytest.approx(bp.BinaryCrossEntropy().forward(p, y),
                                                      rel=1e-10)
    np.testing.assert_allclose(with_logits.backward(), (p - y[:, None]) / 8, rtol=1e-12)
    assert bp.gradcheck(with_logits, z, y).passed(1e-6)


@pytest.mark.parametrize("target_kind", ["labels", "one_hot", "soft"])
def test_softmax_cross_entropy(target_kind, rng):
    logits = rng.standard_normal((7, 4)) * 2
    labels = rng.integers(0, 4, 7)
    one_hot = np.eye(4)[labels]
    target = {"labels": labels, "one_hot": one_hot,
              "soft": rng.dirichlet(np.ones(4), 7)}[target_kind]
    dense_target = target if target.ndim == 2 else one_hot
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = bp.SoftmaxCrossEntropy()
    assert loss.forward(logits, target) == pytest.approx(-(dense_target * log_probs).sum() / 7,
                                                         rel=1e-12)
    assert bp.gradcheck(loss, logits, target).passed(1e-6)


def test_softmax_cross_entropy_delta_is_prediction_minus_target():
    logits = np.array([[2.0, 1.0, 0.1]])
    loss = bp.SoftmaxCrossEntropy()
    loss.forward(logits, [0])
    probs = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(loss.backward(), probs - [[1, 0, 0]])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
@pytest.mark.parametrize("target_kind", ["labels", "soft"])
@pytest.mark.parametrize("n_samples", [1, 128])
def test_softmax_cross_entropy_equals_the_row_by_row_formula(dtype, rtol, target_kind,
                                                             n_samples, rng):
    # The loss works on the transpose, so its sums run in another order than the textbook's
    # row by row: equal to rounding, not bit for bit.
    logits = (rng.standard_normal((n_samples, 10)) * 4).astype(dtype)
    labels = rng.integers(0, 10, n_samples)
    target = labels if target_kind == "labels" else rng.dirichlet(np.ones(10), n_samples)
    dense = np.eye(10)[labels] if target_kind == "labels" else target
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected_loss = -(dense * log_probs).sum() / n_samples
    expected_grad = (np.exp(log_probs) - dense) / n_samples
    loss = bp.SoftmaxCrossEntropy()
    assert loss.forward(logits, target) == pytest.approx(expected_loss, rel=rtol)
    grad = loss.backward()
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=rtol / n_samples / 100)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("target_kind", ["labels", "one_hot"])
def test_softmax_cross_entropy_leaves_the_logits_alone(order, target_kind, rng):
    # It works on a transposed copy; a Fortran-ordered input's transpose is no copy.
    logits = np.asarray(rng.standard_normal((6, 3)), order=order)
    kept = logits.copy()
    labels = np.array([0, 1, 2, 2, 1, 0])
    target = labels if target_kind == "labels" else np.eye(3)[labels]
    loss = bp.SoftmaxCrossEntropy()
    loss.forward(logits, target)
    np.testing.assert_array_equal(logits, kept)
    grad = loss.backward()
    assert grad.shape == (6, 3) and grad.flags.c_contiguous
    probs = np.exp(kept) / np.exp(kept).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad, (probs - np.eye(3)[labels]) / 6, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("loss, pred, target", [
    (bp.BinaryCrossEntropy(), np.array([[0.0], [1.0], [0.0], [1.0]]), [0, 1, 1, 0]),
    (bp.BinaryCrossEntropy(from_logits=True), np.array([[-1e300], [1e300], [800.0], [-800.0]]),
     [0, 1, 0, 1]),
    (bp.SoftmaxCrossEntropy(), np.array([[1e300, -1e300], [-800.0, 800.0]]), [1, 0]),
    (bp.MSE(), np.array([[1e150], [-1e150]]), [0, 0]),
])
def test_no_overflow_or_log_zero_for_finite_inputs(loss, pred, target):
    value = loss.forward(pred, target)
    assert np.isfinite(value) and value > 0
    assert np.all(np.isfinite(loss.backward()))


def test_perfect_predictions_give_zero_loss():
    assert bp.BinaryCrossEntropy(from_logits=True).forward(np.array([[50.0], [-50.0]]),
                                                           [1, 0]) < 1e-20
    assert bp.SoftmaxCrossEntropy().forward(np.array([[100.0, 0.0]]), [0]) < 1e-40


def test_float32_losses_stay_float32(rng):
    pred = rng.standard_normal((4, 3)).astype(np.float32)
    for loss, target in [(bp.MSE(), np.zeros((4, 3))), (bp.SoftmaxCrossEntropy(), [0, 1, 2, 0]),
                         (bp.BinaryCrossEntropy(from_logits=True), np.ones((4, 3)))]:
        loss.forward(pred, target)
        assert loss.backward().dtype == np.float32, loss


def test_loss_input_errors():
    with pytest.raises(ValueError, match=r"target has shape \(3, 2\).*\(3, 1\)"):
        bp.MSE().forward(np.zeros((3, 1)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="must lie in 0..2.*from 0 to 3"):
        bp.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), [0, 3])
    with pytest.raises(ValueError, match="whole numbers"):
        bp.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), [0.5, 1])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        bp.BinaryCrossEntropy().forward(np.full((2, 1), 0.5), [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        bp.MSE().forward(np.zeros((2, 1)), [0, np.nan])
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        bp.MSE(reduction="avg")
    with pytest.raises(RuntimeError, match="before forward"):
        bp.MSE().backward()
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        bp.Sequential([bp.Dense(1, 1)]).fit([[0.0]], [0.0], loss="hinge")


def test_one_dimensional_target_is_only_accepted_for_one_output():
    loss = bp.MSE()
    assert loss.forward(np.array([[1.0], [2.0]]), [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="must match"):
        loss.forward(np.zeros((2, 2)), [1.0, 2.0])


def test_probability_losses_refuse_values_outside_zero_one():
    with pytest.raises(ValueError, match="add a Sigmoid"):
        bp.BinaryCrossEntropy().forward(np.array([[3.0], [-2.0]]), [1, 0])


def test_soft_targets_must_sum_to_one():
    with pytest.raises(ValueError, match="row 1 is"):
        bp.SoftmaxCrossEntropy().forward(np.zeros((2, 2)), [[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="non-negative"):
        bp.SoftmaxCrossEntropy().forward(np.zeros((1, 2)), [[2.0, -1.0]])


def test_empty_predictions_are_refused():
    with pytest.raises(ValueError, match="empty"):
        bp.MSE().forward(np.zeros((0, 1)), np.zeros(0))


@pytest.mark.parametrize("loss", [bp.MSE(), bp.BinaryCrossEntropy(from_logits=True),
                                  bp.SoftmaxCrossEntropy()])
def test_complex_predictions_or_targets_are_a_type_error(loss):
    pred, target = np.zeros((3, 2)), np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(TypeError, match="^pred holds complex numbers"):
        loss.forward(pred + 1j, target)
    with pytest.raises(TypeError, match="^target holds complex numbers"):
        loss.forward(pred, target + 0j)

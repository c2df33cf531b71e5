import numpy as np
import pytest

import bprop as bp


def penalised_objective(model, loss, penalty, X, y):
    return loss.forward(model.forward(X, training=True), y) + penalty.forward(model.parameters())


@pytest.mark.parametrize("penalty", [bp.L2(0.3), bp.L1(0.2), bp.L1L2(l1=0.1, l2=0.2)],
                         ids=repr)
def test_penalty_gradient_matches_finite_differences_and_spares_biases(penalty, rng):
    model = bp.Sequential([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 1)], seed=0, dtype="float64")
    X, y = rng.standard_normal((5, 3)), rng.standard_normal(5)
    loss = bp.MSE()
    loss.forward(model.forward(X, training=True), y)
    model.zero_grad()
    model.backward(loss.backward())
    penalty.backward(model.parameters())
    h = 1e-6
    for name, param in model.named_parameters():
        numeric = np.zeros_like(param.value)
        for index in np.ndindex(param.shape):
            original = param.value[index]
            param.value[index] = original + h
            plus = penalised_objective(model, loss, penalty, X, y)
            param.value[index] = original - h
            minus = penalised_objective(model, loss, penalty, X, y)
            param.value[index] = original
            numeric[index] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(param.grad, numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    weights = [p.value for p in model.parameters() if p.decay]
    assert len(weights) == 2
    expected = sum(penalty_value(penalty, w) for w in weights)
    assert penalty.forward(model.parameters()) == pytest.approx(expected)


def penalty_value(penalty, w):
    if isinstance(penalty, bp.L2):
        return 0.5 * penalty.strength * (w**2).sum()
    if isinstance(penalty, bp.L1):
        return penalty.strength * np.abs(w).sum()
    return penalty_value(penalty.l1, w) + penalty_value(penalty.l2, w)


def test_fit_reports_the_penalised_loss_and_l2_equals_sgd_weight_decay():
    X = np.linspace(-1, 1, 12).reshape(-1, 2)
    y = X.sum(axis=1)

    def new_model():
        return bp.Sequential([bp.Dense(2, 3), bp.Tanh(), bp.Dense(3, 1)], seed=0,
                             dtype="float64")

    def train(regularizer=None, weight_decay=0.0):
        model = new_model()
        history = model.fit(X, y, loss="mse", optimizer=bp.SGD(lr=0.1, weight_decay=weight_decay),
                            regularizer=regularizer, epochs=5, batch_size=None, shuffle=False)
        return model, history

    with_penalty, history = train(regularizer=bp.L2(0.5))
    with_decay, _ = train(weight_decay=0.5)
    _, plain_history = train()
    for a, b in zip(with_penalty.parameters(), with_decay.parameters(), strict=True):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-12)
    initial = new_model()
    data_loss = bp.MSE().forward(initial.forward(X), y)
    assert plain_history["loss"][0] == pytest.approx(data_loss, rel=1e-12)
    assert history["loss"][0] == pytest.approx(
        data_loss + bp.L2(0.5).forward(initial.parameters()), rel=1e-12)


def test_clipping_in_fit_rewrites_the_gradient_exactly():
    X, y = np.array([[1.0], [2.0]]), np.array([100.0, 200.0])

    def gradient_and_step(**kwargs):
        model = bp.Sequential([bp.Dense(1, 1)], seed=0, dtype="float64")
        probe = model.astype("float64")
        loss = bp.MSE()
        loss.forward(probe.forward(X), y)
        probe.zero_grad()
        probe.backward(loss.backward())
        raw = np.concatenate([p.grad.ravel() for p in probe.parameters()])
        before = np.concatenate([p.value.ravel() for p in model.parameters()])
        model.fit(X, y, loss="mse", optimizer=bp.SGD(lr=0.1), batch_size=None, **kwargs)
        after = np.concatenate([p.value.ravel() for p in model.parameters()])
        return raw, (before - after) / 0.1   # the gradient SGD actually used

    raw, used = gradient_and_step(clip_value=0.5)
    assert np.abs(raw).min() > 0.5
    np.testing.assert_allclose(used, np.sign(raw) * 0.5)
    raw, used = gradient_and_step(clip_norm=1.0)
    np.testing.assert_allclose(used, raw / np.linalg.norm(raw))  # norm 1, direction kept
    raw, used = gradient_and_step(clip_norm=1e6)
    np.testing.assert_allclose(used, raw)                         # under the limit: untouched


def test_clip_grad_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    params = [bp.Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad[...] = g
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())
    norm = bp.clip_grad_norm(params, 1.5)
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, 1.5)
    assert norm == pytest.approx(float(torch_norm), rel=1e-12)
    for p, t in zip(params, tensors, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-6)


def test_clip_grad_norm_survives_float32_overflow_of_the_sum_of_squares():
    p = bp.Parameter(np.zeros(2, dtype=np.float32))
    p.grad[:] = [3e25, 4e25]
    assert bp.clip_grad_norm([p], 1.0) == pytest.approx(5e25, rel=1e-5)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-5)


def test_penalty_and_clipping_argument_errors():
    with pytest.raises(ValueError, match="strength must be a finite number >= 0"):
        bp.L2(-1.0)
    model = bp.Sequential([bp.Dense(1, 1)])
    with pytest.raises(TypeError, match="regularizer must be L1, L2 or L1L2"):
        model.fit([[0.0]], [0.0], loss="mse", regularizer=0.1)
    with pytest.raises(ValueError, match="clip_norm must be a finite number > 0"):
        model.fit([[0.0]], [0.0], loss="mse", clip_norm=0)

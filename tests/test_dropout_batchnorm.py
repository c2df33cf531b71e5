import numpy as np
import pytest

import bprop as bp


def test_dropout_applies_its_mask_scales_and_reuses_it_backward():
    layer = bp.Dropout(0.3).build(0)
    x = np.ones((200, 50))
    out = layer.forward(x, training=True)
    dropped = out == 0
    assert 0.27 < dropped.mean() < 0.33
    np.testing.assert_allclose(out[~dropped], 1 / 0.7)
    grad = np.arange(x.size, dtype=float).reshape(x.shape)
    np.testing.assert_array_equal(layer.backward(grad), grad * out)
    np.testing.assert_allclose(out.mean(), 1.0, atol=0.02)  # inverted: expectation kept


def test_dropout_is_identity_at_inference_and_p_zero():
    layer = bp.Dropout(0.5).build(0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    np.testing.assert_array_equal(bp.Dropout(0.0).build(0).forward(x, training=True), x)


def test_dropout_masks_come_from_the_models_seed():
    def masks(seed):
        model = bp.Sequential([bp.Dense(3, 8), bp.Dropout(0.5)], seed=seed, dtype="float64")
        return [model.forward(np.ones((2, 3)), training=True) != 0 for _ in range(2)]

    first, again, other = masks(5), masks(5), masks(6)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])  # a fresh mask every pass
    assert not np.array_equal(first[0], other[0])


def test_dropout_and_batchnorm_pass_gradcheck(rng):
    x = rng.standard_normal((6, 4))
    assert bp.gradcheck(bp.Dropout(0.4).build(1), x).passed(1e-6)
    report = bp.gradcheck(bp.BatchNorm(4), x * 3 + 1)
    assert report.passed(1e-6), report
    model = bp.Sequential([bp.Dense(4, 6), bp.BatchNorm(6), bp.ReLU(), bp.Dropout(0.3),
                           bp.Dense(6, 3)], seed=2)
    report = bp.gradcheck(model, x, rng.integers(0, 3, 6), loss="cross_entropy")
    assert report.passed(1e-6), report
    assert {"1.weight", "1.bias"} <= set(report.errors)


def test_batchnorm_eval_mode_gradient(rng):
    layer = bp.BatchNorm(3)
    layer.forward(rng.standard_normal((8, 3)) * 2 + 1, training=True)
    assert bp.gradcheck(layer, rng.standard_normal((5, 3)), training=False).passed(1e-6)


def test_batchnorm_training_output_is_normalised_per_feature(rng):
    layer = bp.BatchNorm(3)
    layer.params["weight"].value = [1.0, 2.0, 3.0]
    layer.params["bias"].value = [0.0, -1.0, 5.0]
    out = layer.forward(rng.standard_normal((64, 3)) * [1, 10, 100] + 7, training=True)
    np.testing.assert_allclose(out.mean(axis=0), [0.0, -1.0, 5.0], atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), [1.0, 2.0, 3.0], rtol=1e-3)


def test_batchnorm_inference_uses_running_statistics_not_the_batch(rng):
    layer = bp.BatchNorm(2, momentum=0.5)
    batches = [rng.standard_normal((10, 2)) * 3 + 4 for _ in range(3)]
    mean, var = np.zeros(2), np.ones(2)
    for batch in batches:
        layer.forward(batch, training=True)
        mean = 0.5 * mean + 0.5 * batch.mean(axis=0)
        var = 0.5 * var + 0.5 * batch.var(axis=0, ddof=1)
    np.testing.assert_allclose(layer.buffers["running_mean"], mean)
    np.testing.assert_allclose(layer.buffers["running_var"], var)
    x = rng.standard_normal((1, 2))  # a single sample: its own batch statistics are useless
    np.testing.assert_allclose(layer.forward(x), (x - mean) / np.sqrt(var + 1e-5))
    frozen = layer.buffers["running_mean"].copy()
    layer.forward(rng.standard_normal((5, 2)))
    np.testing.assert_array_equal(layer.buffers["running_mean"], frozen)  # no leak at inference


def test_batchnorm_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    ours = bp.BatchNorm(3, momentum=0.2, eps=1e-3)
    theirs = torch.nn.BatchNorm1d(3, momentum=0.2, eps=1e-3, dtype=torch.float64)
    for _ in range(3):
        x = rng.standard_normal((7, 3)) * 2 + 1
        grad = rng.standard_normal((7, 3))
        x_t = torch.from_numpy(x).requires_grad_()
        out_t = theirs(x_t)
        out_t.backward(torch.from_numpy(grad))
        ours.zero_grad()
        out = ours.forward(x, training=True)
        grad_in = ours.backward(grad)
        np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(grad_in, x_t.grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(ours.params["weight"].grad, theirs.weight.grad.numpy(),
                                   atol=1e-12)
        theirs.weight.grad = None
    np.testing.assert_allclose(ours.buffers["running_mean"], theirs.running_mean.numpy())
    np.testing.assert_allclose(ours.buffers["running_var"], theirs.running_var.numpy())
    theirs.eval()
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(ours.forward(x), theirs(torch.from_numpy(x)).detach().numpy(),
                               atol=1e-12)


def test_train_and_eval_switch_the_model():
    model = bp.Sequential([bp.Dense(4, 16), bp.BatchNorm(16), bp.Dropout(0.5)], seed=0)
    x = np.random.default_rng(1).standard_normal((8, 4))
    assert not model.training
    np.testing.assert_array_equal(model.forward(x), model.forward(x))  # eval: deterministic
    model.train()
    assert (model.forward(x) == 0).mean() > 0.3                          # dropout active
    model.eval()
    assert (model.forward(x) == 0).mean() < 0.05


def test_fit_restores_the_mode_and_batchnorm_layers_and_dropout_dtype():
    X = np.random.default_rng(0).standard_normal((32, 3))
    y = (X[:, 0] > 0).astype(int)
    model = bp.Sequential([bp.Dense(3, 8), bp.BatchNorm(8), bp.ReLU(), bp.Dropout(0.2),
                           bp.Dense(8, 2)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer=bp.Adam(0.01), epochs=3, batch_size=8)
    assert not model.training
    assert model.layers[1].buffers["running_mean"].dtype == np.float32
    assert model.forward(X).dtype == np.float32


def test_layer_argument_errors():
    with pytest.raises(ValueError, match=r"dropout probability p must be in \[0, 1\)"):
        bp.Dropout(1.0)
    with pytest.raises(ValueError, match="at least 2 samples per batch"):
        bp.BatchNorm(2).forward(np.zeros((1, 2)), training=True)
    with pytest.raises(ValueError, match=r"expects input of shape \(m, 2\)"):
        bp.BatchNorm(2).forward(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="expects 3 inputs but the layer before it gives 4"):
        bp.Sequential([bp.Dense(2, 4), bp.BatchNorm(3)])

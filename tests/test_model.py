import numpy as np
import pytest

import bprop as bp


def small_classifier(seed=0, dtype="float32"):
    return bp.Sequential([bp.Dense(2, 8), bp.Tanh(), bp.Dense(8, 3)], seed=seed, dtype=dtype)


def blobs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
    y = np.arange(n) % 3
    return centres[y] + 0.5 * rng.standard_normal((n, 2)), y


ARCHITECTURES = {
    "sigmoid-mse": ([bp.Dense(3, 5), bp.Sigmoid(), bp.Dense(5, 2)], "mse", "regression"),
    "tanh-bce": ([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 1), bp.Sigmoid()],
                 bp.BinaryCrossEntropy(), "binary"),
    "relu-bce-logits": ([bp.Dense(3, 6), bp.ReLU(), bp.Dense(6, 2)],
                        bp.BinaryCrossEntropy(from_logits=True), "binary"),
    "leaky-softmax-ce": ([bp.Dense(3, 6), bp.LeakyReLU(0.1), bp.Dense(6, 6), bp.ReLU(),
                          bp.Dense(6, 4)], "softmax_cross_entropy", "multiclass"),
    "softmax-layer-mse": ([bp.Dense(3, 4), bp.Identity(), bp.Dense(4, 3), bp.Softmax()],
                          bp.MSE(reduction="sum"), "regression"),
    "no-bias": ([bp.Dense(3, 4, bias=False), bp.Sigmoid(), bp.Dense(4, 1, bias=False)],
                "mse", "regression"),
}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_whole_model_gradients_match_finite_differences(name, rng):
    layers, loss, task = ARCHITECTURES[name]
    model = bp.Sequential(layers, seed=1, dtype="float32")
    X = rng.standard_normal((6, 3))
    n_out = model.n_outputs
    y = {"regression": rng.standard_normal((6, n_out)),
         "binary": rng.integers(0, 2, (6, n_out)).astype(float),
         "multiclass": rng.integers(0, n_out, 6)}[task]
    report = bp.gradcheck(model, X, y, loss=loss)
    assert report.passed(1e-6), report
    assert len(report.errors) == len(model.parameters()) + 1


def test_same_seed_same_results_and_global_state_untouched():
    X, y = blobs()
    np.random.seed(0)
    global_state = np.random.get_state()[1].copy()
    runs = []
    for _ in range(2):
        model = small_classifier(seed=7)
        history = model.fit(X, y, loss="softmax_cross_entropy", optimizer=bp.SGD(lr=0.1),
                            epochs=3, batch_size=16)
        runs.append((history["loss"], model.parameters()[0].value.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(np.random.get_state()[1], global_state)
    other = small_classifier(seed=8)
    assert not np.array_equal(other.parameters()[0].value, runs[0][1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_end_to_end(dtype):
    X, y = blobs()
    model = small_classifier(dtype=dtype)
    model.fit(X.astype(np.float64), y, loss="softmax_cross_entropy", epochs=1)
    assert all(p.value.dtype == dtype and p.grad.dtype == dtype for p in model.parameters())
    assert model.forward(X).dtype == dtype
    assert model.predict_proba(X).dtype == dtype


def test_fit_learns_and_reports_history_with_validation():
    X, y = blobs()
    model = small_classifier()
    history = model.fit(X[:60], y[:60], loss="softmax_cross_entropy",
                        optimizer=bp.SGD(lr=0.1, momentum=0.9), epochs=30, batch_size=10,
                        validation_data=(X[60:], y[60:]))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 30 for v in history.history.values())
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    scores = model.evaluate(X[60:], y[60:])
    assert scores["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(axis=1))


def test_fit_equals_the_explicit_loop():
    X, y = blobs(seed=3)
    fitted = small_classifier(seed=2, dtype="float64")
    fitted.fit(X, y, loss="softmax_cross_entropy", optimizer=bp.SGD(lr=0.1, momentum=0.5),
               epochs=5, batch_size=30, shuffle=False)
    manual = small_classifier(seed=2, dtype="float64")
    loss, opt = bp.SoftmaxCrossEntropy(), bp.SGD(lr=0.1, momentum=0.5)
    for _ in range(5):
        for start in range(0, 90, 30):
            out = manual.forward(X[start:start + 30], training=True)
            loss.forward(out, y[start:start + 30])
            manual.zero_grad()
            manual.backward(loss.backward())
            opt.step(manual.parameters())
    for a, b in zip(fitted.parameters(), manual.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)


def test_mini_batches_cover_every_sample_once_per_epoch():
    seen = []

    class Recorder(bp.Identity):
        def forward(self, x, training=False):
            if training:
                seen.append(x[:, 0].copy())
            return super().forward(x, training)

    X = np.arange(10.0).reshape(-1, 1)
    model = bp.Sequential([Recorder(), bp.Dense(1, 1)], seed=0, dtype="float64")
    model.fit(X, np.zeros(10), loss="mse", epochs=2, batch_size=4)
    assert [len(b) for b in seen] == [4, 4, 2, 4, 4, 2]
    for epoch in (seen[:3], seen[3:]):
        assert sorted(np.concatenate(epoch)) == list(range(10))
    assert not np.array_equal(np.concatenate(seen[:3]), np.arange(10))  # shuffled


def test_binary_and_regression_predictions():
    X, y = bp.datasets.make_xor()
    clf = bp.Sequential([bp.Dense(2, 4), bp.Tanh(), bp.Dense(4, 1)], seed=0)
    clf.fit(X, y, loss=bp.BinaryCrossEntropy(from_logits=True),
            optimizer=bp.SGD(lr=0.5, momentum=0.9), epochs=300, batch_size=4)
    assert clf.predict(X).tolist() == [0, 1, 1, 0]
    proba = clf.predict_proba(X)
    assert proba.shape == (4, 1) and np.all((proba > 0) & (proba < 1))
    reg = bp.Sequential([bp.Dense(1, 1)], seed=0)
    assert reg.predict([[1.0], [2.0]]).shape == (2,)
    with pytest.raises(ValueError, match="predict_proba is for classifiers"):
        reg.predict_proba([[1.0]])


def test_divergence_stops_with_last_finite_weights():
    X = np.linspace(-1, 1, 20).reshape(-1, 1) * 1e3
    y = X.ravel() * 1e3
    model = bp.Sequential([bp.Dense(1, 16), bp.ReLU(), bp.Dense(16, 1)], seed=0)
    with pytest.raises(bp.TrainingDivergedError, match="smaller learning rate") as caught:
        model.fit(X, y, loss="mse", optimizer=bp.SGD(lr=10.0), epochs=50, batch_size=5)
    assert all(np.isfinite(p.value).all() for p in model.parameters())
    assert isinstance(caught.value.history, bp.History)
    assert np.all(np.isfinite(model.forward(X)))


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.fit(np.zeros((4, 2)), [0, 1, 2], loss="softmax_cross_entropy"),
     ValueError, "different numbers of samples: 4 and 3"),
    (lambda m: m.fit(np.zeros((4, 3)), [0, 1, 2, 0], loss="softmax_cross_entropy"),
     ValueError, "3 features per sample but the model's first layer expects 2"),
    (lambda m: m.fit(np.array([[0.0, np.nan]] * 2), [0, 1], loss="softmax_cross_entropy"),
     ValueError, r"X contains 2 NaN or infinite value\(s\), the first at index \(0, 1\)"),
    (lambda m: m.fit(np.array([[0.0, np.inf]] * 2), [0, 1], loss="softmax_cross_entropy"),
     ValueError, "NaN or infinite"),
    (lambda m: m.fit(np.zeros((2, 2)), [0, 3], loss="softmax_cross_entropy"),
     ValueError, "must lie in 0..2 for a network with 3 outputs"),
    (lambda m: m.fit(np.zeros(4), [0, 1, 2, 0], loss="softmax_cross_entropy"),
     ValueError, r"must be 2-D.*reshape\(-1, 1\)"),
    (lambda m: m.fit([["a", "b"]], [0], loss="softmax_cross_entropy"),
     TypeError, "must hold numbers"),
    (lambda m: m.fit(np.zeros((2, 2)), [0, 1], loss="mse"),
     ValueError, r"y has shape \(2, 1\) but the model has 3 output"),
    (lambda m: m.fit(np.zeros((2, 2)), [0, 1], loss="softmax_cross_entropy", batch_size=0),
     ValueError, "batch_size must be a positive integer"),
    (lambda m: m.fit(np.zeros((2, 2)), [0, 1], loss="softmax_cross_entropy", optimizer="sgd"),
     TypeError, "optimizer must be a bprop Optimizer"),
    (lambda m: m.fit(np.zeros((2, 2)), [0, 1], loss="softmax_cross_entropy", metrics=["f1"]),
     ValueError, "unknown metric 'f1'"),
    (lambda m: m.evaluate(np.zeros((2, 2)), [0, 1]), ValueError, "pass loss="),
    (lambda m: m.predict(np.zeros((2, 5))), ValueError, "5 features per sample"),
])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(small_classifier())


def test_bad_model_definitions():
    with pytest.raises(ValueError, match="layer 2 Dense.*expects 5 inputs but the layer before"):
        bp.Sequential([bp.Dense(2, 4), bp.ReLU(), bp.Dense(5, 1)])
    with pytest.raises(TypeError, match="write ReLU()"):
        bp.Sequential([bp.Dense(2, 4), bp.ReLU])
    with pytest.raises(TypeError, match="not a bprop Layer"):
        bp.Sequential([bp.Dense(2, 4), "relu"])
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        bp.Sequential([bp.Dense(2, 4)], dtype="float16")
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy takes logits"):
        bp.Sequential([bp.Dense(2, 3), bp.Softmax()]).fit([[0.0, 0.0]], [1], loss="cross_entropy")
    with pytest.raises(ValueError, match="end it with Sigmoid"):
        bp.Sequential([bp.Dense(2, 1)]).fit([[0.0, 0.0]], [1], loss="bce")


def test_astype_copies_weights_into_the_other_precision():
    model = small_classifier(dtype="float32")
    double = model.astype("float64")
    assert double.dtype == np.float64
    for a, b in zip(model.parameters(), double.parameters(), strict=True):
        assert b.dtype == np.float64
        np.testing.assert_array_equal(a.value.astype(np.float64), b.value)
    double.parameters()[0].value[...] = 0  # independent copy
    assert model.parameters()[0].value.any()


def test_summary_and_repr():
    model = small_classifier()
    text = model.summary()
    assert "Dense(n_in=2, n_out=8" in text and "total parameters: 51" in text
    assert "Tanh()" in repr(model)


def test_a_step_that_overflows_the_weights_is_undone():
    X = np.linspace(-1, 1, 10, dtype=np.float32).reshape(-1, 2)
    y = np.arange(5, dtype=np.float32) * 1e3
    model = bp.Sequential([bp.Dense(2, 1)], seed=0)
    before = model.layers[0].weight.copy()
    with pytest.raises(bp.TrainingDivergedError, match="overflowed"):
        model.fit(X, y, loss="mse", optimizer=bp.SGD(lr=1e36), batch_size=5, shuffle=False)
    np.testing.assert_array_equal(model.layers[0].weight, before)


class _PoisonedGradient(bp.Identity):
    """Passes values forward unchanged and sends NaN or infinity back: a finite loss whose
    gradient is not finite."""

    def __init__(self, bad: float) -> None:
        super().__init__()
        self.bad = bad

    def backward(self, grad_out, need_input_grad=True):
        return np.full_like(super().backward(grad_out), self.bad)


class _SignSGD(bp.SGD):
    """Steps by the gradient's sign: an infinite gradient gives a finite step."""

    def update(self, values, grads, state):
        values -= self.lr * np.sign(grads)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("optimizer", [bp.SGD, bp.Adam, bp.RMSProp, _SignSGD],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("clip", [{}, {"clip_value": 1.0}, {"clip_norm": 1.0}],
                         ids=["no-clipping", "clip-value", "clip-norm"])
def test_a_step_with_a_gradient_that_is_not_finite_is_undone(bad, optimizer, clip):
    X = np.linspace(-1, 1, 10).reshape(-1, 2)
    model = bp.Sequential([bp.Dense(2, 3), bp.BatchNorm(3), _PoisonedGradient(bad),
                           bp.Dense(3, 1)], seed=0, dtype="float64")
    before = [p.value.copy() for p in model.parameters()]
    statistics = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    optimizer = optimizer(lr=0.1)
    with pytest.raises(bp.TrainingDivergedError, match="a gradient became NaN or infinite"):
        model.fit(X, np.ones(5), loss="mse", optimizer=optimizer, batch_size=5, **clip)
    for param, value in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(param.value, value)
    for name, value in statistics.items():  # the forward pass had moved them
        np.testing.assert_array_equal(model.layers[1].buffers[name], value)
    assert optimizer.state_dict(model.parameters())["step"] == 0  # NaN reached it: reset


def test_an_optimizer_that_makes_infinite_gradients_finite_is_still_stopped():
    X = np.linspace(0.1, 1, 10).reshape(-1, 2)  # positive, so x.T @ inf stays +inf (no NaN)
    model = bp.Sequential([bp.Dense(2, 3), _PoisonedGradient(np.inf), bp.Dense(3, 1)],
                          seed=0, dtype="float64")
    before = [p.value.copy() for p in model.parameters()]
    with pytest.raises(bp.TrainingDivergedError, match="a gradient became NaN or infinite"):
        model.fit(X, np.ones(5), loss="mse", optimizer=_SignSGD(lr=0.1), batch_size=5)
    for param, value in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(param.value, value)


def test_evaluate_uses_the_loss_it_is_given():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    untrained = bp.Sequential([bp.Dense(2, 3)], seed=0)
    scores = untrained.evaluate(X, [0, 1, 2], loss="cross_entropy")
    assert scores["accuracy"] == bp.accuracy([0, 1, 2], untrained.forward(X).argmax(axis=1))
    logit = bp.Sequential([bp.Dense(2, 1)], seed=0)
    logit.layers[0].weight = [[1.0], [1.0]]
    scores = logit.evaluate(X, [1, 1, 1], loss=bp.BinaryCrossEntropy(from_logits=True))
    assert scores["accuracy"] == 1.0  # logits 1, 1, 2 are all positive: class 1


def test_reusing_a_layer_is_refused():
    dense = bp.Dense(2, 2)
    with pytest.raises(ValueError, match="appears twice"):
        bp.Sequential([dense, bp.Tanh(), dense])
    bp.Sequential([dense], seed=0)
    with pytest.raises(ValueError, match="already belongs to another model"):
        bp.Sequential([dense], seed=123)


def test_sum_reduction_reports_the_summed_loss_over_the_epoch():
    X = np.arange(8.0).reshape(-1, 1)
    model = bp.Sequential([bp.Dense(1, 1, init="zeros")], seed=0, dtype="float64")
    history = model.fit(X, np.ones(8), loss=bp.MSE(reduction="sum"),
                        optimizer=bp.SGD(lr=1e-9), batch_size=3, shuffle=False)
    assert history["loss"][0] == pytest.approx(8.0, rel=1e-6)  # sum of (0 - 1)^2 over 8


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.fit(np.zeros((2, 2)), 1, loss="mse"), ValueError, "scalar"),
    (lambda m: m.fit(np.array([[1e39, 0.0]]), [0.0], loss="mse"), ValueError,
     "too large for float32"),
    (lambda m: m.fit(np.zeros((2, 2)), np.ones((2, 1)), loss="mse",
                     optimizer=bp.SGD(lr=True)), TypeError, "lr must be a number"),
])
def test_more_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call(bp.Sequential([bp.Dense(2, 1)]))


def test_seed_must_be_an_integer():
    with pytest.raises(ValueError, match="seed must be None or a non-negative integer"):
        bp.Sequential([bp.Dense(1, 1)], seed=1.5)


def test_softmax_cross_entropy_targets_must_be_distributions():
    model = bp.Sequential([bp.Dense(2, 3)], seed=0)
    with pytest.raises(ValueError, match="row 0 is"):
        model.fit(np.zeros((2, 2)), np.ones((2, 3)), loss="softmax_cross_entropy")


def test_divergence_resets_the_optimizer_state():
    X = np.linspace(-1, 1, 10, dtype=np.float32).reshape(-1, 2)
    model = bp.Sequential([bp.Dense(2, 1)], seed=0)
    optimizer = bp.SGD(lr=1e36, momentum=0.9)
    with pytest.raises(bp.TrainingDivergedError, match="state .* was reset"):
        model.fit(X, np.arange(5) * 1e3, loss="mse", optimizer=optimizer, batch_size=5)
    assert optimizer.state_dict(model.parameters()) == {"step": 0, "arrays": {}}


def test_batchnorm_never_sees_a_last_batch_of_one():
    X = np.random.default_rng(0).standard_normal((21, 3))
    model = bp.Sequential([bp.Dense(3, 4), bp.BatchNorm(4), bp.Dense(4, 1)], seed=0)
    step = bp.TrainingStep(model, "mse", bp.SGD())
    assert [len(range(21)[b]) for b in step.batches(21, 10, shuffle=False)] == [10, 11]
    assert sorted(np.concatenate(step.batches(21, 10, shuffle=True))) == list(range(21))
    model.fit(X, X[:, 0], loss="mse", epochs=2, batch_size=10)  # would fail on a batch of 1
    plain = bp.Sequential([bp.Dense(3, 1)], seed=0)
    assert len(bp.TrainingStep(plain, "mse", bp.SGD()).batches(21, 10, shuffle=False)) == 3

"""The one training step: every API trains through it, with the same protection everywhere."""

import numpy as np
import pytest

import bprop as bp


def regression_data(n=40, features=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    return X, X @ rng.standard_normal(features) + 0.1 * rng.standard_normal(n)


def classification_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def all_finite(estimator_or_model):
    model = getattr(estimator_or_model, "model_", estimator_or_model)
    return all(np.isfinite(p.value).all() for p in model.parameters())


# -- the estimators' divergence cases: fit and partial_fit, SGD and Adam, float32 and float64 --
DIVERGING = [
    # (estimator, settings): each makes a weight, a gradient or the loss overflow
    ("regressor", {"solver": "sgd", "learning_rate_init": 1e308}),
    ("regressor", {"solver": "adam", "learning_rate_init": 1e300}),
    ("regressor", {"solver": "sgd", "learning_rate_init": 3e38, "dtype": "float32"}),
    ("classifier", {"solver": "adam", "learning_rate_init": 3e38, "dtype": "float32"}),
    ("classifier", {"solver": "sgd", "learning_rate_init": 1e308}),
    ("classifier", {"solver": "adam", "learning_rate_init": 1e300, "batch_norm": True}),
    ("regressor", {"solver": "adam", "learning_rate_init": 3e38, "dtype": "float32"}),
    ("classifier", {"solver": "sgd", "learning_rate_init": 3e38, "dtype": "float32"}),
]


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("kind, settings", DIVERGING,
                         ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())))
def test_an_estimator_that_diverges_stops_with_finite_weights_and_its_history(
        kind, settings, method):
    if kind == "regressor":
        X, y = regression_data()
        estimator = bp.MLPRegressor((16,), random_state=0, max_iter=5, **settings)
        extra = {}
    else:
        X, y = classification_data()
        estimator = bp.MLPClassifier((16,), random_state=0, max_iter=5, **settings)
        extra = {"classes": [0, 1]} if method == "partial_fit" else {}
    with pytest.raises(bp.TrainingDivergedError, match="in iteration") as caught:
        for _ in range(3):  # partial_fit: a few calls, as a user's loop would make
            getattr(estimator, method)(X, y, **extra)
    assert all_finite(estimator)
    assert isinstance(caught.value.history, bp.History)
    assert caught.value.history.epochs == len(estimator.loss_curve_)


def test_the_history_an_estimator_carries_has_the_epochs_before_the_divergence():
    X, y = regression_data()
    estimator = bp.MLPRegressor((8,), solver="sgd", learning_rate_init=0.01, random_state=0)
    for _ in range(3):
        estimator.partial_fit(X, y)
    estimator.learning_rate_init = 1e308  # a fresh optimizer on the next fit: make it diverge
    estimator.set_params(warm_start=True, max_iter=3)
    with pytest.raises(bp.TrainingDivergedError) as caught:
        estimator.fit(X, y)
    assert caught.value.history["loss"] == estimator.loss_curve_
    assert len(estimator.loss_curve_) >= 3


def test_a_diverging_estimator_step_leaves_batchnorm_statistics_as_they_were():
    X, y = regression_data()
    estimator = bp.MLPRegressor((6,), batch_norm=True, solver="sgd", learning_rate_init=1e-3,
                                random_state=0, max_iter=2, warm_start=True)
    with pytest.warns(bp.estimators.ConvergenceWarning):
        estimator.fit(X, y)
    batchnorm = next(layer for layer in estimator.model_.layers
                     if isinstance(layer, bp.BatchNorm))
    before = {name: value.copy() for name, value in batchnorm.buffers.items()}
    weights = [p.value.copy() for p in estimator.model_.parameters()]
    # a fresh optimizer whose first update overflows: the step's forward pass had moved the
    # running statistics already
    estimator.set_params(learning_rate_init=1e308)
    with pytest.raises(bp.TrainingDivergedError, match="overflowed .* in iteration 3"):
        estimator.fit(X, y * 1e6)
    for name, value in before.items():
        np.testing.assert_array_equal(batchnorm.buffers[name], value)
    for param, value in zip(estimator.model_.parameters(), weights, strict=True):
        np.testing.assert_array_equal(param.value, value)


def test_sequential_fit_carries_the_history_so_far():
    X, y = regression_data()
    model = bp.Sequential([bp.Dense(3, 8), bp.Tanh(), bp.Dense(8, 1)], seed=0, dtype="float64")
    model.fit(X, y, loss="mse", optimizer=bp.SGD(lr=0.01), epochs=2)

    class Explode(bp.Callback):
        def on_epoch_end(self, epoch, history):
            if epoch == 1:
                self.optimizer.lr = 1e308

    explode = Explode()
    explode.optimizer = bp.SGD(lr=0.01)
    with pytest.raises(bp.TrainingDivergedError, match="in epoch 3") as caught:
        model.fit(X, y, loss="mse", optimizer=explode.optimizer, epochs=5,
                  callbacks=[explode])
    assert caught.value.history.epochs == 2
    assert all_finite(model)


# -- the penalty scaled by the batch, as scikit-learn charges alpha ---------------------------
def test_a_penalty_scaled_by_the_batch_is_alpha_over_2m_per_batch():
    X, y = regression_data(n=10)
    model = bp.Sequential([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 1)], seed=0, dtype="float64")
    weights = [p.value.copy() for p in model.parameters()]
    step = bp.TrainingStep(model, "mse", bp.SGD(lr=0.1), regularizer=bp.L2(0.3),
                           scale_penalty_by_batch=True)
    result = step(X[:5], y[:5])
    squares = sum(float((w**2).sum()) for w, p in zip(weights, model.parameters(), strict=True)
                  if p.decay)
    assert result.penalty == pytest.approx(0.3 / (2 * 5) * squares, rel=1e-12)

    # the same step by hand: data gradient plus alpha / m * W on the weights only
    by_hand = bp.Sequential([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 1)], seed=0, dtype="float64")
    loss = bp.MSE()
    loss.forward(by_hand.forward(X[:5], training=True), y[:5])
    by_hand.zero_grad()
    by_hand.backward(loss.backward())
    for param, before in zip(by_hand.parameters(), weights, strict=True):
        grad = param.grad + (0.3 / 5 * before if param.decay else 0)
        param.value = before - 0.1 * grad
    for a, b in zip(model.parameters(), by_hand.parameters(), strict=True):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-13, atol=1e-15)


def test_the_scaled_penalty_follows_the_size_of_each_batch():
    regularizer = bp.L1L2(l1=0.2, l2=0.4)
    scaled = regularizer.scaled(0.25)
    assert (scaled.l1.strength, scaled.l2.strength) == (0.05, 0.1)
    assert bp.L2(0.3).scaled(0.5).strength == 0.15 and bp.L1(0.3).scaled(2).strength == 0.6
    X, y = regression_data(n=7)
    model = bp.Sequential([bp.Dense(3, 1)], seed=0, dtype="float64")
    step = bp.TrainingStep(model, "mse", bp.SGD(lr=1e-12), regularizer=bp.L2(1.0),
                           scale_penalty_by_batch=True)
    squares = float((model.layers[0].weight ** 2).sum())
    first = step(X[:4], y[:4]).penalty
    last = step(X[4:], y[4:]).penalty  # a last, smaller batch: 3 samples
    assert first == pytest.approx(squares / 8, rel=1e-6)
    assert last == pytest.approx(squares / 6, rel=1e-6)


# -- the public step: a loop of one's own without private members ------------------------------
def test_a_loop_of_ones_own_through_the_step_equals_fit():
    X, y = classification_data()
    settings = {"seed": 3, "dtype": "float64"}
    fitted = bp.Sequential([bp.Dense(4, 8), bp.ReLU(), bp.Dense(8, 2)], **settings)
    history = fitted.fit(X, y, loss="softmax_cross_entropy", optimizer=bp.Adam(lr=0.01),
                         epochs=3, batch_size=16, metrics=[])
    looped = bp.Sequential([bp.Dense(4, 8), bp.ReLU(), bp.Dense(8, 2)], **settings)
    step = bp.TrainingStep(looped, "softmax_cross_entropy", bp.Adam(lr=0.01))
    losses = [step.epoch(X, y, batch_size=16).loss for _ in range(3)]
    np.testing.assert_allclose(losses, history["loss"], rtol=1e-12)
    for a, b in zip(fitted.parameters(), looped.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)


def test_the_step_checks_what_it_is_given():
    model = bp.Sequential([bp.Dense(2, 1)], seed=0)
    step = bp.TrainingStep(model, "mse", bp.SGD())
    with pytest.raises(ValueError, match="X_batch has 3 features per sample"):
        step(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="different numbers of samples"):
        step(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="X_batch contains 1 NaN"):
        step(np.array([[0.0, np.nan]]), np.zeros(1))
    with pytest.raises(TypeError, match="optimizer must be a bprop Optimizer"):
        bp.TrainingStep(model, "mse", "sgd")
    with pytest.raises(TypeError, match="regularizer must be"):
        bp.TrainingStep(model, "mse", bp.SGD(), regularizer=0.1)
    with pytest.raises(ValueError, match="clip_norm must be a finite number > 0"):
        bp.TrainingStep(model, "mse", bp.SGD(), clip_norm=-1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        step.batches(10, 0)


def test_a_step_run_alone_that_diverges_is_undone_and_says_why():
    X = np.linspace(-1, 1, 10).reshape(-1, 2)
    model = bp.Sequential([bp.Dense(2, 3), bp.BatchNorm(3), bp.Dense(3, 1)], seed=0,
                          dtype="float64")
    before = [p.value.copy() for p in model.parameters()]
    statistics = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    step = bp.TrainingStep(model, "mse", bp.SGD(lr=1e308))
    with pytest.raises(bp.TrainingDivergedError, match="overflowed") as caught:
        step(X, np.arange(5.0))
    assert caught.value.history.epochs == 0
    for param, value in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(param.value, value)
    for name, value in statistics.items():
        np.testing.assert_array_equal(model.layers[1].buffers[name], value)


# -- the optimizer's state after an undone step is the state before it --------------------------
class _HalvingSGD(bp.SGD):
    """An optimizer that writes its own step (kept as it is by guarded_step)."""

    def step(self, parameters):
        super().step(parameters)


@pytest.mark.parametrize("fused", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("make", [
    lambda lr: bp.Adam(lr=lr), lambda lr: bp.AdamW(lr=lr),
    lambda lr: bp.SGD(lr=lr, momentum=0.9, nesterov=True),
    lambda lr: bp.RMSProp(lr=lr, momentum=0.5, centered=True),
    lambda lr: _HalvingSGD(lr=lr, momentum=0.5),
], ids=["adam", "adamw", "sgd", "rmsprop", "own-step"])
def test_an_undone_step_leaves_the_optimizer_state_as_it_was(make, fused, monkeypatch):
    from kernel_switch import use_compiled_kernels

    use_compiled_kernels(fused, monkeypatch)
    X, y = regression_data(n=20)
    model = bp.Sequential([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 1)], seed=0)  # float32
    optimizer = make(1e-2)
    step = bp.TrainingStep(model, "mse", optimizer)
    for _ in range(3):
        step.epoch(X, y, batch_size=5)
    before = optimizer.state_dict(model.parameters())
    weights = [p.value.copy() for p in model.parameters()]
    optimizer.lr = 3e38  # the next update overflows float32
    with pytest.raises(bp.TrainingDivergedError, match="overflowed"):
        step(X[:5], y[:5] * 1e10)
    after = optimizer.state_dict(model.parameters())
    assert after["step"] == before["step"] == 12
    assert sorted(after["arrays"]) == sorted(before["arrays"]) != []
    for name, array in before["arrays"].items():
        np.testing.assert_array_equal(after["arrays"][name], array, err_msg=name)
    for param, value in zip(model.parameters(), weights, strict=True):
        np.testing.assert_array_equal(param.value, value)
    # and training goes on from there as if the bad step had never been tried
    optimizer.lr = 1e-2
    reference = make(1e-2)
    twin = bp.Sequential([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 1)], seed=0)
    twin_step = bp.TrainingStep(twin, "mse", reference)
    for _ in range(3):
        twin_step.epoch(X, y, batch_size=5)
    step(X[:5], y[:5])
    twin_step(X[:5], y[:5])
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)


# -- what the step runs of a user's own loss or layer -------------------------------------------
class _HalfMSE(bp.MSE):
    """A loss written before losses had _forward: it overrides forward alone."""

    def forward(self, pred, target):
        value = super().forward(pred, target)
        self._grad = self._grad / 2
        return value / 2


def test_a_loss_that_overrides_forward_is_the_loss_fit_trains_on():
    X, y = regression_data()
    settings = {"seed": 0, "dtype": "float64"}
    half = bp.Sequential([bp.Dense(3, 1)], **settings)
    history = half.fit(X, y, loss=_HalfMSE(), optimizer=bp.SGD(lr=0.1), epochs=3,
                       shuffle=False, batch_size=40)
    whole = bp.Sequential([bp.Dense(3, 1)], **settings)
    reference = whole.fit(X, y, loss="mse", optimizer=bp.SGD(lr=0.05), epochs=3,
                          shuffle=False, batch_size=40)  # half the gradient: half the rate
    np.testing.assert_allclose(history["loss"], np.array(reference["loss"]) / 2, rtol=1e-12)

    class Nothing(bp.Loss):
        pass

    with pytest.raises(NotImplementedError, match="Nothing must define _forward"):
        Nothing().forward(np.zeros((2, 1)), np.zeros(2))


class _Logged(bp.Dense):
    """A layer whose own forward calls the inner pass directly."""

    calls = 0

    def forward(self, x, training=False):
        type(self).calls += 1
        return self._forward(self._check_input(x, training), training)


def test_a_layer_whose_forward_calls_its_inner_pass_runs_once_and_right():
    X, y = regression_data()
    logged = bp.Sequential([_Logged(3, 2), bp.Tanh(), bp.Dense(2, 1)], seed=0, dtype="float64")
    plain = bp.Sequential([bp.Dense(3, 2), bp.Tanh(), bp.Dense(2, 1)], seed=0, dtype="float64")
    np.testing.assert_array_equal(logged.forward(X), plain.forward(X))
    assert _Logged.calls == 1  # the model ran the layer's forward, once
    layer = logged.layers[0]
    np.testing.assert_array_equal(layer.forward(X), X @ layer.weight + layer.bias)


def test_a_change_of_alpha_between_partial_fits_takes_effect():
    X, y = regression_data()
    estimator = bp.MLPRegressor((8,), alpha=1e-4, random_state=0)
    estimator.partial_fit(X, y)
    squares = sum(float((W**2).sum()) for W in estimator.coefs_)
    estimator.set_params(alpha=1000.0).partial_fit(X, y)
    # the penalty alone, alpha / (2 m) * sum(W**2) per batch of m, dwarfs the data loss
    assert estimator.loss_ > 1000.0 / 2 * squares / 40 * 0.5


def test_a_step_that_makes_running_statistics_infinite_is_undone():
    X = np.array([[1e20], [-1e20]], dtype=np.float32)  # the batch variance overflows float32
    model = bp.Sequential([bp.Dense(1, 1, init="uniform"), bp.BatchNorm(1)], seed=0)
    before = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    with pytest.raises(bp.TrainingDivergedError, match="running statistic"):
        model.fit(X, np.zeros(2), loss="mse", optimizer=bp.SGD(), batch_size=2)
    for name, value in before.items():
        np.testing.assert_array_equal(model.layers[1].buffers[name], value)


@pytest.mark.parametrize("fused", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("make", [bp.Adam, bp.RMSProp], ids=["adam", "rmsprop"])
def test_a_gradient_whose_square_overflows_stops_training_instead_of_stalling(
        make, fused, monkeypatch):
    from kernel_switch import use_compiled_kernels

    use_compiled_kernels(fused, monkeypatch)
    model = bp.Sequential([bp.Dense(1, 1, init="uniform")], seed=0)  # float32
    optimizer = make(lr=1e-3)
    step = bp.TrainingStep(model, "mse", optimizer)
    step(np.ones((1, 1)), np.zeros(1))
    before = optimizer.state_dict(model.parameters())
    weights = [p.value.copy() for p in model.parameters()]
    # a finite loss (about 1e36) and a finite weight gradient (about 2e21), whose square
    # overflows float32: the average of squares would become infinite and every later step
    # of the weight 0
    with pytest.raises(bp.TrainingDivergedError, match="optimizer's state overflowed"):
        step(np.full((1, 1), 1e3), np.array([1e18]))
    after = optimizer.state_dict(model.parameters())
    assert after["step"] == before["step"] == 1
    for name, array in before["arrays"].items():
        np.testing.assert_array_equal(after["arrays"][name], array)
    for param, value in zip(model.parameters(), weights, strict=True):
        np.testing.assert_array_equal(param.value, value)

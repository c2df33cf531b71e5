"""sample_weight in the losses, the training step, Sequential.fit and evaluate: an integer
weight counts a sample that many times, a zero weight leaves it out, on the CPU and on the
device (the CPU stand-in)."""

import numpy as np
import pytest

import bprop as bp
from bprop.backend.devices import stand_in_for_cuda, to_numpy
from bprop.nn.metrics import METRICS

RNG = np.random.default_rng(0)
WEIGHTS = np.array([1, 2, 0, 1, 3, 1, 0, 2, 1, 1, 4, 1], dtype=float)
ROWS = np.repeat(np.arange(len(WEIGHTS)), WEIGHTS.astype(int))  # each row, weight times


def loss_cases():
    pred = RNG.standard_normal((12, 3))
    return [
        (bp.MSE, pred, RNG.standard_normal((12, 3))),
        (bp.MSE, pred[:, :1], RNG.standard_normal(12)),
        (lambda reduction: bp.BinaryCrossEntropy(from_logits=True, reduction=reduction), pred,
         (RNG.random((12, 3)) > 0.5).astype(float)),
        (lambda reduction: bp.BinaryCrossEntropy(reduction=reduction), 1 / (1 + np.exp(-pred)),
         (RNG.random((12, 3)) > 0.5).astype(float)),
        (bp.SoftmaxCrossEntropy, pred, RNG.integers(0, 3, 12)),
        (bp.SoftmaxCrossEntropy, pred, np.eye(3)[RNG.integers(0, 3, 12)]),
    ]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", range(6))
def test_integer_weights_equal_repeated_rows_in_every_loss(case, reduction):
    make, pred, target = loss_cases()[case]
    loss = make(reduction=reduction)
    weighted = loss.forward(pred, target, sample_weight=WEIGHTS)
    grad = loss.backward().copy()
    repeated = loss.forward(pred[ROWS], target[ROWS])
    # each repeated row's gradient, summed back onto its sample
    summed = np.zeros_like(grad)
    np.add.at(summed, ROWS, loss.backward())
    assert weighted == pytest.approx(repeated, rel=1e-12)
    np.testing.assert_allclose(grad, summed, rtol=1e-12, atol=1e-15)
    assert not np.isclose(weighted, loss.forward(pred, target))  # the weights do something


@pytest.mark.parametrize("case", range(6))
def test_zero_weights_equal_dropped_rows_and_ones_change_nothing(case):
    make, pred, target = loss_cases()[case]
    loss, kept = make(reduction="mean"), WEIGHTS > 0
    zeroed = loss.forward(pred, target, sample_weight=kept.astype(float))
    grad = loss.backward()
    assert zeroed == pytest.approx(loss.forward(pred[kept], target[kept]), rel=1e-12)
    np.testing.assert_allclose(grad[kept], loss.backward(), rtol=1e-12)
    assert not grad[~kept].any()
    ones = loss.forward(pred, target, sample_weight=np.ones(12))
    assert ones == pytest.approx(loss.forward(pred, target), rel=1e-14)


@pytest.mark.parametrize("weights, error, message", [
    (np.ones((12, 1)), ValueError, "must be 1-D"),
    (np.ones(11), ValueError, "11 weights but there are 12 samples"),
    (-WEIGHTS, ValueError, "must be >= 0"),
    (np.where(WEIGHTS > 2, np.nan, WEIGHTS), ValueError, "NaN or infinite"),
    (np.zeros(12), ValueError, "zero for every sample"),
    (WEIGHTS + 1j, TypeError, "sample_weight holds complex numbers"),
    (["a"] * 12, TypeError, "must hold numbers"),
])
def test_bad_weights_are_refused_by_name(weights, error, message):
    pred, target = RNG.standard_normal((12, 1)), RNG.standard_normal(12)
    model = bp.Sequential([bp.Dense(1, 1)], seed=0, dtype="float64")
    for call in (lambda: bp.MSE().forward(pred, target, sample_weight=weights),
                 lambda: model.fit(pred, target, loss="mse", sample_weight=weights),
                 lambda: model.evaluate(pred, target, loss="mse", sample_weight=weights)):
        with pytest.raises(error, match=message):
            call()


def model(device="cpu", seed=0):
    return bp.Sequential([bp.Dense(3, 6), bp.Tanh(), bp.Dense(6, 3)], seed=seed,
                         dtype="float64", device=device)


def data(n=12):
    X = RNG.standard_normal((n, 3))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)


X, Y = data()


def trained(X, y, sample_weight=None, device="cpu", **settings):
    net = model(device)
    history = net.fit(X, y, loss="cross_entropy", optimizer=bp.Adam(lr=0.05), epochs=8,
                      batch_size=None, shuffle=False, regularizer=bp.L2(0.01),
                      sample_weight=sample_weight, **settings)
    return net, history


def test_fit_with_integer_weights_equals_fit_on_repeated_rows():
    weighted, history = trained(X, Y, WEIGHTS)
    repeated, history_repeated = trained(X[ROWS], Y[ROWS])
    for a, b in zip(weighted.parameters(), repeated.parameters(), strict=True):
        np.testing.assert_allclose(a.value, b.value, rtol=0, atol=1e-12)
    np.testing.assert_allclose(history["loss"], history_repeated["loss"], rtol=1e-12)
    np.testing.assert_allclose(history["accuracy"], history_repeated["accuracy"], rtol=1e-12)
    unweighted, _ = trained(X, Y)
    assert not np.allclose(unweighted.parameters()[0].value, weighted.parameters()[0].value)


def test_fit_with_zero_weights_equals_fit_without_those_rows():
    kept = WEIGHTS > 0
    zeroed, _ = trained(X, Y, kept.astype(float))
    dropped, _ = trained(X[kept], Y[kept])
    for a, b in zip(zeroed.parameters(), dropped.parameters(), strict=True):
        np.testing.assert_allclose(a.value, b.value, rtol=0, atol=1e-12)


def test_a_batch_that_weighs_nothing_is_skipped():
    X, y = data(24)
    weights = np.ones(24)
    weights[8:16] = 0  # the second of three batches of 8
    nets = []
    for rows, w in ((np.r_[0:8, 16:24], None), (np.arange(24), weights)):
        net = model()
        net.fit(X[rows], y[rows], loss="cross_entropy", optimizer=bp.Adam(lr=0.05), epochs=3,
                batch_size=8, shuffle=False, sample_weight=w)
        nets.append(net)
    for a, b in zip(*(net.parameters() for net in nets), strict=True):
        np.testing.assert_allclose(a.value, b.value, rtol=0, atol=1e-12)


def test_the_training_step_weights_a_batch_and_an_epoch():
    results = []
    for X_batch, y_batch, w in ((X, Y, WEIGHTS), (X[ROWS], Y[ROWS], None)):
        net = model()
        step = bp.TrainingStep(net, "cross_entropy", bp.SGD(lr=0.1), regularizer=bp.L2(0.2),
                               scale_penalty_by_batch=True)
        first = step(X_batch, y_batch, sample_weight=w)
        epoch = step.epoch(X_batch, y_batch, batch_size=len(X_batch), shuffle=False,
                           sample_weight=w)
        results.append((first.loss, first.penalty, epoch.loss, net.parameters()[0].value))
    (loss_a, penalty_a, epoch_a, weight_a), (loss_b, penalty_b, epoch_b, weight_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-12)
    # the penalty is divided by the batch's weight sum, which equals the repeated rows' count
    assert penalty_a == pytest.approx(penalty_b, rel=1e-12)
    assert epoch_a == pytest.approx(epoch_b, rel=1e-12)  # (one batch: its weighted mean)
    np.testing.assert_allclose(weight_a, weight_b, rtol=0, atol=1e-12)


def test_evaluate_weights_the_loss_and_the_metrics():
    net, _ = trained(X, Y)
    weighted = net.evaluate(X, Y, sample_weight=WEIGHTS)
    assert weighted == pytest.approx(net.evaluate(X[ROWS], Y[ROWS]), rel=1e-12)
    assert weighted != pytest.approx(net.evaluate(X, Y))
    target = RNG.standard_normal((12, 2))
    regression = bp.Sequential([bp.Dense(3, 2)], seed=0, dtype="float64")
    scores = regression.evaluate(X, target, loss="mse", metrics=["mae", "mse", "r2"],
                                 sample_weight=WEIGHTS)
    assert scores == pytest.approx(regression.evaluate(X[ROWS], target[ROWS], loss="mse",
                                                       metrics=["mae", "mse", "r2"]), rel=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_the_metrics_weigh_samples_as_scikit_learn_does(name):
    metrics = pytest.importorskip("sklearn.metrics")
    truth, predicted = RNG.integers(0, 3, 12), RNG.integers(0, 3, 12)
    if name != "accuracy":
        truth, predicted = RNG.standard_normal((12, 2)), RNG.standard_normal((12, 2))
    theirs = {"accuracy": metrics.accuracy_score, "mae": metrics.mean_absolute_error,
              "mse": metrics.mean_squared_error, "r2": metrics.r2_score}[name]
    assert METRICS[name](truth, predicted, sample_weight=WEIGHTS) == pytest.approx(
        theirs(truth, predicted, sample_weight=WEIGHTS), rel=1e-12)


def test_a_loss_without_weights_is_refused_them():
    class Old(bp.MSE):
        def forward(self, pred, target):  # written before sample weights
            return super().forward(pred, target)

    net = bp.Sequential([bp.Dense(3, 1)], seed=0, dtype="float64")
    with pytest.raises(TypeError, match="does not take sample weights"):
        net.fit(X, X[:, 0], loss=Old(), sample_weight=WEIGHTS)
    net.fit(X, X[:, 0], loss=Old())  # (and trains as before without them)


# -- on the device (the CPU stand-in) ---------------------------------------------------------
@pytest.mark.parametrize("batch_size, shuffle", [(None, False), (5, True)])
def test_weighted_training_on_the_device_equals_the_cpu(batch_size, shuffle):
    X, y = data(40)
    weights = RNG.integers(0, 4, 40).astype(float)
    weights[:5] = 0
    nets = []
    for device in ("cpu", "cuda"):
        with stand_in_for_cuda():
            net = model(device)
            history = net.fit(X, y, loss="cross_entropy", optimizer=bp.Adam(lr=0.05), epochs=4,
                              batch_size=batch_size, shuffle=shuffle, sample_weight=weights,
                              regularizer=bp.L2(0.01))
            scores = net.evaluate(X, y, sample_weight=weights)
        nets.append((net, history, scores))
    (cpu, cpu_history, cpu_scores), (gpu, gpu_history, gpu_scores) = nets
    for a, b in zip(cpu.state_dict().values(), gpu.state_dict().values(), strict=True):
        np.testing.assert_allclose(to_numpy(b), a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gpu_history["loss"], cpu_history["loss"], rtol=1e-12)
    assert gpu_scores == pytest.approx(cpu_scores, rel=1e-12)


def test_the_weights_go_over_with_the_data_once():
    X, y = data(64)
    weights = RNG.random(64)
    with stand_in_for_cuda() as stand_in:
        net = model("cuda")
        with stand_in.count_transfers() as transfers:
            net.fit(X, y, loss="cross_entropy", optimizer=bp.Adam(), epochs=3, batch_size=16,
                    metrics=[], sample_weight=weights)
    # X, y and the weights once; each epoch its permutation over and its loss and flags back
    assert (transfers.to_device, transfers.to_host) == (3 + 3, 3)


def test_a_weighted_step_on_the_device_is_recorded_and_replayed():
    X, y = data(48)
    weights = RNG.random(48)
    nets = []
    for device in ("cpu", "cuda"):
        with stand_in_for_cuda():
            net = model(device)
            step = bp.TrainingStep(net, "cross_entropy", bp.SGD(lr=0.1, momentum=0.9),
                                   regularizer=bp.L2(0.1), scale_penalty_by_batch=True)
            for _ in range(3):  # (warm-up, recording, replays)
                step.epoch(X, y, batch_size=8, shuffle=True, sample_weight=weights)
            recorded = [key for key, entry in getattr(step, "_graphs", {}).items()
                        if entry != "warming up"]
        nets.append(net)
        if device == "cuda":
            assert recorded == [((8, 3), (8,), (8,))]  # (a graph with its weights as input)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        np.testing.assert_allclose(to_numpy(b.value), a.value, rtol=0, atol=1e-12)

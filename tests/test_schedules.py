import math

import numpy as np
import pytest

import bprop as bp


def lrs(schedule, epochs):
    return [schedule.optimizer.lr] + [schedule.step() for _ in range(epochs)]


def test_step_and_exponential_by_formula():
    assert lrs(bp.StepLR(bp.SGD(lr=0.8), step_size=3, gamma=0.5), 6) == pytest.approx(
        [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2])
    assert lrs(bp.ExponentialLR(bp.Adam(lr=1.0), gamma=0.9), 3) == pytest.approx(
        [1.0, 0.9, 0.81, 0.729])


def test_cosine_with_warmup_by_formula():
    base, low, warmup, total = 0.1, 0.01, 3, 10
    values = lrs(bp.CosineLR(bp.SGD(lr=base), total, warmup_epochs=warmup, min_lr=low), 12)
    for epoch, value in enumerate(values):
        if epoch < warmup:
            expected = base * (epoch + 1) / (warmup + 1)
        else:
            progress = min(epoch - warmup, total - warmup) / (total - warmup)
            expected = low + 0.5 * (base - low) * (1 + math.cos(math.pi * progress))
        assert value == pytest.approx(expected), epoch
    assert values[warmup] == pytest.approx(base) and values[-1] == pytest.approx(low)
    assert values[:warmup + 1] == sorted(values[:warmup + 1])  # warm-up rises


def test_cosine_matches_pytorch_without_warmup():
    torch = pytest.importorskip("torch")
    param = torch.zeros(1, requires_grad=True)
    torch_opt = torch.optim.SGD([param], lr=0.1)
    torch_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, T_max=8, eta_min=0.01)
    schedule = bp.CosineLR(bp.SGD(lr=0.1), total_epochs=8, min_lr=0.01)
    for _ in range(8):
        assert schedule.optimizer.lr == pytest.approx(torch_opt.param_groups[0]["lr"])
        torch_opt.step()
        torch_schedule.step()
        schedule.step()


def test_reduce_on_plateau_in_fit_reads_the_monitored_metric():
    X = np.linspace(-1, 1, 20).reshape(-1, 1)
    y = np.sin(3 * X.ravel())
    model = bp.Sequential([bp.Dense(1, 1)], seed=0, dtype="float64")
    optimizer = bp.SGD(lr=0.1)
    schedule = bp.ReduceLROnPlateau(optimizer, monitor="loss", factor=0.5, patience=2,
                                    min_delta=1e-3)
    history = model.fit(X, y, loss="mse", optimizer=optimizer, schedule=schedule, epochs=40,
                        batch_size=None)
    # Replay the rule on the recorded losses: halve after more than `patience` epochs without
    # an improvement of at least min_delta on the best loss so far.
    expected, lr, best, waited = [], 0.1, None, 0
    for loss in history["loss"]:
        expected.append(lr)
        if best is None or loss < best - 1e-3:
            best, waited = loss, 0
        else:
            waited += 1
            if waited > 2:
                lr, waited = lr * 0.5, 0
    assert history["lr"] == pytest.approx(expected)
    assert history["lr"][-1] <= 0.1 / 4  # a linear model plateaus: several reductions


def test_schedule_drives_the_learning_rate_in_fit():
    model = bp.Sequential([bp.Dense(1, 1)], seed=0)
    optimizer = bp.SGD(lr=1.0)
    history = model.fit([[1.0], [2.0]], [1.0, 2.0], loss="mse", optimizer=optimizer, epochs=4,
                        schedule=bp.StepLR(optimizer, step_size=1, gamma=0.5))
    assert history["lr"] == [1.0, 0.5, 0.25, 0.125]


def test_schedule_errors():
    model = bp.Sequential([bp.Dense(1, 1)])
    with pytest.raises(ValueError, match="different optimizer"):
        model.fit([[1.0]], [1.0], loss="mse", optimizer=bp.SGD(lr=0.1),
                  schedule=bp.StepLR(bp.SGD(lr=0.1), step_size=1))
    optimizer = bp.SGD(lr=0.1)
    with pytest.raises(ValueError, match="monitors 'val_loss'.*pass validation_data"):
        model.fit([[1.0]], [1.0], loss="mse", optimizer=optimizer,
                  schedule=bp.ReduceLROnPlateau(optimizer))
    with pytest.raises(ValueError, match="warmup_epochs must be an integer"):
        bp.CosineLR(bp.SGD(lr=0.1), total_epochs=5, warmup_epochs=5)
    with pytest.raises(ValueError, match="needs the monitored value"):
        bp.ReduceLROnPlateau(bp.SGD(lr=0.1)).step()
    with pytest.raises(TypeError, match="needs a bprop Optimizer"):
        bp.StepLR("adam", step_size=1)


def test_reduce_on_plateau_matches_pytorch_with_an_absolute_threshold():
    torch = pytest.importorskip("torch")
    losses = [1.0, 0.9, 0.9, 0.899, 0.95, 0.85, 0.86, 0.86, 0.86, 0.84, 0.9, 0.9, 0.9, 0.9]
    param = torch.zeros(1, requires_grad=True)
    torch_opt = torch.optim.SGD([param], lr=1.0)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch_opt, factor=0.5, patience=1, threshold=0.005, threshold_mode="abs")
    ours = bp.ReduceLROnPlateau(bp.SGD(lr=1.0), factor=0.5, patience=1, min_delta=0.005)
    for loss in losses:
        theirs.step(loss)
        assert ours.step(loss) == torch_opt.param_groups[0]["lr"]


def test_reduce_on_plateau_never_raises_the_rate():
    schedule = bp.ReduceLROnPlateau(bp.SGD(lr=0.01), factor=0.5, patience=0, min_lr=0.1)
    assert [schedule.step(1.0) for _ in range(3)] == [0.01, 0.01, 0.01]

"""gradcheck at scale: its estimate, its progress, and the sample it checks when a full check
would take too long."""

import numpy as np
import pytest

import bprop as bp
from bprop.cli.main import main
from bprop.tools import gradcheck as module
from bprop.tools.gradcheck import relative_error


class WrongDense(bp.Dense):
    """Forgets to add the bias gradient."""

    def backward(self, grad_out):
        self.params["weight"].grad += self._x.T @ grad_out
        return grad_out @ self.weight.T


class WrongTanh(bp.Tanh):
    """Forgets to square the output in its derivative."""

    def backward(self, grad_out):
        return grad_out * (1 - self._out)


@pytest.fixture
def fake_clock(monkeypatch):
    """A clock that advances one second each time it is read: the analytic pass and one
    forward pass each take exactly one second, so the estimate is known exactly."""
    ticks = iter(range(10**9))
    monkeypatch.setattr(module, "_clock", lambda: float(next(ticks)))


def test_the_estimate_is_reported_before_the_first_element_is_checked(fake_clock, capsys):
    seen = []

    def progress(done, total):
        if done == 0:
            seen.append(capsys.readouterr().err)

    # Dense(3, 2) on 4 rows: 6 weights, 2 biases, 12 inputs; 1 s of analytic pass and
    # 2 x 20 forward passes of 1 s
    report = bp.gradcheck(bp.Dense(3, 2).build(0), np.ones((4, 3)), verbose=True,
                          progress=progress)
    assert report.estimated_seconds == report.full_estimated_seconds == 41
    assert len(seen) == 1 and "checking all 20 elements of 3 arrays, about 41 s" in seen[0]
    assert "gradcheck [" not in seen[0]  # the progress line comes after the estimate
    assert "gradcheck [" in capsys.readouterr().err
    assert not report.sampled and report.checked == report.sizes == {
        "weight": 6, "bias": 2, "input": 12}


def test_the_sample_fills_the_time_budget_and_no_more(fake_clock):
    # 40 s leave 39 s after the analytic pass: 19 elements at 2 s each; the bias (2) is
    # checked whole, and weight (6) too, leaving 11 for the input
    report = bp.gradcheck(bp.Dense(3, 2).build(0), np.ones((4, 3)), time_budget=40)
    assert report.sampled and report.sample == 11
    assert report.checked == {"weight": 6, "bias": 2, "input": 11}
    assert report.estimated_seconds == 1 + 2 * 19 <= 40
    assert report.full_estimated_seconds == 41
    assert "sampled check: 19 of 20 elements" in str(report)
    assert "a full check would take about 41 s" in str(report)


def test_the_estimate_scales_with_the_parameter_count(rng):
    small = bp.gradcheck(bp.Dense(10, 10).build(0), rng.standard_normal((4, 10)), sample=5)
    large = bp.gradcheck(bp.Dense(200, 200).build(0), rng.standard_normal((4, 200)), sample=5)
    assert small.n_elements == 110 + 40 and large.n_elements == 40_200 + 800
    assert 0 < small.full_estimated_seconds < large.full_estimated_seconds
    # the sampled checks cost about the same: 15 elements each
    assert small.n_checked == large.n_checked == 15
    assert large.estimated_seconds < large.full_estimated_seconds / 100


def test_sampling_starts_above_the_time_budget(rng):
    layer, x = bp.Dense(20, 20).build(0), rng.standard_normal((4, 20))
    assert not bp.gradcheck(layer, x, time_budget=1e6).sampled
    tight = bp.gradcheck(layer, x, time_budget=1e-9)
    assert tight.sampled and tight.sample == 1
    assert tight.checked == {"weight": 1, "bias": 1, "input": 1}
    for full in (None, 0):  # asked for, the full check runs however long it takes
        report = bp.gradcheck(layer, x, time_budget=1e-9, sample=full)
        assert not report.sampled and report.n_checked == 400 + 20 + 80
        assert report.sample is None and "all 500 elements checked" in str(report)


def test_a_sampled_check_passes_a_correct_layer_and_fails_a_wrong_one(rng):
    x = rng.standard_normal((6, 30))
    report = bp.gradcheck(bp.Dense(30, 20).build(0), x, sample=10)
    assert report.passed(1e-6) and report.sampled
    assert report.checked == {"weight": 10, "bias": 10, "input": 10}
    assert report.sizes == {"weight": 600, "bias": 20, "input": 180}
    assert "10 of 600" in str(report) and "sampled check: 30 of 800 elements" in str(report)
    wrong = bp.gradcheck(WrongDense(30, 20).build(0), x, sample=10)
    assert not wrong.passed(1e-6) and wrong["bias"] == pytest.approx(1.0)
    assert wrong["weight"] < 1e-6
    model = bp.Sequential([bp.Dense(30, 16), WrongTanh(), bp.Dense(16, 3)], seed=0)
    inside = bp.gradcheck(model, x, rng.integers(0, 3, 6), loss="softmax_cross_entropy",
                          sample=4)
    assert inside.sampled and inside.checked["0.weight"] == 4
    assert inside["0.weight"] > 1e-3 and inside["2.weight"] < 1e-6


class OneWrongWeight(bp.Dense):
    """Gets one weight-gradient element, [0, 0], 50% wrong: only a sample holding it fails."""

    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        self.params["weight"].grad[0, 0] *= 1.5
        return grad_in


def test_the_sample_is_drawn_from_the_seed(rng):
    layer, x = OneWrongWeight(10, 10).build(0), rng.standard_normal((5, 10))
    reports = [bp.gradcheck(layer, x, seed=seed, sample=10, check_input=False)
               for seed in range(40)]
    again = [bp.gradcheck(layer, x, seed=seed, sample=10, check_input=False)
             for seed in range(40)]
    assert [r.errors for r in reports] == [r.errors for r in again]
    caught = [seed for seed, report in enumerate(reports) if report["weight"] > 0.1]
    # each seed draws a different 10 of the 100 weights: about one draw in ten holds [0, 0]
    assert 1 <= len(caught) <= 12
    assert all(report["weight"] < 1e-6 for seed, report in enumerate(reports)
               if seed not in caught)
    full = bp.gradcheck(layer, x, sample=None, check_input=False)
    assert full["weight"] > 0.1 and full.checked["weight"] == 100


def test_progress_counts_every_checked_element(rng):
    calls = []
    report = bp.gradcheck(bp.Dense(8, 5).build(0), rng.standard_normal((3, 8)), sample=4,
                          progress=lambda done, total: calls.append((done, total)))
    total = report.n_checked
    assert total == 4 + 4 + 4
    assert calls == [(done, total) for done in range(total + 1)]


def test_a_correct_model_with_gradients_over_many_scales_passes():
    # MSE of targets near 1000 (|f| about 1e6: rounding noise of a central difference about
    # 2e-5) and a feature 1000 times smaller than the others: its weight's gradient, about
    # 1e-3 of the largest, is correct but its numeric value carries that noise. Judged on its
    # own (as before the noise cutoff), it fails 1e-6 on rounding alone.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 4)) * np.array([1.0, 1.0, 1.0, 2e-3])
    y = 1000 + rng.standard_normal(16)
    model = bp.Sequential([bp.Dense(4, 1)], seed=0)
    report = bp.gradcheck(model, X, y, loss="mse")
    assert report.passed(1e-6), report
    # the same numbers judged element by element without the noise cutoff do fail
    loss = bp.nn.losses.get_loss("mse")
    objective, analytic, arrays, _, magnitude, _ = module._model_problem(
        model, X, y, loss=loss, check_input=False, training=True)
    analytic()
    weight = arrays["0.weight"]
    exact, numeric = weight.grad.reshape(-1).copy(), np.empty(weight.value.size)
    flat = weight.value.reshape(-1)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + 1e-5
        f_plus = objective()
        flat[k] = original - 1e-5
        f_minus = objective()
        flat[k] = original
        numeric[k] = (f_plus - f_minus) / 2e-5
    assert relative_error(exact, numeric, floor=1e-4 * magnitude) > 1e-6


def test_the_noise_cutoff_keeps_wrong_elements_failing():
    noise = np.finfo(np.float64).eps * 3.26 / 1e-5  # about 7e-11
    exact = np.array([0.05, 6e-5, 0.01])
    # rounding noise on an element below the cutoff (7e-4) is not an error ...
    assert relative_error(exact, exact + [0, 7e-11, 0], noise=noise) < 1e-8
    assert relative_error(exact, exact + [0, 7e-11, 0]) > 1e-6  # (without the cutoff it is)
    # ... but that element wrong by more than 1e-6 of the scale still fails ...
    assert relative_error(exact, exact * [1, 0.5, 1], noise=noise) > 1e-6
    # ... and one above the cutoff is judged on its own
    assert relative_error(exact, exact * [1, 1, 1.01], noise=noise) == pytest.approx(
        0.01 / 1.01)


@pytest.mark.parametrize("sample", [-1, 2.5, True, "all", "3"])
def test_gradcheck_refuses_a_bad_sample(sample):
    with pytest.raises(ValueError, match="sample must be 'auto', None or a count"):
        bp.gradcheck(bp.Dense(2, 2).build(0), np.ones((1, 2)), sample=sample)


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), float("inf"), "60", True])
def test_gradcheck_refuses_a_bad_time_budget(budget):
    with pytest.raises(ValueError, match="time_budget must be a positive number"):
        bp.gradcheck(bp.Dense(2, 2).build(0), np.ones((1, 2)), time_budget=budget)


def test_gradcheck_refuses_a_progress_that_is_no_function():
    with pytest.raises(TypeError, match="progress must be a function"):
        bp.gradcheck(bp.Dense(2, 2).build(0), np.ones((1, 2)), progress=5)


def test_the_command_line_samples_and_shows_its_estimate_and_progress(capsys):
    assert main(["gradcheck", "--sample", "3"]) == 0
    captured = capsys.readouterr()
    # the default network 4,8,3 on 5 rows: 0.weight has 32 elements, the input 20
    assert "3 of 32" in captured.out and "3 of 20" in captured.out
    assert "sampled check: 15 of 87 elements" in captured.out
    assert "--sample 0 checks every element" in captured.out and "PASS" in captured.out
    estimate = captured.err.index("gradcheck: 87 elements in 5 arrays would take about")
    assert "checking a random sample of 15 (at most 3 per array)" in captured.err
    assert captured.err.index("gradcheck [") > estimate
    assert "15/15" in captured.err


def test_the_command_line_samples_by_default_only_above_its_time_budget(capsys):
    assert main(["gradcheck"]) == 0
    assert "all 87 elements checked" in capsys.readouterr().out
    assert main(["gradcheck", "--time-budget", "1e-9"]) == 0
    assert "sampled check: 5 of 87 elements" in capsys.readouterr().out
    assert main(["gradcheck", "--time-budget", "1e-9", "--sample", "0"]) == 0
    captured = capsys.readouterr()
    assert "all 87 elements checked" in captured.out
    assert "checking all 87 elements of 5 arrays" in captured.err
    assert main(["gradcheck", "--layer", "Dense", "--sample", "2"]) == 0
    assert "2 of 12" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--sample", "-1"], "--sample must be 0 (check every element) or more, got -1"),
    (["--time-budget", "0"], "--time-budget must be a positive number of seconds, got 0"),
    (["--time-budget", "nan"], "--time-budget must be a positive number of seconds"),
    (["--samples", "0"], "--samples must be at least 1, got 0"),
    (["--tolerance=-1e-6"], "--tolerance must be positive"),
])
def test_the_command_line_refuses_bad_numbers_in_one_line(argv, message, capsys):
    assert main(["gradcheck", *argv]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_gradcheck_of_a_saved_model_takes_the_size_cap(tmp_path, capsys):
    from bprop.cli import main

    path = tmp_path / "model.npz"
    bp.mlp([4, 64, 3], seed=0).save(path)
    assert main(["gradcheck", "--model", str(path), "--max-bytes", "1K"]) == 2
    err = capsys.readouterr().err.strip()
    assert "more than max_bytes=1,024" in err and "--max-bytes" in err and "\n" not in err


def _network_on_a_kink():
    """A ReLU network one of whose units sits 1e-7 above its kink for the first sample: a
    step of 1e-5 on its bias (or its weights) crosses the kink."""
    model = bp.Sequential([bp.Dense(2, 3), bp.ReLU(), bp.Dense(3, 2)], seed=0, dtype="float64")
    X = np.array([[0.5, -1.0], [1.0, 2.0], [-0.3, 0.8]])
    first = model.layers[0]
    bias = first.bias.copy()
    bias[1] = 1e-7 - X[0] @ first.weight[:, 1]
    first.bias = bias
    return model, X, np.array([0, 1, 1])


def test_elements_whose_difference_crosses_a_relu_kink_are_left_out_not_failed():
    model, X, y = _network_on_a_kink()
    report = bp.gradcheck(model, X, y, loss="softmax_cross_entropy", sample=None)
    assert report.passed(1e-6), report
    assert report.at_kinks.get("0.bias") == 1 and "crossed a ReLU kink" in report.summary()
    # (and without leaving it out, the same check fails: the difference is no derivative)
    plain = bp.gradcheck(bp.Sequential([bp.Dense(2, 3), bp.Tanh(), bp.Dense(3, 2)], seed=0,
                                       dtype="float64"), X, y, loss="softmax_cross_entropy")
    assert plain.passed(1e-6) and not plain.at_kinks


def test_a_wrong_relu_gradient_is_still_caught_beside_a_kink(monkeypatch):
    model, X, y = _network_on_a_kink()
    monkeypatch.setattr(bp.ReLU, "_backward",
                        lambda self, grad_out, need_input_grad: grad_out * 0.9)
    assert not bp.gradcheck(model, X, y, loss="softmax_cross_entropy").passed(1e-6)

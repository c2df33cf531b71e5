"""The seed tutorials (bprop.demos, run by examples/ and `bprop demo`), checked against the
criteria the tutorials set."""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    return importlib.import_module(f"bprop.demos.{name}")


def test_single_layer_reproduces_the_tutorials_printed_outputs():
    example = load("single_layer")
    result = example.run()
    np.testing.assert_allclose(result["output"], example.TUTORIAL_OUTPUT, atol=1e-6, rtol=0)
    assert result["max_deviation"] < 0.02


def test_xor_network_reaches_mean_absolute_error_below_one_percent():
    result = load("xor").run()
    assert result["mean_abs_error"] < 0.01
    # The tutorial's own printed error trajectory, from its own initial weights.
    np.testing.assert_allclose(result["errors"][:2], [0.496410031903, 0.00858452565325],
                               rtol=1e-6)


def test_planar_flower_reaches_ninety_percent():
    assert load("planar").run()["accuracy"] >= 0.90


def test_quadratic_fit_has_r2_above_099():
    assert load("quadratic").run()["r2"] >= 0.99


def test_perceptron_separates_separable_data():
    result = load("perceptron").run()
    assert result["accuracy"] == 1.0 and result["model"].converged_


def test_a_network_trained_with_autograd_alone():
    result = load("autograd_moons").run()
    assert result["losses"][-1] < 0.1 * result["losses"][0]
    assert result["accuracy"] >= 0.97
    assert "W1" in result["graph"] and "tanh" in result["graph"]


def test_seed_demos_script_runs_and_draws_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    done = subprocess.run([sys.executable, str(EXAMPLES / "seed_demos.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "R^2 = 0.99" in done.stdout and "training accuracy 100%" in done.stdout
    for name in ("xor", "planar", "quadratic", "perceptron"):
        picture = tmp_path / f"{name}.png"
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert picture.stat().st_size > 5_000


@pytest.mark.parametrize("name", ["single_layer", "xor", "planar", "quadratic", "perceptron",
                                  "autograd_moons"])
def test_every_example_script_runs_its_demo(name):
    assert (EXAMPLES / f"{name}.py").read_text().count("from bprop.demos import run") == 1


@pytest.mark.parametrize("name", ["xor", "planar", "quadratic", "perceptron"])
def test_without_matplotlib_each_picture_demo_says_how_to_get_it(name, monkeypatch, capsys,
                                                                 tmp_path):
    from bprop import demos
    from bprop.tools import plotting

    monkeypatch.setattr(plotting, "have_matplotlib", lambda: False)
    demos.run(name, str(tmp_path))
    assert 'pip install "bprop[plot]"' in capsys.readouterr().out
    assert not list(tmp_path.iterdir())

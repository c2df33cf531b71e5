"""The `bprop` command, end to end through its real entry points, error paths included."""

import json
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import real_mnist_dir

import bprop as bp
from bprop.cli import main, train

ROOT = Path(__file__).resolve().parent.parent


def run(*argv):
    """``python -m bprop ARGS`` in a subprocess: the installed command's real path."""
    return subprocess.run([sys.executable, "-m", "bprop", *map(str, argv)],
                          capture_output=True, text=True, timeout=300)


def png_size(path: Path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    assert path.stat().st_size > 2000, path  # not an empty canvas
    return struct.unpack(">II", header[16:24])


def test_help_for_every_subcommand():
    done = run("--help")
    assert done.returncode == 0
    for command in ("demo", "train", "evaluate", "predict", "compare", "gradcheck", "explain"):
        assert command in done.stdout
        sub = run(command, "--help")
        assert sub.returncode == 0 and "usage: bprop " + command in sub.stdout


def test_demo_runs_a_tutorial_and_draws_it(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["demo", "planar", "--out", str(tmp_path)]) == 0
    assert "training accuracy 9" in capsys.readouterr().out
    assert png_size(tmp_path / "planar.png") == (500, 500)
    assert main(["demo", "activations", "--out", str(tmp_path)]) == 0
    assert png_size(tmp_path / "activations.png") == (1600, 350)


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "moons", "--layers", "2,16,2", "--epochs", "15",
                 "--lr", "0.02", "--batch-norm", "--dropout", "0.1", "--l2", "1e-4",
                 "--schedule", "cosine", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch 15/15" in printed and "test accuracy" in printed  # plain lines: not a TTY
    names = {p.name for p in out.iterdir()}
    assert {"model.npz", "preprocessing.json", "metrics.csv", "metrics.json", "config.toml",
            "curves.png", "decision_boundary.png", "confusion_matrix.png"} <= names
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 15 and metrics["test"]["accuracy"] > 0.8
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("epoch,loss,accuracy")
    assert len((out / "metrics.csv").read_text().splitlines()) == 16
    assert png_size(out / "curves.png") == (1000, 400)
    assert png_size(out / "decision_boundary.png") == (500, 500)
    # The saved config reproduces the run.
    assert main(["train", "--config", str(out / "config.toml"), "--out", str(tmp_path / "again"),
                 "--quiet"]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["history"]["loss"] == metrics["history"]["loss"]


def test_train_from_a_toml_config_and_quiet(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('dataset = "quadratic"\nlayers = [1, 32, 32, 1]\nlr = 0.01\n'
                      f'epochs = 100\nbatch_size = 16\nout = "{tmp_path / "quad"}"\n')
    assert main(["train", "--config", str(config), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "epoch" not in printed and "test loss" in printed
    assert (tmp_path / "quad" / "model.npz").is_file()
    if (tmp_path / "quad" / "curves.png").exists():
        assert png_size(tmp_path / "quad" / "fit.png") == (600, 400)


def test_train_on_a_csv_then_evaluate_and_predict(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 3))
    labels = np.where(X[:, 0] - X[:, 2] > 0, "spam", "ham")
    lines = ["a,b,c,kind"] + [f"{x[0]},{x[1]},{x[2]},{t}" for x, t in zip(X, labels,
                                                                            strict=True)]
    (tmp_path / "mail.csv").write_text("\n".join(lines) + "\n")
    run_dir = tmp_path / "run"
    assert main(["train", "--dataset", str(tmp_path / "mail.csv"), "--target", "kind",
                 "--layers", "3,8,2", "--epochs", "60", "--lr", "0.01", "--quiet",
                 "--out", str(run_dir)]) == 0
    trained = json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"]
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run_dir / "model.npz")]) == 0
    assert f"accuracy {trained:.4f}" in capsys.readouterr().out
    (tmp_path / "new.csv").write_text("a,b,c\n2,0,-2\n-2,0,2\n")
    assert main(["predict", "--model", str(run_dir / "model.npz"), "--data",
                 str(tmp_path / "new.csv"), "--output", str(tmp_path / "out.csv")]) == 0
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0] == "prediction,p(ham),p(spam)"
    assert [r.split(",")[0] for r in rows[1:]] == ["spam", "ham"]


def test_train_on_real_mnist_draws_the_first_layer(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "mnist"
    assert main(["train", "--dataset", "mnist", "--data-dir", str(real_mnist_dir()),
                 "--layers", "784,64,10", "--epochs", "1", "--batch-size", "128", "--quiet",
                 "--val-fraction", "0", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["test"]["accuracy"] > 0.9
    assert png_size(out / "first_layer.png") == (800, 400)


def test_ctrl_c_stops_training_and_saves_the_best_model(tmp_path):
    out = tmp_path / "run"
    # A runner started in the background (`&` in a script, nohup) ignores SIGINT, and so would
    # the child: give it the default handling, which a Ctrl-C in a terminal meets.
    with subprocess.Popen(
            [sys.executable, "-m", "bprop", "train", "--dataset", "moons", "--layers", "2,32,2",
             "--epochs", "1000000", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as process:
        try:
            for line in process.stdout:  # wait until training is under way
                if line.startswith("epoch 20/"):
                    break
            time.sleep(0.5)
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=120)
        finally:
            process.kill()  # the pipes are closed on leaving the with block, even after a timeout
    assert process.returncode == 130
    assert "interrupted: saving the best model so far" in errors
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] and metrics["epochs"] >= 20
    assert 1 <= metrics["best_epoch"] <= metrics["epochs"]
    assert (out / "model.npz").is_file()


def test_gradcheck_command(capsys):
    assert main(["gradcheck"]) == 0
    printed = capsys.readouterr().out
    assert "0.weight" in printed and "PASS" in printed
    assert main(["gradcheck", "--layer", "BatchNorm"]) == 0
    assert "weight" in capsys.readouterr().out


def test_explain_in_three_formats(tmp_path, capsys):
    assert main(["explain"]) == 0
    text = capsys.readouterr().out
    for piece in ("z1 = a0 @ W1 + b1", "a2 = sigmoid(z2)", "dL/da2 = 2 * (a2 - y) / 4",
                  "delta2 = dL/da2 * a2 * (1 - a2)", "dW2 = a1.T @ delta2", "shape (4, 3)",
                  "all gradients agree with finite differences"):
        assert piece in text, piece
    assert main(["explain", "--format", "markdown", "--output", str(tmp_path / "e.md")]) == 0
    assert "**`dW1 = a0.T @ delta1`**" in (tmp_path / "e.md").read_text()
    assert main(["explain", "--format", "html", "--loss", "cross_entropy", "--layers", "2,4,2",
                 "--dataset", "moons", "--samples", "5", "--output", str(tmp_path / "e.html")]) == 0
    page = (tmp_path / "e.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "http" not in page
    assert "(softmax(z2) - Y) / 5" in page


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "cifar"], "unknown dataset 'cifar'"),
    (["train", "--dataset", "moons", "--layers", "3,8,2"],
     "do not fit the data: moons has 2 features and 2 classes"),
    (["train", "--config", "missing.toml"], "config file missing.toml not found"),
    (["train", "--dataset", "missing.csv"], "no such CSV file: missing.csv"),
    (["evaluate", "--model", "missing.npz"], "model file missing.npz not found"),
    (["explain", "--layers", "3,2,1"], "layers start with 3 inputs but xor has 2 features"),
    (["train", "--dataset", "moons", "--epochs", "0"], "epochs must be at least 1"),
])
def test_errors_are_one_line_with_exit_status_2(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = run(*argv)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_bad_config_keys_and_values(tmp_path, capsys):
    (tmp_path / "typo.toml").write_text("lerning_rate = 0.1\n")
    assert main(["train", "--config", str(tmp_path / "typo.toml")]) == 2
    assert "unknown key(s) lerning_rate" in capsys.readouterr().err
    (tmp_path / "value.toml").write_text('epochs = "ten"\n')
    assert main(["train", "--config", str(tmp_path / "value.toml")]) == 2
    assert "epochs must be int, got 'ten'" in capsys.readouterr().err
    (tmp_path / "broken.toml").write_text("epochs = \n")
    assert main(["train", "--config", str(tmp_path / "broken.toml")]) == 2
    assert "is not valid TOML" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = run("--debug", "train", "--dataset", "cifar")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_the_console_script_is_installed():
    import shutil

    command = shutil.which("bprop", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.skip("bprop is not installed as a console script in this environment")
    done = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("bprop ")


def test_evaluate_splits_as_train_did_and_maps_labels(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["train", "--dataset", "digits", "--layers", "64,16,10", "--epochs", "5",
                 "--lr", "0.01", "--seed", "7", "--test-fraction", "0.3", "--quiet",
                 "--out", str(out)]) == 0
    trained = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out / "model.npz")]) == 0
    assert f"accuracy {trained:.4f}" in capsys.readouterr().out
    # A file holding only some of the classes is scored against the right ones.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    names = np.array(["apple", "mango", "zebra"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
    rows = ["a,b,fruit"] + [f"{x[0]},{x[1]},{t}" for x, t in zip(X, names, strict=True)]
    (tmp_path / "fruit.csv").write_text("\n".join(rows))
    assert main(["train", "--dataset", str(tmp_path / "fruit.csv"), "--target", "fruit",
                 "--layers", "2,16,3", "--epochs", "80", "--lr", "0.01", "--quiet",
                 "--out", str(tmp_path / "fruit")]) == 0
    keep = [0] + [i + 1 for i, t in enumerate(names) if t != "mango"]
    (tmp_path / "two.csv").write_text("\n".join(rows[i] for i in keep))
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "fruit" / "model.npz"), "--data",
                 str(tmp_path / "two.csv"), "--target", "fruit"]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy")[1])
    assert accuracy > 0.85


def test_whole_number_targets_with_many_values_are_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = np.round(50 + 10 * X[:, 0]).astype(int)
    rows = ["a,b,age"] + [f"{x[0]},{x[1]},{t}" for x, t in zip(X, y, strict=True)]
    (tmp_path / "ages.csv").write_text("\n".join(rows))
    assert main(["train", "--dataset", str(tmp_path / "ages.csv"), "--layers", "2,16,1",
                 "--epochs", "5", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert "test loss" in capsys.readouterr().out
    assert json.loads((tmp_path / "r" / "preprocessing.json").read_text())["task"] == \
        "regression"


def test_divergence_and_long_messages_stay_on_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    diverged = run("train", "--dataset", "quadratic", "--optimizer", "sgd", "--lr", "1e30",
                   "--momentum", "0", "--scale", "none", "--epochs", "50", "--quiet")
    assert diverged.returncode == 1
    assert diverged.stderr.strip().splitlines() == [diverged.stderr.strip()]
    assert "training failed" in diverged.stderr and "Traceback" not in diverged.stderr
    missing = run("train", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "Place these four files" in missing.stderr


@pytest.mark.parametrize("decay", [0.0, 1e-3])
def test_each_optimizer_gets_the_settings_the_command_line_has(decay):
    settings = dict(train.DEFAULTS, lr=0.05, momentum=0.8, weight_decay=decay)
    expected = {"sgd": bp.SGD(lr=0.05, momentum=0.8, weight_decay=decay),
                "adam": bp.Adam(lr=0.05, weight_decay=decay),
                # a decay of 0 leaves AdamW its own (decoupled) default
                "adamw": bp.AdamW(lr=0.05, **({"weight_decay": decay} if decay else {})),
                "rmsprop": bp.RMSProp(lr=0.05, momentum=0.8, weight_decay=decay)}
    assert set(expected) == set(train.OPTIMIZERS)
    for name, optimizer in expected.items():
        built = train.build_optimizer(dict(settings, optimizer=name))
        assert type(built) is type(optimizer) and repr(built) == repr(optimizer)
    assert train.build_optimizer(dict(settings, optimizer="adamw")).weight_decay == \
        (decay or 0.01)

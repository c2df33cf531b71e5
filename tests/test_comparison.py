"""bp.compare and `bprop compare`: same network, three libraries, honest numbers."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

import bprop as bp
from bprop.tools import compare as comparison

pytest.importorskip("sklearn", reason="compare's default dataset (digits) needs scikit-learn")


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_compare_on_digits_writes_the_table_and_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    result = bp.compare("digits", hidden=(32,), epochs=3, lr=0.01,
                        peers=("bprop", "sklearn", "torch"), out_dir=tmp_path, verbose=False)
    ran = {r.peer: r for r in result.ran()}
    torch_installed = comparison.missing_requirement("torch") == ""
    assert set(ran) == {"bprop", "sklearn"} | ({"torch"} if torch_installed else set())
    for r in ran.values():
        assert 0.8 < r.test_accuracy <= 1 and r.train_seconds > 0 and r.peak_rss_mb > 10
        assert len(r.loss_curve) == 3 and r.loss_curve[-1] < r.loss_curve[0]
        assert np.array(r.confusion).sum() == 360  # the 20% test split of 1,797 digits
    # The same start and the same mathematics: the first epoch's losses agree closely.
    first = [r.loss_curve[0] for r in ran.values()]
    assert max(first) - min(first) < 0.1
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["settings"]["epochs"] == 3 and len(saved["results"]) == 3
    markdown = (tmp_path / "comparison.md").read_text()
    assert "| peer | test accuracy |" in markdown and "bprop" in markdown
    assert png_size(tmp_path / "loss_curves.png") == (600, 400)
    width, height = png_size(tmp_path / "confusion_matrices.png")
    assert (width, height) == (400 * len(ran), 400)


def test_a_missing_peer_is_skipped_with_one_line(monkeypatch, capsys):
    real = comparison.importlib.util.find_spec
    monkeypatch.setattr(comparison.importlib.util, "find_spec",
                        lambda name: None if name == "torch" else real(name))
    result = bp.compare("digits", hidden=(8,), epochs=1, peers=("bprop", "torch"))
    assert [r.peer for r in result.ran()] == ["bprop"]
    assert "torch: skipped (torch is not installed: pip install torch" in capsys.readouterr().out


def test_compare_on_a_csv_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    lines = ["a,b,c,label"] + [f"{x[0]},{x[1]},{x[2]},{t}" for x, t in zip(X, labels,
                                                                             strict=True)]
    (tmp_path / "data.csv").write_text("\n".join(lines))
    result = bp.compare(str(tmp_path / "data.csv"), target="label", hidden=(8,), epochs=20,
                        lr=0.05, batch_size=16, peers=("bprop",), verbose=False)
    assert result.ran()[0].test_accuracy > 0.85


def test_bad_settings_are_refused_before_anything_runs():
    with pytest.raises(ValueError, match="unknown peer"):
        bp.compare(peers=("bprop", "keras"))
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        bp.compare("cifar")
    with pytest.raises(ValueError, match="activation must be"):
        bp.compare(activation="gelu")


def test_the_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bprop", "compare", "--epochs", "2",
                           "--hidden", "16", "--peers", "bprop,sklearn", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "peer" in done.stdout and "bprop" in done.stdout and "sklearn" in done.stdout
    assert (tmp_path / "out" / "comparison.json").is_file()
    failed = subprocess.run([sys.executable, "-m", "bprop", "compare", "--dataset", "nope"],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "bprop compare: error: unknown dataset 'nope'; choose from ['digits', 'mnist', "
        "'fashion-mnist'] or give the path of a .csv file"]


def test_two_classes_with_any_labels_run_on_every_peer(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, 5, -1)
    lines = ["a,b,c,y"] + [f"{x[0]},{x[1]},{x[2]},{t}" for x, t in zip(X, labels, strict=True)]
    (tmp_path / "two.csv").write_text("\n".join(lines))
    peers = ("bprop", "sklearn", "torch")
    result = bp.compare(str(tmp_path / "two.csv"), hidden=(8,), epochs=20, lr=0.02,
                        batch_size=16, peers=peers, verbose=False)
    ran = {r.peer for r in result.ran()}
    installed = {p for p in peers if comparison.missing_requirement(p) == ""}
    assert ran == installed
    assert all(r.test_accuracy > 0.85 for r in result.ran())
    # The same starting network: the first-epoch losses agree closely.
    first = [r.loss_curve[0] for r in result.ran()]
    assert max(first) - min(first) < 0.05


def test_compare_works_from_a_plain_script_and_reports_failures(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import bprop as bp\n"
                      "r = bp.compare('digits', hidden=(8,), epochs=1, peers=('bprop',), "
                      "verbose=False)\nprint(r.ran()[0].peer)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "bprop", done.stderr
    with pytest.raises(ValueError, match="continuous values"):
        (tmp_path / "reg.csv").write_text("a,y\n1,0.5\n2,1.5\n3,2.5\n4,3.5\n")
        bp.compare(str(tmp_path / "reg.csv"), peers=("bprop",))


def test_a_failing_peer_is_reported_as_failed(monkeypatch):
    real = comparison.subprocess.run

    def broken(command, **kwargs):
        if "sklearn" in command[-1]:
            return subprocess.CompletedProcess(command, 1, "", "Traceback...\nKeyError: boom")
        return real(command, **kwargs)

    monkeypatch.setattr(comparison.subprocess, "run", broken)
    result = bp.compare("digits", hidden=(8,), epochs=1, peers=("bprop", "sklearn"),
                        verbose=False)
    statuses = {r.peer: r.status for r in result.results}
    assert statuses == {"bprop": "ok", "sklearn": "failed: KeyError: boom"}

"""`bprop evaluate` and `bprop predict` on the right rows and columns; the run folder's record
of its data; defaults, suggestions and one-line errors of the command line; an interrupted
`bprop train` that still saves its run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import write_csv

import bprop as bp
from bprop.cli import data as cli_data
from bprop.cli import main, train

FEATURES = ["a", "b", "c"]


def mail(n=150, seed=0):
    """Three features and a text label that depends on a and c."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).round(6)
    labels = np.where(X[:, 0] - X[:, 2] > 0, "spam", "ham")
    return X, labels


@pytest.fixture(scope="module")
def mail_run(tmp_path_factory):
    """A classifier trained on mail.csv (a, b, c, kind), and the file."""
    folder = tmp_path_factory.mktemp("mail")
    X, labels = mail()
    path = write_csv(folder / "mail.csv", [*FEATURES, "kind"],
                     [[*x, t] for x, t in zip(X, labels, strict=True)])
    assert main(["train", "--dataset", str(path), "--target", "kind", "--layers", "3,8,2",
                 "--epochs", "40", "--lr", "0.01", "--quiet", "--out", str(folder / "run")]) == 0
    return folder / "run", path


def scores(text: str) -> dict:
    """``name value`` pairs of evaluate's last line."""
    words = text.strip().splitlines()[-1].split()
    return {name: float(value) for name, value in zip(words[::2], words[1::2], strict=True)}


# -- evaluate: which rows ------------------------------------------------------------------------
def test_evaluate_data_scores_every_row_of_the_file_and_says_how_many(mail_run, tmp_path,
                                                                    capsys):
    run, _ = mail_run
    X, labels = mail(n=37, seed=5)
    other = write_csv(tmp_path / "other.csv", [*FEATURES, "kind"],
                      [[*x, t] for x, t in zip(X, labels, strict=True)])
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "model.npz"), "--data", str(other)]) == 0
    out = capsys.readouterr().out
    assert "scored 37 rows: every row of" in out  # not its 20% test split (8 rows)
    # The accuracy is that of all 37 rows, as the model itself scores them.
    model = bp.load(run / "model.npz")
    prep = json.loads((run / "preprocessing.json").read_text())
    Z = (X - np.array(prep["scaler"]["mean"])) / np.array(prep["scaler"]["scale"])
    expected = np.mean(np.array(prep["classes"])[model.predict(Z)] == labels)
    assert scores(out)["accuracy"] == pytest.approx(expected, abs=5e-5)


def test_evaluate_without_data_scores_the_test_split_and_says_so(mail_run, capsys):
    run, _ = mail_run
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert "scored 30 rows: the test split (20% of the rows) of" in out
    trained = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    assert scores(out)["accuracy"] == pytest.approx(trained, abs=5e-5)


def test_evaluate_on_the_training_file_says_its_rows_were_seen(mail_run, capsys):
    run, path = mail_run
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "model.npz"), "--data", str(path)]) == 0
    out = capsys.readouterr().out
    assert "scored 150 rows" in out and "seen in training" in out


# -- the run folder records its data ---------------------------------------------------------------
def test_a_run_records_feature_names_and_absolute_data_paths(tmp_path, monkeypatch, capsys):
    X, labels = mail()
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "mail.csv", [*FEATURES, "kind"],
              [[*x, t] for x, t in zip(X, labels, strict=True)])
    assert main(["train", "--dataset", "mail.csv", "--target", "kind", "--epochs", "5",
                 "--quiet", "--out", "run"]) == 0
    prep = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert prep["feature_names"] == FEATURES and prep["target"] == "kind"
    assert prep["dataset"] == str((tmp_path / "mail.csv").resolve())
    config = train.read_config(tmp_path / "run" / "config.toml")
    assert config["dataset"] == str((tmp_path / "mail.csv").resolve())
    # From another folder, evaluate finds the data and splits them as train did.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "run" / "model.npz")]) == 0
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    assert scores(capsys.readouterr().out)["accuracy"] == pytest.approx(trained, abs=5e-5)


def fake_mnist(monkeypatch, n_train=120, n_test=40):
    """The MNIST loader replaced by a small stand-in (the real files are 55 MB); the files'
    lookup stays the real one."""
    rng = np.random.default_rng(0)
    arrays = ((rng.random((n_train, 784), dtype=np.float32), rng.integers(0, 10, n_train)),
              (rng.random((n_test, 784), dtype=np.float32), rng.integers(0, 10, n_test)))
    arrays[0][1][:10] = arrays[1][1][:10] = np.arange(10)  # every class present
    seen = []

    def load_mnist(data_dir=None):
        seen.append(data_dir)
        return arrays
    monkeypatch.setattr(bp.data, "load_mnist", load_mnist)
    return seen


def mnist_folder(root: Path) -> Path:
    folder = root / "mnist"
    folder.mkdir(parents=True)
    for spec in bp.data.mnist.MNIST.files.values():
        (folder / spec.name).write_bytes(b"")  # found by name; the stand-in loader reads them
    return folder


@pytest.mark.parametrize("how", ["BPROP_DATA", "--data-dir", "--data-dir mnist/"])
def test_a_mnist_run_records_where_the_files_were(tmp_path, monkeypatch, capsys, how):
    seen = fake_mnist(monkeypatch)
    folder = mnist_folder(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--dataset", "mnist", "--layers", "784,8,10", "--epochs", "1",
            "--val-fraction", "0", "--quiet", "--out", "run"]
    if how == "BPROP_DATA":
        monkeypatch.setenv("BPROP_DATA", "data")  # relative: the run records it absolutely
    else:
        argv += ["--data-dir", "data" if how == "--data-dir" else "data/mnist"]
    assert main(argv) == 0
    prep = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert prep["data_dir"] == str(folder.resolve())
    assert train.read_config(tmp_path / "run" / "config.toml")["data_dir"] == \
        str(folder.resolve())
    # evaluate, from elsewhere and without BPROP_DATA, reads the files where the run found them.
    monkeypatch.delenv("BPROP_DATA", raising=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "run" / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert seen[-1] == str(folder.resolve())
    assert f"scored 40 rows: the test set of mnist in {folder.resolve()}" in out


# -- columns by name ---------------------------------------------------------------------------
def predictions(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_predict_and_evaluate_match_reordered_columns_by_name(mail_run, tmp_path, capsys):
    run, _ = mail_run
    model = str(run / "model.npz")
    X, labels = mail(n=20, seed=3)
    write_csv(tmp_path / "new.csv", FEATURES, X)
    write_csv(tmp_path / "reordered.csv", ["c", "a", "b"], X[:, [2, 0, 1]])
    for name in ("new", "reordered"):
        assert main(["predict", "--model", model, "--data", str(tmp_path / f"{name}.csv"),
                     "--output", str(tmp_path / f"{name}.out")]) == 0
    assert predictions(tmp_path / "reordered.out") == predictions(tmp_path / "new.out")
    # evaluate finds the target by the name it had in training, wherever it is.
    write_csv(tmp_path / "kind_first.csv", ["kind", "c", "b", "a"],
              [[t, x[2], x[1], x[0]] for x, t in zip(X, labels, strict=True)])
    write_csv(tmp_path / "kind_last.csv", [*FEATURES, "kind"],
              [[*x, t] for x, t in zip(X, labels, strict=True)])
    found = []
    for name in ("kind_first", "kind_last"):
        capsys.readouterr()
        assert main(["evaluate", "--model", model, "--data", str(tmp_path / f"{name}.csv")]) == 0
        found.append(scores(capsys.readouterr().out))
    assert found[0] == found[1]


@pytest.mark.parametrize("header, rows, message", [
    ([*FEATURES, "kind"], [[1, 2, 3, "spam"]],
     "column 'kind' is the target the model predicts; drop it or use evaluate"),
    (["a", "c"], [[1, 2]], "lacks the column 'b' that the model needs"),
    (["a", "bb", "c"], [[1, 2, 3]], "lacks the column 'b' that the model needs; did you mean "
     "'bb'?"),
    ([*FEATURES, "d"], [[1, 2, 3, 4]], "has the column 'd' that the model was not trained on"),
    (["a", "a", "b", "c"], [[1, 1, 2, 3]], "more than one column named 'a'"),
    (None, [[1, 2, 3, 4]], "has 4 feature columns but the model expects 3"),
])
def test_predict_refuses_missing_and_extra_columns_by_name(mail_run, tmp_path, capsys, header,
                                                           rows, message):
    run, _ = mail_run
    path = write_csv(tmp_path / "bad.csv", header, rows)
    capsys.readouterr()
    assert main(["predict", "--model", str(run / "model.npz"), "--data", str(path),
                 "--output", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and str(path) in err[-1], err
    assert "features but the model expects" not in err[-1]
    assert not (tmp_path / "out.csv").exists()


def test_evaluate_refuses_a_file_without_the_target_or_with_extra_columns(mail_run, tmp_path,
                                                                          capsys):
    run, _ = mail_run
    model = str(run / "model.npz")
    write_csv(tmp_path / "no_target.csv", FEATURES, [[1, 2, 3], [3, 2, 1]])
    assert main(["evaluate", "--model", model, "--data", str(tmp_path / "no_target.csv")]) == 2
    assert "has no column 'kind', the target the model predicts" in capsys.readouterr().err
    write_csv(tmp_path / "extra.csv", [*FEATURES, "d", "kind"], [[1, 2, 3, 4, "spam"]] * 3)
    assert main(["evaluate", "--model", model, "--data", str(tmp_path / "extra.csv")]) == 2
    assert "has the column 'd' that the model was not trained on" in capsys.readouterr().err


def test_a_headerless_file_is_read_by_position_and_said_so(mail_run, tmp_path, capsys):
    run, _ = mail_run
    X, labels = mail(n=10, seed=4)
    write_csv(tmp_path / "named.csv", FEATURES, X)
    write_csv(tmp_path / "bare.csv", None, X)
    for name in ("named", "bare"):
        assert main(["predict", "--model", str(run / "model.npz"), "--data",
                     str(tmp_path / f"{name}.csv"), "--output",
                     str(tmp_path / f"{name}.out")]) == 0
    err = capsys.readouterr().err
    assert "bare.csv has no header line, so its 3 columns are taken by position" in err
    assert "named.csv" not in err
    assert predictions(tmp_path / "bare.out") == predictions(tmp_path / "named.out")
    write_csv(tmp_path / "bare_target.csv", None, [[*x, t] for x, t in zip(X, labels,
                                                                            strict=True)])
    assert main(["evaluate", "--model", str(run / "model.npz"), "--data",
                 str(tmp_path / "bare_target.csv")]) == 0
    captured = capsys.readouterr()
    assert "taken by position" in captured.err and "scored 10 rows" in captured.out


def test_files_that_are_not_utf8_or_have_huge_fields_are_one_line_errors(mail_run, tmp_path,
                                                                         capsys):
    run, _ = mail_run
    (tmp_path / "latin.csv").write_bytes(b"a,b,c\n1,2,3\n" + b"\xe9,1,2\n")
    (tmp_path / "latin_header.csv").write_bytes(b"caf\xe9,b,c\n1,2,3\n")
    (tmp_path / "huge.csv").write_text("a,b,c\n1,2," + "9" * 200_000 + "\n")
    for name in ("latin_header", "latin", "huge"):
        path = tmp_path / f"{name}.csv"
        assert main(["predict", "--model", str(run / "model.npz"), "--data", str(path),
                     "--output", str(tmp_path / "out.csv")]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0], err
        assert "--target" not in err[0]


# -- defaults, standard output, help, suggestions -------------------------------------------------
def test_evaluate_and_predict_default_to_runs_latest_and_output_dash(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tmp_path)
    X, labels = mail()
    write_csv(tmp_path / "mail.csv", [*FEATURES, "kind"],
              [[*x, t] for x, t in zip(X, labels, strict=True)])
    assert main(["train", "--dataset", "mail.csv", "--target", "kind", "--epochs", "5",
                 "--quiet"]) == 0
    assert (tmp_path / "runs" / "latest" / "model.npz").is_file()
    capsys.readouterr()
    assert main(["evaluate"]) == 0
    assert "scored 30 rows" in capsys.readouterr().out
    write_csv(tmp_path / "new.csv", FEATURES, X[:4])
    assert main(["predict", "--data", "new.csv", "--output", "-"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "prediction,p(ham),p(spam)" and len(lines) == 5
    assert "wrote 4 predictions to standard output" in captured.err
    assert not (tmp_path / "-").exists()
    monkeypatch.chdir(tmp_path / "runs")
    assert main(["evaluate"]) == 2
    assert "runs/latest/model.npz not found" in capsys.readouterr().err


def help_text(*command) -> str:
    done = subprocess.run([sys.executable, "-m", "bprop", *command, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    return " ".join(done.stdout.split())


def test_help_shows_the_defaults():
    text = help_text("evaluate")
    assert "(default: runs/latest/model.npz)" in text and "(default: 2G)" in text
    assert "allocate memory without bound" in text
    assert "(default: predictions.csv)" in help_text("predict")
    train_help = help_text("train")
    for default in ("--epochs EPOCHS (default: 20)", "--lr LR learning rate (default: 0.001)",
                    "--out OUT run folder (default: runs/latest)",
                    "--optimizer {sgd,adam,adamw,rmsprop} (default: adam)"):
        assert default in train_help, default
    assert "(default: None)" not in train_help


@pytest.mark.parametrize("argv, suggestion", [
    (["trian"], "did you mean train?"),
    (["evalute"], "did you mean evaluate?"),
    (["train", "--epohcs", "3"], "did you mean --epochs?"),
    (["train", "--optimizer", "adma"], "did you mean adam"),
    (["predict", "--ouptut", "x.csv"], "did you mean --output?"),
])
def test_a_mistyped_command_or_option_gets_did_you_mean(argv, suggestion, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert suggestion in capsys.readouterr().err


def test_a_mistyped_dataset_or_config_key_gets_did_you_mean(tmp_path, capsys):
    assert main(["train", "--dataset", "minst"]) == 2
    assert "did you mean 'mnist'" in capsys.readouterr().err
    (tmp_path / "typo.toml").write_text("epoch = 3\n")
    assert main(["train", "--config", str(tmp_path / "typo.toml")]) == 2
    assert "did you mean 'epochs'?" in capsys.readouterr().err


# -- regression in the target's own units ---------------------------------------------------------
def test_regression_scales_the_target_and_reports_r2_mae_rmse_in_its_units(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 2))
    y = 3000 + 500 * X[:, 0] - 200 * X[:, 1]  # prices: far from unit scale
    path = write_csv(tmp_path / "price.csv", ["a", "b", "price"],
                     [[*x, round(t, 3)] for x, t in zip(X, y, strict=True)])
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(path), "--layers", "2,16,1", "--epochs", "60",
                 "--lr", "0.01", "--quiet", "--out", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "test r2" in printed and "test mae" in printed and "test rmse" in printed
    prep = json.loads((run / "preprocessing.json").read_text())
    scaler = prep["target_scaler"]
    assert scaler["kind"] == "standard" and 2800 < scaler["mean"][0] < 3200
    assert 400 < scaler["scale"][0] < 700
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["r2"] > 0.95  # an unscaled target of ~3000 is far from learned in 60 epochs
    # evaluate and predict speak the target's units.
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "model.npz"), "--data", str(path)]) == 0
    found = scores(capsys.readouterr().out)
    assert main(["predict", "--model", str(run / "model.npz"), "--data", str(path),
                 "--target", "price", "--output", str(tmp_path / "p.csv")]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "prediction"
    predicted = np.array([float(r) for r in rows[1:]])
    assert all(r == f"{float(r):.6g}" for r in rows[1:])  # 6 significant digits
    truth = np.array([round(t, 3) for t in y])
    assert found["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - truth) ** 2)), rel=1e-3)
    assert found["mae"] == pytest.approx(np.mean(np.abs(predicted - truth)), rel=1e-3)
    r2 = 1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert found["r2"] == pytest.approx(r2, abs=1e-3)
    assert 1000 < predicted.mean() < 5000


def test_regression_scores_against_their_definition():
    y = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.array([1.5, 2.0, 3.0, 8.5])
    found = cli_data.regression_scores(p, y)
    assert found["mae"] == pytest.approx(0.5)
    assert found["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1 + 0.25) / 4))
    assert found["r2"] == pytest.approx(1 - 1.5 / np.sum((y - 3.75) ** 2))


# -- damaged run folders and the size cap ---------------------------------------------------------
@pytest.fixture()
def copied_run(mail_run, tmp_path):
    run, _ = mail_run
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("model.npz", "preprocessing.json", "config.toml"):
        (copy / name).write_bytes((run / name).read_bytes())
    return copy


@pytest.mark.parametrize("damage, message", [
    (lambda p: dict(p, classes=["ham"]), "'classes' names 1 classes but the model has 2 outputs"),
    (lambda p: [p], "it holds a list, not an object"),
    (lambda p: dict(p, scaler={k: v for k, v in p["scaler"].items() if k != "kind"}),
     "'scaler' has no 'kind' (standard or minmax)"),
    (lambda p: dict(p, scaler=dict(p["scaler"], scale=[1.0, 0.0, 1.0])),
     "'scaler' has a scale of 0 for feature 1"),
    (lambda p: dict(p, scaler=dict(p["scaler"], mean=[0.0])),
     "'scaler' has 1 values of 'mean' for 3 features"),
    (lambda p: dict(p, feature_names=["a", "b"]), "'feature_names' names 2 columns"),
    (lambda p: dict(p, target_scaler={"kind": "standard", "mean": [0, 0], "scale": [1, 0]}),
     "'target_scaler' has a scale of 0 for output 1"),
    (lambda p: {k: v for k, v in p.items() if k != "scaler"},
     "'scale' is 'standard' but there is no 'scaler'"),
    (lambda p: dict(p, task="regression"),
     "'task' is 'regression' but the model was trained for classification"),
])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_damaged_preprocessing_json_is_one_line_naming_the_entry(copied_run, tmp_path,
                                                                   capsys, damage, message,
                                                                   command):
    path = copied_run / "preprocessing.json"
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    write_csv(tmp_path / "new.csv", FEATURES, [[1, 2, 3]])
    argv = [command, "--model", str(copied_run / "model.npz")]
    if command == "predict":
        argv += ["--data", str(tmp_path / "new.csv"), "--output", str(tmp_path / "o.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert str(path) in err[0] and "retrain" in err[0]


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_max_bytes_caps_what_a_model_file_may_unpack_to(copied_run, tmp_path, capsys, command):
    write_csv(tmp_path / "new.csv", FEATURES, [[1, 2, 3]])
    argv = [command, "--model", str(copied_run / "model.npz"), "--data",
            str(tmp_path / "new.csv"), "--output", str(tmp_path / "o.csv")]
    if command == "evaluate":
        argv = argv[:3]
    assert main([*argv, "--max-bytes", "1K"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-bytes" in err[0], err
    assert main([*argv, "--max-bytes", "1M"]) == 0


def test_sizes_for_max_bytes():
    assert train.parse_size("123") == 123
    assert train.parse_size("4K") == 4096
    assert train.parse_size("8G") == 8 * 2**30
    assert train.parse_size("2GiB") == 2**31
    for bad in ("", "0", "-5", "lots", "1.5G"):
        with pytest.raises(Exception, match="not a size"):
            train.parse_size(bad)


# -- an interrupted train still saves its run ---------------------------------------------------
def interrupting_best_state(interrupt_at_epoch: int, again_on_restore: bool):
    """BestState that sends this process a SIGINT at the end of an epoch (a first Ctrl-C) and,
    optionally, another while the best weights are put back (a second one right after)."""
    class Interrupting(bp.BestState):
        def on_epoch_end(self, epoch, history):
            super().on_epoch_end(epoch, history)
            if epoch == interrupt_at_epoch:
                signal.raise_signal(signal.SIGINT)

        def restore(self, model):
            if again_on_restore:
                signal.raise_signal(signal.SIGINT)
            return super().restore(model)
    return Interrupting


def test_a_second_ctrl_c_does_not_leave_the_run_folder_empty(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "BestState", interrupting_best_state(3, again_on_restore=True))
    write_config = train.write_config

    def interrupted_write_config(settings, path):  # and a third, during the final writes
        signal.raise_signal(signal.SIGINT)
        write_config(settings, path)
    monkeypatch.setattr(train, "write_config", interrupted_write_config)
    before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "moons", "--epochs", "50", "--quiet",
                 "--out", str(out)]) == 130
    assert signal.getsignal(signal.SIGINT) is before
    err = capsys.readouterr().err
    assert "interrupted: saving the best model so far (epoch" in err and "still saving" in err
    for name in ("model.npz", "preprocessing.json", "config.toml", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] and metrics["epochs"] == 4
    assert bp.load(out / "model.npz").n_inputs == 2


def test_an_interrupt_that_breaks_off_saving_the_model_does_not_skip_it(tmp_path, monkeypatch):
    save = bp.Sequential.save
    calls = []

    def save_once_interrupted(self, path, *args, **kwargs):  # Ctrl-C reaching save as an error
        calls.append(path)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return save(self, path, *args, **kwargs)
    monkeypatch.setattr(bp.Sequential, "save", save_once_interrupted)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "moons", "--epochs", "2", "--quiet",
                 "--out", str(out)]) == 0
    assert len(calls) == 2 and (out / "model.npz").is_file()
    assert (out / "metrics.json").is_file()


def test_ctrl_c_pressed_again_and_again_leaves_a_complete_run(tmp_path):
    out = tmp_path / "run"
    with subprocess.Popen(
            [sys.executable, "-m", "bprop", "train", "--dataset", "moons", "--layers",
             "2,1500,1500,2", "--epochs", "1000000", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as process:
        try:
            for line in process.stdout:
                if line.startswith("epoch 5/"):
                    break
            for _ in range(100):  # a Ctrl-C every 10 ms: some land while the run is saved (a
                # model of 2.3M weights, 18 MB, saved in full)
                if process.poll() is not None:
                    break
                process.send_signal(signal.SIGINT)
                time.sleep(0.01)
            _, errors = process.communicate(timeout=120)
        finally:
            process.kill()
    assert "interrupted: saving the best model so far" in errors
    for name in ("model.npz", "preprocessing.json", "config.toml", "metrics.json"):
        assert (out / name).is_file(), name
    assert bp.load(out / "model.npz").n_inputs == 2


def test_train_and_evaluate_on_a_file_that_is_not_utf8_name_it(mail_run, tmp_path, capsys):
    run, _ = mail_run
    path = tmp_path / "latin.csv"
    path.write_bytes(b"a,b,c,kind\n1,2,3,spam\n" + b"4,5,6,caf\xe9\n")
    for argv in (["train", "--dataset", str(path), "--target", "kind", "--quiet",
                  "--out", str(tmp_path / "r")],
                 ["evaluate", "--model", str(run / "model.npz"), "--data", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0] and "UTF-8" in err[0], err
        assert "--target" not in err[0]


def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch, capsys):
    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(cli_data, "load", no_memory)
    assert main(["train", "--dataset", "moons", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not enough memory" in err[0]


def test_the_curves_mark_the_best_epoch(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    marked = []
    plot_history = train.plotting.plot_history

    def recording(history, path, **options):
        marked.append(options)
        return plot_history(history, path, **options)
    monkeypatch.setattr(train.plotting, "plot_history", recording)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "moons", "--epochs", "12", "--quiet",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    val = metrics["history"]["val_loss"]
    assert marked[0]["best_epoch"] == metrics["best_epoch"] == int(np.argmin(val)) + 1
    assert marked[0]["saved"] == (metrics["best_epoch"] == 12)  # a finished run saves the last


# -- where predictions go ---------------------------------------------------------------------
def test_predictions_to_a_folder_or_a_missing_folder_are_one_line_errors(mail_run, tmp_path,
                                                                          capsys):
    run, _ = mail_run
    data = write_csv(tmp_path / "new.csv", FEATURES, [[1, 2, 3], [0, 1, 0]])
    for output, message in ((tmp_path, "is a folder; give a file name"),
                            (tmp_path / "no" / "p.csv", "the folder")):
        assert main(["predict", "--model", str(run / "model.npz"), "--data", str(data),
                     "--output", str(output)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "Errno" not in err[0], err


def test_predictions_piped_into_a_reader_that_stops_early_are_no_error(mail_run, tmp_path):
    import subprocess
    import sys

    run, _ = mail_run
    X, _ = mail(5000, seed=3)
    data = write_csv(tmp_path / "many.csv", FEATURES, X.tolist())
    script = ("import sys; from bprop.cli import main; "
              f"sys.exit(main(['predict', '--model', {str(run / 'model.npz')!r}, '--data', "
              f"{str(data)!r}, '--output', '-']))")
    reader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    first = reader.stdout.readline()
    reader.stdout.close()  # as `| head -1` does
    assert first  # (the header row)
    assert reader.wait(timeout=60) == 0
    with reader.stderr:
        assert b"Broken pipe" not in reader.stderr.read()


def test_scores_of_a_tiny_target_keep_their_digits():
    from bprop.cli.train import format_score

    assert format_score("mae", 4.7e-08) == "4.7e-08"
    assert format_score("accuracy", 1.0) == "1.0000" and format_score("r2", 0.5) == "0.5000"


@pytest.mark.parametrize("option, message", [
    (["--l1", "-1"], "--l1 must be a number >= 0"),
    (["--seed", "-1"], "--seed must be a whole number >= 0"),
    (["--layers", "2,0,2"], "every layer size must be at least 1, got 0"),
    (["--momentum", "-1"], "--momentum must be a number >= 0"),
])
def test_bad_training_settings_are_named_by_their_option(option, message, capsys, tmp_path):
    assert main(["train", "--quiet", "--epochs", "1", "--out", str(tmp_path / "r"),
                 *option]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("command, option, default", [
    ("train", "--seed", "0"), ("train", "--dropout", "0.0"), ("train", "--patience", "0"),
    ("compare", "--epochs", "10"), ("compare", "--activation", "relu"),
    ("explain", "--seed", "0"),
])
def test_help_shows_every_default(command, option, default, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    entry = text.split(f" {option} ")[1].split(" --")[0]
    assert f"(default: {default})" in entry, entry


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_csv_of_a_header_only_is_named(mail_run, tmp_path, capsys, command):
    run, _ = mail_run
    header = [*FEATURES, "kind"] if command == "evaluate" else FEATURES
    data = write_csv(tmp_path / "empty.csv", header, [])
    argv = [command, "--model", str(run / "model.npz"), "--data", str(data)]
    if command == "predict":
        argv += ["--output", str(tmp_path / "o.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty.csv" in err[0] and "rows" in err[0], err


def test_evaluate_with_a_missing_data_dir_creates_nothing(mail_run, tmp_path, capsys):
    run, _ = mail_run
    missing = tmp_path / "no" / "such"
    assert main(["evaluate", "--model", str(run / "model.npz"), "--data", "mnist",
                 "--data-dir", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0], err
    assert not (tmp_path / "no").exists()

"""`bprop export`: the ONNX file does what `bprop predict` does (raw features in, the run's
scaling included, class names and probabilities or values in the target's units out), the
network alone reads back into bprop, BatchNorm folds, a torch.export program runs the network,
and every refusal is one line naming the problem."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from support import write_csv

import bprop as bp
from bprop.cli import data as cli_data
from bprop.cli import main

FEATURES = ["a", "b", "c"]
CLASSES = ["alpha", "beta", "gamma"]


def need_onnx():
    pytest.importorskip("onnx", reason="the ONNX export needs the onnx package")
    return pytest.importorskip("onnxruntime", reason="running the exported file needs "
                               "onnxruntime")


def raw_features(n, seed):
    """Three features on very different scales (thousands, thousandths, units), so that a
    file run without the run's scaling would give other answers."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    return np.column_stack([5000 + 1000 * z[:, 0], 0.001 * z[:, 1], z[:, 2]]).round(7), z


def kinds(z):
    """Three classes that depend on every feature (of its standardised value)."""
    score = z[:, 0] + z[:, 1] - z[:, 2]
    return np.array(CLASSES)[np.digitize(score, [-0.6, 0.6])]


def train_run(folder: Path, csv_path: Path, target: str, *options) -> Path:
    assert main(["train", "--dataset", str(csv_path), "--target", target, "--epochs", "20",
                 "--lr", "0.01", "--val-fraction", "0", "--quiet", "--out", str(folder / "run"),
                 *options]) == 0
    return folder / "run" / "model.npz"


def kinds_run(tmp_path_factory, *options):
    """A classifier trained on kinds.csv (a, b, c, kind): its model file, and new raw rows."""
    folder = tmp_path_factory.mktemp("kinds")
    X, z = raw_features(90, seed=0)
    path = write_csv(folder / "kinds.csv", [*FEATURES, "kind"],
                     [[*x, t] for x, t in zip(X, kinds(z), strict=True)])
    return train_run(folder, path, "kind", *options), raw_features(23, seed=1)[0]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return kinds_run(tmp_path_factory)


@pytest.fixture(scope="module")
def batchnorm_classifier(tmp_path_factory):
    return kinds_run(tmp_path_factory, "--batch-norm")


@pytest.fixture(scope="module")
def regressor(tmp_path_factory):
    """A regressor whose target is in the thousands (price = 20000 + 3000 a' - 2000 c' + noise,
    of the standardised features), and new raw rows."""
    folder = tmp_path_factory.mktemp("prices")
    X, z = raw_features(90, seed=2)
    noise = np.random.default_rng(3).standard_normal(90)
    price = (20000 + 3000 * z[:, 0] - 2000 * z[:, 2] + 100 * noise).round(2)
    path = write_csv(folder / "prices.csv", [*FEATURES, "price"],
                     [[*x, p] for x, p in zip(X, price, strict=True)])
    return train_run(folder, path, "price"), raw_features(17, seed=4)[0]


def preprocessing_of(model_path: Path) -> dict:
    return json.loads((model_path.parent / "preprocessing.json").read_text())


def export(model_path: Path, out: Path, *options) -> Path:
    assert main(["export", "--model", str(model_path), "--out", str(out), *options]) == 0
    return out


def run_onnx(path: Path, X: np.ndarray) -> dict:
    onnxruntime = need_onnx()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    element = session.get_inputs()[0].type  # tensor(float) or tensor(double)
    X = X.astype(np.float64 if "double" in element else np.float32)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": X}), strict=True))


def predicted_csv(model_path: Path, X: np.ndarray, folder: Path) -> list[list[str]]:
    """What `bprop predict` writes for the raw rows X (its header, then one row each)."""
    data = write_csv(folder / "new.csv", FEATURES, X.tolist())
    out = folder / "predictions.csv"
    assert main(["predict", "--model", str(model_path), "--data", str(data), "--output",
                 str(out)]) == 0
    with out.open(newline="") as file:
        return list(csv.reader(file))


# -- the ONNX file does what predict does ------------------------------------------------------
@pytest.mark.parametrize("run", ["classifier", "batchnorm_classifier"])
def test_classifier_file_gives_predicts_labels_and_the_models_probabilities(run, request,
                                                                           tmp_path, capsys):
    need_onnx()
    model_path, X = request.getfixturevalue(run)
    path = export(model_path, tmp_path / "kinds.onnx")
    printed = capsys.readouterr().out
    assert f"wrote {path}" in printed and "raw features in" in printed
    got = run_onnx(path, X)

    rows = predicted_csv(model_path, X, tmp_path)
    assert rows[0] == ["prediction", *(f"p({name})" for name in CLASSES)]
    assert got["label"].tolist() == [row[0] for row in rows[1:]]
    assert len(set(got["label"].tolist())) > 1  # (a constant answer would prove little)

    model, prep = bp.load(model_path), preprocessing_of(model_path)
    expected = model.predict_proba(cli_data.apply_preprocessing(X, prep))
    np.testing.assert_allclose(got["probabilities"], expected, rtol=1e-5)
    # predict prints 6 decimals of those same probabilities
    printed_proba = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(got["probabilities"], printed_proba, rtol=0, atol=1e-6)
    # the file without its scaling would answer otherwise: the scaler is really in it
    unscaled = model.predict_proba(X.astype(model.dtype))
    assert not np.allclose(got["probabilities"], unscaled, atol=1e-3)

    onnx = pytest.importorskip("onnx")
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(metadata["feature_names"]) == FEATURES
    assert json.loads(metadata["classes"]) == CLASSES


def test_regression_file_gives_the_predictions_in_the_targets_units(regressor, tmp_path):
    need_onnx()
    model_path, X = regressor
    assert main(["export", "--model", str(model_path)]) == 0
    path = model_path.with_suffix(".onnx")  # (by default, beside the model)
    got = run_onnx(path, X)
    assert set(got) == {"output"}

    model, prep = bp.load(model_path), preprocessing_of(model_path)
    assert prep.get("target_scaler") is not None  # (else this test proves nothing of it)
    expected = cli_data.unscale_target(
        model.predict(cli_data.apply_preprocessing(X, prep)), prep)
    np.testing.assert_allclose(got["output"].reshape(-1), expected.reshape(-1), rtol=1e-5)
    assert np.abs(expected).min() > 1000  # in the target's units, not the network's
    # and what predict writes (6 significant digits)
    rows = predicted_csv(model_path, X, tmp_path)
    printed = np.array([float(row[0]) for row in rows[1:]])
    np.testing.assert_allclose(got["output"].reshape(-1), printed, rtol=1e-5)


# -- the network alone, folded BatchNorm -------------------------------------------------------
def test_no_preprocessing_file_imports_back_to_the_same_network(batchnorm_classifier,
                                                                tmp_path, capsys):
    need_onnx()
    model_path, X = batchnorm_classifier
    path = export(model_path, tmp_path / "net.onnx", "--no-preprocessing")
    assert "raw features" not in capsys.readouterr().out
    model, back = bp.load(model_path), bp.import_onnx(path)
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in model.layers]
    assert any(isinstance(layer, bp.BatchNorm) for layer in back.layers)
    original, imported = model.state_dict(), back.state_dict()
    assert set(imported) == set(original)
    for name, value in original.items():
        assert np.array_equal(imported[name], value), name
    # the network alone: its input is the scaled features
    Z = cli_data.apply_preprocessing(X, preprocessing_of(model_path)).astype(model.dtype)
    np.testing.assert_allclose(run_onnx(path, Z)["output"], model.forward(Z, training=False),
                               rtol=1e-5, atol=1e-6)


def test_fold_batchnorm_gives_the_same_outputs_without_a_batchnorm_node(batchnorm_classifier,
                                                                        tmp_path):
    need_onnx()
    import onnx

    model_path, X = batchnorm_classifier
    plain = export(model_path, tmp_path / "plain.onnx")
    folded = export(model_path, tmp_path / "folded.onnx", "--fold-batchnorm")
    ops = {path: {node.op_type for node in onnx.load(str(path)).graph.node}
           for path in (plain, folded)}
    assert "BatchNormalization" in ops[plain]
    assert "BatchNormalization" not in ops[folded]
    expected, got = run_onnx(plain, X), run_onnx(folded, X)
    np.testing.assert_allclose(got["output"], expected["output"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=1e-5,
                               atol=1e-6)
    assert got["label"].tolist() == expected["label"].tolist()


# -- torch.export ------------------------------------------------------------------------------
def test_torch_program_runs_the_network_on_any_batch(batchnorm_classifier, tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="--format torch needs PyTorch")
    model_path, X = batchnorm_classifier
    capsys.readouterr()
    assert main(["export", "--model", str(model_path), "--format", "torch"]) == 0
    path = model_path.with_suffix(".pt2")
    printed = capsys.readouterr().out
    assert f"wrote {path}" in printed
    assert "must be scaled" in printed and "--format onnx includes the scaling" in printed
    module = torch.export.load(str(path)).module()
    model = bp.load(model_path)
    Z = cli_data.apply_preprocessing(X, preprocessing_of(model_path)).astype(model.dtype)
    for rows in (Z[:1], Z[:7]):
        with torch.no_grad():
            got = module(torch.from_numpy(np.ascontiguousarray(rows))).numpy()
        assert got.shape == (len(rows), model.n_outputs)
        np.testing.assert_allclose(got, model.forward(rows, training=False), rtol=1e-5,
                                   atol=1e-6)


def test_torch_message_of_a_run_without_scaling_says_nothing_of_it(tmp_path_factory,
                                                                   tmp_path, capsys):
    pytest.importorskip("torch", reason="--format torch needs PyTorch")
    model_path, _ = kinds_run(tmp_path_factory, "--scale", "none")
    capsys.readouterr()
    export(model_path, tmp_path / "net.pt2", "--format", "torch")
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'net.pt2'}: the network alone" in printed
    assert "scaled" not in printed


# -- refusals ----------------------------------------------------------------------------------
def refused(argv, capsys) -> str:
    """The one line on stderr of a command that must exit with status 2."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bprop export: error: ") and "\n" not in err, err
    return err


def test_export_refusals_are_one_line_naming_the_problem(classifier, tmp_path, capsys):
    model_path, _ = classifier
    model = ["export", "--model", str(model_path)]
    missing = tmp_path / "nothing.npz"
    assert "not found" in refused(["export", "--model", str(missing)], capsys)
    assert "is a folder" in refused([*model, "--out", str(tmp_path)], capsys)
    err = refused([*model, "--out", str(tmp_path / "no" / "m.onnx")], capsys)
    assert "does not exist" in err and str(tmp_path / "no") in err
    assert "--opset" in refused([*model, "--format", "torch", "--opset", "17"], capsys)
    assert not (tmp_path / "no").exists()
    # an export over the model file itself would lose the model
    before = model_path.read_bytes()
    for form in ("onnx", "torch"):
        err = refused([*model, "--format", form, "--out",
                       str(model_path.parent / ".." / model_path.parent.name / "model.npz")],
                      capsys)
        assert "is the model file itself" in err
    assert model_path.read_bytes() == before


def test_an_opset_onnx_cannot_write_is_refused(classifier, tmp_path, capsys):
    pytest.importorskip("onnx", reason="the opset check needs the onnx package")
    model_path, _ = classifier
    err = refused(["export", "--model", str(model_path), "--out", str(tmp_path / "m.onnx"),
                   "--opset", "5"], capsys)
    assert "opset" in err and "5" in err and "14" in err
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnx_package_says_what_to_install(classifier, tmp_path, capsys, hide_package):
    model_path, _ = classifier
    hide_package("onnx")
    err = refused(["export", "--model", str(model_path), "--out",
                   str(tmp_path / "m.onnx")], capsys)
    assert "onnx" in err and "pip install" in err
    assert not (tmp_path / "m.onnx").exists()


def test_export_help_names_both_formats(capsys):
    with pytest.raises(SystemExit) as done:
        main(["export", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "usage: bprop export" in out and "onnx" in out and "torch" in out


def test_predict_will_not_write_over_the_model_either(classifier, tmp_path, capsys):
    model_path, _ = classifier
    rows = write_csv(tmp_path / "rows.csv", FEATURES, [[1.0] * len(FEATURES)])
    before = model_path.read_bytes()
    assert main(["predict", "--model", str(model_path), "--data", str(rows),
                 "--output", str(model_path)]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "is the model file itself" in err
    assert model_path.read_bytes() == before

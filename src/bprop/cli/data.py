"""Datasets by name for the command line, split and scaled the same way every time; the run
folder's record of how (``preprocessing.json``); and CSV columns matched to a model by name."""

from __future__ import annotations

import csv
import difflib
import json
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import data as datasets
from .._files import write_text
from ..data import mnist as mnist_files
from ..data.csv import looks_like_header
from ..data.preprocessing import MinMaxScaler, StandardScaler, train_test_split
from .errors import UsageError

TOY = {
    "xor": lambda seed: datasets.make_xor(),
    "planar": lambda seed: datasets.make_planar(seed=seed + 1),
    "moons": lambda seed: datasets.make_moons(400, noise=0.15, seed=seed),
    "circles": lambda seed: datasets.make_circles(400, noise=0.08, seed=seed),
    "spirals": lambda seed: datasets.make_spirals(300, n_classes=3, noise=0.15, seed=seed),
    "quadratic": lambda seed: datasets.make_quadratic(),
}
IMAGES = ("digits", "mnist", "fashion-mnist")
#: a CSV target of whole numbers with more distinct values than this is taken as regression
MAX_CLASSES = 20
NAMES = (*TOY, *IMAGES)
SCALINGS = ("auto", "none", "standard", "minmax")
IDX_SOURCES = {"mnist": mnist_files.MNIST, "fashion-mnist": mnist_files.FASHION_MNIST}


@dataclass
class Data:
    """A dataset ready for training: split, scaled, with what is needed to redo the same on
    new data (``preprocessing``).

    ``X_train`` (n_train, n_features) and ``X_test`` (n_test, n_features) are scaled; ``y_train``
    and ``y_test`` are class indices 0..k-1 (int64) or, for a regression, the target in its own
    units (the target scaler is in ``preprocessing["target_scaler"]``).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str                                    # "classification" or "regression"
    preprocessing: dict = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        if self.task == "regression":
            return 1 if self.y_train.ndim == 1 else self.y_train.shape[1]
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def image_side(self) -> int | None:
        side = int(round(np.sqrt(self.X_train.shape[1])))
        return side if side * side == self.X_train.shape[1] and side >= 8 else None


def load(name: str, *, target="-1", data_dir=None, test_fraction: float = 0.2,
         scale: str = "auto", task: str = "auto", seed: int = 0,
         every_row: bool = False) -> Data:
    """Load a built-in dataset by name, or a CSV file (with ``target`` its target column).

    A CSV target of text, or of at most MAX_CLASSES distinct whole numbers, is a
    classification (its labels, whatever they are, become 0..k-1, kept in ``classes``);
    otherwise, or with ``task="regression"``, a regression. ``every_row=True`` (CSV files
    only) makes the test part every row of the file, unsplit.

    ``preprocessing`` records where the data are, absolutely (``dataset``: the CSV file's path
    or the built-in name; ``data_dir``: the folder the MNIST files were found in), the feature
    names of a CSV file with a header (else None) and its target column's name.
    """
    if scale not in SCALINGS:
        raise UsageError(f"scale must be one of {', '.join(SCALINGS)}, not {scale!r}")
    if task not in ("auto", "classification", "regression"):
        raise UsageError(f"task must be auto, classification or regression, not {task!r}")
    classes = None
    record = {"dataset": name, "data_dir": None, "feature_names": None, "target": None}
    if name in TOY:
        X, y = TOY[name](seed)
        if name == "xor":  # four points: train and test on the truth table itself
            X_train, X_test, y_train, y_test = X, X, y, y
        else:
            stratify = None if name == "quadratic" else y
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=test_fraction, stratify=stratify, seed=seed)
        found_task = "regression" if name == "quadratic" else "classification"
    elif name == "digits":
        X, y = datasets.load_digits()
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_fraction, stratify=y, seed=seed)
        found_task = "classification"
    elif name in IDX_SOURCES:
        loader = datasets.load_mnist if name == "mnist" else datasets.load_fashion_mnist
        (X_train, y_train), (X_test, y_test) = loader(data_dir)
        found_task = "classification"
        folder = idx_folder(name, data_dir)
        record["data_dir"] = str(folder) if folder is not None else None
    elif name.lower().endswith(".csv"):
        path = Path(name)
        header = read_header(path)
        with csv_errors(path):
            table = datasets.load_csv(path, target=_column(target), header=header is not None)
        y = table.y
        if table.classes is not None:
            classes, found_task = table.classes, "classification"
        elif y.dtype.kind in "iu" and len(np.unique(y)) <= MAX_CLASSES and task != "regression":
            # Whole numbers with few distinct values are class labels, whatever their values.
            values, y = np.unique(y, return_inverse=True)
            classes, found_task = [str(v) for v in values], "classification"
        else:
            found_task = "regression"
        if every_row:
            X_train, X_test, y_train, y_test = table.X, table.X, y, y
        else:
            stratify = y if found_task == "classification" and _stratifiable(y) else None
            X_train, X_test, y_train, y_test = train_test_split(
                table.X, y, test_size=test_fraction, stratify=stratify, seed=seed)
        record.update(dataset=str(path.resolve()), target=table.target_name,
                      feature_names=list(table.feature_names) if header else None)
    else:
        raise UsageError(f"unknown dataset {name!r}{did_you_mean(name, NAMES, end='')}; "
                         "choose from "
                         f"{', '.join(NAMES)}, or give the path of a .csv file")
    if every_row and not name.lower().endswith(".csv"):
        raise UsageError(f"every row: {name} is a built-in dataset, not a CSV file")
    task = found_task if task == "auto" else task
    if scale == "auto":
        scale = "none" if name in IMAGES else "standard"
    preprocessing = {**record, "task": task, "scale": scale, "classes": classes}
    if scale != "none":
        scaler = (StandardScaler() if scale == "standard" else MinMaxScaler()).fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        preprocessing["scaler"] = _scaler_state(scaler)
    if task == "classification":
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    else:
        # A target in the thousands (prices) or thousandths trains as badly as unscaled
        # features: the network learns it standardised, and predictions are scaled back.
        y_train = np.asarray(y_train, dtype=np.float64)
        y_test = np.asarray(y_test, dtype=np.float64)
        preprocessing["target_scaler"] = _scaler_state(
            StandardScaler().fit(y_train.reshape(len(y_train), -1)))
    return Data(X_train, y_train, X_test, y_test, task, preprocessing)


def did_you_mean(word: str, choices, end: str = "?") -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to a mistyped ``word``, or "";
    ``end=""`` leaves out the question mark, for a sentence that goes on."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=3)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + end


def idx_folder(name: str, data_dir) -> Path | None:
    """The absolute folder the files of MNIST or Fashion-MNIST were read from (None if they
    are nowhere)."""
    return mnist_files.data_folder(IDX_SOURCES[name], data_dir)


def _column(target):
    text = str(target)
    return int(text) if text.lstrip("-").isdigit() else text


def _stratifiable(y: np.ndarray) -> bool:
    return np.bincount(y - y.min()).min(initial=2) >= 2 if len(y) else False


def _scaler_state(scaler) -> dict:
    if isinstance(scaler, StandardScaler):
        return {"kind": "standard", "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}
    return {"kind": "minmax", "scale": scaler.scale_.tolist(), "min": scaler.min_.tolist()}


def apply_preprocessing(X: np.ndarray, preprocessing: dict) -> np.ndarray:
    """Scale new data (n_samples, n_features) exactly as the training data were."""
    state = preprocessing.get("scaler")
    if state is None:
        return X
    if state["kind"] == "standard":
        return (X - np.array(state["mean"])) / np.array(state["scale"])
    return X * np.array(state["scale"]) + np.array(state["min"])


def scale_target(y: np.ndarray, preprocessing: dict) -> np.ndarray:
    """A regression target (n_samples,) or (n_samples, n_outputs) as the network learns it."""
    mean, scale = _target_scaling(y, preprocessing)
    return (y - mean) / scale


def unscale_target(y: np.ndarray, preprocessing: dict) -> np.ndarray:
    """The network's regression output back in the target's own units (same shape)."""
    mean, scale = _target_scaling(y, preprocessing)
    return y * scale + mean


def _target_scaling(y: np.ndarray, preprocessing: dict) -> tuple:
    """The run's target mean and scale, shaped for ``y`` (0 and 1 for a run without them)."""
    state = preprocessing.get("target_scaler")
    if state is None:
        return 0.0, 1.0
    mean, scale = np.array(state["mean"]), np.array(state["scale"])
    return (mean[0], scale[0]) if y.ndim == 1 else (mean, scale)


def regression_scores(predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """R², mean absolute error and root-mean-square error, in the target's own units.

    R² = 1 - sum((y - p)²) / sum((y - mean(y))²), averaged over the outputs (as scikit-learn's
    ``r2_score`` does); 0 when the target is constant and predicted exactly, else -inf.
    """
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(y.shape)
    error = y - predicted
    residual = (error ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1),
                      np.where(residual > 0, -np.inf, 0.0))
    return {"r2": float(r2.mean()), "mae": float(np.abs(error).mean()),
            "rmse": float(np.sqrt((error ** 2).mean()))}


# -- the run folder's preprocessing.json -----------------------------------------------------
def save_preprocessing(preprocessing: dict, folder: Path) -> Path:
    path = folder / "preprocessing.json"
    write_text(path, json.dumps(preprocessing, indent=2) + "\n")
    return path


def read_preprocessing(model_path: Path, n_inputs: int | None = None,
                       n_outputs: int | None = None, model_task: str | None = None) -> dict:
    """The preprocessing saved beside a model by ``bprop train`` (empty if there is none),
    checked against the model's ``n_inputs`` and ``n_outputs`` when they are given: a damaged
    file is a UsageError saying which entry is wrong."""
    path = Path(model_path).parent / "preprocessing.json"
    if not path.is_file():
        return {}
    try:
        preprocessing = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is damaged ({error}); {_fix(path)}") from None
    check_preprocessing(preprocessing, path, n_inputs, n_outputs, model_task)
    return preprocessing


def _fix(path: Path) -> str:
    return (f"retrain (bprop train --out {path.parent}) or restore the file that train wrote")


def check_preprocessing(preprocessing, path: Path, n_inputs: int | None = None,
                        n_outputs: int | None = None, model_task: str | None = None) -> None:
    """Refuse a preprocessing record that would misuse the model (every entry is optional);
    ``model_task`` is the model's own ("multiclass", "binary" or "regression", from its
    loss), which the record's task must agree with."""
    def damaged(what: str) -> UsageError:
        return UsageError(f"{path} is damaged: {what}; {_fix(path)}")

    if not isinstance(preprocessing, dict):
        raise damaged(f"it holds a {type(preprocessing).__name__}, not an object of named "
                      "entries (task, scaler, classes, ...)")
    task = preprocessing.get("task")
    if task not in (None, "classification", "regression"):
        raise damaged(f"'task' is {task!r}, not 'classification' or 'regression'")
    if task is not None and model_task is not None and (task == "regression") != (
            model_task == "regression"):
        raise damaged(f"'task' is {task!r} but the model was trained for "
                      f"{'regression' if model_task == 'regression' else 'classification'}")
    for key in ("dataset", "data_dir", "target", "scale"):
        if preprocessing.get(key) is not None and not isinstance(preprocessing[key], str):
            raise damaged(f"'{key}' is {preprocessing[key]!r}, not a text")
    classes = preprocessing.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise damaged(f"'classes' is {_short(classes)}, not a list of class names")
        if n_outputs is not None and len(classes) != n_outputs and not (
                n_outputs == 1 and len(classes) == 2):
            raise damaged(f"'classes' names {len(classes)} classes but the model has "
                          f"{n_outputs} outputs")
    names = preprocessing.get("feature_names")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise damaged(f"'feature_names' is {_short(names)}, not a list of column names")
        if len(set(names)) != len(names):
            raise damaged("'feature_names' names a column twice")
        if n_inputs is not None and len(names) != n_inputs:
            raise damaged(f"'feature_names' names {len(names)} columns but the model has "
                          f"{n_inputs} inputs")
    _check_scaler(preprocessing.get("scaler"), "scaler", n_inputs, damaged)
    scale, scaler = preprocessing.get("scale"), preprocessing.get("scaler")
    if scale in ("standard", "minmax") and scaler is None:
        raise damaged(f"'scale' is {scale!r} but there is no 'scaler' with the statistics "
                      "the model's inputs were scaled by")
    if scale is not None and scaler is not None and scaler.get("kind") != scale:
        raise damaged(f"'scale' is {scale!r} but the 'scaler' is of kind "
                      f"{scaler.get('kind')!r}")
    _check_scaler(preprocessing.get("target_scaler"), "target_scaler", n_outputs, damaged)


def _check_scaler(state, key: str, size: int | None, damaged) -> None:
    if state is None:
        return
    if not isinstance(state, dict):
        raise damaged(f"'{key}' is {_short(state)}, not an object with kind, mean and scale")
    kind = state.get("kind")
    if kind is None:
        raise damaged(f"'{key}' has no 'kind' (standard or minmax)")
    needed = {"standard": ("mean", "scale"), "minmax": ("scale", "min")}.get(kind)
    if needed is None or (key == "target_scaler" and kind != "standard"):
        raise damaged(f"'{key}' has kind {kind!r}, not "
                      f"{'standard' if key == 'target_scaler' else 'standard or minmax'}")
    what = "feature" if key == "scaler" else "output"
    for name in needed:
        values = state.get(name)
        if not isinstance(values, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise damaged(f"'{key}' has {'no' if values is None else 'a bad'} '{name}' "
                          "(a list of numbers, one per " + what + ")")
        if size is not None and len(values) != size:
            raise damaged(f"'{key}' has {len(values)} values of '{name}' for {size} "
                          f"{what}s of the model")
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        if bad is not None:
            raise damaged(f"'{key}' has {name} {values[bad]} for {what} {bad}, not a finite "
                          "number")
        if name == "scale":
            zero = next((i for i, v in enumerate(values) if v == 0), None)
            if zero is not None:
                use = "divided" if kind == "standard" else "multiplied"
                raise damaged(f"'{key}' has a scale of 0 for {what} {zero} (values are "
                              f"{use} by it)")


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- CSV columns by name -----------------------------------------------------------------------
@contextmanager
def csv_errors(path: Path):
    """A CSV file that cannot be decoded or parsed is a one-line UsageError naming it."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise UsageError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); "
                         "re-save it as UTF-8") from None
    except csv.Error as error:
        raise UsageError(f"{path} is not a readable CSV file ({error})") from None


def read_header(path: Path, delimiter: str = ",") -> list[str] | None:
    """The column names of a CSV file's first line, or None when the file has no header.

    The rule is :func:`bprop.data.load_csv`'s: the first line is a header when it has text
    where the second line has a number (a file of one line: when it is not all numbers).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such CSV file: {path}")
    rows = []
    with csv_errors(path), path.open(newline="", encoding="utf-8-sig") as file:
        for row in csv.reader(file, delimiter=delimiter):
            if any(cell.strip() for cell in row):
                rows.append([cell.strip() for cell in row])
                if len(rows) == 2:
                    break
    if not rows:
        raise UsageError(f"{path} is empty")
    first = rows[0][:-1] if len(rows[0]) > 1 and not rows[0][-1] else rows[0]  # a trailing ,
    return first if looks_like_header(first, rows[1] if len(rows) > 1 else None) else None


def feature_order(path: Path, columns: list[str] | None, preprocessing: dict,
                  command: str, n_inputs: int | None, quiet: bool = False) -> list[int] | None:
    """Where each of the model's features is among a CSV file's feature ``columns``.

    Returns the column index of each feature, in the model's order, or None to take the
    columns as they come (a file without a header, or a run that recorded no feature names:
    said on standard error unless ``quiet``). A missing column, an extra one, or the target
    column in a file to predict is a UsageError naming them.
    """
    expected = preprocessing.get("feature_names")
    target = preprocessing.get("target")
    if columns is None or expected is None:
        if quiet:
            return None
        why = (f"{path} has no header line" if columns is None
               else "the run recorded no feature names (trained on data without a header)")
        count = f" its {n_inputs}" if n_inputs else " its"
        print(f"bprop {command}: note: {why}, so{count} columns are taken by position, in the "
              "order of the training data", file=sys.stderr)
        return None
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise UsageError(f"{path} has more than one column named {_names(duplicated)}")
    if command == "predict" and target is not None and target in columns:
        raise UsageError(f"{path}: column {target!r} is the target the model predicts; drop it "
                         "or use evaluate")
    missing = [name for name in expected if name not in columns]
    extra = [name for name in columns if name not in expected]
    if missing or extra:
        parts = []
        if missing:
            close = did_you_mean(missing[0], extra) if len(missing) == 1 else ""
            parts.append(f"lacks the column{'s' * (len(missing) > 1)} {_names(missing)} "
                         f"that the model needs{close}")
        if extra:
            parts.append(f"has the column{'s' * (len(extra) > 1)} {_names(extra)} that the "
                         "model was not trained on")
        raise UsageError(f"{path} {' and '.join(parts)}; the model's features are "
                         f"{_names(expected, 12)}")
    return [columns.index(name) for name in expected]


def _names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")

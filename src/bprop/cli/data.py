"""Datasets by name for the command line, split and scaled the same way every time."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import data as datasets
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


@dataclass
class Data:
    """A dataset ready for training: split, scaled, with what is needed to redo the same on
    new data (``preprocessing``)."""

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
         scale: str = "auto", task: str = "auto", seed: int = 0) -> Data:
    """Load a built-in dataset by name, or a CSV file (with ``target`` its target column).

    A CSV target of text, or of at most MAX_CLASSES distinct whole numbers, is a
    classification (its labels, whatever they are, become 0..k-1, kept in ``classes``);
    otherwise, or with ``task="regression"``, a regression.
    """
    if scale not in SCALINGS:
        raise UsageError(f"scale must be one of {', '.join(SCALINGS)}, not {scale!r}")
    classes = None
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
    elif name in ("mnist", "fashion-mnist"):
        loader = datasets.load_mnist if name == "mnist" else datasets.load_fashion_mnist
        (X_train, y_train), (X_test, y_test) = loader(data_dir)
        found_task = "classification"
    elif name.lower().endswith(".csv"):
        table = datasets.load_csv(name, target=_column(target))
        y = table.y
        if table.classes is not None:
            classes, found_task = table.classes, "classification"
        elif y.dtype.kind in "iu" and len(np.unique(y)) <= MAX_CLASSES and task != "regression":
            # Whole numbers with few distinct values are class labels, whatever their values.
            values, y = np.unique(y, return_inverse=True)
            classes, found_task = [str(v) for v in values], "classification"
        else:
            found_task = "regression"
        stratify = y if found_task == "classification" and _stratifiable(y) else None
        X_train, X_test, y_train, y_test = train_test_split(
            table.X, y, test_size=test_fraction, stratify=stratify, seed=seed)
    else:
        raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(NAMES)}, or give "
                         "the path of a .csv file")
    if task not in ("auto", "classification", "regression"):
        raise UsageError(f"task must be auto, classification or regression, not {task!r}")
    task = found_task if task == "auto" else task
    if scale == "auto":
        scale = "none" if name in IMAGES else "standard"
    preprocessing = {"dataset": name, "task": task, "scale": scale, "classes": classes}
    if scale != "none":
        scaler = (StandardScaler() if scale == "standard" else MinMaxScaler()).fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        preprocessing["scaler"] = _scaler_state(scaler)
    if task == "classification":
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    return Data(X_train, y_train, X_test, y_test, task, preprocessing)


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
    """Scale new data exactly as the training data were."""
    state = preprocessing.get("scaler")
    if state is None:
        return X
    if state["kind"] == "standard":
        return (X - np.array(state["mean"])) / np.array(state["scale"])
    return X * np.array(state["scale"]) + np.array(state["min"])


def save_preprocessing(preprocessing: dict, folder: Path) -> Path:
    path = folder / "preprocessing.json"
    path.write_text(json.dumps(preprocessing, indent=2) + "\n")
    return path


def read_preprocessing(model_path: Path) -> dict:
    """The preprocessing saved beside a model by ``bprop train`` (empty if there is none)."""
    path = Path(model_path).parent / "preprocessing.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is damaged ({error}); retrain or delete it") from None

"""``bprop train``, ``bprop evaluate`` and ``bprop predict``.

``train`` takes its settings from command-line options, from a TOML file (``--config``), or
both (options win). It writes a run folder: ``model.npz``, ``preprocessing.json`` (how to scale
new data, and the class names), ``metrics.csv`` and ``metrics.json`` (every metric per epoch and
the final test scores), ``config.toml`` (the settings used) and pictures.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from .. import io
from ..backend.devices import get_device, to_numpy
from ..nn.builder import mlp
from ..nn.layers import ACTIVATIONS, INITS, Dense
from ..nn.model import Sequential
from ..optim.callbacks import BestState, EarlyStopping, Progress
from ..optim.optimizers import OPTIMIZERS as OPTIMIZER_CLASSES
from ..optim.optimizers import get_optimizer
from ..optim.regularizers import L1, L1L2, L2
from ..optim.schedules import CosineLR, StepLR
from ..tools import plotting
from . import data as datasets
from .errors import UsageError

DEFAULTS = {
    "dataset": "moons", "target": "-1", "data_dir": None, "task": "auto", "scale": "auto",
    "test_fraction": 0.2, "val_fraction": 0.1, "layers": None, "activation": "relu",
    "init": "he", "dropout": 0.0, "batch_norm": False, "optimizer": "adam", "lr": 0.001,
    "momentum": 0.9, "weight_decay": 0.0, "l1": 0.0, "l2": 0.0, "schedule": "none",
    "epochs": 20, "batch_size": 32, "patience": 0, "seed": 0, "out": "runs/latest",
    "device": "cpu",
}
TYPES = {"dataset": str, "target": str, "data_dir": str, "task": str, "scale": str,
         "test_fraction": float, "val_fraction": float, "layers": str, "activation": str,
         "init": str, "dropout": float, "batch_norm": bool, "optimizer": str, "lr": float,
         "momentum": float, "weight_decay": float, "l1": float, "l2": float, "schedule": str,
         "epochs": int, "batch_size": int, "patience": int, "seed": int, "out": str,
         "device": str}
OPTIMIZERS = tuple(name.lower() for name in OPTIMIZER_CLASSES)  # sgd, adam, adamw, rmsprop
SCHEDULES = ("none", "cosine", "step")
DEVICES = ("cpu", "cuda", "auto")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bprop train``: each defaults to None so that a config file can fill it."""
    add = parser.add_argument
    add("--config", help="a TOML file with any of the settings below (options override it)")
    add("--dataset", help=f"one of {', '.join(datasets.NAMES)}, or a CSV file "
        f"(default {DEFAULTS['dataset']})")
    add("--target", help="the CSV's target column, by name or index (default: the last)")
    add("--data-dir", help="folder with the MNIST / Fashion-MNIST files")
    add("--task", choices=["auto", "classification", "regression"])
    add("--scale", choices=list(datasets.SCALINGS),
        help="feature scaling (auto: standard, none for images)")
    add("--test-fraction", type=float, help="held-out test share for sets without a test part")
    add("--val-fraction", type=float, help="validation share of the training data (0: none)")
    add("--layers", help="layer sizes from inputs to outputs, e.g. 784,256,128,10 "
        "(default: inputs,32,outputs)")
    add("--activation", choices=sorted(set(ACTIVATIONS) - {"softmax", "identity"}))
    add("--init", choices=list(INITS))
    add("--dropout", type=float, help="dropout probability after each hidden layer")
    add("--batch-norm", action="store_true", default=None, help="BatchNorm after each hidden "
        "Dense layer")
    add("--optimizer", choices=list(OPTIMIZERS))
    add("--lr", type=float, help="learning rate")
    add("--momentum", type=float, help="momentum for sgd and rmsprop")
    add("--weight-decay", type=float)
    add("--l1", type=float, help="L1 penalty strength on the weights")
    add("--l2", type=float, help="L2 penalty strength on the weights")
    add("--schedule", choices=list(SCHEDULES), help="learning-rate schedule")
    add("--epochs", type=int)
    add("--batch-size", type=int)
    add("--patience", type=int, help="stop after this many epochs without improvement "
        "(0: train all epochs)")
    add("--seed", type=int)
    add("--device", choices=list(DEVICES), help="where to train: cpu (default), cuda (an "
        "NVIDIA GPU through CuPy) or auto (the GPU if there is one)")
    add("--out", help="run folder (default runs/latest)")
    add("--quiet", action="store_true", help="no progress output")


def settings_from(args: argparse.Namespace) -> dict:
    """Defaults, then the TOML file, then the options given on the command line."""
    settings = dict(DEFAULTS)
    if args.config:
        settings.update(read_config(Path(args.config)))
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    return settings


def read_config(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise UsageError("reading a TOML config needs Python 3.11, or: pip install tomli") \
                from None
    if not path.is_file():
        raise UsageError(f"config file {path} not found")
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path} is not valid TOML: {error}") from None
    config = {key.replace("-", "_"): value for key, value in config.items()}
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(unknown)}; known keys are "
                         f"{', '.join(sorted(DEFAULTS))}")
    for key, value in config.items():
        if key == "layers" and isinstance(value, list):
            value = config[key] = ",".join(str(v) for v in value)
        expected = TYPES[key]
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int)
                                             and not isinstance(value, bool))
        if key == "target" and isinstance(value, int):
            config[key], ok = str(value), True
        if not ok:
            raise UsageError(f"{path}: {key} must be {expected.__name__}, got {value!r}")
    return config


def write_config(settings: dict, path: Path) -> None:
    lines = ["# the settings of this run. Rerun them from the folder you trained in (paths are",
             "# as given there): bprop train --config THIS_FILE --out ANOTHER_FOLDER"]
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(value)
        else:
            text = json.dumps(str(value))
        lines.append(f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")


# -- train ---------------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    check_settings(settings)
    data = datasets.load(settings["dataset"], target=settings["target"],
                         data_dir=settings["data_dir"], test_fraction=settings["test_fraction"],
                         scale=settings["scale"], task=settings["task"], seed=settings["seed"])
    model = build_model(settings, data)
    X_train, y_train, validation = split_validation(settings, data)
    optimizer = build_optimizer(settings)
    loss = "softmax_cross_entropy" if data.task == "classification" else "mse"
    monitor = "val_loss" if validation else "loss"
    best = BestState(monitor=monitor)
    callbacks = [best]
    if settings["patience"]:
        callbacks.append(EarlyStopping(monitor=monitor, patience=settings["patience"]))
    if not args.quiet:
        callbacks.append(Progress(settings["epochs"]))
    schedule = build_schedule(settings, optimizer)
    regularizer = build_regularizer(settings)
    out = Path(settings["out"])
    out.mkdir(parents=True, exist_ok=True)
    if not args.quiet:
        print(model.summary())
        print(f"training on {len(X_train)} samples of {settings['dataset']} "
              f"({data.task}), testing on {len(data.X_test)}", flush=True)
    interrupted = False
    history = None
    try:
        history = model.fit(X_train, y_train, loss=loss, optimizer=optimizer,
                            epochs=settings["epochs"], batch_size=settings["batch_size"],
                            validation_data=validation, metrics=None, regularizer=regularizer,
                            schedule=schedule, callbacks=callbacks)
    except KeyboardInterrupt:
        interrupted = True
        if best.restore(model):
            print(f"\ninterrupted: saving the best model so far (epoch {best.best_epoch + 1})",
                  file=sys.stderr, flush=True)
        else:
            print("\ninterrupted before the first epoch ended: saving the model as it is",
                  file=sys.stderr, flush=True)
    history = history.history if history is not None else best.history
    test = model.evaluate(data.X_test, data.y_test)
    model.save(out / "model.npz")
    datasets.save_preprocessing(data.preprocessing, out)
    write_config(settings, out / "config.toml")
    write_metrics(history, test, out, interrupted, best.best_epoch)
    pictures = draw_pictures(model, data, history, out)
    scores = "  ".join(f"test {k} {v:.4f}" for k, v in test.items())
    print(f"{scores}\nsaved {out / 'model.npz'} and the run's metrics, config and "
          f"{len(pictures)} picture(s) in {out}/")
    return 130 if interrupted else 0


def check_settings(settings: dict) -> None:
    if settings["device"] not in DEVICES:
        raise UsageError(f"device must be one of {', '.join(DEVICES)}, not "
                         f"{settings['device']!r}")
    get_device(settings["device"])  # a missing GPU is said before any data are read
    if settings["optimizer"] not in OPTIMIZERS:
        raise UsageError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not "
                         f"{settings['optimizer']!r}")
    if settings["schedule"] not in SCHEDULES:
        raise UsageError(f"schedule must be one of {', '.join(SCHEDULES)}, not "
                         f"{settings['schedule']!r}")
    if settings["activation"] not in ACTIVATIONS:
        raise UsageError(f"unknown activation {settings['activation']!r}; choose from "
                         f"{', '.join(sorted(ACTIVATIONS))}")
    for key in ("epochs", "batch_size"):
        if settings[key] < 1:
            raise UsageError(f"{key} must be at least 1, got {settings[key]}")
    for key in ("lr",):
        if not settings[key] > 0:
            raise UsageError(f"{key} must be positive, got {settings[key]}")
    if not 0 <= settings["val_fraction"] < 1 or not 0 < settings["test_fraction"] < 1:
        raise UsageError("val_fraction must be in [0, 1) and test_fraction in (0, 1)")


def build_model(settings: dict, data: datasets.Data) -> Sequential:
    n_in, n_out = data.X_train.shape[1], data.n_outputs
    if settings["layers"]:
        try:
            sizes = [int(v) for v in str(settings["layers"]).split(",")]
        except ValueError:
            raise UsageError(f"layers must be comma-separated integers, got "
                             f"{settings['layers']!r}") from None
    else:
        sizes = [n_in, 32, n_out]
    if len(sizes) < 2 or min(sizes) < 1:
        raise UsageError(f"layers needs at least an input and an output size, got {sizes}")
    if sizes[0] != n_in or sizes[-1] != n_out:
        raise UsageError(
            f"the layers {','.join(map(str, sizes))} do not fit the data: "
            f"{settings['dataset']} has {n_in} features and {n_out} "
            f"{'classes' if data.task == 'classification' else 'outputs'}, so the layers must "
            f"start with {n_in} and end with {n_out}")
    return mlp(sizes, activation=settings["activation"], batch_norm=settings["batch_norm"],
               dropout=settings["dropout"], init=settings["init"], seed=settings["seed"],
               device=settings["device"])


def split_validation(settings: dict, data: datasets.Data):
    fraction = settings["val_fraction"]
    if not fraction or len(data.X_train) < 10:
        return data.X_train, data.y_train, None
    rng = np.random.default_rng(settings["seed"])
    order = rng.permutation(len(data.X_train))
    n_val = max(1, int(round(fraction * len(order))))
    val, train = order[:n_val], order[n_val:]
    return (data.X_train[train], data.y_train[train],
            (data.X_train[val], data.y_train[val]))


def build_optimizer(settings: dict):
    """The optimizer the settings name, with those of its settings the command line has."""
    name, decay = settings["optimizer"], settings["weight_decay"]
    options = {"lr": settings["lr"]}
    if name in ("sgd", "rmsprop"):
        options["momentum"] = settings["momentum"]
    if decay or name != "adamw":  # a decay of 0 leaves AdamW its own default (0.01)
        options["weight_decay"] = decay
    return get_optimizer(name, **options)


def build_schedule(settings: dict, optimizer):
    if settings["schedule"] == "cosine":
        return CosineLR(optimizer, total_epochs=settings["epochs"],
                        warmup_epochs=min(5, settings["epochs"] - 1))
    if settings["schedule"] == "step":
        return StepLR(optimizer, step_size=max(1, settings["epochs"] // 3), gamma=0.1)
    return None


def build_regularizer(settings: dict):
    l1, l2 = settings["l1"], settings["l2"]
    if l1 and l2:
        return L1L2(l1=l1, l2=l2)
    return L1(l1) if l1 else L2(l2) if l2 else None


def write_metrics(history: dict, test: dict, out: Path, interrupted: bool,
                  best_epoch: int | None) -> None:
    names = list(history)
    epochs = len(history[names[0]]) if names else 0
    with (out / "metrics.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", *names])
        for epoch in range(epochs):
            writer.writerow([epoch + 1, *(history[name][epoch] for name in names)])
    summary = {"history": history, "test": test, "epochs": epochs,
               "interrupted": interrupted, "best_epoch": None if best_epoch is None
               else best_epoch + 1}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")


def draw_pictures(model: Sequential, data: datasets.Data, history: dict, out: Path) -> list:
    if not plotting.have_matplotlib():
        print('no pictures: pip install "bprop[plot]" (matplotlib) to draw them')
        return []
    paths = []
    if history:
        paths.append(plotting.plot_history(history, out / "curves.png"))
    if data.X_train.shape[1] == 2 and data.task == "classification":
        paths.append(plotting.plot_decision_boundary(model.predict, data.X_test, data.y_test,
                                                     out / "decision_boundary.png",
                                                     title="test data and decision regions"))
    if data.X_train.shape[1] == 1 and data.task == "regression":
        X = np.concatenate([data.X_train, data.X_test])
        y = np.concatenate([data.y_train, data.y_test])
        paths.append(plotting.plot_fit(X, y, model.predict(X), out / "fit.png",
                                       title="fitted curve against the data"))
    if data.task == "classification":
        n = data.n_outputs
        confusion = np.zeros((n, n), dtype=int)
        np.add.at(confusion, (data.y_test, model.predict(data.X_test)), 1)
        paths.append(plotting.plot_confusion_matrices(
            {"test set": confusion}, out / "confusion_matrix.png",
            labels=data.preprocessing.get("classes")))
    if data.image_side:
        first = next(layer for layer in model.layers if isinstance(layer, Dense))
        paths.append(plotting.plot_first_layer(to_numpy(first.weight), data.image_side,
                                               out / "first_layer.png"))
    return paths


# -- evaluate and predict ------------------------------------------------------------------------
def add_model_arguments(parser: argparse.ArgumentParser, data_help: str) -> None:
    parser.add_argument("--model", required=True, help="a model file written by bprop train")
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--target", default=None, help="the CSV's target column (name or "
                        "index); for evaluate the default is the last column")


def load_model(path: str):
    model_path = Path(path)
    if not model_path.is_file():
        raise UsageError(f"model file {model_path} not found; train one with: bprop train "
                         "--out FOLDER")
    try:
        model = io.load(model_path)
    except io.ModelFileError as error:
        raise UsageError(str(error)) from None
    return model, datasets.read_preprocessing(model_path)


def run_evaluate(args: argparse.Namespace) -> int:
    """Score the model on the test part of its data, split exactly as ``train`` split it (the
    run's config.toml gives the seed, test fraction, target and data folder), or on another
    dataset given with --data."""
    model, preprocessing = load_model(args.model)
    config_path = Path(args.model).parent / "config.toml"
    run = read_config(config_path) if config_path.is_file() else {}
    name = args.data or run.get("dataset") or preprocessing.get("dataset")
    if not name:
        raise UsageError("say which data to evaluate on: --data NAME_OR_CSV")
    same_data = name == run.get("dataset")
    data = datasets.load(
        name, target=args.target or (run.get("target", "-1") if same_data else "-1"),
        data_dir=args.data_dir or (run.get("data_dir") if same_data else None),
        test_fraction=run.get("test_fraction", DEFAULTS["test_fraction"]),
        scale="none", task=preprocessing.get("task", "auto"),
        seed=args.seed if args.seed is not None else run.get("seed", DEFAULTS["seed"]))
    X = apply(model, data.X_test, preprocessing)
    y = relabel(data, preprocessing)
    scores = model.evaluate(X, y)
    print("  ".join(f"{key} {value:.4f}" for key, value in scores.items()))
    return 0


def relabel(data: datasets.Data, preprocessing: dict) -> np.ndarray:
    """The test labels as the model's class indices: a file's own label encoding may differ
    from the training file's (a subset of the classes, in another order)."""
    trained, found = preprocessing.get("classes"), data.preprocessing.get("classes")
    if data.task != "classification" or trained is None or found is None:
        return data.y_test
    index = {label: i for i, label in enumerate(trained)}
    unknown = sorted(set(found) - set(index))
    if unknown:
        raise UsageError(f"the data have labels {unknown} that the model was not trained on "
                         f"(it knows {trained})")
    return np.array([index[found[code]] for code in data.y_test], dtype=np.int64)


def run_predict(args: argparse.Namespace) -> int:
    model, preprocessing = load_model(args.model)
    if not args.data or not args.data.lower().endswith(".csv"):
        raise UsageError("predict reads the samples from a CSV file: --data FILE.csv")
    path = Path(args.data)
    if not path.is_file():
        raise UsageError(f"data file {path} not found")
    from ..data import load_csv

    table = load_csv(path, target=datasets._column(args.target)) if args.target else None
    X = table.X if table is not None else _features_only(path)
    X = apply(model, X, preprocessing)
    predicted = model.predict(X)
    classes = preprocessing.get("classes")
    labels = [classes[i] for i in predicted] if classes else predicted.tolist()
    rows = [["prediction"]] + [[label] for label in labels]
    if preprocessing.get("task") == "classification":
        proba = model.predict_proba(X)
        names = classes or [str(i) for i in range(proba.shape[1])]
        rows[0] += [f"p({name})" for name in names]
        for row, p in zip(rows[1:], proba, strict=True):
            row += [f"{value:.6f}" for value in p]
    output = Path(args.output)
    with output.open("w", newline="") as file:
        csv.writer(file).writerows(rows)
    print(f"wrote {len(labels)} predictions to {output}")
    return 0


def _features_only(path: Path) -> np.ndarray:
    """A CSV of feature columns only (a header line is allowed)."""
    from ..data.csv import load_features

    try:
        return load_features(path)
    except ValueError as error:
        raise UsageError(f"{error}; give --target if the file has a target column") from None


def apply(model: Sequential, X: np.ndarray, preprocessing: dict) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if model.n_inputs is not None and X.shape[1] != model.n_inputs:
        raise UsageError(f"the data have {X.shape[1]} features but the model expects "
                         f"{model.n_inputs}")
    return datasets.apply_preprocessing(X, preprocessing)

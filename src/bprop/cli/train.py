"""``bprop train``, ``bprop evaluate`` and ``bprop predict``.

``train`` takes its settings from command-line options, from a TOML file (``--config``), or
both (options win). It writes a run folder: ``model.npz``, ``preprocessing.json`` (how to scale
new data and the target, the class names, the feature names and where the data are),
``metrics.csv`` and ``metrics.json`` (every metric per epoch and the final test scores),
``config.toml`` (the settings used, with absolute data paths) and pictures.

``evaluate`` and ``predict`` read a model and the run folder beside it (``runs/latest`` by
default, where ``train`` writes without ``--out``). They match a CSV file's columns to the
model's features by header name, and take them by position only in a file without a header.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import signal
import sys
import threading
from io import StringIO
from pathlib import Path

import numpy as np

from .. import io
from .._files import write_text
from ..backend.devices import get_device, to_numpy
from ..data.augment import Augment
from ..distributed import MPIWorld
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
    "device": "cpu", "subset": 0, "shift": 0, "elastic_alpha": 0.0, "elastic_sigma": 4.0,
}
TYPES = {"dataset": str, "target": str, "data_dir": str, "task": str, "scale": str,
         "test_fraction": float, "val_fraction": float, "layers": str, "activation": str,
         "init": str, "dropout": float, "batch_norm": bool, "optimizer": str, "lr": float,
         "momentum": float, "weight_decay": float, "l1": float, "l2": float, "schedule": str,
         "epochs": int, "batch_size": int, "patience": int, "seed": int, "out": str,
         "device": str, "subset": int, "shift": int, "elastic_alpha": float,
         "elastic_sigma": float}
OPTIMIZERS = tuple(name.lower() for name in OPTIMIZER_CLASSES)  # sgd, adam, adamw, rmsprop
SCHEDULES = ("none", "cosine", "step")
DEVICES = ("cpu", "cuda", "auto")
#: the model evaluate and predict read without --model: what train writes without --out
DEFAULT_MODEL = f"{DEFAULTS['out']}/model.npz"
#: the cap on what a model file may unpack to, unless --max-bytes raises it (io.load's)
DEFAULT_MAX_BYTES = 2**31
DATA_DIR_HELP = ("the folder holding mnist/ (or fashion-mnist/), or that folder itself; "
                 "like BPROP_DATA (default: $BPROP_DATA, then ~/.cache/bprop)")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bprop train``: each defaults to None so that a config file can fill it;
    the help says the default that applies when neither gives it."""
    def add(flag: str, help: str = "", **options) -> None:
        key = flag.lstrip("-").replace("-", "_")
        default = DEFAULTS.get(key)  # (by identity: 0 and 0.0 equal False but are shown)
        if default is not None and default is not False and "default" not in help:
            help = f"{help} (default: {DEFAULTS[key]})".lstrip()
        parser.add_argument(flag, help=help or None, **options)

    add("--config", help="a TOML file with any of the settings below (options override it)")
    add("--dataset", help=f"one of {', '.join(datasets.NAMES)}, or a CSV file")
    add("--target", help="the CSV's target column, by name or index (default: the last)")
    add("--data-dir", help=DATA_DIR_HELP)
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
    add("--schedule", choices=list(SCHEDULES),
        help="learning-rate schedule: cosine rises linearly over the first min(5, epochs - 1) "
        "epochs (a warm-up), then falls to 0 along a half cosine; step divides it by 10 every "
        "epochs/3 epochs")
    add("--epochs", type=int)
    add("--shift", type=int, help="augment the training images (28x28) by random shifts of up "
        "to this many pixels each epoch (0: none)")
    add("--elastic-alpha", type=float, help="augment the training images by elastic "
        "distortions of this strength each epoch (Simard et al. 2003 used 34; 0: none)")
    add("--elastic-sigma", type=float, help="the smoothness of the elastic distortions, in "
        "pixels (Simard et al. 2003 used 4)")
    add("--subset", type=int, help="train on this many of the training samples only (0: all): "
        "a quick try of a config, e.g. --epochs 1 --subset 2000")
    add("--batch-size", type=int)
    add("--patience", type=int, help="stop after this many epochs without improvement "
        "(0: train all epochs)")
    add("--seed", type=int)
    add("--device", choices=list(DEVICES), help="where to train: cpu (default), cuda (an "
        "NVIDIA GPU through CuPy) or auto (the GPU if there is one)")
    add("--out", help="run folder")
    add("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--distributed", action="store_true",
        help="train in every process that mpirun started (mpirun -n K bprop train "
        "--distributed ...): each computes the gradient of its part of every batch, and they "
        "train the model one process would; process 0 prints and writes the run folder "
        '(needs pip install "bprop[mpi]")')


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
        hint = datasets.did_you_mean(unknown[0], DEFAULTS) if len(unknown) == 1 else ""
        raise UsageError(f"{path}: unknown key(s) {', '.join(unknown)}{hint}; known keys are "
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
    lines = ["# the settings of this run (its data by absolute path). Rerun them from anywhere:",
             "# bprop train --config THIS_FILE --out ANOTHER_FOLDER"]
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
    write_text(path, "\n".join(lines) + "\n")


# -- train ---------------------------------------------------------------------------------------
class Interrupts:
    """Ctrl-C while a run trains stops the training (KeyboardInterrupt, as usual); from then
    on, and once ``saving`` is set, a further Ctrl-C is only noted (``pending``), so that the
    model and its run files are written in full before the command stops.

    Only Python's own SIGINT handling is replaced: a process that ignores SIGINT (started in
    the background) or handles it itself, or code outside the main thread, keeps its own.
    """

    def __init__(self) -> None:
        self.saving = False
        self.pending = False
        self._previous = None

    def __enter__(self) -> Interrupts:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if not self.saving:
            self.saving = True
            raise KeyboardInterrupt
        if not self.pending:
            print("\nbprop train: still saving the run; it stops once the model and its files "
                  "are written", file=sys.stderr, flush=True)
        self.pending = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def run_train(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    world = distributed_world(args, settings)  # (its device check before check_settings')
    check_settings(settings)
    if world is not None and world.rank != 0:  # (process 0 prints and writes)
        args.quiet = True
    data = datasets.load(settings["dataset"], target=settings["target"],
                         data_dir=settings["data_dir"], test_fraction=settings["test_fraction"],
                         scale=settings["scale"], task=settings["task"], seed=settings["seed"])
    model = build_model(settings, data)
    X_train, y_train, validation = split_validation(settings, data)
    if settings["subset"]:  # (the validation split is made from the whole set first)
        X_train, y_train = X_train[:settings["subset"]], y_train[:settings["subset"]]
    if data.task == "regression":  # the network learns the target standardised
        y_train = datasets.scale_target(y_train, data.preprocessing)
        if validation is not None:
            validation = (validation[0],
                          datasets.scale_target(validation[1], data.preprocessing))
    optimizer = build_optimizer(settings)
    augment = build_augment(settings, X_train)
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
    if world is None or world.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    if not args.quiet:
        print(model.summary())
        print(f"training on {len(X_train)} samples of {settings['dataset']} "
              f"({data.task}), testing on {len(data.X_test)}", flush=True)
    # The run records where its data are, so that evaluate and a rerun work from anywhere.
    settings["dataset"] = data.preprocessing["dataset"]
    settings["data_dir"] = data.preprocessing["data_dir"] or settings["data_dir"]
    interrupted = False
    history = None
    with Interrupts() as interrupts:
        try:
            history = model.fit(X_train, y_train, loss=loss, optimizer=optimizer,
                                epochs=settings["epochs"], batch_size=settings["batch_size"],
                                validation_data=validation, metrics=None,
                                regularizer=regularizer, schedule=schedule, callbacks=callbacks,
                                augment=augment, world=world)
            interrupts.saving = True
        except KeyboardInterrupt:
            interrupts.saving = interrupted = True
            if world is not None and world.rank != 0:
                return 130  # (process 0 saves the best model so far, and says so)
            if best.restore(model):
                print(f"\ninterrupted: saving the best model so far (epoch "
                      f"{best.best_epoch + 1})", file=sys.stderr, flush=True)
            else:
                print("\ninterrupted before the first epoch ended: saving the model as it is",
                      file=sys.stderr, flush=True)
        history = history.history if history is not None else best.history
        if world is not None and world.rank != 0:
            return 0  # (every process ended with process 0's model, which process 0 saves)
        test = save_run(model, data, settings, history, out, interrupted, best.best_epoch)
    if interrupts.pending:
        print("bprop train: interrupted: the model and its run files are saved; no pictures",
              file=sys.stderr)
        return 130
    try:
        pictures = draw_pictures(model, data, history, out, best.best_epoch, interrupted)
    except KeyboardInterrupt:
        print("\nbprop train: interrupted while drawing: the model and its run files are "
              "saved; pictures skipped", file=sys.stderr)
        return 130
    scores = "  ".join(f"test {k} {format_score(k, v)}" for k, v in test.items())
    print(f"{scores}\nsaved {out / 'model.npz'} and the run's metrics, config and "
          f"{len(pictures)} picture(s) in {out}/")
    return 130 if interrupted else 0


def distributed_world(args: argparse.Namespace, settings: dict) -> MPIWorld | None:
    """The processes that mpirun started, for --distributed (None without it)."""
    if not getattr(args, "distributed", False):
        return None
    if settings["device"] not in (None, "cpu"):
        raise UsageError("--distributed trains on the CPU of every process; leave out "
                         f"--device {settings['device']}")
    return MPIWorld()


def save_run(model: Sequential, data: datasets.Data, settings: dict, history: dict, out: Path,
             interrupted: bool, best_epoch: int | None) -> dict:
    """Write the model first, then the files that say how to use it, then the test scores.

    Each step is done even if a Ctrl-C breaks off the one before (one that reaches here as a
    KeyboardInterrupt, despite :class:`Interrupts`): an interrupted run is never left without
    its model.
    """
    test: dict = {}

    def score_and_record() -> None:
        test.update(score(model, data.X_test, data.y_test, data.preprocessing))
        write_metrics(history, test, out, interrupted, best_epoch)

    steps = [(lambda: model.save(out / "model.npz"), out / "model.npz"),
             (lambda: datasets.save_preprocessing(data.preprocessing, out),
              out / "preprocessing.json"),
             (lambda: write_config(settings, out / "config.toml"), out / "config.toml"),
             (score_and_record, out / "metrics.json")]
    for step, written in steps:
        for _ in range(2):  # once more if an interrupt broke it off before its file was written
            try:
                step()
                break
            except KeyboardInterrupt:
                if written.is_file():
                    break
    return test


def score(model: Sequential, X: np.ndarray, y: np.ndarray, preprocessing: dict) -> dict:
    """The loss (and accuracy) of a classifier; for a regression, the loss the network was
    trained on (the MSE of the standardised target) and R², MAE and RMSE in the target's own
    units."""
    if preprocessing.get("task") != "regression":
        return model.evaluate(X, y)
    scores = model.evaluate(X, datasets.scale_target(y, preprocessing))
    predicted = datasets.unscale_target(model.predict(X), preprocessing)
    scores.update(datasets.regression_scores(predicted, y))
    return {key: scores[key] for key in ("loss", "r2", "mae", "rmse")}


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
    # (checked here, by their option's name: deeper down they are a penalty's "strength")
    for key in ("l1", "l2", "weight_decay", "momentum"):
        if not (math.isfinite(settings[key]) and settings[key] >= 0):
            raise UsageError(f"--{key.replace('_', '-')} must be a number >= 0, got "
                             f"{settings[key]}")
    if isinstance(settings["seed"], bool) or settings["seed"] < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {settings['seed']}")
    if isinstance(settings["subset"], bool) or settings["subset"] < 0:
        raise UsageError(f"--subset must be 0 (every sample) or more, got {settings['subset']}")
    if settings["patience"] < 0:
        raise UsageError(f"--patience must be 0 (train every epoch) or more, got "
                         f"{settings['patience']}")
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
    if len(sizes) < 2:
        raise UsageError(f"layers needs at least an input and an output size, got {sizes}")
    if min(sizes) < 1:
        raise UsageError(f"every layer size must be at least 1, got {min(sizes)} in "
                         f"--layers {','.join(map(str, sizes))}")
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


def build_augment(settings: dict, X_train: np.ndarray) -> Augment | None:
    """The augmentation of the training images the settings ask for (None: none)."""
    if not settings["shift"] and not settings["elastic_alpha"]:
        return None
    try:
        augment = Augment(shift=settings["shift"], elastic=(settings["elastic_alpha"],
                                                             settings["elastic_sigma"])
                          if settings["elastic_alpha"] else None)
        augment(X_train[:1], np.random.default_rng(0))  # (images of the right size?)
    except ValueError as error:
        raise UsageError(f"--shift/--elastic-alpha: {error}") from None
    return augment


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
    table = StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["epoch", *names])
    for epoch in range(epochs):
        writer.writerow([epoch + 1, *(history[name][epoch] for name in names)])
    write_text(out / "metrics.csv", table.getvalue())
    summary = {"history": history, "test": test, "epochs": epochs,
               "interrupted": interrupted, "best_epoch": None if best_epoch is None
               else best_epoch + 1}
    write_text(out / "metrics.json", json.dumps(summary, indent=2) + "\n")


def draw_pictures(model: Sequential, data: datasets.Data, history: dict, out: Path,
                  best_epoch: int | None = None, interrupted: bool = False) -> list:
    """The run's pictures; ``best_epoch`` (from 0) is marked on the curves, as the saved one
    when the saved weights are its (an interrupted run saves the best epoch's, a finished one
    the last epoch's)."""
    if not plotting.have_matplotlib():
        print('no pictures: pip install "bprop[plot]" (matplotlib) to draw them')
        return []
    paths = []
    if history:
        epochs = len(next(iter(history.values())))
        best = None if best_epoch is None else best_epoch + 1
        paths.append(plotting.plot_history(history, out / "curves.png", best_epoch=best,
                                           saved=interrupted or best == epochs))
    # (the axes say what the model saw: the features' names, and whether they were scaled)
    standardised = (data.preprocessing.get("scaler") or {}).get("kind") == "standard"
    names = data.preprocessing.get("feature_names")
    if data.X_train.shape[1] == 2 and data.task == "classification":
        paths.append(plotting.plot_decision_boundary(
            model.predict, data.X_test, data.y_test, out / "decision_boundary.png",
            title="test data and decision regions", labels=data.preprocessing.get("classes"),
            feature_names=names or ("feature 1", "feature 2"), standardised=standardised))
    if data.X_train.shape[1] == 1 and data.task == "regression":
        X = np.concatenate([data.X_train, data.X_test])
        y = np.concatenate([data.y_train, data.y_test])
        predicted = datasets.unscale_target(model.predict(X), data.preprocessing)
        paths.append(plotting.plot_fit(X, y, predicted, out / "fit.png",
                                       title="fitted curve against the data",
                                       xlabel=names[0] if names else "x",
                                       standardised=standardised))
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
def parse_size(text: str) -> int:
    """A size in bytes: a whole number, or one with a binary suffix (``512M``, ``8G``, ``1T``)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", str(text), flags=re.I)
    if not match or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: give bytes, or a number with K, M, G or T (e.g. 8G)")
    return int(match[1]) * 1024 ** "_KMGT".find(match[2].upper() or "_")


def add_max_bytes_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-bytes SIZE``, for every command that loads a model file."""
    parser.add_argument(
        "--max-bytes", type=parse_size, default=DEFAULT_MAX_BYTES, metavar="SIZE",
        help="refuse a model file that would unpack to more than this many bytes (K, M, G, T "
        "suffixes allowed); the cap keeps a damaged or hostile file from making bprop "
        "allocate memory without bound, so raise it (e.g. 8G) only for a larger model you "
        "trust (default: 2G)")


def add_model_arguments(parser: argparse.ArgumentParser, data_help: str) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="a model file written by bprop train; its run folder's "
                        "preprocessing.json and config.toml are read beside it")
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--target", default=None, help="the CSV's target column (name or "
                        "index); default: the run's target column, else the last")
    add_max_bytes_argument(parser)


def load_model(path: str, max_bytes: int = DEFAULT_MAX_BYTES):
    """The model at ``path`` and the preprocessing of its run folder, checked against it."""
    model_path = Path(path)
    if not model_path.is_file():
        default = (f" ({DEFAULT_MODEL} is where bprop train saves without --out)"
                   if str(path) == DEFAULT_MODEL else "")
        raise UsageError(f"model file {model_path} not found{default}; train one with: "
                         "bprop train --out FOLDER, or give --model FILE")
    try:
        model = io.load(model_path, max_bytes=max_bytes)
    except io.ModelFileError as error:
        message = " ".join(str(error).split())
        if "max_bytes" in message:
            message += "; on the command line: --max-bytes SIZE (e.g. 8G)"
        raise UsageError(message) from None
    return model, datasets.read_preprocessing(model_path, model.n_inputs, model.n_outputs,
                                              model._task() if model.loss else None)


def run_config(model_path: str) -> dict:
    """The settings of the run a model comes from (its config.toml), or {} without one."""
    path = Path(model_path).parent / "config.toml"
    return read_config(path) if path.is_file() else {}


def run_evaluate(args: argparse.Namespace) -> int:
    """Score the model on every row of a CSV file given with --data; without --data, on the
    test part of its own data, split exactly as ``train`` split it (the run's config.toml gives
    the seed, test fraction, target and data folder); with --data NAME of a built-in dataset,
    on that dataset's test part."""
    model, preprocessing = load_model(args.model, args.max_bytes)
    run = run_config(args.model)
    if args.data and args.data.lower().endswith(".csv"):
        X, y, what = every_row(args, model, preprocessing, run)
    else:
        X, y, what = test_part(args, model, preprocessing, run)
    scores = score(model, X, y, preprocessing)
    print(f"scored {len(X)} rows: {what}")
    print("  ".join(f"{key} {format_score(key, value)}" for key, value in scores.items()))
    return 0


def every_row(args: argparse.Namespace, model: Sequential, preprocessing: dict,
              run: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """Every row of the CSV file ``args.data``, its columns matched to the model's: the scaled
    features (n_rows, n_inputs), the targets as the model's class indices or values (n_rows,),
    and what they are, in words."""
    path = Path(args.data)
    columns = datasets.read_header(path)
    recorded = preprocessing.get("target")
    if args.target is not None:
        target = args.target
    elif columns is not None and recorded is not None:
        if recorded not in columns:
            raise UsageError(f"{path} has no column {recorded!r}, the target the model "
                             "predicts; give --target COLUMN")
        target = recorded
    else:
        configured = str(run.get("target", "-1"))
        target = configured if configured.lstrip("-").isdigit() else "-1"
    data = datasets.load(str(path), target=target, scale="none",
                         task=preprocessing.get("task", "auto"), every_row=True)
    names = data.preprocessing["feature_names"]
    order = datasets.feature_order(path, names, preprocessing, "evaluate", model.n_inputs)
    X = data.X_test if order is None else data.X_test[:, order]
    _check_width(X, model, path, f" besides the target {data.preprocessing['target']!r}")
    trained_on = preprocessing.get("dataset")
    seen = (" (the file the model was trained on: most of its rows were seen in training)"
            if trained_on and Path(trained_on) == path.resolve() else "")
    return apply(model, X, preprocessing), relabel(data, preprocessing), \
        f"every row of {path}{seen}"


def test_part(args: argparse.Namespace, model: Sequential, preprocessing: dict,
              run: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """The test part of the run's own data (or of the built-in dataset ``args.data``), as
    :func:`every_row` returns it."""
    name = args.data or run.get("dataset") or preprocessing.get("dataset")
    if not name:
        raise UsageError("say which data to evaluate on: --data NAME_OR_CSV")
    own = name in (run.get("dataset"), preprocessing.get("dataset"))
    seed = args.seed if args.seed is not None else run.get("seed", DEFAULTS["seed"])
    fraction = run.get("test_fraction", DEFAULTS["test_fraction"])
    if args.data_dir and not Path(args.data_dir).is_dir():
        # (evaluating downloads nothing into a folder that a typing slip would create)
        raise UsageError(f"--data-dir {args.data_dir} is not a folder; give the folder that "
                         "holds mnist/ (or mnist/ itself)")
    data_dir = args.data_dir or (
        (run.get("data_dir") or preprocessing.get("data_dir")) if own else None)
    csv_file = name.lower().endswith(".csv")
    if csv_file and not Path(name).is_file():
        raise UsageError(f"the run's data file {name} is not there any more; give --data FILE "
                         "to score every row of a file")
    data = datasets.load(
        name, target=args.target or (run.get("target", "-1") if own else "-1"),
        data_dir=data_dir, test_fraction=fraction, scale="none",
        task=preprocessing.get("task", "auto"), seed=seed)
    X = data.X_test
    if csv_file:
        order = datasets.feature_order(Path(name), data.preprocessing["feature_names"],
                                       preprocessing, "evaluate", model.n_inputs,
                                       quiet=own)
        X = X if order is None else X[:, order]
    _check_width(X, model, Path(name), "")
    if name in datasets.IDX_SOURCES:
        folder = data.preprocessing["data_dir"]
        what = f"the test set of {name}" + (f" in {folder}" if folder else "")
    elif name == "xor":
        what = "the four points of xor"
    else:
        what = (f"the test split ({fraction:.0%} of the rows) of {name}, as train split it "
                f"(seed {seed}); --data FILE.csv scores every row of a file")
    return apply(model, X, preprocessing), relabel(data, preprocessing), what


def relabel(data: datasets.Data, preprocessing: dict) -> np.ndarray:
    """The test labels as the model's class indices: a file's own label encoding may differ
    from the training file's (a subset of the classes, in another order)."""
    trained, found = preprocessing.get("classes"), data.preprocessing.get("classes")
    if data.task != "classification" or trained is None or found is None:
        return data.y_test
    index = {label: i for i, label in enumerate(trained)}
    unknown = sorted(set(found) - set(index))
    if unknown:
        source = data.preprocessing.get("dataset") or "the data"
        raise UsageError(f"{source} has labels {unknown} that the model was not trained on "
                         f"(it knows {trained}); score it on rows of those classes only")
    return np.array([index[found[code]] for code in data.y_test], dtype=np.int64)


def run_predict(args: argparse.Namespace) -> int:
    """Write the model's predictions for each row of a CSV file, its columns matched to the
    model's features by header name (by position in a file without a header)."""
    model, preprocessing = load_model(args.model, args.max_bytes)
    if not args.data or not args.data.lower().endswith(".csv"):
        raise UsageError("predict reads the samples from a CSV file: --data FILE.csv")
    path = Path(args.data)
    columns = datasets.read_header(path)
    from ..data import load_csv
    from ..data.csv import load_features

    if args.target is not None:  # a file that keeps its target column: it is left out
        with datasets.csv_errors(path):
            table = load_csv(path, target=datasets._column(args.target),
                             header=columns is not None)
        X, names = table.X, (table.feature_names if columns is not None else None)
        order = datasets.feature_order(path, names, preprocessing, "predict", model.n_inputs)
    else:
        order = datasets.feature_order(path, columns, preprocessing, "predict", model.n_inputs)
        with datasets.csv_errors(path):
            X = load_features(path)
    X = X if order is None else X[:, order]
    _check_width(X, model, path, "")
    X = apply(model, X, preprocessing)
    rows = prediction_rows(model, X, preprocessing)
    if args.output == "-":
        try:
            csv.writer(sys.stdout, lineterminator="\n").writerows(rows)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped early (| head): not an error of ours
            sys.stdout = None  # (nothing more can reach it, not even the flush at exit)
            return 0
        print(f"wrote {len(rows) - 1} predictions to standard output", file=sys.stderr)
        return 0
    output = check_output_file(Path(args.output), "--output", "predictions.csv", args.model)
    try:
        with output.open("w", newline="") as file:
            csv.writer(file).writerows(rows)
    except OSError as error:
        raise UsageError(f"cannot write the predictions to {output}: {error.strerror}") from None
    print(f"wrote {len(rows) - 1} predictions to {output}")
    return 0


def check_output_file(path: Path, option: str, example: str, model: str) -> Path:
    """``path``, if a file can be written there that is not the ``model`` file (writing over
    it would lose the trained model); else a UsageError naming ``option``."""
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name, e.g. {path / example}")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {option} {path}: the folder {path.parent} does not "
                         "exist; create it or choose another")
    if path.resolve() == Path(model).resolve():
        raise UsageError(f"{option} {path} is the model file itself; give another file name, "
                         f"e.g. {path.with_name(path.stem + '-' + example)}")
    return path


def format_score(name: str, value: float) -> str:
    """A score as the command line prints it: a fraction (accuracy, R²) to 4 decimals, an
    error in the target's units (MAE, RMSE, a loss) to 4 significant digits, whatever its
    size (a target near 1e-5 printed 0.0000)."""
    return f"{value:.4f}" if name in ("accuracy", "r2") else f"{value:.4g}"


def prediction_rows(model: Sequential, X: np.ndarray, preprocessing: dict) -> list[list]:
    """A header row, then one row per sample: the predicted class and each class's probability
    (to 6 decimals), or the predicted value(s) in the target's units (to 6 significant
    digits)."""
    predicted = model.predict(X)
    classes = preprocessing.get("classes")
    if preprocessing.get("task") == "classification":
        labels = [classes[i] for i in predicted] if classes else predicted.tolist()
        proba = model.predict_proba(X)
        names = classes or [str(i) for i in range(proba.shape[1])]
        rows = [["prediction", *(f"p({name})" for name in names)]]
        rows += [[label, *(f"{value:.6f}" for value in p)]
                 for label, p in zip(labels, proba, strict=True)]
        return rows
    values = np.asarray(datasets.unscale_target(predicted, preprocessing), dtype=np.float64)
    values = values.reshape(len(values), -1)
    header = (["prediction"] if values.shape[1] == 1
              else [f"prediction {j}" for j in range(values.shape[1])])
    return [header] + [[f"{value:.6g}" for value in row] for row in values]


def _check_width(X: np.ndarray, model: Sequential, path: Path, besides: str) -> None:
    if len(X) == 0:
        raise UsageError(f"{path} has no rows of data (a header line only): nothing to score "
                         "or predict")
    if model.n_inputs is not None and X.shape[1] != model.n_inputs:
        advice = ("; a file without a header line is read by position, so give it the training "
                  "data's header line, or drop the columns the model does not use"
                  if path.suffix.lower() == ".csv" else "")
        raise UsageError(f"{path} has {X.shape[1]} feature columns{besides} but the model "
                         f"expects {model.n_inputs}{advice}")


def apply(model: Sequential, X: np.ndarray, preprocessing: dict) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if model.n_inputs is not None and X.shape[1] != model.n_inputs:
        raise UsageError(f"the data have {X.shape[1]} features but the model expects "
                         f"{model.n_inputs}")
    return datasets.apply_preprocessing(X, preprocessing)

"""Saving and loading models: one file, no pickle, written atomically.

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays). It holds

* ``__header__``: UTF-8 JSON with the format name and version, the bprop version, the model's
  dtype, every layer's type and constructor arguments, the loss, the model's random-generator
  state and, optionally, the optimizer's type and settings;
* ``param/<name>`` and ``buffer/<name>``: weights, biases and BatchNorm running statistics;
* ``optim/<name>``: the optimizer's state arrays (momentum, moment estimates), if saved.

Loading reads the arrays with ``allow_pickle=False`` and builds layers only from bprop's own
classes, so a file from a stranger cannot run code: a file that carries a pickle is refused.
Saving writes a temporary file in the target's folder and renames it over the target, so an
interrupted save leaves any previous file intact.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ._files import atomic_write
from .layers import LAYERS
from .losses import LOSSES, Loss
from .model import Sequential
from .optim import OPTIMIZERS, Optimizer

FORMAT = "bprop-model"
FORMAT_VERSION = 1
LOSS_CLASSES = {cls.__name__: cls for cls in LOSSES.values()}


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a bprop file, damaged, unsafe or too new."""


def save(model: Sequential, path, optimizer: Optimizer | None = None) -> Path:
    """Write ``model`` (and ``optimizer``'s state for its parameters, if given) to ``path``.

    >>> import bprop as bp, tempfile, os
    >>> model = bp.Sequential([bp.Dense(2, 3), bp.ReLU(), bp.Dense(3, 1)], seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> _ = bp.save(model, path)
    >>> x = np.ones((1, 2))
    >>> bool((bp.load(path).forward(x) == model.forward(x)).all())
    True
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"save takes a Sequential model, got {type(model).__name__}")
    path = Path(path)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bprop_version": _bprop_version(),
        "dtype": model.dtype.name,
        "seed": model.seed if isinstance(model.seed, int) else None,
        "rng_state": model.rng.bit_generator.state,
        "layers": [{"type": type(layer).__name__, "config": layer.get_config()}
                   for layer in model.layers],
        "loss": None if model.loss is None else
        {"type": type(model.loss).__name__, "config": model.loss.get_config()},
        "optimizer": None,
    }
    for layer in model.layers:
        if type(layer).__name__ not in LAYERS or LAYERS[type(layer).__name__] is not type(layer):
            raise TypeError(f"cannot save a model with the custom layer {layer!r}; only bprop's "
                            "own layers can be rebuilt safely on loading")
    arrays = {}
    for name, param in model.named_parameters():
        arrays[f"param/{name}"] = param.value
    for i, layer in enumerate(model.layers):
        for name, buffer in layer.buffers.items():
            arrays[f"buffer/{i}.{name}"] = buffer
    if optimizer is not None:
        state = optimizer.state_dict(model.parameters())
        header["optimizer"] = {"type": type(optimizer).__name__,
                               "config": optimizer.get_config(), "step": state["step"]}
        arrays.update({f"optim/{name}": array for name, array in state["arrays"].items()})
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as file:
        np.savez(file, **arrays)
    return path


def load(path, optimizer: bool = False):
    """Read a model written by :func:`save` / ``model.save``.

    Returns the model, or ``(model, optimizer)`` with ``optimizer=True`` (the optimizer is
    None if the file holds none). The loaded model predicts exactly what the saved one did.

    Raises
    ------
    ModelFileError
        If the file is not a bprop model, is damaged, carries pickled objects, or comes from
        an unknown format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a readable bprop model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "__header__" not in archive.files:
                raise ModelFileError(f"{path} is not a bprop model file (it has no header)")
            arrays = {name: archive[name] for name in archive.files}
    except ModelFileError:
        raise
    except ValueError as error:
        if "pickle" in str(error):
            raise ModelFileError(
                f"refusing to load {path}: it contains pickled Python objects, which could run "
                "code; bprop model files hold only plain arrays"
            ) from None
        raise ModelFileError(f"{path} is not a readable bprop model file: {error}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ModelFileError(f"{path} is not a readable bprop model file: {error}") from None
    header = _read_header(arrays.pop("__header__"), path)
    model = _build_model(header, path)
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    buffers = {k[len("buffer/"):]: v for k, v in arrays.items() if k.startswith("buffer/")}
    try:
        model.load_state_dict({**params, **buffers})
    except ValueError as error:
        raise ModelFileError(f"{path} is damaged: {error}") from None
    if not optimizer:
        return model
    return model, _build_optimizer(header, arrays, model, path)


def _read_header(raw: np.ndarray, path: Path) -> dict:
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{path} has a damaged header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a bprop model file")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses model-file format version {version!r} (written by bprop "
            f"{header.get('bprop_version', '?')}); this bprop ({_bprop_version()}) reads "
            f"version {FORMAT_VERSION}. Install the bprop version that wrote it."
        )
    return header


def _build_model(header: dict, path: Path) -> Sequential:
    layers = []
    try:
        for spec in header["layers"]:
            cls = LAYERS.get(spec["type"])
            if cls is None:
                raise ModelFileError(f"{path} names an unknown layer type {spec['type']!r}")
            layers.append(cls(**spec["config"]))
        # Building draws initial weights that the file's weights then replace; the generator
        # state is restored afterwards, so those draws leave no trace.
        model = Sequential(layers, dtype=header["dtype"])
        model.seed = header.get("seed")
        model.rng.bit_generator.state = header["rng_state"]
        if header.get("loss") is not None:
            model.loss = _build(LOSS_CLASSES, header["loss"], "loss", path)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path} has an invalid model description: {error}") from None
    return model


def _build_optimizer(header: dict, arrays: dict, model: Sequential, path: Path):
    spec = header.get("optimizer")
    if spec is None:
        return None
    try:
        optimizer = _build(OPTIMIZERS, spec, "optimizer", path)
        state = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
        optimizer.load_state_dict(model.parameters(), {"step": spec["step"], "arrays": state})
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path} has an invalid optimizer description: {error}") from None
    return optimizer


def _build(classes: dict, spec: dict, kind: str, path: Path) -> Loss | Optimizer:
    cls = classes.get(spec["type"])
    if cls is None:
        raise ModelFileError(f"{path} names an unknown {kind} type {spec['type']!r}")
    config = dict(spec["config"])
    if "betas" in config:
        config["betas"] = tuple(config["betas"])
    return cls(**config)


def _bprop_version() -> str:
    from . import __version__

    return __version__

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
from .nn.layers import LAYERS
from .nn.losses import LOSSES, Loss
from .nn.model import Sequential
from .optim.optimizers import OPTIMIZERS, Optimizer

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


def load(path, optimizer: bool = False, max_bytes: int = 2**31):
    """Read a model written by :func:`save` / ``model.save``.

    Returns the model, or ``(model, optimizer)`` with ``optimizer=True`` (the optimizer is
    None if the file holds none). The loaded model predicts exactly what the saved one did.

    Nothing in the file is trusted: arrays are read without pickle support, only bprop's own
    layer, loss and optimizer classes are built, every array's shape is checked against the
    layer descriptions before anything is allocated, and a file that would unpack to more than
    ``max_bytes`` (2 GiB) is refused unless you raise the limit.

    Raises
    ------
    ModelFileError
        If the file is not a bprop model, is damaged, carries pickled objects, comes from an
        unknown format version, or is larger than ``max_bytes``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        return _load(path, optimizer, max_bytes)
    except ModelFileError:
        raise
    except Exception as error:  # whatever a damaged or hostile file provokes, said plainly
        raise ModelFileError(
            f"{path} is not a valid bprop model file ({type(error).__name__}: {error})"
        ) from None


def _load(path: Path, with_optimizer: bool, max_bytes: int):
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a readable bprop model file (not an .npz archive)")
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        unpacked = sum(info.file_size for info in members.values())
        if unpacked > max_bytes:
            raise ModelFileError(
                f"{path} would unpack to {unpacked:,} bytes, more than max_bytes={max_bytes:,}; "
                "if you trust the file, load it with a larger max_bytes")
        if "__header__.npy" not in members:
            raise ModelFileError(f"{path} is not a bprop model file (it has no header)")
        raw = _read_array(archive, members, "__header__", None, path, max_elements=1 << 20)
        header = _read_header(raw, path)
        shapes = _state_shapes(header, path)
        unexpected = sorted(
            name for name in members if name != "__header__.npy"
            and name.removesuffix(".npy") not in shapes and not name.startswith("optim/"))
        if unexpected:
            raise ModelFileError(f"{path} is damaged: unexpected entries {unexpected}")
        state = {name: _read_array(archive, members, name, shape, path)
                 for name, shape in shapes.items()}
        model = _build_model(header, path)
        try:
            model.load_state_dict(
                {name.split("/", 1)[1]: array for name, array in state.items()})
        except ValueError as error:
            raise ModelFileError(f"{path} is damaged: {error}") from None
        _check_buffers(model, path)
        if not with_optimizer:
            return model
        return model, _build_optimizer(header, archive, members, model, path)


def _read_array(archive: zipfile.ZipFile, members: dict, name: str, shape, path: Path,
                max_elements: int | None = None) -> np.ndarray:
    """Read ``name``.npy from the archive after checking its header: no objects (pickles),
    a plain numeric dtype, and the expected ``shape`` (if given)."""
    info = members.get(name + ".npy")
    if info is None:
        raise ModelFileError(f"{path} is damaged: the array {name!r} is missing")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        found_shape, _, dtype = read_header(member)
    if dtype.hasobject:
        raise ModelFileError(
            f"refusing to load {path}: {name!r} holds pickled Python objects, which could run "
            "code; bprop model files hold only plain arrays")
    if dtype.kind not in "uif":
        raise ModelFileError(f"{path} is damaged: {name!r} holds {dtype}, not numbers")
    if shape is not None and tuple(found_shape) != tuple(shape):
        raise ModelFileError(f"{path} is damaged: {name!r} has shape {tuple(found_shape)} but "
                             f"the model description needs {tuple(shape)}")
    if max_elements is not None and np.prod(found_shape) > max_elements:
        raise ModelFileError(f"{path} is damaged: {name!r} is implausibly large")
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _state_shapes(header: dict, path: Path) -> dict[str, tuple[int, ...]]:
    """``{"param/0.weight": (n_in, n_out), "buffer/1.running_mean": (n,), ...}`` computed from
    the layer descriptions alone, so that nothing is allocated before the arrays in the file
    are known to match."""
    shapes = {}
    layers = header.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelFileError(f"{path} has an invalid model description: no layers")
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or spec.get("type") not in LAYERS:
            kind = spec.get("type") if isinstance(spec, dict) else spec
            raise ModelFileError(f"{path} names an unknown layer type {kind!r}")
        for name, shape in parameter_shapes(spec["type"], spec.get("config", {})).items():
            prefix = "buffer" if name.startswith("running_") else "param"
            shapes[f"{prefix}/{i}.{name}"] = shape
    return shapes


def parameter_shapes(layer_type: str, config: dict) -> dict[str, tuple[int, ...]]:
    """The shapes of the parameters and buffers of a layer of this type and configuration."""
    if layer_type == "Dense":
        n_in, n_out = int(config["n_in"]), int(config["n_out"])
        shapes = {"weight": (n_in, n_out)}
        if config.get("bias", True):
            shapes["bias"] = (n_out,)
        return shapes
    if layer_type == "BatchNorm":
        n = int(config["n_features"])
        return {"weight": (n,), "bias": (n,), "running_mean": (n,), "running_var": (n,)}
    return {}


def _check_buffers(model: Sequential, path: Path) -> None:
    for i, layer in enumerate(model.layers):
        for name, buffer in layer.buffers.items():
            if not np.isfinite(buffer).all() or (name == "running_var" and buffer.min() < 0):
                raise ModelFileError(f"{path} is damaged: {i}.{name} holds invalid values")


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


def _build_optimizer(header: dict, archive: zipfile.ZipFile, members: dict,
                     model: Sequential, path: Path) -> Optimizer | None:
    spec = header.get("optimizer")
    if spec is None:
        return None
    optimizer = _build(OPTIMIZERS, spec, "optimizer", path)
    size = sum(p.size for p in model.parameters())
    names = [n[len("optim/"):-len(".npy")] for n in members
             if n.startswith("optim/") and n.endswith(".npy")]
    arrays = {name: _read_array(archive, members, f"optim/{name}", (size,), path)
              for name in names}
    try:
        optimizer.load_state_dict(model.parameters(), {"step": spec["step"], "arrays": arrays})
    except ValueError as error:
        raise ModelFileError(f"{path} has an invalid optimizer state: {error}") from None
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
    from ._version import __version__

    return __version__

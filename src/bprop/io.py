"""Saving and loading models: one file, no pickle, written atomically, read a block at a time.

The format, and writing it, are in :mod:`bprop.nn.model_file` (beneath the model, which saves
itself through it); this module reads files back into a :class:`~bprop.Sequential`, and
``bprop.save`` is that module's :func:`~bprop.nn.model_file.save`.

Loading reads the arrays with ``allow_pickle=False`` and builds layers only from bprop's own
classes, so a file from a stranger cannot run code: a file that carries a pickle is refused.
Every array's header is checked before the model is built, and the model is built without
drawing any weights: each saved array is then read a block at a time straight into the
model's buffer, so loading a model needs little memory beyond the model itself.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ._checks import all_finite
from ._version import __version__
from .backend.devices import get_device
from .nn.layers import LAYERS
from .nn.losses import LOSSES, Loss
from .nn.model import Sequential
from .nn.model_file import FORMAT, FORMAT_VERSION, READABLE_VERSIONS, save
from .optim.optimizers import OPTIMIZERS, Optimizer

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "parameter_shapes", "save"]

LOSS_CLASSES = {cls.__name__: cls for cls in LOSSES.values()}

#: arrays are read from the file in blocks of about this many bytes
_READ_BLOCK = 1 << 20


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a bprop file, damaged, unsafe or too new."""


def load(path, optimizer: bool = False, max_bytes: int = 2**31, device=None):
    """Read a model written by :func:`save` / ``model.save``.

    Returns the model, or ``(model, optimizer)`` with ``optimizer=True`` (the optimizer is
    None if the file holds none). The loaded model predicts exactly what the saved one did.

    Nothing in the file is trusted: arrays are read without pickle support, only bprop's own
    layer, loss and optimizer classes are built, every array's shape is checked against the
    layer descriptions before anything is allocated, and a file that would unpack to more than
    ``max_bytes`` (2 GiB) is refused unless you raise the limit.

    ``device`` (``"cpu"``, the default, ``"cuda"`` or ``"auto"``) is where the model is put
    after reading; a file saved on either device loads on the other.

    Raises
    ------
    ModelFileError
        If the file is not a bprop model, is damaged, carries pickled objects, comes from an
        unknown format version, or is larger than ``max_bytes``.
    """
    path = Path(path)
    target = get_device(device)  # (a missing GPU is said before the file is read)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        loaded = _load(path, optimizer, max_bytes)
    except ModelFileError:
        raise
    except Exception as error:  # whatever a damaged or hostile file provokes, said plainly
        raise ModelFileError(
            f"{path} is not a valid bprop model file ({type(error).__name__}: {error})"
        ) from None
    model = loaded[0] if optimizer else loaded
    model.to(target)
    return loaded


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
        for name, shape in shapes.items():  # every array fits before anything is allocated
            _array_header(archive, members, name, shape, path)
        model = _build_model(header, path)
        targets = {f"param/{name}": param.value for name, param in model.named_parameters()}
        for i, layer in enumerate(model.layers):
            targets.update({f"buffer/{i}.{name}": b for name, b in layer.buffers.items()})
        if set(targets) != set(shapes):  # (parameter_shapes and the layers disagree: a bug)
            raise ModelFileError(f"{path} cannot be loaded: the model has {sorted(targets)}, "
                                 f"the file describes {sorted(shapes)}")
        for name, target in targets.items():
            _read_into(archive, members, name, target, path)
        _check_buffers(model, path)
        if not with_optimizer:
            return model
        return model, _build_optimizer(header, archive, members, model, path)


def _array_header(archive: zipfile.ZipFile, members: dict, name: str, shape, path: Path,
                  max_elements: int | None = None) -> tuple[zipfile.ZipInfo, bool, np.dtype]:
    """Check the header of ``name``.npy in the archive: no objects (pickles), a plain numeric
    dtype, and the expected ``shape`` (if given). Returns the member, whether the array is in
    Fortran order, and its dtype."""
    info = members.get(name + ".npy")
    if info is None:
        raise ModelFileError(f"{path} is damaged: the array {name!r} is missing")
    with archive.open(info) as member:
        found_shape, fortran_order, dtype = _read_npy_header(member)
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
    return info, fortran_order, dtype


def _read_npy_header(member) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(member)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    return read_header(member)


def _read_array(archive: zipfile.ZipFile, members: dict, name: str, shape, path: Path,
                max_elements: int | None = None) -> np.ndarray:
    """``name``.npy from the archive, read whole after :func:`_array_header`'s checks."""
    info, _, _ = _array_header(archive, members, name, shape, path, max_elements)
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _read_into(archive: zipfile.ZipFile, members: dict, name: str, target: np.ndarray,
               path: Path) -> None:
    """Read ``name``.npy (its header already checked) into ``target``, a block at a time,
    converting to ``target``'s dtype and refusing NaN and infinity."""
    info, fortran_order, dtype = _array_header(archive, members, name, target.shape, path)
    if fortran_order or not target.flags.c_contiguous:  # (not what bprop writes): read whole
        array = _read_array(archive, members, name, target.shape, path)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ModelFileError(f"{path} is damaged: {name!r} holds NaN or infinite values")
        target[...] = array
        return
    with archive.open(info) as member:
        _read_npy_header(member)
        flat = target.reshape(-1)  # a view: target is contiguous
        per_block = max(1, _READ_BLOCK // dtype.itemsize)
        for start in range(0, flat.size, per_block):
            count = min(per_block, flat.size - start)
            data = member.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise ModelFileError(f"{path} is damaged: {name!r} is cut short")
            block = np.frombuffer(data, dtype=dtype)
            if dtype.kind == "f" and not all_finite(block):
                raise ModelFileError(f"{path} is damaged: {name!r} holds NaN or infinite values")
            flat[start:start + count] = block


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
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{path} uses model-file format version {version!r} (written by bprop "
            f"{header.get('bprop_version', '?')}); this bprop ({__version__}) reads "
            f"version {' or '.join(map(str, READABLE_VERSIONS))}. Install the bprop version "
            "that wrote it."
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
        # Nothing is drawn: every weight is read from the file next, into the model's buffer.
        model = Sequential(layers, dtype=header["dtype"], initialise=False)
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

"""Saving and loading models: one file, no pickle, written atomically, read a block at a time.

The format, and writing it, are in :mod:`bprop.nn.model_file` (beneath the model, which saves
itself through it); this module reads files back into a :class:`~bprop.Sequential`, and
``bprop.save`` is that module's :func:`~bprop.nn.model_file.save`.

Loading reads the arrays with ``allow_pickle=False`` and builds layers only from bprop's own
classes, so a file from a stranger cannot run code: a file that carries a pickle is refused.
Every array's header is checked before the model is built, and the model is built without
drawing any weights: each saved array is then read a block at a time straight into the
model's buffer, so loading a model needs little memory beyond the model itself.

Nothing a file says about its size is believed without a bound. Before anything is
decompressed, the archive must hold no more than a few thousand entries, each once, each
stored or deflated (the two methods NumPy writes), none unpacking to more than its array
header and the model description say it holds, and the model it describes must fit in
``max_bytes``. Each array is then decompressed a block at a time and only as far as its
declared size plus one byte, so a member that would inflate beyond it is refused at once.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._checks import FLOAT_DTYPES, all_finite
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
#: the zip compression methods NumPy writes (np.savez stores, np.savez_compressed deflates)
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: names of the other methods, for saying which one a refused file uses
_OTHER_METHODS = {1: "shrink", 6: "implode", 8: "deflate", 9: "deflate64", 12: "bzip2",
                  14: "lzma", 93: "zstandard", 95: "xz", 97: "wavpack", 98: "ppmd",
                  99: "AES encryption"}
#: an archive with more entries than this is not a model file (a model of thousands of
#: layers has a few thousand arrays); it is refused before its directory is read
_MAX_MEMBERS = 1 << 14
#: bytes of zip directory per entry beyond which the directory is implausibly large
_DIRECTORY_PER_MEMBER = 1 << 10
#: a deflated array of more than _RATIO_FROM bytes may not unpack to more than _MAX_RATIO
#: times its compressed size: weights hardly compress, so only a file of (nearly) constant
#: values does that, and such a file could make a model of gigabytes from a few megabytes
_MAX_RATIO = 100
_RATIO_FROM = 1 << 20
#: optimizer state arrays a file may hold (bprop's optimizers keep at most three)
_MAX_OPTIMIZER_ARRAYS = 8
#: the header (JSON) is at most this many bytes
_MAX_HEADER_BYTES = 1 << 20
#: characters of a name taken from a file that go into a message, and names listed
_NAME_CHARS = 60
_NAMES_LISTED = 5
#: characters of an error message (the rest is cut, so no message is megabytes long)
_MESSAGE_CHARS = 600


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a bprop file, damaged, unsafe or too new."""


def load(path, optimizer: bool = False, max_bytes: int = 2**31, device=None):
    """Read a model written by :func:`save` / ``model.save``.

    Returns the model, or ``(model, optimizer)`` with ``optimizer=True`` (the optimizer is
    None if the file holds none). The loaded model predicts exactly what the saved one did.

    Nothing in the file is trusted: arrays are read without pickle support, only bprop's own
    layer, loss and optimizer classes are built, every array's shape is checked against the
    layer descriptions before anything is allocated, and a file that would unpack to more than
    ``max_bytes`` (2 GiB), or whose layer descriptions need more than ``max_bytes``, is
    refused unless you raise the limit. Only the zip methods NumPy writes (stored, deflate)
    are read, and no array is decompressed beyond the size its header declares.

    ``device`` (``"cpu"``, the default, ``"cuda"`` or ``"auto"``) is where the model is put
    after reading; a file saved on either device loads on the other.

    Raises
    ------
    ModelFileError
        If the file is not a bprop model, is damaged, carries pickled objects, comes from an
        unknown format version, is larger than ``max_bytes``, or needs more memory than
        there is. Its message is one line that names the file.
    """
    path = Path(path)
    target = get_device(device)  # (a missing GPU is said before the file is read)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        loaded = _load(path, optimizer, max_bytes)
    except ModelFileError as error:
        if len(str(error)) <= _MESSAGE_CHARS:
            raise
        raise ModelFileError(_cut(str(error))) from None
    except MemoryError:
        raise ModelFileError(
            f"not enough memory to load {path} (the model it describes fits max_bytes="
            f"{max_bytes:,} but not this machine's memory)") from None
    except Exception as error:  # whatever a damaged or hostile file provokes, said plainly
        raise ModelFileError(_cut(
            f"{path} is not a valid bprop model file ({type(error).__name__}: {error})"
        )) from None
    model = loaded[0] if optimizer else loaded
    model.to(target)
    return loaded


def _load(path: Path, with_optimizer: bool, max_bytes: int):
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a readable bprop model file (not an .npz archive)")
    _check_directory_size(path)
    with zipfile.ZipFile(path) as archive:
        members = _members(archive, path, max_bytes)
        if "__header__.npy" not in members:
            raise ModelFileError(f"{path} is not a bprop model file (it has no header)")
        raw = _read_array(archive, members, "__header__", None, path,
                          max_elements=_MAX_HEADER_BYTES)
        header = _read_header(raw, path)
        shapes = _state_shapes(header, path)
        optimizer_names = _optimizer_members(header, members, path)
        unexpected = [name for name in members if name != "__header__.npy"
                      and name.removesuffix(".npy") not in shapes
                      and name.removesuffix(".npy") not in optimizer_names]
        if unexpected:
            raise ModelFileError(f"{path} is damaged: unexpected entries {_names(unexpected)}")
        for name, shape in shapes.items():  # every array fits before anything is allocated
            _array_header(archive, members, name, shape, path)
        n_params = sum(math.prod(shape) for name, shape in shapes.items()
                       if name.startswith("param/"))
        for name in optimizer_names:  # (the state of each parameter, flat)
            _array_header(archive, members, name, (n_params,), path)
        n_values = sum(math.prod(shape) for shape in shapes.values())
        if with_optimizer:
            n_values += len(optimizer_names) * n_params
        _check_model_size(header, n_values, bool(with_optimizer and optimizer_names),
                          max_bytes, path)
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
        return model, _build_optimizer(header, archive, members, optimizer_names, model, path)


def _check_directory_size(path: Path) -> None:
    """Refuse an archive whose end record announces an absurd number of entries, or an
    absurdly large directory, before zipfile reads that directory into memory."""
    entries, directory_bytes = _directory_size(path)
    if entries > _MAX_MEMBERS or directory_bytes > _MAX_MEMBERS * _DIRECTORY_PER_MEMBER:
        raise ModelFileError(
            f"{path} is not a bprop model file: it holds {entries:,} entries "
            f"({directory_bytes:,} bytes of zip directory); a model file holds at most "
            f"{_MAX_MEMBERS:,}")


def _directory_size(path: Path) -> tuple[int, int]:
    """The number of entries and the size of the central directory that the zip end
    record (zip64's, if there is one) announces; zeros if there is none to read."""
    with open(path, "rb") as file:
        file.seek(0, 2)
        size = file.tell()
        # The end record (22 bytes) follows a comment of at most 65,535 bytes, and zip64's
        # locator (20 bytes) and end record (56 bytes) come just before it.
        tail_size = min(size, 22 + 0xFFFF + 20 + 56)
        file.seek(size - tail_size)
        tail = file.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return 0, 0
    entries, directory_bytes = struct.unpack_from("<xxxxxxxxxxHI", tail, at)
    locator = at - 20
    if locator >= 56 and tail[locator:locator + 4] == b"PK\x06\x07":
        record = locator - 56
        if tail[record:record + 4] == b"PK\x06\x06":
            entries, directory_bytes = struct.unpack_from("<QQ", tail, record + 32)
    return entries, directory_bytes


def _members(archive: zipfile.ZipFile, path: Path, max_bytes: int) -> dict:
    """The archive's entries by name, once each is known to be one of its kind, stored or
    deflated, and not a bomb; and all of them together within ``max_bytes``."""
    infos = archive.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise ModelFileError(f"{path} is not a bprop model file: it holds {len(infos):,} "
                             f"entries; a model file holds at most {_MAX_MEMBERS:,}")
    repeated = [name for name, count in Counter(i.filename for i in infos).items() if count > 1]
    if repeated:
        raise ModelFileError(f"{path} is damaged: it holds more than one entry named "
                             f"{_names(repeated)} (readers would disagree on which is meant)")
    size = path.stat().st_size
    if sum(info.compress_size for info in infos) > size:
        # (the compression ratio below is only as good as the compressed sizes claimed)
        raise ModelFileError(f"{path} is damaged: its entries claim more compressed bytes "
                             f"than the file's {size:,}")
    for info in infos:
        if info.header_offset + info.compress_size > size:
            raise ModelFileError(f"{path} is damaged: {_quote(info.filename)} claims "
                                 f"{info.compress_size:,} compressed bytes past the file's end")
        if info.compress_type not in _METHODS:
            method = _OTHER_METHODS.get(info.compress_type, f"method {info.compress_type}")
            raise ModelFileError(
                f"{path} is not a bprop model file: {_quote(info.filename)} is compressed with "
                f"{method}; model files are stored or deflated (as NumPy writes them)")
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{path} is not a bprop model file: {_quote(info.filename)} "
                                 "is encrypted")
        if (info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > _RATIO_FROM
                and info.file_size > _MAX_RATIO * max(info.compress_size, 1)):
            raise ModelFileError(
                f"refusing to load {path}: {_quote(info.filename)} would inflate "
                f"{info.compress_size:,} bytes to {info.file_size:,}, more than {_MAX_RATIO} "
                "times; a model's weights do not compress like that (a file of constant "
                "values, built to fill memory, does)")
    unpacked = sum(info.file_size for info in infos)
    if unpacked > max_bytes:
        raise ModelFileError(
            f"{path} would unpack to {unpacked:,} bytes, more than max_bytes={max_bytes:,}; "
            "if you trust the file, load it with a larger max_bytes")
    return {info.filename: info for info in infos}


def _optimizer_members(header: dict, members: dict, path: Path) -> list[str]:
    """The names (``optim/<name>``) of the optimizer state arrays in the file: none unless
    the header describes an optimizer, and never more than a few."""
    names = [name.removesuffix(".npy") for name in members
             if name.startswith("optim/") and name.endswith(".npy")]
    if header.get("optimizer") is None:
        return []
    if len(names) > _MAX_OPTIMIZER_ARRAYS:
        raise ModelFileError(f"{path} is damaged: it holds {len(names):,} optimizer state "
                             f"arrays ({_names(names)}); an optimizer keeps at most "
                             f"{_MAX_OPTIMIZER_ARRAYS}")
    return names


def _check_model_size(header: dict, n_values: int, with_optimizer: bool, max_bytes: int,
                      path: Path) -> None:
    """Refuse a model whose description alone (``n_values`` values, its optimizer's state
    included if that is loaded too) needs more than ``max_bytes``: before anything is
    allocated."""
    dtype = header.get("dtype")
    if not isinstance(dtype, str) or dtype not in FLOAT_DTYPES:
        raise ModelFileError(f"{path} has an invalid model description: dtype {_quote(dtype)} "
                             f"(bprop models are {' or '.join(FLOAT_DTYPES)})")
    needed = n_values * np.dtype(dtype).itemsize
    if needed > max_bytes:
        state = " with its optimizer state" if with_optimizer else ""
        raise ModelFileError(
            f"{path} describes a model of {n_values:,} {dtype} values{state} ({needed:,} "
            f"bytes), more than max_bytes={max_bytes:,}; if you trust the file, load it with "
            "a larger max_bytes")


def _quote(value) -> str:
    """``repr(value)``, cut to a few dozen characters: names from a file can be megabytes."""
    text = repr(value)
    return text if len(text) <= _NAME_CHARS else text[:_NAME_CHARS] + "..."


def _names(names) -> str:
    """The first few of ``names``, quoted and cut, and how many more there are."""
    names = sorted(names)
    listed = ", ".join(_quote(name) for name in names[:_NAMES_LISTED])
    more = len(names) - _NAMES_LISTED
    return f"[{listed}]" + (f" and {more:,} more" if more > 0 else "")


def _cut(message: str) -> str:
    return message if len(message) <= _MESSAGE_CHARS else message[:_MESSAGE_CHARS] + "..."


def _array_header(archive: zipfile.ZipFile, members: dict, name: str, shape, path: Path,
                  max_elements: int | None = None
                  ) -> tuple[zipfile.ZipInfo, tuple[int, ...], bool, np.dtype]:
    """Check the header of ``name``.npy in the archive: no objects (pickles), a plain numeric
    dtype, the expected ``shape`` (if given), and an entry that unpacks to exactly that
    header and that shape's data. Returns the member, the shape, whether the array is in
    Fortran order, and its dtype."""
    info = members.get(name + ".npy")
    if info is None:
        raise ModelFileError(f"{path} is damaged: the array {_quote(name)} is missing")
    with archive.open(info) as member, _member_errors(name, path):
        found_shape, fortran_order, dtype = _read_npy_header(member)
        header_bytes = member.tell()
    if dtype.hasobject:
        raise ModelFileError(
            f"refusing to load {path}: {name!r} holds pickled Python objects, which could run "
            "code; bprop model files hold only plain arrays")
    if dtype.kind not in "uif":
        raise ModelFileError(f"{path} is damaged: {name!r} holds {dtype}, not numbers")
    if shape is not None and tuple(found_shape) != tuple(shape):
        raise ModelFileError(f"{path} is damaged: {name!r} has shape {tuple(found_shape)} but "
                             f"the model description needs {tuple(shape)}")
    if max_elements is not None and math.prod(found_shape) > max_elements:
        raise ModelFileError(f"{path} is damaged: {name!r} is implausibly large")
    needed = header_bytes + math.prod(found_shape) * dtype.itemsize
    if info.file_size != needed:
        problem = "is cut short" if info.file_size < needed else "holds more than its shape"
        raise ModelFileError(
            f"{path} is damaged: {name!r} {problem}: it unpacks to {info.file_size:,} bytes, "
            f"but {tuple(found_shape)} of {dtype} takes {needed:,}")
    return info, tuple(found_shape), fortran_order, dtype


def _read_npy_header(member) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(member)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    return read_header(member)


def _read_array(archive: zipfile.ZipFile, members: dict, name: str, shape, path: Path,
                max_elements: int | None = None) -> np.ndarray:
    """``name``.npy from the archive, read whole after :func:`_array_header`'s checks."""
    info, shape, fortran_order, dtype = _array_header(archive, members, name, shape, path,
                                                      max_elements)
    data = bytearray(math.prod(shape) * dtype.itemsize)
    with archive.open(info) as member:
        _read_npy_header(member)
        for start in range(0, len(data), _READ_BLOCK):
            end = min(start + _READ_BLOCK, len(data))
            data[start:end] = _read_block(member, end - start, name, path)
        _check_end(member, name, path)
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def _read_block(member, size: int, name: str, path: Path) -> bytes:
    """The next ``size`` bytes of ``member``; a member that ends first is cut short."""
    with _member_errors(name, path):
        data = member.read(size)  # (a deflated member inflates no more than is asked of it)
    if len(data) != size:
        raise ModelFileError(f"{path} is damaged: {name!r} is cut short")
    return data


def _check_end(member, name: str, path: Path) -> None:
    """Refuse a member that goes on after its array: one more byte is all that is read."""
    with _member_errors(name, path):
        more = member.read(1)
    if more:
        raise ModelFileError(f"{path} is damaged: {name!r} holds more than its shape")


@contextmanager
def _member_errors(name: str, path: Path) -> Iterator[None]:
    """What zipfile and zlib raise on a damaged member, said with the member's name."""
    try:
        yield
    except EOFError:
        raise ModelFileError(f"{path} is damaged: {name!r} is cut short") from None
    except zipfile.BadZipFile:  # (zipfile checks the CRC-32 once a member's end is read)
        raise ModelFileError(
            f"{path} is damaged: {name!r} does not match its checksum: its data are not "
            "what the archive's directory says they are") from None
    except zlib.error as error:
        raise ModelFileError(f"{path} is damaged: {name!r} is not a valid deflate stream "
                             f"({error})") from None


def _read_into(archive: zipfile.ZipFile, members: dict, name: str, target: np.ndarray,
               path: Path) -> None:
    """Read ``name``.npy (its header already checked) into ``target``, a block at a time,
    converting to ``target``'s dtype and refusing NaN and infinity."""
    info, _, fortran_order, dtype = _array_header(archive, members, name, target.shape, path)
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
            block = np.frombuffer(_read_block(member, count * dtype.itemsize, name, path),
                                  dtype=dtype)
            if dtype.kind == "f" and not all_finite(block):
                raise ModelFileError(f"{path} is damaged: {name!r} holds NaN or infinite values")
            flat[start:start + count] = block
        _check_end(member, name, path)


def _state_shapes(header: dict, path: Path) -> dict[str, tuple[int, ...]]:
    """``{"param/0.weight": (n_in, n_out), "buffer/1.running_mean": (n,), ...}`` computed from
    the layer descriptions alone, so that nothing is allocated before the arrays in the file
    are known to match."""
    shapes = {}
    layers = header.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelFileError(f"{path} has an invalid model description: no layers")
    if len(layers) > _MAX_MEMBERS:
        raise ModelFileError(f"{path} has an invalid model description: {len(layers):,} "
                             f"layers (at most {_MAX_MEMBERS:,})")
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or spec.get("type") not in LAYERS:
            kind = spec.get("type") if isinstance(spec, dict) else spec
            raise ModelFileError(f"{path} names an unknown layer type {_quote(kind)}")
        for name, shape in parameter_shapes(spec["type"], spec.get("config", {})).items():
            if any(n < 0 for n in shape):
                raise ModelFileError(f"{path} has an invalid model description: layer {i} "
                                     f"has {name} of shape {shape}")
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
            f"{path} uses model-file format version {_quote(version)} (written by bprop "
            f"{_quote(header.get('bprop_version', '?'))}); this bprop ({__version__}) reads "
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
                raise ModelFileError(f"{path} names an unknown layer type {_quote(spec['type'])}")
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
        raise ModelFileError(
            f"{path} has an invalid model description: {_cut(str(error))}") from None
    return model


def _build_optimizer(header: dict, archive: zipfile.ZipFile, members: dict, names: list[str],
                     model: Sequential, path: Path) -> Optimizer | None:
    """The optimizer the header describes, with its state arrays (``names``, each
    ``optim/<name>``) read from the file; None if the header describes none."""
    spec = header.get("optimizer")
    if spec is None:
        return None
    optimizer = _build(OPTIMIZERS, spec, "optimizer", path)
    size = sum(p.size for p in model.parameters())
    arrays = {name.removeprefix("optim/"): _read_array(archive, members, name, (size,), path)
              for name in names}
    try:
        optimizer.load_state_dict(model.parameters(), {"step": spec["step"], "arrays": arrays})
    except ValueError as error:
        raise ModelFileError(
            f"{path} has an invalid optimizer state: {_cut(str(error))}") from None
    return optimizer


def _build(classes: dict, spec: dict, kind: str, path: Path) -> Loss | Optimizer:
    cls = classes.get(spec["type"])
    if cls is None:
        raise ModelFileError(f"{path} names an unknown {kind} type {_quote(spec['type'])}")
    config = dict(spec["config"])
    if "betas" in config:
        config["betas"] = tuple(config["betas"])
    return cls(**config)

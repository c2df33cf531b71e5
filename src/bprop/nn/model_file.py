"""The model file: its format, and writing one (reading is :mod:`bprop.io`, above the model).

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, stored uncompressed). It holds

* ``__header__``: UTF-8 JSON with the format name and version, the bprop version, the model's
  dtype, every layer's type and constructor arguments, the loss, the model's random-generator
  state and, optionally, the optimizer's type and settings;
* ``param/<name>`` and ``buffer/<name>``: weights, biases and BatchNorm running statistics;
* ``optim/<name>``: the optimizer's state arrays (momentum, moment estimates), if saved.

Writing needs only what a model and an optimizer show of themselves (their layers, parameters,
``state_dict`` and ``get_config``), so this module sits beneath the model, which saves itself
through it, and imports nothing above it. Saving writes a temporary file in the target's folder
and renames it over the target, so an interrupted save leaves any previous file intact; the
arrays are written a block at a time, so a large model needs no second copy of itself in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._files import atomic_write
from .._version import __version__
from ..backend.devices import to_numpy
from .layers import LAYERS

FORMAT = "bprop-model"
#: 2 since the optimizer state took PyTorch's names (``optim/exp_avg``, ...); version 1 named
#: it otherwise (``optim/mean_sum``, ...), and files of it are still read and converted
FORMAT_VERSION = 2
#: the versions that bprop.load reads
READABLE_VERSIONS = (1, 2)


def save(model, path, optimizer=None) -> Path:
    """Write ``model`` (a :class:`~bprop.Sequential`) and, if given, ``optimizer``'s state for
    its parameters, to ``path``.

    >>> import bprop as bp, tempfile, os
    >>> model = bp.Sequential([bp.Dense(2, 3), bp.ReLU(), bp.Dense(3, 1)], seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> _ = bp.save(model, path)
    >>> x = np.ones((1, 2))
    >>> bool((bp.load(path).forward(x) == model.forward(x)).all())
    True
    """
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not hasattr(model, "named_parameters"):
        raise TypeError(f"save takes a Sequential model, got {type(model).__name__}")
    for layer in layers:
        if LAYERS.get(type(layer).__name__) is not type(layer):
            raise TypeError(f"cannot save a model with the custom layer {layer!r}; only bprop's "
                            "own layers can be rebuilt safely on loading")
    path = Path(path)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bprop_version": __version__,
        "dtype": model.dtype.name,
        "seed": model.seed if isinstance(model.seed, int) else None,
        "rng_state": model.rng.bit_generator.state,
        "layers": [{"type": type(layer).__name__, "config": layer.get_config()}
                   for layer in layers],
        "loss": None if model.loss is None else
        {"type": type(model.loss).__name__, "config": model.loss.get_config()},
        "optimizer": None,
    }
    # (from a GPU, each array is copied to the host: the file is the same on every device)
    arrays = {f"param/{name}": to_numpy(param.value) for name, param in model.named_parameters()}
    for i, layer in enumerate(layers):
        for name, buffer in layer.buffers.items():
            arrays[f"buffer/{i}.{name}"] = to_numpy(buffer)
    if optimizer is not None:
        state = optimizer.state_dict(model.parameters())
        header["optimizer"] = {"type": type(optimizer).__name__,
                               "config": optimizer.get_config(), "step": state["step"]}
        arrays.update({f"optim/{name}": to_numpy(array)
                       for name, array in state["arrays"].items()})
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as file:
        np.savez(file, **arrays)
    return path

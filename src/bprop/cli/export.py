"""``bprop export``: a saved model as an ONNX file or a PyTorch program.

The ONNX file does what ``bprop predict`` does: it takes the features as they are in the CSV
file (the run's scaling, from ``preprocessing.json``, is its first nodes), and gives the
predicted class by its name with each class's probability, or the predicted values in the
target's own units. ``--no-preprocessing`` writes the network alone, which
:func:`bprop.import_onnx` reads back. The PyTorch program (``torch.export``'s ``.pt2``, which
``torch.export.load(path).module()`` runs without bprop) is the network alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .._files import atomic_write
from ..interop.common import require
from ..interop.onnx_export import Node, export_onnx
from ..interop.torch import to_torch
from . import train
from .errors import UsageError

FORMATS = {"onnx": ".onnx", "torch": ".pt2"}


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=train.DEFAULT_MODEL,
                        help="a model file written by bprop train; its run folder's "
                        "preprocessing.json is read beside it")
    parser.add_argument("--format", choices=sorted(FORMATS), default="onnx",
                        help="onnx: a .onnx file for ONNX Runtime and other runtimes; torch: a "
                        "torch.export program (.pt2)")
    parser.add_argument("--out", default=None,
                        help="the file to write (default: the model's name with .onnx or "
                        ".pt2, beside it)")
    parser.add_argument("--opset", type=int, default=None,
                        help="the ONNX opset (14 to the newest the onnx package knows; "
                        "default: 17)")
    parser.add_argument("--fold-batchnorm", action="store_true",
                        help="fold each BatchNorm into the Dense layer before it (ONNX)")
    parser.add_argument("--no-preprocessing", action="store_true",
                        help="leave the run's scaling and class names out of the ONNX file: "
                        "the network alone, which bprop.import_onnx reads back")
    train.add_max_bytes_argument(parser)


def run_export(args: argparse.Namespace) -> int:
    model, preprocessing = train.load_model(args.model, args.max_bytes)
    suffix = FORMATS[args.format]
    out = Path(args.out) if args.out else Path(args.model).with_suffix(suffix)
    out = train.check_output_file(out, "--out", f"model{suffix}", args.model)
    if args.format == "torch":
        if args.opset is not None or args.fold_batchnorm:
            raise UsageError("--opset and --fold-batchnorm are for --format onnx")
        _export_torch(model, out)
        scaled = preprocessing.get("scaler") is not None
        print(f"wrote {out}: the network alone; load it with torch.export.load"
              + (" (its inputs must be scaled as preprocessing.json says; --format onnx "
                 "includes the scaling)" if scaled else ""))
        return 0
    if args.no_preprocessing:
        preprocessing = {}
    classes = preprocessing.get("classes")
    export_onnx(model, out, args.opset, fold_batchnorm=args.fold_batchnorm,
                classes=classes if classes and model._task() != "regression" else None,
                metadata=_metadata(preprocessing),
                before=feature_scaling(preprocessing.get("scaler"), model.dtype),
                after=target_unscaling(preprocessing.get("target_scaler"), model.dtype))
    what = "raw features in" if preprocessing.get("scaler") else "features in"
    print(f"wrote {out} ({what}; outputs: {_outputs(model, preprocessing)})")
    return 0


def feature_scaling(state: dict | None, dtype) -> list[Node]:
    """The ONNX nodes of the feature scaler recorded in ``preprocessing.json``."""
    if state is None:
        return []
    values = {key: np.asarray(value, dtype) for key, value in state.items() if key != "kind"}
    if state["kind"] == "standard":  # (x - mean) / scale
        return [Node("Sub", [values["mean"]], name="scaler.mean", constant_names=("mean",)),
                Node("Div", [values["scale"]], name="scaler.scale", constant_names=("scale",))]
    return [Node("Mul", [values["scale"]], name="scaler.scale", constant_names=("scale",)),
            Node("Add", [values["min"]], name="scaler.min", constant_names=("min",))]


def target_unscaling(state: dict | None, dtype) -> list[Node]:
    """The ONNX nodes that take a regression network's output back to the target's units:
    ``y = z * scale + mean``, from the target scaler recorded in ``preprocessing.json``."""
    if state is None:
        return []
    scale, mean = (np.asarray(state[key], dtype) for key in ("scale", "mean"))
    return [Node("Mul", [scale], name="target.scale", constant_names=("scale",)),
            Node("Add", [mean], name="target.mean", constant_names=("mean",))]


def _metadata(preprocessing: dict) -> dict[str, str]:
    """What a reader of the file needs to feed it: the features' names, in their order."""
    names = preprocessing.get("feature_names")
    return {"feature_names": json.dumps(names)} if names else {}


def _outputs(model, preprocessing: dict) -> str:
    if model._task() == "regression":
        return "output" + (" (in the target's units)" if preprocessing.get("target_scaler")
                           else "")
    return "output, probabilities, label" + (" (class names)" if preprocessing.get("classes")
                                             else "")


def _export_torch(model, out: Path) -> None:
    torch = require("torch", "--format torch", "pip install torch")
    module = to_torch(model).eval()
    example = torch.zeros((2, model.n_inputs), dtype=getattr(torch, model.dtype.name))
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    with atomic_write(out) as file:
        torch.export.save(program, file)

"""Helpers that several test modules share: the real MNIST files, loading a script as a
module, the converters' error measure, and a small CSV writer."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def real_mnist_dir() -> Path:
    """The folder of the genuine MNIST files (../shared/data/mnist, else $BPROP_DATA/mnist);
    the calling test is skipped without them."""
    if (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        return SHARED_MNIST
    if os.environ.get("BPROP_DATA"):
        folder = Path(os.environ["BPROP_DATA"]) / "mnist"
        if (folder / "train-images-idx3-ubyte.gz").is_file():
            return folder
    pytest.skip("the real MNIST files are not in ../shared/data/mnist nor $BPROP_DATA/mnist")


def load_script(path: Path, name: str) -> ModuleType:
    """The Python file at ``path`` (a benchmark, say, which is no package's module), imported
    as a module called ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # (a dataclass in it looks its module up there)
    spec.loader.exec_module(module)
    return module


def relative_error(got, expected) -> float:
    """The largest difference over the largest value, in float64: how the converters'
    outputs are compared with bprop's."""
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.abs(np.asarray(got, np.float64) - expected).max()
                 / max(np.abs(expected).max(), 1e-300))


def write_csv(path: Path, header, rows) -> Path:
    """A CSV file of ``rows`` under ``header`` (None: no header line)."""
    lines = [",".join(header)] if header else []
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path

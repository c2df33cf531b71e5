"""The 8x8 handwritten digits that scikit-learn ships inside its package (no download)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def digits_file() -> Path:
    """Where scikit-learn keeps ``digits.csv.gz``; found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_digits reads the copy of the digits that scikit-learn ships with its package; "
            "install it with: pip install scikit-learn"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"scikit-learn is installed but {path} is missing; reinstall it")
    return path


def load_digits(scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """1,797 handwritten digits as 8x8 images: ``(X, y)``.

    ``X`` has shape (1797, 64): float32 in [0, 1] (pixel value / 16), or with ``scale=False``
    the raw integer values 0..16 as uint8. ``y`` holds the labels 0..9.
    """
    table = np.loadtxt(digits_file(), delimiter=",", dtype=np.float64)
    X, y = table[:, :-1], table[:, -1].astype(np.int64)
    if scale:
        return (X / 16).astype(np.float32), y
    return X.astype(np.uint8), y

"""What the converters raise: a model that has no counterpart in the other library, and an
optional package that is not installed."""

from __future__ import annotations

import importlib
from types import ModuleType


class ConversionError(ValueError):
    """A layer, ONNX operator or PyTorch module that has no counterpart on the other side; the
    message names it, where it sits, and what is supported."""


class MissingPackageError(ImportError):
    """An optional package that a converter needs is not installed; the message says what to
    install."""


def require(package: str, needed_for: str, install: str) -> ModuleType:
    """Import ``package`` for ``needed_for``, or raise :class:`MissingPackageError` saying
    ``install`` (a pip command)."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingPackageError(f"{needed_for} needs the {package} package: {install}") \
            from None

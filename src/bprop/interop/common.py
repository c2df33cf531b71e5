"""What the converters share: their errors (a model with no counterpart in the other library,
an optional package not installed), importing that package, and finding the network of what
they are given."""

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


def network_of(model, converter: str):
    """``model`` if it is a bprop :class:`~bprop.Sequential`, or the network (``model_``) of a
    fitted MLPClassifier or MLPRegressor; ``converter`` names the caller in the errors.

    (A Sequential is recognised by what it has rather than by its class: ``Sequential.to_onnx``
    calls the ONNX converter, which the core module must not import back.)
    """
    if _is_network(model):
        return model
    network = getattr(model, "model_", None)
    if _is_network(network):
        return network
    if hasattr(model, "fit") and hasattr(model, "get_params"):
        raise ValueError(f"this {type(model).__name__} is not fitted yet: call fit before "
                         f"{converter}")
    raise TypeError(f"{converter} takes a bprop Sequential or a fitted MLPClassifier or "
                    f"MLPRegressor, not {type(model).__name__}")


def _is_network(model) -> bool:
    return isinstance(getattr(model, "layers", None), list) and hasattr(model, "_task")

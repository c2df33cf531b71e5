r"""bprop models to and from PyTorch's ``torch.nn.Sequential``.

The two libraries compute the same layers with two layouts of one matrix: a bprop
:class:`~bprop.Dense` computes :math:`x W + b` with ``weight`` of shape (n_in, n_out), PyTorch's
``Linear`` computes :math:`x A^\top + b` with ``weight`` of shape (n_out, n_in), so
:math:`A = W^\top`. BatchNorm follows PyTorch's conventions in both (momentum, the unbiased
running variance), so its parameters and running statistics carry over unchanged.

=====================  ============================================
bprop                  PyTorch
=====================  ============================================
``Dense``              ``Linear`` (weight transposed)
``BatchNorm``          ``BatchNorm1d`` (with its running statistics)
``ReLU``               ``ReLU``
``LeakyReLU(alpha)``   ``LeakyReLU(negative_slope=alpha)``
``Sigmoid``, ``Tanh``  ``Sigmoid``, ``Tanh``
``Softmax``            ``Softmax(dim=1)``
``Identity``           ``Identity``
``Dropout(p)``         ``Dropout(p)``
=====================  ============================================

PyTorch is imported only when a converter is called (``pip install torch``), so this module
imports without it. Every value is copied: changing one side never changes the other.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_dtype
from ..backend.devices import to_numpy
from ..nn.layers import BatchNorm, Dense, Dropout, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from ..nn.model import Sequential
from .common import ConversionError, network_of, require

_INSTALL = "pip install torch"


def to_torch(model):
    """A ``torch.nn.Sequential`` computing what ``model`` computes, with copies of its weights.

    Parameters
    ----------
    model : Sequential, or a fitted MLPClassifier / MLPRegressor
        An estimator gives its network, ``model_`` (which outputs logits for a classifier:
        apply ``torch.softmax(out, dim=1)`` for its ``predict_proba``).

    Returns
    -------
    torch.nn.Sequential
        On the CPU, in the model's dtype (float32 or float64), in training mode if ``model``
        is, else in eval mode. A model on a GPU is converted from a host copy of its weights.

    Raises
    ------
    ConversionError
        For a layer with no PyTorch counterpart (a subclass of a bprop layer included: its
        behaviour may differ).
    MissingPackageError
        When PyTorch is not installed.

    Examples
    --------
    ::

        import bprop as bp, numpy as np, torch
        model = bp.Sequential([bp.Dense(4, 8), bp.ReLU(), bp.Dense(8, 3), bp.Softmax()], seed=0)
        module = bp.to_torch(model)
        X = np.ones((2, 4), dtype=np.float32)
        np.allclose(module(torch.from_numpy(X)).detach().numpy(), model.predict_proba(X))
    """
    model = network_of(model, "to_torch")
    torch = require("torch", "to_torch", _INSTALL)
    dtype = getattr(torch, model.dtype.name)
    modules = []
    for i, layer in enumerate(model.layers):
        convert = _TO_TORCH.get(type(layer))
        if convert is None:
            raise ConversionError(f"layer {i} ({layer!r}) has no PyTorch counterpart; "
                                  f"to_torch supports "
                                  f"{', '.join(cls.__name__ for cls in _TO_TORCH)}")
        modules.append(convert(torch, layer, dtype))
    return torch.nn.Sequential(*modules).train(model.training)


def _tensor(torch, array, dtype):
    """A CPU tensor of ``dtype`` holding a copy of ``array`` (of any device)."""
    return torch.tensor(np.asarray(to_numpy(array)), dtype=dtype)


def _linear(torch, layer: Dense, dtype):
    # skip_init: the weights are overwritten next, so torch's generator draws nothing for them
    linear = torch.nn.utils.skip_init(torch.nn.Linear, layer.n_inputs, layer.n_outputs,
                                      bias=layer.use_bias, dtype=dtype)
    with torch.no_grad():
        linear.weight.copy_(_tensor(torch, layer.weight, dtype).T)
        if layer.use_bias:
            linear.bias.copy_(_tensor(torch, layer.bias, dtype))
    return linear


def _batch_norm(torch, layer: BatchNorm, dtype):
    norm = torch.nn.BatchNorm1d(layer.n_inputs, eps=layer.eps, momentum=layer.momentum,
                                dtype=dtype)
    with torch.no_grad():
        for name, param in layer.params.items():
            getattr(norm, name).copy_(_tensor(torch, param.value, dtype))
        for name, buffer in layer.buffers.items():
            getattr(norm, name).copy_(_tensor(torch, buffer, dtype))
    return norm


_TO_TORCH = {
    Dense: _linear,
    BatchNorm: _batch_norm,
    ReLU: lambda torch, layer, dtype: torch.nn.ReLU(),
    LeakyReLU: lambda torch, layer, dtype: torch.nn.LeakyReLU(negative_slope=layer.alpha),
    Sigmoid: lambda torch, layer, dtype: torch.nn.Sigmoid(),
    Tanh: lambda torch, layer, dtype: torch.nn.Tanh(),
    Softmax: lambda torch, layer, dtype: torch.nn.Softmax(dim=1),
    Identity: lambda torch, layer, dtype: torch.nn.Identity(),
    Dropout: lambda torch, layer, dtype: torch.nn.Dropout(p=layer.p),
}


def from_torch(module, dtype=None) -> Sequential:
    """A bprop :class:`~bprop.Sequential` computing what a PyTorch module computes.

    Parameters
    ----------
    module : torch.nn.Sequential or one supported module
        Linear, BatchNorm1d, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax(dim=1), Identity and
        Dropout; nested Sequentials are flattened in order. Tensors on a GPU are copied to the
        host.
    dtype : {"float32", "float64"} or None
        The model's dtype; None takes the parameters' (float32 when there are none).

    Returns
    -------
    Sequential
        On the CPU, holding copies of the weights (nothing is drawn), in training mode if
        ``module`` is, else in eval mode.

    Raises
    ------
    ConversionError
        For a module with no bprop counterpart (its place in the Sequential is named),
        Softmax over another dim than 1, a BatchNorm1d without running statistics, or half
        precision parameters without an explicit ``dtype``.
    TypeError
        When ``module`` is not a ``torch.nn.Module``.

    Examples
    --------
    ::

        import bprop as bp, torch
        module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        model = bp.from_torch(module.double())
        model.dtype, [type(layer).__name__ for layer in model.layers]
        # (dtype('float64'), ['Dense', 'Tanh', 'Dense'])
    """
    torch = require("torch", "from_torch", _INSTALL)
    table = _from_torch_table(torch)
    supported = f"{', '.join(cls.__name__ for cls in table)} and nested Sequential"
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch takes a torch.nn.Module (a torch.nn.Sequential of "
                        f"{supported}), got {type(module).__name__}")
    converted = []
    for path, child in _flatten(torch, module, ""):
        where = f"module {path} ({child!r})" if path else f"the module {child!r}"
        convert = table.get(type(child))
        if convert is None:
            raise ConversionError(f"{where} has no bprop counterpart; from_torch supports "
                                  f"{supported}")
        try:
            converted.append(convert(child))
        except ValueError as error:  # (a setting bprop's layer refuses: say which module)
            raise ConversionError(f"{where}: {error}") from None
    dtype = _dtype_of(torch, module) if dtype is None else as_float_dtype(dtype)
    tensor_dtype = getattr(torch, dtype.name)
    layers = [layer for layer, _ in converted]
    state = {f"{i}.{name}": tensor.detach().to("cpu", tensor_dtype).numpy()
             for i, (_, tensors) in enumerate(converted) for name, tensor in tensors.items()}
    model = Sequential(layers, dtype=dtype, initialise=False)
    model.load_state_dict(state)
    return model.train() if module.training else model.eval()


def _flatten(torch, module, path: str):
    """``(path, module)`` for every module of ``module``, nested Sequentials opened in order."""
    if type(module) is not torch.nn.Sequential:
        yield path, module
        return
    for name, child in module.named_children():
        yield from _flatten(torch, child, f"{path}.{name}" if path else name)


def _dtype_of(torch, module) -> np.dtype:
    """The one floating-point dtype of ``module``'s parameters and buffers (float32 if none)."""
    found = {t.dtype for t in [*module.parameters(), *module.buffers()] if t.is_floating_point()}
    if not found:
        return np.dtype("float32")
    if found - {torch.float32, torch.float64}:
        raise ConversionError(f"the module holds {sorted(map(str, found))} tensors; bprop "
                              "computes in float32 or float64: pass dtype='float32'")
    if len(found) > 1:
        raise ConversionError("the module mixes float32 and float64 tensors: pass dtype='float32' "
                              "or dtype='float64'")
    return np.dtype(str(found.pop()).removeprefix("torch."))


def _from_linear(linear):
    layer = Dense(linear.in_features, linear.out_features, bias=linear.bias is not None)
    tensors = {"weight": linear.weight.T}
    if linear.bias is not None:
        tensors["bias"] = linear.bias
    return layer, tensors


def _from_batch_norm(norm):
    if not norm.track_running_stats or norm.momentum is None:
        raise ValueError("bprop's BatchNorm keeps running statistics, updated with an "
                         "exponential momentum: build the BatchNorm1d with "
                         "track_running_stats=True and a float momentum (not None)")
    tensors = {"running_mean": norm.running_mean, "running_var": norm.running_var}
    if norm.affine:  # (else gamma and beta stay at BatchNorm's 1 and 0)
        tensors.update(weight=norm.weight, bias=norm.bias)
    else:
        ones = norm.running_var.new_ones(norm.num_features)
        tensors.update(weight=ones, bias=ones.new_zeros(norm.num_features))
    return BatchNorm(norm.num_features, momentum=norm.momentum, eps=norm.eps), tensors


def _from_softmax(softmax):
    # (dim=None, PyTorch's default, takes dim 1 of a 2-D input: a row-wise softmax too)
    if softmax.dim not in (1, -1, None):
        raise ValueError(f"bprop's Softmax is row-wise (dim=1), this one has dim={softmax.dim}")
    return Softmax(), {}


def _from_torch_table(torch) -> dict:
    """The converters by PyTorch class (built per call: PyTorch is imported only then)."""
    nn = torch.nn
    return {
        nn.Linear: _from_linear,
        nn.BatchNorm1d: _from_batch_norm,
        nn.ReLU: lambda m: (ReLU(), {}),
        nn.LeakyReLU: lambda m: (LeakyReLU(alpha=m.negative_slope), {}),
        nn.Sigmoid: lambda m: (Sigmoid(), {}),
        nn.Tanh: lambda m: (Tanh(), {}),
        nn.Softmax: _from_softmax,
        nn.Identity: lambda m: (Identity(), {}),
        nn.Dropout: lambda m: (Dropout(m.p), {}),
    }

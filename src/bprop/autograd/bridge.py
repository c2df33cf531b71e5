"""The bridge: a :class:`~bprop.Sequential` model's gradients through the autograd graph.

Each layer is rewritten as autograd operations on the model's current weights; the loss is
the autograd version of the same loss. Backpropagating through that graph gives a second,
independent set of gradients, to compare with the hand-written backward passes.
"""

from __future__ import annotations

import copy

import numpy as np

from ..nn import layers as hand
from ..nn import losses as hand_losses
from ..nn.model import Sequential
from ..tools.gradcheck import relative_error
from . import losses
from .tensor import Tensor, leaky_relu, relu, sigmoid, softmax, tanh

KNOWN_LAYERS = (hand.Dense, hand.Identity, hand.Sigmoid, hand.Tanh, hand.ReLU, hand.LeakyReLU,
                hand.Softmax, hand.Dropout, hand.BatchNorm)


def layer_forward(layer: hand.Layer, x: Tensor, params: dict[str, Tensor],
                  training: bool) -> Tensor:
    """``layer``'s computation as autograd operations (``params`` hold its weights).

    A subclass of a known layer is accepted only if it keeps that layer's forward pass, the
    public ``forward`` and its arithmetic ``_forward`` (it may override ``backward``, which is
    what the comparison checks)."""
    known = next((cls for cls in KNOWN_LAYERS if isinstance(layer, cls)), None)
    if known is None or any(getattr(type(layer), name) is not getattr(known, name)
                            for name in ("forward", "_forward")):
        raise TypeError(f"the autograd bridge does not know the layer {layer!r}; it can only "
                        "rebuild bprop's own layers (and subclasses that keep their forward)")
    if isinstance(layer, hand.Dense):
        out = x @ params["weight"]
        return out + params["bias"] if layer.use_bias else out
    if isinstance(layer, hand.Identity):
        return x
    if isinstance(layer, hand.Sigmoid):
        return sigmoid(x)
    if isinstance(layer, hand.Tanh):
        return tanh(x)
    if isinstance(layer, hand.ReLU):
        return relu(x)
    if isinstance(layer, hand.LeakyReLU):
        return leaky_relu(x, layer.alpha)
    if isinstance(layer, hand.Softmax):
        return softmax(x, axis=1)
    if isinstance(layer, hand.Dropout):
        # The mask the hand-written forward pass drew, so that both see the same network.
        return x if layer._mask is None or not training else x * layer._mask
    if isinstance(layer, hand.BatchNorm):
        if training:
            centered = x - x.mean(axis=0)
            variance = (centered * centered).mean(axis=0)
        else:
            centered = x - layer.buffers["running_mean"]
            variance = Tensor(layer.buffers["running_var"])
        x_hat = centered / (variance + layer.eps) ** 0.5
        return x_hat * params["weight"] + params["bias"]
    raise AssertionError(f"{known.__name__} is listed as known but has no translation")


def loss_forward(loss: hand_losses.Loss, pred: Tensor, target) -> Tensor:
    """The autograd version of one of the core's losses."""
    if isinstance(loss, hand_losses.MSE):
        return losses.mse(pred, target, loss.reduction)
    if isinstance(loss, hand_losses.BinaryCrossEntropy):
        return losses.binary_cross_entropy(pred, target, loss.from_logits, loss.reduction)
    if isinstance(loss, hand_losses.SoftmaxCrossEntropy):
        return losses.softmax_cross_entropy(pred, target, loss.reduction)
    raise TypeError(f"the autograd bridge does not know the loss {loss!r}")


def autograd_gradients(model: Sequential, X, y, loss, training: bool = True,
                       reuse_dropout_masks: bool = False) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and the gradient of every parameter (by name, plus ``"input"``) computed
    through the autograd graph; the model is not changed.

    In training mode a model with Dropout needs the masks of a hand-written forward pass on
    the same ``X`` (``reuse_dropout_masks=True``, as :func:`compare_gradients` arranges)."""
    loss = hand_losses.get_loss(loss)
    uses_dropout = training and any(isinstance(layer, hand.Dropout) and layer.p > 0
                                    for layer in model.layers)
    if uses_dropout and not reuse_dropout_masks:
        raise ValueError("in training mode a model with Dropout needs the masks of a forward "
                         "pass on the same X: use compare_gradients, or training=False")
    X = np.asarray(X, dtype=model.dtype)
    tensors = {name: Tensor(p.value.copy(), requires_grad=True, name=name)
               for name, p in model.named_parameters()}
    x = Tensor(X, requires_grad=True, name="input")
    out = x
    for i, layer in enumerate(model.layers):
        params = {name: tensors[f"{i}.{name}"] for name in layer.params}
        out = layer_forward(layer, out, params, training)
    value = loss_forward(loss, out, y)
    value.backward()
    grads = {name: t.grad for name, t in tensors.items()}
    grads["input"] = x.grad
    return float(value.item()), grads


def hand_gradients(model: Sequential, X, y, loss, training: bool = True
                   ) -> tuple[float, dict[str, np.ndarray]]:
    """The same through the hand-written backward passes."""
    loss = hand_losses.get_loss(loss)
    X = np.asarray(X, dtype=model.dtype)
    _, y = model._check_data(X, y, loss, "X", "y")
    model.zero_grad()
    value = loss.forward(model._forward(X, training), y)
    grads = {"input": model.backward(loss.backward())}
    grads.update({name: p.grad.copy() for name, p in model.named_parameters()})
    return value, grads


def compare_gradients(model: Sequential, X, y, loss, training: bool = True
                      ) -> dict[str, float]:
    """Worst relative error, per parameter and for the input, between the hand-written and
    the autograd gradients (computed on a float64 copy of the model), as
    :func:`bprop.tools.gradcheck.relative_error` measures it, with the scale never taken below
    1e-6 of the largest gradient of the model.

    >>> import bprop as bp
    >>> model = bp.Sequential([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 2)], seed=0)
    >>> errors = compare_gradients(model, np.ones((5, 3)), [0, 1, 0, 1, 1], "cross_entropy")
    >>> max(errors.values()) < 1e-12
    True
    """
    model = model.astype("float64")
    # The hand-written pass runs first: the Dropout masks it draws are the ones the autograd
    # graph then reuses.
    hand_value, hand_grads = hand_gradients(model, X, y, loss, training)
    auto_value, auto_grads = autograd_gradients(copy.copy(model), X, y, loss, training,
                                                reuse_dropout_masks=True)
    # A gradient that is exactly zero in exact arithmetic (a bias feeding a BatchNorm) is
    # rounding noise in both engines: measure it against the model's largest gradient.
    floor = 1e-6 * max(float(np.abs(g).max(initial=0.0)) for g in hand_grads.values())
    errors = {name: relative_error(hand_grads[name], auto_grads[name], floor)
              for name in hand_grads}
    errors["loss"] = relative_error(np.array(hand_value), np.array(auto_value))
    return errors

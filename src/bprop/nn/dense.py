r"""The fully connected layer."""

from __future__ import annotations

import numpy as np

from .._checks import as_float_dtype, check_choice, check_positive_int
from ..backend.devices import to_numpy
from .init import INITS, draw_weights
from .layer import Layer
from .parameter import Parameter


class Dense(Layer):
    r"""Fully connected layer :math:`\text{out} = x W + b`.

    Backward pass, for :math:`g = \partial L / \partial\,\text{out}`:

    .. math::
        \frac{\partial L}{\partial W} = x^\top g, \qquad
        \frac{\partial L}{\partial b} = \textstyle\sum_{\text{rows}} g, \qquad
        \frac{\partial L}{\partial x} = g\, W^\top

    Parameters
    ----------
    n_in, n_out : int
        Input and output features. ``weight`` has shape ``(n_in, n_out)`` (the layout of
        scikit-learn's ``coefs_``; PyTorch's ``Linear.weight`` is its transpose), ``bias`` has
        shape ``(n_out,)``.
    bias : bool
        Whether the layer has a bias. The classic tutorials instead append a constant-1 input
        column and use ``bias=False``.
    init : {"he", "xavier", "lecun", "normal", "uniform", "zeros"}
        How the weights are drawn when the layer is built: He (normal, std
        :math:`\sqrt{2/n_{in}}`, for ReLU), Xavier/Glorot (uniform on
        :math:`\pm\sqrt{6/(n_{in}+n_{out})}`, for tanh and sigmoid), LeCun (normal, std
        :math:`\sqrt{1/n_{in}}`), ``"normal"`` (std 0.01, the classic shallow-network exercise),
        ``"uniform"`` (on :math:`[-1, 1)`, the classic ``2 * random - 1``), ``"zeros"``
        (see :mod:`bprop.nn.init`). Biases start at zero.

    Notes
    -----
    Weights can be set from your own arrays (``layer.weight = W``) or with
    :meth:`from_weights`; a layer with weights set is not re-initialised when it is built, and
    nothing is drawn for it. A new layer takes no memory for its weights until it is built or
    packed into a model.

    >>> layer = Dense.from_weights([[1.0, 0.0], [0.0, 2.0]], bias=[0.5, 0.5])
    >>> layer.forward(np.array([[1.0, 1.0]]))
    array([[1.5, 2.5]])
    >>> layer.backward(np.array([[1.0, 1.0]]))
    array([[1., 2.]])
    >>> layer.params["weight"].grad
    array([[1., 1.],
           [1., 1.]])
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True, init: str = "he"):
        super().__init__()
        self.n_inputs = check_positive_int(n_in, "n_in")
        self.n_outputs = check_positive_int(n_out, "n_out")
        self.use_bias = bool(bias)
        self.init = check_choice(init, "init", INITS)
        self.params["weight"] = Parameter.zeros((self.n_inputs, self.n_outputs))
        if self.use_bias:
            self.params["bias"] = Parameter.zeros((self.n_outputs,), decay=False)
        self._initialised = init == "zeros"
        self._x: np.ndarray | None = None

    @classmethod
    def from_weights(cls, weight, bias=None) -> Dense:
        """A Dense layer holding the given ``weight`` (n_in, n_out) and optional ``bias``
        (copied, in ``weight``'s floating-point dtype, else float64; nothing is drawn)."""
        weight = np.asarray(to_numpy(weight))  # (from a GPU too: the layer starts on the host)
        if weight.ndim != 2:
            raise ValueError(f"weight must be 2-D (n_in, n_out), got shape {weight.shape}")
        layer = cls(weight.shape[0], weight.shape[1], bias=bias is not None)
        if weight.dtype.kind == "f":
            dtype = as_float_dtype(weight.dtype)
            for param in layer.parameters():  # (nothing is allocated yet: a change of label)
                param.astype(dtype)
        layer.weight = weight
        if bias is not None:
            layer.bias = bias
        return layer

    @property
    def weight(self) -> np.ndarray:
        return self.params["weight"].value

    @weight.setter
    def weight(self, value) -> None:
        weight, value = self.params["weight"], to_numpy(value)
        value = np.asarray(value)  # (copied into the weight's memory, on whichever device)
        if weight._home is None and weight._value is None and value.dtype.kind == "f":
            # A layer not in a model yet, whose dtype is still open: take the array's float
            # type, so that a float32 weight costs no float64 copy before the model casts it.
            for param in self.params.values():
                param.astype(value.dtype)
        weight.value = value
        self._initialised = True

    @property
    def bias(self) -> np.ndarray | None:
        return self.params["bias"].value if self.use_bias else None

    @bias.setter
    def bias(self, value) -> None:
        if not self.use_bias:
            raise ValueError("this Dense layer was created with bias=False")
        self.params["bias"].value = value

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw fresh weights with this layer's ``init`` scheme and zero the bias."""
        draw_weights(self.params["weight"].value, self.init, rng)
        if self.use_bias:
            self.params["bias"].value.fill(0)
        self._initialised = True

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._x = x
        out = x @ self.params["weight"].value
        if self.use_bias:
            out += self.params["bias"].value
        return out

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        weight = self.params["weight"]
        weight.accumulate_matmul(self._x.T, grad_out)            # dW += x.T @ g
        if self.use_bias:
            self.params["bias"].accumulate_sum(grad_out, axis=0)  # db += sum of g's rows
        if not need_input_grad:  # the input is data: its gradient would be thrown away
            return None
        return grad_out @ weight.value.T

    def __setstate__(self, state: dict) -> None:
        # A Dense pickled before the base class kept _initialised said _weight_ready.
        if "_weight_ready" in state:
            state["_initialised"] = state.pop("_weight_ready")
        self.__dict__.update(state)

    def get_config(self) -> dict:
        return {"n_in": self.n_inputs, "n_out": self.n_outputs, "bias": self.use_bias,
                "init": self.init}

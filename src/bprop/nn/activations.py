r"""Activations: parameter-free functions applied element by element (softmax: row by row).

Each backward pass is written in terms of the output the forward pass cached, as the
tutorials write it (``delta = error * slope``).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_positive_float
from ..backend import kernels
from ..backend.devices import array_module
from .layer import Layer


class Activation(Layer):
    """A parameter-free, element-wise (or row-wise) function; keeps the feature count."""

    def __init__(self) -> None:
        super().__init__()
        self._out: np.ndarray | None = None


class Identity(Activation):
    r""":math:`f(x) = x`, :math:`f'(x) = 1`. The output layer of a regression network."""

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._out = x
        return x

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray:
        return grad_out


class Sigmoid(Activation):
    r"""Logistic function :math:`\sigma(x) = 1 / (1 + e^{-x})`.

    Its slope is written in terms of its output, which the forward pass caches:
    :math:`\sigma'(x) = \sigma(x)\,(1 - \sigma(x))`, so backward is
    ``grad_in = grad_out * out * (1 - out)`` (the tutorials' ``delta = error * slope``).

    >>> Sigmoid().forward(np.array([[-1000.0, 0.0, 1000.0]]))
    array([[0. , 0.5, 1. ]])
    """

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        # out = 1 / (1 + exp(-x)), in place. exp(-x) overflows to inf for x < -709 (float64),
        # and 1 / (1 + inf) = 0 is the exact limit, so the overflow is harmless; this form
        # keeps full relative precision for tiny outputs, which 0.5 * (1 + tanh(x / 2)) would
        # round to zero.
        xp = array_module(x)
        out = xp.negative(x)
        with np.errstate(over="ignore"):
            xp.exp(out, out=out)
        out += 1
        xp.reciprocal(out, out=out)
        self._out = out
        return out

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray:
        out = self._out
        return grad_out * out * (1 - out)


class Tanh(Activation):
    r"""Hyperbolic tangent; :math:`\tanh'(x) = 1 - \tanh^2(x)`, written in terms of the output.

    >>> layer = Tanh()
    >>> layer.forward(np.array([[0.0]])), layer.backward(np.array([[2.0]]))
    (array([[0.]]), array([[2.]]))
    """

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._out = array_module(x).tanh(x)
        return self._out

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray:
        out = self._out
        return grad_out * (1 - out * out)


class ReLU(Activation):
    r"""Rectified linear unit :math:`\max(0, x)`; slope 1 where :math:`x > 0`, else 0.

    >>> layer = ReLU()
    >>> layer.forward(np.array([[-2.0, 3.0]])), layer.backward(np.array([[5.0, 5.0]]))
    (array([[0., 3.]]), array([[0., 5.]]))
    """

    # forward's kept zeros; a class default, so that a ReLU pickled before it existed loads
    _zeros: np.ndarray | None = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if type(x) is np.ndarray:
            self._out = np.maximum(x, self._zeros_like(x))
        else:  # (a GPU has no use for the zeros, which a recorded step would read besides)
            self._out = array_module(x).maximum(x, 0)
        return self._out

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray:
        return _times_slope(grad_out, self._out)  # grad_out * (out > 0)

    def _zeros_like(self, x: np.ndarray) -> np.ndarray:
        """Zeros of ``x``'s shape and dtype. NumPy vectorises maximum between two arrays but not
        against a scalar: against an array of zeros it is about three times as fast. The zeros
        are kept, as many rows as the largest input so far (they are only ever read), and
        sliced to this one's rows."""
        zeros = self._zeros
        if (zeros is None or zeros.shape[1:] != x.shape[1:] or zeros.dtype != x.dtype
                or len(zeros) < len(x)):
            zeros = self._zeros = array_module(x).zeros(x.shape, x.dtype)
        return zeros[:len(x)]


def _times_slope(grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``grad_out * (out > 0)``: ReLU's slope is 1 where the unit fired, else 0."""
    kernel = kernels.compiled("relu_backward", grad_out, out)
    if kernel is None:
        # The 0/1 mask product is several times faster than np.where on large arrays.
        return grad_out * (out > 0)
    grad_in = array_module(grad_out).empty_like(grad_out)
    kernel(grad_out, out, grad_in)  # the same product in one pass (a compiled kernel)
    return grad_in


class LeakyReLU(Activation):
    r""":math:`f(x) = x` for :math:`x > 0`, else :math:`\alpha x`; slope 1 or :math:`\alpha`.

    >>> layer = LeakyReLU(alpha=0.1)
    >>> layer.forward(np.array([[-2.0, 3.0]])), layer.backward(np.array([[1.0, 1.0]]))
    (array([[-0.2,  3. ]]), array([[0.1, 1. ]]))
    """

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = check_positive_float(alpha, "alpha", allow_zero=True)
        self._positive: np.ndarray | None = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._positive = x > 0
        self._out = array_module(x).where(self._positive, x, self.alpha * x)
        return self._out

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray:
        return array_module(grad_out).where(self._positive, grad_out, self.alpha * grad_out)

    def get_config(self) -> dict:
        return {"alpha": self.alpha}


class Softmax(Activation):
    r"""Row-wise softmax :math:`s_i = e^{x_i} / \sum_j e^{x_j}` (shifted by the row maximum so
    that no exponential overflows).

    Its Jacobian is :math:`\partial s_i / \partial x_j = s_i(\delta_{ij} - s_j)`, so
    ``grad_in = s * (grad_out - sum(grad_out * s, axis=1))``. For classification prefer a
    linear output with :class:`~bprop.SoftmaxCrossEntropy`, which fuses the two and is exact.

    >>> Softmax().forward(np.array([[1000.0, 1000.0]]))
    array([[0.5, 0.5]])
    """

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        out = x - x.max(axis=1, keepdims=True)
        array_module(x).exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        self._out = out
        return out

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray:
        out = self._out
        return out * (grad_out - (grad_out * out).sum(axis=1, keepdims=True))


ACTIVATIONS = {
    "identity": Identity,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "softmax": Softmax,
}


def activation(name: str) -> Activation:
    """Create an activation layer by name (``"relu"``, ``"tanh"``, ...).

    >>> activation("tanh")
    Tanh()
    """
    return ACTIVATIONS[check_choice(name, "activation", tuple(ACTIVATIONS))]()

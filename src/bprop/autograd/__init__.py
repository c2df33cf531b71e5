"""autograd: a computation-graph engine with reverse-mode differentiation.

The second, independent way bprop computes gradients: operations record a graph, and
``backward`` applies the chain rule over it. :func:`compare_gradients` checks the hand-written
backward passes of any :class:`~bprop.Sequential` against it.

>>> from bprop.autograd import Tensor
>>> x = Tensor([1.0, 2.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
array([2., 4.])
"""

from .bridge import autograd_gradients, compare_gradients, hand_gradients
from .graph import render_text, to_dot
from .losses import binary_cross_entropy, mse, softmax_cross_entropy
from .tensor import (
    Tensor,
    absolute,
    exp,
    leaky_relu,
    log,
    log_softmax,
    mean,
    no_grad,
    relu,
    reshape,
    sigmoid,
    softmax,
    softplus,
    tanh,
    transpose,
)

__all__ = [
    "Tensor",
    "absolute",
    "autograd_gradients",
    "binary_cross_entropy",
    "compare_gradients",
    "exp",
    "hand_gradients",
    "leaky_relu",
    "log",
    "log_softmax",
    "mean",
    "mse",
    "no_grad",
    "relu",
    "render_text",
    "reshape",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softplus",
    "tanh",
    "to_dot",
    "transpose",
]

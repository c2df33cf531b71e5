r"""A Tensor that records the operations made with it, and reverse-mode differentiation.

Every operation below computes its value and defines, right beside it, the *local* derivative:
a function from the gradient of the output to the gradients of its inputs. ``backward`` then
applies the chain rule from the output back to the inputs, visiting each node once in reverse
topological order (walked without recursion, so a graph 100,000 nodes deep is fine):

.. math::
    \frac{\partial L}{\partial x} = \sum_{\text{uses } u \text{ of } x}
    \frac{\partial L}{\partial u}\,\frac{\partial u}{\partial x}

A node used several times receives the sum of the gradients of its uses. As in PyTorch, the
gradients of *leaves* (tensors you created with ``requires_grad=True``) accumulate across calls
of ``backward`` until ``zero_grad``; intermediate results get fresh gradients on every call,
so calling ``backward`` twice gives exactly twice the leaf gradients, never more.

A tensor copies the array it is made from, and assigning to ``t.data`` (``t.data -= lr * g``)
counts as a change: ``backward`` through a graph that used the old values raises instead of
returning gradients that mix old and new values. Operations with plain numbers or arrays take
the tensor's precision (a float32 tensor stays float32).

>>> x, y, w = Tensor(1.0, requires_grad=True), Tensor(2.0, requires_grad=True), \
...     Tensor(4.0, requires_grad=True)
>>> z = (x + y) * w
>>> z.backward()
>>> x.grad, y.grad, w.grad     # dz/dx = w, dz/dy = w, dz/dw = x + y
(array(4.), array(4.), array(3.))
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np

Backward = Callable[[np.ndarray], Sequence[np.ndarray | None]]

_state = threading.local()


def grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Within this block operations record no graph (inference: faster, no memory kept).

    >>> w = Tensor([1.0, 2.0], requires_grad=True)
    >>> with no_grad():
    ...     y = w * 2
    >>> y.requires_grad, y.parents
    (False, ())
    """
    previous = grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


class Tensor:
    """A NumPy array (or scalar) that remembers how it was made.

    Parameters
    ----------
    data : array_like of numbers (converted to float64 unless already float32/float64).
    requires_grad : whether ``backward`` should compute this tensor's gradient into ``grad``.
    name : a label for graph pictures.

    Attributes
    ----------
    grad : np.ndarray or None, the gradient of the last ``backward`` output (leaves: summed
        over calls until ``zero_grad``).
    op : the operation that made the tensor ("" for a leaf).
    parents : the tensors it was made from.
    """

    # ``ndarray + Tensor`` then calls Tensor.__radd__, and NumPy ufuncs such as np.exp refuse
    # a Tensor instead of silently making an object array of them.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, name: str = "",
                 dtype=None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        array = np.array(data, copy=True)
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise TypeError(f"a Tensor holds real numbers, not {array.dtype} ({data!r:.60})")
        if dtype is not None:
            array = array.astype(dtype)
        elif array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float64)
        self._data = array
        self._version = 0
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.grad: np.ndarray | None = None
        self.op = ""
        self.parents: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None

    # -- basics --------------------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value) -> None:
        value = np.asarray(value, dtype=self._data.dtype)
        if value.shape != self._data.shape:
            raise ValueError(f"cannot set data of shape {self._data.shape} to shape "
                             f"{value.shape}")
        self._data = value
        self._version += 1

    def __bool__(self) -> bool:
        return bool(self._data)  # NumPy's rule: only for a single element

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self.op!r}" if self.op else ""
        body = np.array2string(self.data, precision=4, threshold=8)
        return f"Tensor({body}{grad}{op}{label})"

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def detach(self) -> Tensor:
        """The same values, cut off from the graph."""
        return Tensor(self.data, name=self.name)

    # -- the chain rule ------------------------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Compute the gradient of this tensor with respect to every tensor it depends on.

        ``grad`` is the seed :math:`\\partial L / \\partial \\text{self}`: 1 for a scalar
        (the default); required, of this tensor's shape, for anything else.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "this tensor does not depend on any tensor with requires_grad=True, so it has "
                "no gradient to compute; create the inputs with requires_grad=True")
        if grad is None:
            if self.size != 1:
                raise ValueError(
                    f"backward() on a tensor of shape {self.shape} needs a seed gradient of "
                    "that shape, e.g. t.backward(np.ones(t.shape)); or reduce it to a scalar "
                    "first (t.sum())")
            seed = np.ones_like(self.data)
        else:
            seed = np.asarray(grad.data if isinstance(grad, Tensor) else grad,
                              dtype=self.dtype)
            if seed.shape != self.shape:
                raise ValueError(f"the seed gradient has shape {seed.shape} but the tensor "
                                 f"has shape {self.shape}")
        order = topological_order(self)
        grads: dict[int, np.ndarray] = {id(self): seed.copy()}
        for node in reversed(order):
            grad_out = grads.pop(id(node), None)
            if grad_out is None:
                continue
            if node._backward is None:  # a leaf: accumulate, as PyTorch does
                node.grad = np.array(grad_out) if node.grad is None else node.grad + grad_out
                continue
            node.grad = grad_out
            for parent, version in zip(node.parents, node._parent_versions, strict=True):
                if parent._version != version:
                    raise RuntimeError(
                        f"a tensor used by {node.op!r} was changed (its data assigned) after "
                        "it was used; run the forward computation again before backward()")
            for parent, grad_in in zip(node.parents, node._backward(grad_out), strict=True):
                if grad_in is None or not parent.requires_grad:
                    continue
                grad_in = np.asarray(grad_in, dtype=parent.dtype)
                if grad_in.shape != parent.shape:  # a derivative with a bug in its shapes
                    raise RuntimeError(f"the {node.op!r} derivative gave shape "
                                       f"{grad_in.shape} for an input of shape {parent.shape}")
                key = id(parent)
                grads[key] = grad_in if key not in grads else grads[key] + grad_in

    # -- operators -----------------------------------------------------------------------------
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __pow__(self, exponent):
        return power(self, exponent)

    def __rpow__(self, base):
        return power(base, self)

    def __neg__(self):
        return neg(self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __getitem__(self, index):
        return getitem(self, index)

    @property
    def T(self) -> Tensor:  # noqa: N802 (NumPy's name)
        return transpose(self)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def tanh(self):
        return tanh(self)

    def sigmoid(self):
        return sigmoid(self)

    def relu(self):
        return relu(self)

    def softplus(self):
        return softplus(self)

    def abs(self):
        return absolute(self)

    def leaky_relu(self, alpha: float = 0.01):
        return leaky_relu(self, alpha)

    def sum(self, axis=None, keepdims: bool = False):
        return tensor_sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return mean(self, axis, keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return tensor_max(self, axis, keepdims)

    def reshape(self, *shape):
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return transpose(self, axes or None)

    def softmax(self, axis: int = -1):
        return softmax(self, axis)

    def log_softmax(self, axis: int = -1):
        return log_softmax(self, axis)


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on, each after all of its parents, found with an explicit
    stack (no recursion)."""
    order, visited = [], set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((parent, False) for parent in node.parents if id(parent) not in visited)
    return order


# -- building blocks ---------------------------------------------------------------------------
def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """``value`` if it is a Tensor, else a constant Tensor (no gradient) holding it, in the
    precision of ``like`` if given."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, int, float, np.number, np.ndarray, list, tuple)):
        return Tensor(value, dtype=None if like is None else like.dtype)
    raise TypeError(f"cannot combine a Tensor with {type(value).__name__} {value!r:.60}; "
                    "use numbers, NumPy arrays or Tensors")


def result(data: np.ndarray, parents: Sequence[Tensor], op: str,
           backward: Backward) -> Tensor:
    """A new tensor made by ``op`` from ``parents``; the graph is recorded only if a parent
    needs a gradient and recording is on."""
    out = Tensor.__new__(Tensor)  # wraps ``data`` without the copy a user's array gets
    out._data = np.asarray(data)
    out._version = 0
    out.requires_grad, out.name, out.grad, out.op = False, "", None, ""
    out.parents, out._backward = (), None
    if grad_enabled() and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out.op = op
        out.parents = tuple(parents)
        # The versions the derivative's captured values belong to (checked in backward).
        out._parent_versions = tuple(p._version for p in parents)
        out._backward = backward
    return out


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast, so that
    the gradient has the operand's own shape."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _pair(a, b, broadcast: bool = True) -> tuple[Tensor, Tensor]:
    """Both operands as tensors (a plain number takes the other's precision), checked to
    broadcast together."""
    if isinstance(a, Tensor):
        b = as_tensor(b, like=a)
    a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    if not broadcast:
        return a, b
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return a, b


# -- arithmetic --------------------------------------------------------------------------------
def add(a, b) -> Tensor:
    """``a + b``; d/da = d/db = 1 (reduced over broadcast axes)."""
    a, b = _pair(a, b)
    return result(a.data + b.data, (a, b), "+",
                  lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def sub(a, b) -> Tensor:
    """``a - b``; d/da = 1, d/db = -1."""
    a, b = _pair(a, b)
    return result(a.data - b.data, (a, b), "-",
                  lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))


def mul(a, b) -> Tensor:
    """``a * b``; d/da = b, d/db = a."""
    a, b = _pair(a, b)
    return result(a.data * b.data, (a, b), "*",
                  lambda g: (unbroadcast(g * b.data, a.shape), unbroadcast(g * a.data, b.shape)))


def div(a, b) -> Tensor:
    """``a / b``; d/da = 1/b, d/db = -a/b^2."""
    a, b = _pair(a, b)
    return result(a.data / b.data, (a, b), "/",
                  lambda g: (unbroadcast(g / b.data, a.shape),
                             unbroadcast(-g * a.data / (b.data * b.data), b.shape)))


def neg(a) -> Tensor:
    """``-a``; d/da = -1."""
    a = as_tensor(a)
    return result(-a.data, (a,), "neg", lambda g: (-g,))


def power(a, b) -> Tensor:
    """``a ** b``; d/da = b a^(b-1), d/db = a^b log(a) (needs a > 0 where b needs a gradient)."""
    a, b = _pair(a, b)
    out = a.data ** b.data

    def backward(g):
        grad_a = unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape)
        grad_b = None
        if b.requires_grad:  # 0 where a == 0, as PyTorch takes it (a^b log a -> 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                slope = np.where(a.data == 0, 0.0, out * np.log(np.where(a.data == 0, 1, a.data)))
            grad_b = unbroadcast(g * slope, b.shape)
        return grad_a, grad_b

    return result(out, (a, b), "**", backward)


def matmul(a, b) -> Tensor:
    """Matrix product of 1-D or 2-D operands; d/dA = G B^T, d/dB = A^T G."""
    a, b = _pair(a, b, broadcast=False)
    if not (1 <= a.ndim <= 2 and 1 <= b.ndim <= 2):
        raise ValueError(f"@ takes 1-D or 2-D operands, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not fit a matrix product: "
                         f"{a.shape[-1]} columns against {b.shape[0]} rows")
    # Treat vectors as a row (left) or a column (right) matrix, then drop those axes again.
    a2 = a.data.reshape(1, -1) if a.ndim == 1 else a.data
    b2 = b.data.reshape(-1, 1) if b.ndim == 1 else b.data

    def backward(g):
        g2 = np.asarray(g).reshape(a2.shape[0], b2.shape[1])
        return (g2 @ b2.T).reshape(a.shape), (a2.T @ g2).reshape(b.shape)

    return result(a.data @ b.data, (a, b), "@", backward)


# -- element-wise functions --------------------------------------------------------------------
def exp(a) -> Tensor:
    """``e^a``; derivative ``e^a`` (the output)."""
    a = as_tensor(a)
    out = np.exp(a.data)
    return result(out, (a,), "exp", lambda g: (g * out,))


def log(a) -> Tensor:
    """Natural logarithm; derivative ``1/a``."""
    a = as_tensor(a)
    return result(np.log(a.data), (a,), "log", lambda g: (g / a.data,))


def absolute(a) -> Tensor:
    """``|a|``; derivative ``sign(a)`` (0 at 0)."""
    a = as_tensor(a)
    return result(np.abs(a.data), (a,), "abs", lambda g: (g * np.sign(a.data),))


def tanh(a) -> Tensor:
    """``tanh a``; derivative ``1 - tanh^2 a``."""
    a = as_tensor(a)
    out = np.tanh(a.data)
    return result(out, (a,), "tanh", lambda g: (g * (1 - out * out),))


def sigmoid(a) -> Tensor:
    """``1 / (1 + e^-a)``; derivative ``s (1 - s)``."""
    a = as_tensor(a)
    with np.errstate(over="ignore"):
        out = 1 / (1 + np.exp(-a.data))
    return result(out, (a,), "sigmoid", lambda g: (g * out * (1 - out),))


def softplus(a) -> Tensor:
    """``log(1 + e^a)``, computed as ``max(a, 0) + log(1 + e^-|a|)`` so that it never
    overflows; derivative ``sigmoid(a)`` (smooth everywhere, including at 0)."""
    a = as_tensor(a)
    out = np.maximum(a.data, 0) + np.log1p(np.exp(-np.abs(a.data)))
    with np.errstate(over="ignore"):
        slope = 1 / (1 + np.exp(-a.data))
    return result(out, (a,), "softplus", lambda g: (g * slope,))


def relu(a) -> Tensor:
    """``max(a, 0)``; derivative 1 where ``a > 0``, else 0."""
    a = as_tensor(a)
    return result(np.maximum(a.data, 0), (a,), "relu", lambda g: (g * (a.data > 0),))


def leaky_relu(a, alpha: float = 0.01) -> Tensor:
    """``a`` where positive, ``alpha a`` elsewhere; derivative 1 or ``alpha``."""
    a = as_tensor(a)
    positive = a.data > 0
    return result(np.where(positive, a.data, alpha * a.data), (a,), "leaky_relu",
                  lambda g: (np.where(positive, g, alpha * g),))


# -- reductions and reshaping ------------------------------------------------------------------
def _expand(g: np.ndarray, shape: tuple[int, ...], axis, keepdims: bool) -> np.ndarray:
    """Broadcast the gradient of a reduction back to the input's ``shape``."""
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape)


def tensor_sum(a, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis``; every summed element gets the output's gradient."""
    a = as_tensor(a)
    return result(a.data.sum(axis=axis, keepdims=keepdims), (a,), "sum",
                  lambda g: (_expand(g, a.shape, axis, keepdims).copy(),))


def mean(a, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``; each element gets the output's gradient divided by the count."""
    a = as_tensor(a)
    out = a.data.mean(axis=axis, keepdims=keepdims)
    count = a.size // max(np.size(out), 1)
    return result(out, (a,), "mean", lambda g: (_expand(g, a.shape, axis, keepdims) / count,))


def tensor_max(a, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; the gradient goes to the maximal elements (split evenly among
    ties)."""
    a = as_tensor(a)
    out = a.data.max(axis=axis, keepdims=True)

    def backward(g):
        winners = a.data == out
        share = winners / winners.sum(axis=axis, keepdims=True)
        return (_expand(g, a.shape, axis, keepdims) * share,)

    return result(out if keepdims else np.squeeze(out, axis=axis), (a,), "max", backward)


def reshape(a, shape) -> Tensor:
    """The same values in a new shape; the gradient is reshaped back."""
    a = as_tensor(a)
    return result(a.data.reshape(shape), (a,), "reshape", lambda g: (g.reshape(a.shape),))


def transpose(a, axes=None) -> Tensor:
    """Axes permuted (reversed by default); the gradient is permuted back."""
    a = as_tensor(a)
    if axes is not None:
        axes = tuple(int(axis) % a.ndim for axis in axes)  # negative axes count from the end
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of the {a.ndim} axes")
    inverse = None if axes is None else np.argsort(axes)
    return result(np.transpose(a.data, axes), (a,), "transpose",
                  lambda g: (np.transpose(g, inverse),))


def getitem(a, index) -> Tensor:
    """``a[index]`` (slices, integers, arrays); the gradient is scattered back, adding up where
    an element was picked more than once."""
    a = as_tensor(a)
    if isinstance(index, Tensor):
        raise TypeError("index a Tensor with integers, slices or NumPy arrays, not a Tensor")

    def backward(g):
        grad = np.zeros_like(a.data)
        np.add.at(grad, index, g)
        return (grad,)

    return result(a.data[index], (a,), "index", backward)


def softmax(a, axis: int = -1) -> Tensor:
    """``e^a / sum e^a`` along ``axis`` (shifted by the maximum); Jacobian
    ``s_i (delta_ij - s_j)``."""
    a = as_tensor(a)
    shifted = np.exp(a.data - a.data.max(axis=axis, keepdims=True))
    out = shifted / shifted.sum(axis=axis, keepdims=True)
    return result(out, (a,), "softmax",
                  lambda g: (out * (g - (g * out).sum(axis=axis, keepdims=True)),))


def log_softmax(a, axis: int = -1) -> Tensor:
    """``a - log sum e^a`` along ``axis``; gradient ``g - softmax(a) sum g``."""
    a = as_tensor(a)
    shifted = a.data - a.data.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    probs = np.exp(out)
    return result(out, (a,), "log_softmax",
                  lambda g: (g - probs * g.sum(axis=axis, keepdims=True),))

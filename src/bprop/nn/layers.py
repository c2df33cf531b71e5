r"""Layers: each one's forward pass and its hand-written backward pass, side by side.

Every layer follows one contract:

* ``forward(x, training=False)`` computes the layer's output and caches what its backward
  pass will need;
* ``backward(grad_out)`` takes :math:`\partial L / \partial \text{out}` (the "delta" arriving
  from the layer above), **adds** the gradients of the layer's own parameters into
  ``param.grad`` (call ``zero_grad()`` between steps, as in PyTorch) and returns
  :math:`\partial L / \partial x` for the layer below. With ``need_input_grad=False`` (the
  first layer of a network, whose input is data) it may skip that product and return None.

Shapes: ``x`` is ``(m, n_features)`` for a mini-batch of ``m`` samples.

The array ``forward`` returns may be the very array the layer keeps for its backward pass
(no copy is made, for speed): read it, but do not modify it in place before ``backward``.
"""

from __future__ import annotations

import numpy as np

from .._checks import (
    as_array,
    as_float_dtype,
    check_choice,
    check_positive_float,
    check_positive_int,
)
from ..backend.kernels import compiled
from .parameter import Parameter

INITS = ("he", "xavier", "lecun", "normal", "uniform", "zeros")


class Layer:
    """Base class of all layers.

    Attributes
    ----------
    params : dict[str, Parameter]
        The layer's learnable parameters by name (empty for activations).
    n_inputs, n_outputs : int or None
        Feature counts the layer requires and produces; None when the layer keeps whatever
        width it is given (activations).

    In inference (``training=False``) a layer must treat the rows of its input independently
    (as every layer here does; BatchNorm then uses its running statistics): ``predict`` runs a
    model over slices of rows.
    """

    n_inputs: int | None = None
    n_outputs: int | None = None
    #: the generator a layer that draws random numbers at run time (Dropout) uses
    rng: np.random.Generator | None = None

    def __init__(self) -> None:
        self.params: dict[str, Parameter] = {}
        # State that is saved with the model but not learned by gradient (running statistics).
        self.buffers: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.forward(x, training=training)

    def parameters(self) -> list[Parameter]:
        return list(self.params.values())

    def zero_grad(self) -> None:
        for param in self.params.values():
            param.zero_grad()

    def build(self, rng: np.random.Generator | int | None = None, dtype="float64") -> Layer:
        """Initialise parameters not set yet (drawing from ``rng``) and cast all to ``dtype``.

        A :class:`~bprop.Sequential` calls this with its own seeded generator; call it yourself
        only to use a layer on its own. Returns the layer.
        """
        dtype = as_float_dtype(dtype)
        for param in self.params.values():
            if param.dtype != dtype:
                param.astype(dtype)
        for name, buffer in self.buffers.items():
            self.buffers[name] = buffer.astype(dtype, copy=False)
        return self

    def get_config(self) -> dict:
        """The constructor arguments that recreate this layer (without its parameter values)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _input(self, x) -> np.ndarray:
        """``x`` as a 2-D floating-point array, or a clear error."""
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            x = as_array(x, "x")
            if x.dtype.kind != "f":
                x = x.astype(np.float64)
        if x.ndim != 2:
            raise ValueError(f"{self!r} expects a 2-D input (m, n_features), got shape {x.shape}")
        return x

    def _check_grad_out(self, grad_out: np.ndarray, cached: np.ndarray | None) -> None:
        if cached is None:
            raise RuntimeError(f"{self!r}: backward() was called before forward()")
        if np.shape(grad_out) != cached.shape:
            raise ValueError(
                f"{self!r}: grad_out has shape {np.shape(grad_out)} but the forward output "
                f"had shape {cached.shape}"
            )


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
        ``"uniform"`` (on :math:`[-1, 1)`, the classic ``2 * random - 1``), ``"zeros"``.
        Biases start at zero.

    Weights can be set from your own arrays (``layer.weight = W``) or with
    :meth:`from_weights`; a layer with weights set is not re-initialised when it is built.

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
        self.params["weight"] = Parameter(np.zeros((self.n_inputs, self.n_outputs)))
        if self.use_bias:
            self.params["bias"] = Parameter(np.zeros(self.n_outputs), decay=False)
        self._weight_ready = init == "zeros"
        self._x: np.ndarray | None = None

    @classmethod
    def from_weights(cls, weight, bias=None) -> Dense:
        """A Dense layer holding the given ``weight`` (n_in, n_out) and optional ``bias``."""
        weight = np.asarray(weight)
        if weight.ndim != 2:
            raise ValueError(f"weight must be 2-D (n_in, n_out), got shape {weight.shape}")
        layer = cls(weight.shape[0], weight.shape[1], bias=bias is not None)
        layer.weight = weight
        if bias is not None:
            layer.bias = bias
        if weight.dtype.kind == "f":
            layer.build(dtype=weight.dtype)
        return layer

    @property
    def weight(self) -> np.ndarray:
        return self.params["weight"].value

    @weight.setter
    def weight(self, value) -> None:
        self.params["weight"].value = value
        self._weight_ready = True

    @property
    def bias(self) -> np.ndarray | None:
        return self.params["bias"].value if self.use_bias else None

    @bias.setter
    def bias(self, value) -> None:
        if not self.use_bias:
            raise ValueError("this Dense layer was created with bias=False")
        self.params["bias"].value = value

    def build(self, rng: np.random.Generator | int | None = None, dtype="float64") -> Dense:
        if not self._weight_ready:
            self.reset_parameters(np.random.default_rng(rng))
        return super().build(rng, dtype)

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw fresh weights with this layer's ``init`` scheme and zero the bias."""
        n_in, n_out = self.n_inputs, self.n_outputs
        shape = (n_in, n_out)
        if self.init == "he":
            weight = rng.normal(0.0, np.sqrt(2.0 / n_in), shape)
        elif self.init == "xavier":
            limit = np.sqrt(6.0 / (n_in + n_out))
            weight = rng.uniform(-limit, limit, shape)
        elif self.init == "lecun":
            weight = rng.normal(0.0, np.sqrt(1.0 / n_in), shape)
        elif self.init == "normal":
            weight = rng.normal(0.0, 0.01, shape)
        elif self.init == "uniform":
            weight = rng.uniform(-1.0, 1.0, shape)
        else:
            weight = np.zeros(shape)
        self.params["weight"].value = weight
        if self.use_bias:
            self.params["bias"].value = np.zeros(n_out)
        self._weight_ready = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        if not self._weight_ready:
            raise RuntimeError(
                f"{self!r} has no weights yet: put it in a Sequential (which initialises it "
                "from its seed), call layer.build(seed), or set layer.weight"
            )
        weight = self.params["weight"].value
        if x.shape[1] != self.n_inputs:
            raise ValueError(f"{self!r} expects input of shape (m, {self.n_inputs}), got {x.shape}")
        if x.dtype != weight.dtype:
            raise TypeError(
                f"{self!r} holds {weight.dtype} parameters but got {x.dtype} input; cast the "
                f"input or build the layer with dtype={x.dtype.name!r} (no silent upcasting)"
            )
        self._x = x
        out = x @ weight
        if self.use_bias:
            out += self.params["bias"].value
        return out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if self._x is None:
            raise RuntimeError(f"{self!r}: backward() was called before forward()")
        if np.shape(grad_out) != (self._x.shape[0], self.n_outputs):
            raise ValueError(
                f"{self!r}: grad_out has shape {np.shape(grad_out)}, expected "
                f"{(self._x.shape[0], self.n_outputs)}"
            )
        weight = self.params["weight"]
        weight.accumulate_matmul(self._x.T, grad_out)            # dW += x.T @ g
        if self.use_bias:
            self.params["bias"].accumulate_sum(grad_out, axis=0)  # db += sum of g's rows
        if not need_input_grad:  # the input is data: its gradient would be thrown away
            return None
        return grad_out @ weight.value.T

    def get_config(self) -> dict:
        return {"n_in": self.n_inputs, "n_out": self.n_outputs, "bias": self.use_bias,
                "init": self.init}


class Activation(Layer):
    """A parameter-free, element-wise (or row-wise) function; keeps the feature count."""

    def __init__(self) -> None:
        super().__init__()
        self._out: np.ndarray | None = None


class Identity(Activation):
    r""":math:`f(x) = x`, :math:`f'(x) = 1`. The output layer of a regression network."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        self._out = x
        return x

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        self._check_grad_out(grad_out, self._out)
        return grad_out


class Sigmoid(Activation):
    r"""Logistic function :math:`\sigma(x) = 1 / (1 + e^{-x})`.

    Its slope is written in terms of its output, which the forward pass caches:
    :math:`\sigma'(x) = \sigma(x)\,(1 - \sigma(x))`, so backward is
    ``grad_in = grad_out * out * (1 - out)`` (the tutorials' ``delta = error * slope``).

    >>> Sigmoid().forward(np.array([[-1000.0, 0.0, 1000.0]]))
    array([[0. , 0.5, 1. ]])
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        out = np.negative(x)
        # exp(-x) overflows to inf for x < -709 (float64), and 1 / (1 + inf) = 0 is the exact
        # limit, so the overflow is harmless; this form keeps full relative precision for
        # tiny outputs, which 0.5 * (1 + tanh(x / 2)) would round to zero.
        with np.errstate(over="ignore"):
            np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)
        self._out = out
        return out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        self._check_grad_out(grad_out, self._out)
        out = self._out
        return grad_out * out * (1 - out)


class Tanh(Activation):
    r"""Hyperbolic tangent; :math:`\tanh'(x) = 1 - \tanh^2(x)`, written in terms of the output.

    >>> layer = Tanh()
    >>> layer.forward(np.array([[0.0]])), layer.backward(np.array([[2.0]]))
    (array([[0.]]), array([[2.]]))
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        self._out = np.tanh(x)
        return self._out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        self._check_grad_out(grad_out, self._out)
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

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        # NumPy vectorises maximum between two arrays but not against a scalar: against an
        # array of zeros it is about three times as fast. The zeros are kept, as many rows as
        # the largest input so far (they are only ever read), and sliced to this one's rows.
        zeros = self._zeros
        if (zeros is None or zeros.shape[1:] != x.shape[1:] or zeros.dtype != x.dtype
                or len(zeros) < len(x)):
            zeros = self._zeros = np.zeros(x.shape, x.dtype)
        self._out = np.maximum(x, zeros[:len(x)])
        return self._out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        self._check_grad_out(grad_out, self._out)
        # grad_in = grad_out * (out > 0): the slope is 1 where the unit fired, else 0.
        kernel = compiled("relu_backward", grad_out, self._out)
        if kernel is None:
            # The 0/1 mask product is several times faster than np.where on large arrays.
            return grad_out * (self._out > 0)
        grad_in = np.empty_like(grad_out)
        kernel(grad_out, self._out, grad_in)  # the same product in one pass (bprop.backend._fused)
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

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        self._positive = x > 0
        self._out = np.where(self._positive, x, self.alpha * x)
        return self._out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        self._check_grad_out(grad_out, self._out)
        return np.where(self._positive, grad_out, self.alpha * grad_out)

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

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        out = x - x.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        self._out = out
        return out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        self._check_grad_out(grad_out, self._out)
        out = self._out
        return out * (grad_out - (grad_out * out).sum(axis=1, keepdims=True))


class Dropout(Layer):
    r"""Inverted dropout: while training, zero each input with probability ``p`` and scale the
    survivors by :math:`1/(1-p)`, so that the expected output equals the input.

    .. math::
        \text{out} = x \odot m, \quad m_{ij} = \frac{[u_{ij} \ge p]}{1 - p},\
        u_{ij} \sim U[0, 1); \qquad \frac{\partial L}{\partial x} = g \odot m

    The backward pass multiplies by the *same* mask the forward pass drew. At inference
    (``training=False``) the layer is the identity. The mask is drawn from the generator the
    layer was built with: the model's seeded one inside a :class:`~bprop.Sequential`.

    >>> layer = Dropout(0.5).build(0)
    >>> out = layer.forward(np.ones((2, 4)), training=True)
    >>> sorted(set(out.ravel().tolist()))
    [0.0, 2.0]
    >>> bool((layer.backward(np.ones((2, 4))) == out).all())
    True
    >>> layer.forward(np.ones((1, 2)))
    array([[1., 1.]])
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self._mask: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None

    def build(self, rng: np.random.Generator | int | None = None, dtype="float64") -> Dropout:
        self.rng = np.random.default_rng(rng)
        return super().build(rng, dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        self._shape = x.shape
        if not training or self.p == 0:
            self._mask = None
            return x
        if self.rng is None:
            raise RuntimeError(
                f"{self!r} has no random generator: put it in a Sequential or call build(seed)")
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
        self._mask = keep.astype(x.dtype)
        self._mask *= 1 / (1 - self.p)
        return x * self._mask

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError(f"{self!r}: backward() was called before forward()")
        if np.shape(grad_out) != self._shape:
            raise ValueError(f"{self!r}: grad_out has shape {np.shape(grad_out)}, expected "
                             f"{self._shape}")
        return grad_out if self._mask is None else grad_out * self._mask

    def get_config(self) -> dict:
        return {"p": self.p}


class BatchNorm(Layer):
    r"""Batch normalisation (Ioffe & Szegedy, 2015) over the features of a (m, n) batch.

    Training (:math:`\mu, \sigma^2` the batch mean and biased variance of each feature):

    .. math::
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad
        \text{out} = \gamma \hat x + \beta

    and the running statistics move towards the batch's, PyTorch's way:
    :math:`r_\mu \leftarrow (1-k) r_\mu + k\mu`, :math:`r_{\sigma^2} \leftarrow (1-k)
    r_{\sigma^2} + k\,\sigma^2 m/(m-1)` with :math:`k` = ``momentum``. At inference the
    running statistics replace the batch's, so a sample's output does not depend on its batch.

    The full backward pass, in training mode, accounts for :math:`\mu` and :math:`\sigma^2`
    depending on every sample of the batch (with :math:`d = g\,\gamma`, means over the batch):

    .. math::
        \frac{\partial L}{\partial x} = \frac{1}{\sqrt{\sigma^2+\epsilon}}
        \Big(d - \overline{d} - \hat x\,\overline{d \hat x}\Big), \quad
        \frac{\partial L}{\partial \gamma} = \textstyle\sum g\hat x, \quad
        \frac{\partial L}{\partial \beta} = \textstyle\sum g

    :math:`\gamma` (``"weight"``, starts at 1) and :math:`\beta` (``"bias"``, starts at 0)
    are exempt from weight penalties.

    >>> layer = BatchNorm(2)
    >>> out = layer.forward(np.array([[1.0, 10.0], [3.0, 30.0]]), training=True)
    >>> out.round(4)
    array([[-1., -1.],
           [ 1.,  1.]])
    >>> layer.buffers["running_mean"]
    array([0.2, 2. ])
    """

    def __init__(self, n_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_inputs = self.n_outputs = check_positive_int(n_features, "n_features")
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.eps = check_positive_float(eps, "eps")
        self.params["weight"] = Parameter(np.ones(self.n_inputs), decay=False)
        self.params["bias"] = Parameter(np.zeros(self.n_inputs), decay=False)
        self.buffers["running_mean"] = np.zeros(self.n_inputs)
        self.buffers["running_var"] = np.ones(self.n_inputs)
        self._x_hat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._training = False

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._input(x)
        if x.shape[1] != self.n_inputs:
            raise ValueError(f"{self!r} expects input of shape (m, {self.n_inputs}), got {x.shape}")
        gamma, beta = self.params["weight"].value, self.params["bias"].value
        if training:
            m = x.shape[0]
            if m < 2:
                raise ValueError(
                    f"{self!r} needs at least 2 samples per batch while training (got 1): the "
                    "variance of one sample is undefined; use a larger batch_size"
                )
            mean = x.mean(axis=0)
            centered = x - mean
            var = np.mean(centered * centered, axis=0)
            k = self.momentum
            self.buffers["running_mean"] *= 1 - k
            self.buffers["running_mean"] += k * mean
            self.buffers["running_var"] *= 1 - k
            self.buffers["running_var"] += (k * m / (m - 1)) * var
        else:
            centered = x - self.buffers["running_mean"]
            var = self.buffers["running_var"]
        self._inv_std = 1 / np.sqrt(var + self.eps)
        self._x_hat = centered * self._inv_std
        self._training = training
        return self._x_hat * gamma + beta

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        self._check_grad_out(grad_out, self._x_hat)
        x_hat = self._x_hat
        self.params["weight"].grad += (grad_out * x_hat).sum(axis=0)
        self.params["bias"].grad += grad_out.sum(axis=0)
        d = grad_out * self.params["weight"].value
        if not self._training:  # running statistics are constants
            return d * self._inv_std
        return self._inv_std * (d - d.mean(axis=0) - x_hat * (d * x_hat).mean(axis=0))

    def get_config(self) -> dict:
        return {"n_features": self.n_inputs, "momentum": self.momentum, "eps": self.eps}


ACTIVATIONS = {
    "identity": Identity,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "softmax": Softmax,
}


def activation(name: str) -> Activation:
    """Create an activation layer by name (``"relu"``, ``"tanh"``, ...)."""
    return ACTIVATIONS[check_choice(name, "activation", tuple(ACTIVATIONS))]()


LAYERS = {cls.__name__: cls for cls in
          (Dense, Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, Dropout, BatchNorm)}

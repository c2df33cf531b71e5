r"""Batch normalisation."""

from __future__ import annotations

import numpy as np

from .._checks import check_positive_float, check_positive_int
from ..backend.devices import array_module
from .layer import Layer
from .parameter import Parameter


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

    When several processes train the model together (:mod:`bprop.distributed`), each holding
    some rows of every batch, the means above are the whole batch's (synchronised batch
    normalisation): ``shard`` then says which rows this process holds and sums over all of
    them, so the layer computes what one process holding the batch would.

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
        self.params["bias"] = Parameter.zeros((self.n_inputs,), decay=False)
        self.buffers["running_mean"] = np.zeros(self.n_inputs)
        self.buffers["running_var"] = np.ones(self.n_inputs)
        self._x_hat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._training = False

    #: this process's part of the batch while several processes train together (see
    #: bprop.distributed), or None: the batch is all here
    shard = None

    def _means(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Each array's mean over the batch's rows (all processes' rows, with a shard)."""
        if self.shard is None:
            return [array.mean(axis=0) for array in arrays]
        return self.shard.means(*arrays)

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        gamma, beta = self.params["weight"].value, self.params["bias"].value
        if training:
            m = x.shape[0] if self.shard is None else self.shard.rows
            if m < 2:  # (checked here, where every training pass comes, a model's included)
                raise ValueError(
                    f"{self!r} needs at least 2 samples per batch while training (got 1): the "
                    "variance of one sample is undefined; use a larger batch_size"
                )
            (mean,) = self._means(x)
            centered = x - mean
            (var,) = self._means(centered * centered)
            k = self.momentum
            self.buffers["running_mean"] *= 1 - k
            self.buffers["running_mean"] += k * mean
            self.buffers["running_var"] *= 1 - k
            self.buffers["running_var"] += (k * m / (m - 1)) * var
        else:
            centered = x - self.buffers["running_mean"]
            var = self.buffers["running_var"]
        self._inv_std = 1 / array_module(x).sqrt(var + self.eps)
        self._x_hat = centered * self._inv_std
        self._training = training
        return self._x_hat * gamma + beta

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray:
        x_hat = self._x_hat
        self.params["weight"].accumulate_sum(grad_out * x_hat, axis=0)  # dgamma += sum g x_hat
        self.params["bias"].accumulate_sum(grad_out, axis=0)            # dbeta += sum g
        d = grad_out * self.params["weight"].value
        if not self._training:  # running statistics are constants
            return d * self._inv_std
        d_mean, d_x_hat_mean = self._means(d, d * x_hat)
        return self._inv_std * (d - d_mean - x_hat * d_x_hat_mean)

    def get_config(self) -> dict:
        return {"n_features": self.n_inputs, "momentum": self.momentum, "eps": self.eps}

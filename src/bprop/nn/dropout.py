r"""Inverted dropout."""

from __future__ import annotations

import numpy as np

from .layer import Layer


class Dropout(Layer):
    r"""Inverted dropout: while training, zero each input with probability ``p`` and scale the
    survivors by :math:`1/(1-p)`, so that the expected output equals the input.

    .. math::
        \text{out} = x \odot m, \quad m_{ij} = \frac{[u_{ij} \ge p]}{1 - p},\
        u_{ij} \sim U[0, 1); \qquad \frac{\partial L}{\partial x} = g \odot m

    The backward pass multiplies by the *same* mask the forward pass drew. At inference
    (``training=False``) the layer is the identity. The mask is drawn from the generator the
    layer was built with: the model's seeded one inside a :class:`~bprop.Sequential`. When
    several processes train the model together (:mod:`bprop.distributed`), each draws the
    whole batch's mask from the same generator and keeps its own rows' part (``shard``), so
    every row gets the mask it would get in one process.

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

    #: this process's part of the batch while several processes train together (see
    #: bprop.distributed), or None: the batch is all here
    shard = None

    def build(self, rng: np.random.Generator | int | None = None, dtype="float64") -> Dropout:
        self.rng = np.random.default_rng(rng)
        return super().build(rng, dtype)

    def _check_input(self, x, training: bool) -> np.ndarray:
        x = super()._check_input(x, training)
        if training and self.p and self.rng is None:
            raise RuntimeError(
                f"{self!r} has no random generator: put it in a Sequential or call build(seed)")
        return x

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training or self.p == 0:
            self._mask = None
            return x
        if self.shard is None:
            keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
        else:  # (the whole batch's draws, then this process's rows of them)
            shard = self.shard
            keep = self.rng.random((shard.rows, *x.shape[1:]), dtype=x.dtype) >= self.p
            keep = keep[shard.start:shard.stop]
        self._mask = keep.astype(x.dtype)
        self._mask *= 1 / (1 - self.p)
        return x * self._mask

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray:
        return grad_out if self._mask is None else grad_out * self._mask

    def get_config(self) -> dict:
        return {"p": self.p}

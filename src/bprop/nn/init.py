r"""How a Dense layer's initial weights are drawn: the schemes of :data:`INITS`.

========== ==================================================== ==========================
scheme     distribution                                         for
========== ==================================================== ==========================
he         normal, std :math:`\sqrt{2/n_{in}}`                  ReLU (He et al., 2015)
xavier     uniform on :math:`\pm\sqrt{6/(n_{in}+n_{out})}`      tanh, sigmoid (Glorot)
lecun      normal, std :math:`\sqrt{1/n_{in}}`                  LeCun et al. (1998)
normal     normal, std 0.01                                     the shallow-network exercise
uniform    uniform on :math:`[-1, 1)`                           the classic ``2 * random - 1``
zeros      all zero
========== ==================================================== ==========================

:func:`draw_weights` writes the weights straight into the array it is given (a view of the
model's buffer) a block of rows at a time, so drawing a large layer needs no array of its size
beside it. A generator's stream drawn in blocks gives exactly the values of one large draw, and
each block is drawn in float64 and then cast, so a seed gives the same weights as it always has,
in float64 and float32 alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..backend.devices import array_module

INITS = ("he", "xavier", "lecun", "normal", "uniform", "zeros")

#: about this many weights are drawn (in float64) per block
_BLOCK = 1 << 16


def draw_weights(weight: np.ndarray, scheme: str, rng: np.random.Generator) -> None:
    """Overwrite ``weight`` (n_in, n_out) with values drawn from ``rng`` by ``scheme``.

    >>> w = np.empty((2, 3), np.float32)
    >>> draw_weights(w, "uniform", np.random.default_rng(0))
    >>> bool(np.array_equal(w, np.random.default_rng(0).uniform(-1.0, 1.0, (2, 3)).astype(
    ...     np.float32)))
    True
    """
    n_in, n_out = weight.shape
    if scheme == "zeros":
        weight.fill(0)
        return
    draw = _distribution(scheme, n_in, n_out, rng)
    rows = max(1, _BLOCK // max(n_out, 1))
    for start in range(0, n_in, rows):
        stop = min(start + rows, n_in)
        block = draw((stop - start, n_out))  # drawn in float64, cast on assignment
        weight[start:stop] = block if type(weight) is np.ndarray else array_module(
            weight).asarray(block, dtype=weight.dtype)  # (on the host, then to the device)


def _distribution(scheme: str, n_in: int, n_out: int, rng: np.random.Generator
                  ) -> Callable[[tuple[int, int]], np.ndarray]:
    if scheme == "he":
        std = np.sqrt(2.0 / n_in)
        return lambda shape: rng.normal(0.0, std, shape)
    if scheme == "xavier":
        limit = np.sqrt(6.0 / (n_in + n_out))
        return lambda shape: rng.uniform(-limit, limit, shape)
    if scheme == "lecun":
        std = np.sqrt(1.0 / n_in)
        return lambda shape: rng.normal(0.0, std, shape)
    if scheme == "normal":
        return lambda shape: rng.normal(0.0, 0.01, shape)
    if scheme == "uniform":
        return lambda shape: rng.uniform(-1.0, 1.0, shape)
    raise ValueError(f"unknown init {scheme!r}; choose from {INITS}")


def sklearn_weights(sizes: list[int], rng: np.random.Generator, logistic: bool = False
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    r"""scikit-learn's initialisation of an MLP with layer ``sizes``: for each layer, weights
    and then biases uniform on :math:`\pm\sqrt{6/(n_{in}+n_{out})}` (:math:`\sqrt{2/\ldots}`
    for a logistic network), drawn from ``rng`` layer by layer; float64 ``(W, b)`` pairs, as
    ``bp.mlp(weights=...)`` takes them.

    >>> [(W.shape, b.shape) for W, b in sklearn_weights([3, 4, 1], np.random.default_rng(0))]
    [((3, 4), (4,)), ((4, 1), (1,))]
    """
    factor = 2.0 if logistic else 6.0
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = np.sqrt(factor / (n_in + n_out))
        weights.append((rng.uniform(-bound, bound, (n_in, n_out)),
                        rng.uniform(-bound, bound, n_out)))
    return weights

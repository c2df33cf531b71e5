r"""``mlp``: the one way to build a multi-layer perceptron from its layer sizes.

The command line, the scikit-learn estimators and ``compare`` all build their networks here,
so that the same settings give the same layers (and, for the same seed, the same weights)
wherever a network is made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import check_choice
from ..backend.devices import to_numpy
from .layers import ACTIVATIONS, INITS, BatchNorm, Dense, Dropout, Layer
from .layers import activation as activation_layer
from .model import Sequential


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    output: str | None = None,
    batch_norm: bool = False,
    dropout: float = 0.0,
    init: str | None = None,
    seed: int | None = None,
    dtype="float32",
    *,
    weights: Sequence[tuple] | None = None,
    device="cpu",
) -> Sequential:
    r"""A fully connected network with the given layer sizes, as a :class:`Sequential`.

    With :math:`h_0 = x` and :math:`L` = ``len(sizes) - 1`` Dense layers:

    .. math::
        z_l = h_{l-1} W_l + b_l, \qquad
        h_l = \operatorname{dropout}\big(f(\operatorname{bn}(z_l))\big)
        \quad (l = 1, \dots, L-1), \qquad
        \text{out} = g(z_L)

    where :math:`f` is ``activation``, :math:`\operatorname{bn}` is :class:`BatchNorm` (only
    with ``batch_norm=True``), :math:`\operatorname{dropout}` is :class:`Dropout` (only with
    ``dropout > 0``) and :math:`g` is ``output`` (the identity when it is None: no layer is
    added). So each hidden layer is ``Dense``, ``BatchNorm``, the activation, ``Dropout``, in
    that order, and the output layer is ``Dense`` followed by the output activation, if any.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_inputs, hidden..., n_outputs]``, at least two positive integers. ``[4, 3]`` is a
        single Dense layer (no hidden layer, no hidden activation).
    activation : str
        The hidden layers' activation, a name from ``bprop.nn.layers.ACTIVATIONS``
        (``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"leaky_relu"``, ...).
    output : str or None
        An activation after the last Dense layer, e.g. ``"sigmoid"`` for
        :class:`BinaryCrossEntropy` or ``"softmax"`` for probabilities. None (the default)
        leaves the output linear: logits for :class:`SoftmaxCrossEntropy` (which applies the
        softmax itself) or ``BinaryCrossEntropy(from_logits=True)``, values for regression.
    batch_norm : bool
        A :class:`BatchNorm` after each hidden Dense layer, before its activation.
    dropout : float in [0, 1)
        Probability of a :class:`Dropout` after each hidden activation (0: no Dropout layer).
    init : str or None
        How each Dense layer's weights are drawn, one of ``bprop.nn.layers.INITS`` (``"he"``,
        ``"xavier"``, ...); None for :class:`Dense`'s default (``"he"``).
    seed : int or None
        The model's seed (see :class:`Sequential`): it draws the weights, the Dropout masks
        and the shuffling, so the same seed gives the same network and the same training.
    dtype : {"float32", "float64"}
        Precision of the parameters and of the computation.
    weights : sequence of (W, b) pairs, optional
        Start from these arrays instead of drawing: one pair per Dense layer, ``W`` of shape
        ``(sizes[l-1], sizes[l])`` and ``b`` of shape ``(sizes[l],)``. Nothing is drawn from
        the model's generator for them (its stream still starts at ``seed`` for Dropout and
        shuffling). Give ``init`` or ``weights``, not both.
    device : {"cpu", "cuda", "auto"}
        Where the model lives (see :class:`Sequential`).

    Returns
    -------
    Sequential
        Input of shape ``(m, sizes[0])``, output of shape ``(m, sizes[-1])``.

    Raises
    ------
    ValueError, TypeError
        For sizes that are not at least two positive integers, an unknown activation, output
        or init name (the message lists the choices), a dropout outside [0, 1), or weights of
        the wrong number or shape.

    Examples
    --------
    >>> import bprop as bp
    >>> model = bp.mlp([2, 8, 1], activation="tanh", output="sigmoid", seed=0)
    >>> [type(layer).__name__ for layer in model.layers]
    ['Dense', 'Tanh', 'Dense', 'Sigmoid']
    >>> model.forward(np.zeros((5, 2))).shape
    (5, 1)
    >>> X, y = bp.datasets.make_xor()
    >>> history = model.fit(X, y, loss="bce", optimizer=bp.SGD(lr=1.0, momentum=0.9),
    ...                     epochs=300, batch_size=4)
    >>> model.predict(X).tolist()
    [0, 1, 1, 0]
    >>> [type(layer).__name__ for layer in bp.mlp([4, 16, 3], batch_norm=True,
    ...                                             dropout=0.2).layers]
    ['Dense', 'BatchNorm', 'ReLU', 'Dropout', 'Dense']
    """
    sizes = _check_sizes(sizes)
    check_choice(activation, "activation", tuple(ACTIVATIONS))
    if output is not None:
        if isinstance(output, str) and output.lower() == "none":
            raise ValueError("output='none' is not an activation; give output=None for a "
                             "linear output")
        check_choice(output, "output", tuple(ACTIVATIONS))
    if not isinstance(batch_norm, (bool, np.bool_)):
        raise TypeError(f"batch_norm must be True or False, got {batch_norm!r}")
    if isinstance(dropout, (bool, np.bool_)) or not isinstance(dropout, (int, float, np.number)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if init is not None:
        check_choice(init, "init", INITS)
    if weights is not None:
        if init is not None:
            raise ValueError("give init (to draw the weights) or weights (to set them), "
                             "not both")
        weights = _check_weights(weights, sizes)

    layers: list[Layer] = []
    n_hidden = len(sizes) - 2
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Dense(n_in, n_out) if init is None else Dense(n_in, n_out, init=init))
        if index < n_hidden:
            if batch_norm:
                layers.append(BatchNorm(n_out))
            layers.append(activation_layer(activation))
            if dropout:
                layers.append(Dropout(float(dropout)))
    if output is not None:
        layers.append(activation_layer(output))
    if weights is None:
        return Sequential(layers, seed=seed, dtype=dtype, device=device)
    # Nothing drawn, and the given arrays copied once, straight into the model's buffer.
    model = Sequential(layers, seed=seed, dtype=dtype, initialise=False, device=device)
    for dense, (W, b) in zip((layer for layer in layers if isinstance(layer, Dense)), weights,
                             strict=True):
        dense.weight, dense.bias = W, b
    return model


def _check_sizes(sizes) -> list[int]:
    usage = "sizes must be a list of at least two layer sizes, [n_inputs, hidden..., n_outputs]"
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        raise TypeError(f"{usage}, got {sizes!r}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"{usage}, got {sizes!r}")
    for size in sizes:
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) \
                or size < 1:
            raise ValueError(f"{usage} (positive integers), got {sizes!r}")
    return [int(size) for size in sizes]


def _check_weights(weights, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    n_layers = len(sizes) - 1
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) \
            or len(weights) != n_layers:
        raise ValueError(f"weights must be a list of {n_layers} (W, b) pair(s), one per Dense "
                         f"layer of sizes {sizes}, got {weights!r:.200}")
    checked = []
    for index, pair in enumerate(weights):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"weights[{index}] must be a pair (W, b), got {pair!r:.200}")
        n_in, n_out = sizes[index], sizes[index + 1]
        W, b = np.asarray(to_numpy(pair[0])), np.asarray(to_numpy(pair[1]))
        for name, array, shape in (("W", W, (n_in, n_out)), ("b", b, (n_out,))):
            if array.shape != shape:
                raise ValueError(f"weights[{index}]: {name} has shape {array.shape}; the Dense "
                                 f"layer from {n_in} to {n_out} needs {shape}")
        checked.append((W, b))
    return checked

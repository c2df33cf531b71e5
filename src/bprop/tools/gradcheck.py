r"""Check hand-written gradients against central finite differences, in float64.

For every element :math:`\theta_k` of every parameter (and of the input), the numerical
derivative of a scalar objective :math:`f` is

.. math::
    \frac{\partial f}{\partial \theta_k} \approx
    \frac{f(\theta + h e_k) - f(\theta - h e_k)}{2h},

whose error is :math:`O(h^2)`. The worst relative error of a parameter, between the analytic
gradient :math:`a` and the numerical one :math:`n`, with :math:`s = \max_k \max(|a_k|, |n_k|)`
the gradient's scale, is the larger of (with :math:`s` raised to at least :math:`10^{-4}|f|`,
see below)

* :math:`\max_k |a_k - n_k| / s`: every disagreement measured against the scale, so that
  elements whose true gradient is zero do not divide by zero; and
* :math:`\max_k |a_k - n_k| / \max(|a_k|, |n_k|)` over the elements with
  :math:`\max(|a_k|, |n_k|) > 10^{-3} s`: so that a wrong small element is not hidden by a
  large one.

Central differences in float64 carry rounding noise of about :math:`10^{-16}|f|/h \approx
10^{-10}|f|`, so gradients far below that (the exactly-zero gradient of a bias feeding a
BatchNorm, say) cannot be told from noise. The scale is therefore never taken below
:math:`10^{-4}|f|` (:math:`|f|` the magnitude of the objective's terms), which keeps the noise
under :math:`10^{-6}` while an absolute error above :math:`10^{-10}|f|` still fails a
:math:`10^{-6}` tolerance.

The objective is

* for a :class:`~bprop.nn.layers.Layer`: :math:`f(x) = \sum \text{out} \odot R` with a fixed random
  :math:`R`, so ``backward(R)`` gives its exact gradient;
* for a :class:`~bprop.nn.losses.Loss`: the loss itself, as a function of the predictions;
* for a :class:`~bprop.Sequential`: the given loss of the model's output.

Layers that draw random numbers while training (Dropout) have their generators rewound before
every forward pass, so the whole check sees one fixed mask.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from ..backend.devices import on_device, to_numpy
from ..nn.layers import Layer
from ..nn.losses import Loss, get_loss
from ..nn.model import Sequential


class GradcheckReport:
    """Worst relative error per checked array, by name (``"0.weight"``, ``"input"``, ...)."""

    def __init__(self, errors: dict[str, float]) -> None:
        self.errors = errors

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def passed(self, tolerance: float = 1e-6) -> bool:
        return self.worst < tolerance

    def __getitem__(self, name: str) -> float:
        return self.errors[name]

    def __str__(self) -> str:
        width = max((len(name) for name in self.errors), default=4)
        rows = [f"{name:<{width}}  {error:.2e}" for name, error in self.errors.items()]
        return "\n".join([f"{'name':<{width}}  worst relative error", *rows])

    def __repr__(self) -> str:
        return f"GradcheckReport(worst={self.worst:.2e}, errors={self.errors!r})"


def gradcheck(target, *inputs, loss=None, step: float = 1e-5, seed: int = 0,
              check_input: bool = True, training: bool = True) -> GradcheckReport:
    """Compare the analytic gradients of ``target`` with central finite differences.

    Parameters
    ----------
    target : Layer, Loss or Sequential
        What to check. It is copied and converted to float64; the original is not touched.
    *inputs
        ``x`` for a layer; ``(pred, target)`` for a loss; ``(X, y)`` for a model.
    loss : Loss or name
        Required for a model: the loss whose gradient is checked.
    step : float
        The finite-difference step ``h``. The default, 1e-5, balances rounding noise (about
        :math:`10^{-16}|f|/h`) against the truncation error (about :math:`h^2` times the
        third derivative): their sum is smallest near :math:`h \approx 10^{-16/3}`.
    seed : int
        Seeds the random projection ``R`` used for a layer.
    check_input : bool
        Also check the gradient with respect to the input (``"input"``).
    training : bool
        Run the forward pass in training mode.

    Returns
    -------
    GradcheckReport
        ``report.errors`` maps each parameter name to its worst relative error.

    >>> import bprop as bp
    >>> report = gradcheck(bp.Dense(3, 2).build(0), np.ones((4, 3)))
    >>> report.passed(1e-6), sorted(report.errors)
    (True, ['bias', 'input', 'weight'])
    """
    if isinstance(target, Sequential):
        if loss is None:
            raise ValueError("gradcheck of a model needs loss=..., e.g. loss='mse'")
        return _check_model(target, *inputs, loss=get_loss(loss), step=step,
                            check_input=check_input, training=training)
    if isinstance(target, Loss):
        if len(inputs) != 2:
            raise ValueError("gradcheck of a loss takes (pred, target)")
        return _check_loss(target, *inputs, step=step)
    if isinstance(target, Layer):
        if len(inputs) != 1:
            raise ValueError("gradcheck of a layer takes one input array x")
        return _check_layer(target, inputs[0], step=step, seed=seed,
                            check_input=check_input, training=training)
    raise TypeError(f"gradcheck takes a Layer, Loss or Sequential, got {type(target).__name__}")


def _fix_randomness(layers: list[Layer]) -> Callable[[], None]:
    """Return a function that rewinds the layers' generators, so that every forward pass
    of the check draws the same Dropout masks."""
    generators = {id(layer.rng): layer.rng for layer in layers if layer.rng is not None}
    states = {key: g.bit_generator.state for key, g in generators.items()}

    def rewind() -> None:
        for key, generator in generators.items():
            generator.bit_generator.state = states[key]

    return rewind


def _check_layer(layer: Layer, x, *, step, seed, check_input, training) -> GradcheckReport:
    layer = copy.deepcopy(layer).build(seed, dtype="float64")
    if any(on_device(p.value) for p in layer.parameters()):
        raise ValueError(f"gradcheck takes a layer on the CPU; {layer!r} lives on a GPU (check "
                         "it in a model, which gradcheck copies to the CPU)")
    x = np.array(x, dtype=np.float64)
    rewind = _fix_randomness([layer])
    out = layer.forward(x, training)
    projection = np.random.default_rng(seed).standard_normal(out.shape)
    magnitude = float(np.abs(out * projection).sum())

    def objective() -> float:
        rewind()
        return float(np.sum(layer.forward(x, training) * projection))

    def analytic() -> np.ndarray:
        rewind()
        layer.zero_grad()
        layer.forward(x, training)
        return layer.backward(projection)

    arrays = {name: p for name, p in layer.params.items()}
    return _compare(objective, analytic, arrays, x if check_input else None, step, magnitude)


def _check_loss(loss: Loss, pred, target, *, step) -> GradcheckReport:
    loss = copy.deepcopy(loss)
    pred, target = np.array(to_numpy(pred), dtype=np.float64), to_numpy(target)

    def objective() -> float:
        return loss.forward(pred, target)

    def analytic() -> np.ndarray:
        loss.forward(pred, target)
        return loss.backward()

    return _compare(objective, analytic, {}, pred, step, abs(objective()))


def _check_model(model: Sequential, X, y, *, loss, step, check_input, training) -> GradcheckReport:
    # (a copy on the CPU: a model on a GPU runs the same code there, and finite differences
    # take one tiny pass per weight, which a GPU would only slow down)
    model = model.astype("float64").to("cpu")
    X = np.array(to_numpy(X), dtype=np.float64)
    _, y = model._check_data(X, y, loss, "X", "y")
    rewind = _fix_randomness(model.layers)

    def objective() -> float:
        rewind()
        return loss.forward(model._forward(X, training), y)

    def analytic() -> np.ndarray:
        rewind()
        model.zero_grad()
        loss.forward(model._forward(X, training), y)
        return model.backward(loss.backward())

    arrays = dict(model.named_parameters())
    return _compare(objective, analytic, arrays, X if check_input else None, step,
                    abs(objective()))


def _compare(objective: Callable[[], float], analytic: Callable[[], np.ndarray],
             parameters: dict, x: np.ndarray | None, step: float,
             magnitude: float) -> GradcheckReport:
    grad_input = analytic()
    targets = {name: (p.value, p.grad.copy()) for name, p in parameters.items()}
    if x is not None:
        targets["input"] = (x, grad_input)
    errors = {}
    for name, (array, exact) in targets.items():
        numeric = np.empty_like(array)
        flat, flat_numeric = array.reshape(-1), numeric.reshape(-1)
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + step
            f_plus = objective()
            flat[k] = original - step
            f_minus = objective()
            flat[k] = original
            flat_numeric[k] = (f_plus - f_minus) / (2 * step)
        errors[name] = relative_error(exact, numeric, floor=1e-4 * magnitude)
    return GradcheckReport(errors)


def relative_error(exact: np.ndarray, numeric: np.ndarray, floor: float = 0.0) -> float:
    """The worst relative error between two gradients (see the module docstring), the scale
    taken at least ``floor``; 0 when both are all zero, infinite if either holds NaN or
    infinity (so that ``error < tolerance`` fails)."""
    if not (np.isfinite(exact).all() and np.isfinite(numeric).all()):
        return float("inf")
    magnitude = np.maximum(np.abs(exact), np.abs(numeric))
    scale = max(magnitude.max(initial=0.0), floor)
    if scale == 0:
        return 0.0
    difference = np.abs(exact - numeric)
    significant = magnitude > 1e-3 * scale
    elementwise = (difference[significant] / magnitude[significant]).max(initial=0.0)
    return float(max(difference.max() / scale, elementwise))

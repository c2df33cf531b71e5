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
  :math:`\max(|a_k|, |n_k|) > \max(10^{-3} s, 10^7 \epsilon |f| / h)`: so that a wrong small
  element is not hidden by a large one.

Central differences in float64 carry rounding noise of about :math:`10^{-16}|f|/h \approx
10^{-10}|f|`, so gradients far below that (the exactly-zero gradient of a bias feeding a
BatchNorm, say) cannot be told from noise. The scale is therefore never taken below
:math:`10^{-4}|f|` (:math:`|f|` the magnitude of the objective's terms), which keeps the noise
under :math:`10^{-6}` while an absolute error above :math:`10^{-10}|f|` still fails a
:math:`10^{-6}` tolerance.

The same noise, :math:`\epsilon|f|/h` with :math:`\epsilon \approx 2.2 \times 10^{-16}` to
within a small factor, decides which elements are judged on their own: only those at least
:math:`10^7` times larger, whose noise stays near :math:`10^{-7}` of their size. Below that
cutoff an element can fail a :math:`10^{-6}` tolerance on rounding alone (a correct
784-256-128-10 network on 32 random rows fails without the cutoff); its error still counts
against the scale :math:`s`.

The objective is

* for a :class:`~bprop.nn.layers.Layer`: :math:`f(x) = \sum \text{out} \odot R` with a fixed random
  :math:`R`, so ``backward(R)`` gives its exact gradient;
* for a :class:`~bprop.nn.losses.Loss`: the loss itself, as a function of the predictions;
* for a :class:`~bprop.Sequential`: the given loss of the model's output.

Layers that draw random numbers while training (Dropout) have their generators rewound before
every forward pass, so the whole check sees one fixed mask.

Cost, and checking a sample
---------------------------
Each checked element costs two evaluations of the objective, so a full check takes about
:math:`2 N t_f + t_b` for :math:`N` elements, :math:`t_f` the time of one forward pass and
:math:`t_b` that of the one analytic pass. :func:`gradcheck` measures :math:`t_f` and
:math:`t_b` before it starts and reports the estimate. When a full check would take longer
than ``time_budget`` (a minute by default), it checks instead a random sample of the same
number of elements in every array, as many as fit the budget (arrays smaller than that are
checked whole). The sample is drawn from ``seed``, so a check repeats exactly. A wrong
backward pass usually spoils many elements of an array, and a sample finds it; a single wrong
element escapes unless it is drawn: ``sample=None`` checks them all.
"""

from __future__ import annotations

import copy
import math
import numbers
import sys
import time
from collections.abc import Callable

import numpy as np

from .._progress import ProgressBar
from ..backend.devices import on_device, to_numpy
from ..nn.layers import Layer, LeakyReLU, ReLU
from ..nn.losses import Loss, get_loss
from ..nn.model import Sequential

DEFAULT_TIME_BUDGET = 60.0
"""Seconds a check may take before :func:`gradcheck` checks a sample instead."""

# The clock the estimate and the report read; the tests replace it with a fake one.
_clock = time.perf_counter


class GradcheckReport:
    """Worst relative error per checked array, by name (``"0.weight"``, ``"input"``, ...).

    Parameters
    ----------
    errors : dict of str to float
        The worst relative error of each array.
    checked, sizes : dict of str to int, optional
        How many elements of each array were checked, and how many it has (default: all of
        them, when ``sizes`` is given).
    sample : int or None
        The most elements checked in any one array, when the check was sampled; else None.
    estimated_seconds : float or None
        The time the check was expected to take, measured before it started.
    full_estimated_seconds : float or None
        The time a check of every element would take.
    seconds : float or None
        The time the check took.
    """

    def __init__(self, errors: dict[str, float], checked: dict[str, int] | None = None,
                 sizes: dict[str, int] | None = None, sample: int | None = None,
                 estimated_seconds: float | None = None,
                 full_estimated_seconds: float | None = None,
                 seconds: float | None = None, at_kinks: dict[str, int] | None = None) -> None:
        self.errors = errors
        self.at_kinks = {name: n for name, n in (at_kinks or {}).items() if n}
        self.sizes = dict(sizes or {})
        self.checked = dict(self.sizes if checked is None else checked)
        self.sample = sample
        self.estimated_seconds = estimated_seconds
        self.full_estimated_seconds = full_estimated_seconds
        self.seconds = seconds

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def n_checked(self) -> int:
        """How many elements were checked, over all arrays."""
        return sum(self.checked.values())

    @property
    def n_elements(self) -> int:
        """How many elements the checked arrays hold."""
        return sum(self.sizes.values())

    @property
    def sampled(self) -> bool:
        """Whether some array was checked on a sample of its elements only."""
        return any(self.checked.get(name, size) < size for name, size in self.sizes.items())

    def passed(self, tolerance: float = 1e-6) -> bool:
        return self.worst < tolerance

    def __getitem__(self, name: str) -> float:
        return self.errors[name]

    def summary(self) -> str:
        """One line: how many elements were checked of how many, whether it was sampled, and
        how many were left out because their finite difference crossed a kink."""
        if not self.sampled:
            line = f"all {self.n_elements:,} elements checked"
        else:
            line = (f"sampled check: {self.n_checked:,} of {self.n_elements:,} elements (a "
                    f"random sample of at most {self.sample:,} per array, drawn from the seed)")
            if self.full_estimated_seconds is not None:
                line += (f"; a full check would take about "
                         f"{format_seconds(self.full_estimated_seconds)}")
        if self.at_kinks:
            left_out = sum(self.at_kinks.values())
            # They were differentiated, but their error is not counted: a finite difference
            # across a kink measures the mean of two slopes, not the gradient.
            line += (f"; {left_out:,} of them not counted in the errors, as their finite "
                     f"difference crossed a ReLU kink "
                     f"({', '.join(f'{n:,} of {name}' for name, n in self.at_kinks.items())})")
        return line

    def __str__(self) -> str:
        width = max(len("name"), *(len(name) for name in self.errors))
        if not self.sizes:  # a report built from errors alone
            rows = [f"{name:<{width}}  {error:.2e}" for name, error in self.errors.items()]
            return "\n".join([f"{'name':<{width}}  worst relative error", *rows])
        counts = {name: f"{self.checked[name]:,} of {self.sizes[name]:,}" for name in self.errors}
        count_width = max(len("checked"), *(len(count) for count in counts.values()))
        rows = [f"{name:<{width}}  {counts[name]:>{count_width}}  {error:.2e}"
                for name, error in self.errors.items()]
        header = f"{'name':<{width}}  {'checked':>{count_width}}  worst relative error"
        return "\n".join([header, *rows, self.summary()])

    def __repr__(self) -> str:
        return (f"GradcheckReport(worst={self.worst:.2e}, checked={self.n_checked} of "
                f"{self.n_elements}, errors={self.errors!r})")


def format_seconds(seconds: float) -> str:
    """A duration as people say it: ``"0.0031 s"``, ``"4.2 s"``, ``"45 s"``, ``"11 min"``,
    ``"2.5 h"``."""
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gradcheck(target, *inputs, loss=None, step: float = 1e-5, seed: int = 0,
              check_input: bool = True, training: bool = True,
              sample: int | str | None = "auto", time_budget: float | None = None,
              progress: Callable[[int, int], None] | None = None,
              verbose: bool = False) -> GradcheckReport:
    r"""Compare the analytic gradients of ``target`` with central finite differences.

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
        Seeds the random projection ``R`` used for a layer and the choice of a sample.
    check_input : bool
        Also check the gradient with respect to the input (``"input"``).
    training : bool
        Run the forward pass in training mode.
    sample : "auto", int or None
        How many elements of each array to check, drawn at random without replacement
        (arrays no larger are checked whole). ``"auto"`` (the default) checks every element
        when that fits ``time_budget`` and otherwise as many per array as fit it; None or 0
        checks every element however long it takes.
    time_budget : float, optional
        Seconds an ``"auto"`` check may take (default :data:`DEFAULT_TIME_BUDGET`, a minute).
    progress : callable, optional
        Called as ``progress(done, total)`` with the number of elements checked so far and
        the number to check: once with ``done=0`` when the estimate is known, then after
        every element.
    verbose : bool
        Print the estimate before starting, and a progress bar, on standard error.

    Returns
    -------
    GradcheckReport
        ``report.errors`` maps each array's name to its worst relative error over the checked
        elements, ``report.checked`` and ``report.sizes`` to how many elements were checked
        of how many; ``report.estimated_seconds`` and ``report.seconds`` say how long it was
        expected to take and took.

    Examples
    --------
    >>> import bprop as bp
    >>> report = gradcheck(bp.Dense(3, 2).build(0), np.ones((4, 3)))
    >>> report.passed(1e-6), sorted(report.errors), report.checked["weight"]
    (True, ['bias', 'input', 'weight'], 6)
    >>> report = gradcheck(bp.Dense(30, 20).build(0), np.ones((4, 30)), sample=5)
    >>> report.sampled, report.checked["weight"], report.sizes["weight"]
    (True, 5, 600)
    """
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a function progress(done, total), got "
                        f"{type(progress).__name__}")
    options = {"sample": _check_sample(sample), "time_budget": _check_budget(time_budget),
               "seed": seed, "progress": progress, "verbose": verbose}
    if isinstance(target, Sequential):
        if loss is None:
            raise ValueError("gradcheck of a model needs loss=..., e.g. loss='mse'")
        problem = _model_problem(target, *inputs, loss=get_loss(loss), check_input=check_input,
                                 training=training)
    elif isinstance(target, Loss):
        if len(inputs) != 2:
            raise ValueError("gradcheck of a loss takes (pred, target)")
        problem = _loss_problem(target, *inputs)
    elif isinstance(target, Layer):
        if len(inputs) != 1:
            raise ValueError("gradcheck of a layer takes one input array x")
        problem = _layer_problem(target, inputs[0], seed=seed, check_input=check_input,
                                 training=training)
    else:
        raise TypeError(f"gradcheck takes a Layer, Loss or Sequential, got "
                        f"{type(target).__name__}")
    return _compare(*problem, step=step, **options)


def _check_sample(sample) -> int | str | None:
    if sample is None or isinstance(sample, str) and sample == "auto":
        return sample
    if isinstance(sample, bool) or not isinstance(sample, numbers.Integral) or sample < 0:
        raise ValueError(f"sample must be 'auto', None or a count of elements >= 0, got "
                         f"{sample!r}")
    return int(sample) or None


def _check_budget(time_budget) -> float:
    if time_budget is None:
        return DEFAULT_TIME_BUDGET
    if (isinstance(time_budget, bool) or not isinstance(time_budget, numbers.Real)
            or not math.isfinite(time_budget) or time_budget <= 0):
        raise ValueError(f"time_budget must be a positive number of seconds, got "
                         f"{time_budget!r}")
    return float(time_budget)


def _fix_randomness(layers: list[Layer]) -> Callable[[], None]:
    """Return a function that rewinds the layers' generators, so that every forward pass
    of the check draws the same Dropout masks."""
    generators = {id(layer.rng): layer.rng for layer in layers if layer.rng is not None}
    states = {key: g.bit_generator.state for key, g in generators.items()}

    def rewind() -> None:
        for key, generator in generators.items():
            generator.bit_generator.state = states[key]

    return rewind


# What a check needs: the objective, the analytic gradient (which also fills the parameters'
# gradients), the parameters by name, the input to check (or None), the objective's size, and
# the pattern of the kinks the last evaluation of the objective was on which side of (or None).
_Problem = tuple[Callable[[], float], Callable[[], np.ndarray], dict, np.ndarray | None, float,
                 Callable[[], bytes] | None]


def kink_pattern(layers: list[Layer]) -> Callable[[], bytes] | None:
    """Which side of its kink each unit of the piecewise-linear layers (ReLU, LeakyReLU) was
    on in the last forward pass, as bytes; None without such layers.

    A central difference whose two evaluations put a unit on another side than the point
    itself does not measure a derivative (the slope jumps at the kink): with ReLU and many
    elements, some of them always do, and the check leaves them out instead of failing a
    correct gradient."""
    kinked = [layer for layer in layers if isinstance(layer, (ReLU, LeakyReLU))]
    if not kinked:
        return None

    def pattern() -> bytes:
        sides = [layer._out > 0 if isinstance(layer, ReLU) else layer._positive
                 for layer in kinked]
        return b"".join(np.packbits(side).tobytes() for side in sides)

    return pattern


def _layer_problem(layer: Layer, x, *, seed, check_input, training) -> _Problem:
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
    return (objective, analytic, arrays, x if check_input else None, magnitude,
            kink_pattern([layer]))


def _loss_problem(loss: Loss, pred, target) -> _Problem:
    loss = copy.deepcopy(loss)
    pred, target = np.array(to_numpy(pred), dtype=np.float64), to_numpy(target)

    def objective() -> float:
        return loss.forward(pred, target)

    def analytic() -> np.ndarray:
        loss.forward(pred, target)
        return loss.backward()

    return objective, analytic, {}, pred, abs(objective()), None


def _model_problem(model: Sequential, X, y, *, loss, check_input, training) -> _Problem:
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
    return (objective, analytic, arrays, X if check_input else None, abs(objective()),
            kink_pattern(model.layers))


def _seconds_per_evaluation(objective: Callable[[], float]) -> float:
    """The time of one evaluation of the objective: the mean over enough calls to last at
    least 20 ms (so that a tiny layer is not timed by the clock's resolution), at most 100."""
    calls, started = 0, _clock()
    while True:
        objective()
        calls += 1
        elapsed = _clock() - started
        if elapsed >= 0.02 or calls >= 100:
            return elapsed / calls


def _fitting_sample(sizes: list[int], n_elements: float) -> int:
    """The largest ``k >= 1`` with ``sum(min(k, size) for size in sizes) <= n_elements``: how
    many elements per array a check of about ``n_elements`` elements can take (1 when even
    that is too many)."""
    low, high = 1, max(sizes, default=1)
    while low < high:  # the sum grows with k: bisect for the last k that fits
        middle = (low + high + 1) // 2
        if sum(min(middle, size) for size in sizes) <= n_elements:
            low = middle
        else:
            high = middle - 1
    return low


def _compare(objective: Callable[[], float], analytic: Callable[[], np.ndarray],
             parameters: dict, x: np.ndarray | None, magnitude: float,
             kinks: Callable[[], bytes] | None, *, step: float,
             sample: int | str | None, time_budget: float, seed: int,
             progress: Callable[[int, int], None] | None, verbose: bool) -> GradcheckReport:
    started = _clock()
    grad_input = analytic()
    targets = {name: (p.value, p.grad.copy()) for name, p in parameters.items()}
    if x is not None:
        targets["input"] = (x, grad_input)
    setup = _clock() - started
    per_evaluation = _seconds_per_evaluation(objective)

    sizes = {name: array.size for name, (array, _) in targets.items()}
    full_estimate = setup + 2 * sum(sizes.values()) * per_evaluation
    if sample == "auto":
        affordable = (time_budget - setup) / (2 * per_evaluation) if per_evaluation > 0 \
            else math.inf
        sample = (_fitting_sample(list(sizes.values()), affordable)
                  if full_estimate > time_budget else None)
    if sample is not None and sample >= max(sizes.values(), default=0):
        sample = None  # every array is small enough to check whole
    generators = [np.random.default_rng(child)
                  for child in np.random.SeedSequence(seed).spawn(len(targets))]
    chosen = {name: (np.arange(size) if sample is None or sample >= size
                     else np.sort(generator.choice(size, sample, replace=False)))
              for (name, size), generator in zip(sizes.items(), generators, strict=True)}
    checked = {name: len(indices) for name, indices in chosen.items()}
    total = sum(checked.values())
    estimate = setup + 2 * total * per_evaluation

    bar = None
    if verbose:
        print(_plan_line(sizes, total, sample, estimate, full_estimate), file=sys.stderr,
              flush=True)
        bar = ProgressBar(total, "gradcheck", stream=sys.stderr)
    if progress is not None:
        progress(0, total)
    noise = np.finfo(np.float64).eps * magnitude / step  # of one central difference
    if kinks is not None:
        objective()
        at_point = kinks()
    loop_started, done, errors, at_kinks = _clock(), 0, {}, {}
    try:
        for name, (array, exact) in targets.items():
            flat, indices = array.reshape(-1), chosen[name]
            numeric = np.empty(len(indices))
            smooth = np.ones(len(indices), dtype=bool)  # no kink between the two evaluations
            for position, k in enumerate(indices):
                original = flat[k]
                flat[k] = original + step
                f_plus = objective()
                if kinks is not None:
                    smooth[position] = kinks() == at_point
                flat[k] = original - step
                f_minus = objective()
                if kinks is not None:
                    smooth[position] &= kinks() == at_point
                flat[k] = original
                numeric[position] = (f_plus - f_minus) / (2 * step)
                done += 1
                if bar is not None:
                    bar.update(1)
                if progress is not None:
                    progress(done, total)
            at_kinks[name] = int(len(indices) - smooth.sum())
            errors[name] = relative_error(exact.reshape(-1)[indices][smooth], numeric[smooth],
                                          floor=1e-4 * magnitude, noise=noise)
    finally:
        if bar is not None:
            bar.close()
    seconds = setup + _clock() - loop_started
    return GradcheckReport(errors, checked, sizes, sample, estimate, full_estimate, seconds,
                           at_kinks)


def _plan_line(sizes: dict[str, int], total: int, sample: int | None, estimate: float,
               full_estimate: float) -> str:
    n_elements = sum(sizes.values())
    if sample is None:
        return (f"gradcheck: checking all {n_elements:,} elements of {len(sizes)} arrays, "
                f"about {format_seconds(estimate)}")
    return (f"gradcheck: {n_elements:,} elements in {len(sizes)} arrays would take about "
            f"{format_seconds(full_estimate)}; checking a random sample of {total:,} (at most "
            f"{sample:,} per array), about {format_seconds(estimate)}")


def relative_error(exact: np.ndarray, numeric: np.ndarray, floor: float = 0.0,
                   noise: float = 0.0) -> float:
    """The worst relative error between two gradients (see the module docstring), the scale
    taken at least ``floor`` and only elements above ``1e7 * noise`` (the rounding noise of
    ``numeric``) judged on their own; 0 when both are all zero, infinite if either holds NaN or
    infinity (so that ``error < tolerance`` fails)."""
    if not (np.isfinite(exact).all() and np.isfinite(numeric).all()):
        return float("inf")
    magnitude = np.maximum(np.abs(exact), np.abs(numeric))
    scale = max(magnitude.max(initial=0.0), floor)
    if scale == 0:
        return 0.0
    difference = np.abs(exact - numeric)
    significant = magnitude > max(1e-3 * scale, 1e7 * noise)
    elementwise = (difference[significant] / magnitude[significant]).max(initial=0.0)
    return float(max(difference.max(initial=0.0) / scale, elementwise))

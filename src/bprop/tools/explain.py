"""Backpropagation shown step by step on a real network: every forward value, the loss, every
delta and every gradient, with its shape and the formula that produced it, each checked against
finite differences.

Names follow the tutorials: ``a0`` is the input, ``z1 = a0 @ W1 + b1`` the first Dense
layer's output, ``a1 = sigmoid(z1)`` its activation, and so on; ``delta1`` is
``dL/dz1``, the error signal arriving at layer 1. The report starts with what everything is
computed from (the input ``a0``, the targets ``y`` and the initial ``W1``, ``b1``, ...), so that
each step can be redone by hand.

>>> import bprop as bp
>>> X, y = bp.datasets.make_xor()
>>> model = bp.Sequential([bp.Dense(2, 2), bp.Sigmoid(), bp.Dense(2, 1), bp.Sigmoid()], seed=0)
>>> report = explain(model, X, y, "mse")
>>> [step.name for step in report.start]
['a0', 'y', 'W1', 'b1', 'W2', 'b2']
>>> [step.name for step in report.backward][:3]
['dL/da2', 'delta2', 'dW2']
>>> report.all_checked(1e-6)
True
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from ..backend.devices import to_numpy
from ..nn import layers as L
from ..nn import losses as losses_module
from ..nn.model import Sequential
from .gradcheck import kink_pattern, relative_error

ACTIVATION_FORMULAS = {
    L.Sigmoid: ("sigmoid({z})", "{g} * {a} * (1 - {a})"),
    L.Tanh: ("tanh({z})", "{g} * (1 - {a}**2)"),
    L.ReLU: ("max({z}, 0)", "{g} * ({z} > 0)"),
    L.LeakyReLU: ("where({z} > 0, {z}, {alpha} * {z})", "{g} * where({z} > 0, 1, {alpha})"),
    L.Softmax: ("softmax({z}, axis=1)", "{a} * ({g} - sum({g} * {a}, axis=1))"),
    L.Identity: ("{z}", "{g}"),
}


@dataclass
class Step:
    """One quantity of the forward or backward pass."""

    name: str
    formula: str
    value: np.ndarray
    check: float | None = None  # relative error against finite differences, if checked
    at_kinks: int = 0  # elements left out of the check: their difference crossed a ReLU kink

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.value)


@dataclass
class Explanation:
    """Every quantity of one forward and backward pass, in the order they are computed."""

    start: list[Step] = field(default_factory=list)  # the input, targets, initial parameters
    forward: list[Step] = field(default_factory=list)
    loss: Step | None = None
    backward: list[Step] = field(default_factory=list)
    description: str = ""

    def all_checked(self, tolerance: float = 1e-6) -> bool:
        checked = [s.check for s in self.backward if s.check is not None]
        return bool(checked) and all(error < tolerance for error in checked)

    # -- rendering --------------------------------------------------------------------------------
    def to_text(self) -> str:
        out = [self.description, "", f"START ({START_TITLE})"]
        out += [_text_step(step) for step in self.start]
        out += ["", "FORWARD PASS"]
        out += [_text_step(step) for step in self.forward]
        out += ["", "LOSS", _text_step(self.loss), "", "BACKWARD PASS (chain rule, last layer "
                "first; [check] = relative error against central finite differences)"]
        out += [_text_step(step) for step in self.backward]
        verdict = "all gradients agree with finite differences" if self.all_checked() else \
            "SOME GRADIENTS DISAGREE WITH FINITE DIFFERENCES"
        out += ["", verdict]
        return "\n".join(out) + "\n"

    def to_markdown(self) -> str:
        out = ["# Backpropagation, step by step", "", self.description, "", "## Start",
               f"{START_TITLE[0].upper()}{START_TITLE[1:]}.", ""]
        out += [_markdown_step(step) for step in self.start]
        out += ["## Forward pass"]
        out += [_markdown_step(step) for step in self.forward]
        out += ["## Loss", _markdown_step(self.loss), "## Backward pass",
                "Each gradient's *check* is its relative error against central finite "
                "differences.", ""]
        out += [_markdown_step(step) for step in self.backward]
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        def section(title: str, steps: list[Step]) -> str:
            rows = "".join(
                f"<tr><td><code>{html.escape(s.name)}</code></td>"
                f"<td><code>{html.escape(s.formula)}</code></td><td>{s.shape}</td>"
                f"<td>{'' if s.check is None else _verdict(s)}</td>"
                f"<td><pre>{html.escape(_values(s.value))}</pre></td></tr>" for s in steps)
            return (f"<h2>{title}</h2><table><tr><th>name</th><th>formula</th><th>shape</th>"
                    f"<th>check</th><th>value</th></tr>{rows}</table>")

        style = ("body{font-family:sans-serif;margin:2em;max-width:70em}"
                 "table{border-collapse:collapse;margin-bottom:2em}"
                 "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
                 "pre{margin:0;font-size:85%}")
        return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
                f"<title>bprop explain</title><style>{style}</style></head><body>"
                f"<h1>Backpropagation, step by step</h1><p>{html.escape(self.description)}</p>"
                + section("Start", self.start) + section("Forward pass", self.forward)
                + section("Loss", [self.loss])
                + section("Backward pass", self.backward) + "</body></html>\n")


START_TITLE = ("the input, the targets and the initial parameters: everything below is "
               "computed from these")


def _values(value: np.ndarray) -> str:
    """The values as printed: 4 decimals; a value that rounds to zero is 0., never -0."""
    value = np.asarray(value)
    if np.issubdtype(value.dtype, np.floating):
        value = np.round(value, 4) + 0.0  # adding +0.0 turns -0.0 into 0.0
    return np.array2string(value, precision=4, suppress_small=True, threshold=60)


def _verdict(step: Step) -> str:
    verdict = f"{step.check:.1e} {'ok' if step.check < 1e-6 else 'MISMATCH'}"
    if step.at_kinks:
        verdict += f", {step.at_kinks} left out at ReLU kinks"
    return verdict


def _text_step(step: Step) -> str:
    check = "" if step.check is None else f"   [check {_verdict(step)}]"
    values = _values(step.value).replace("\n", "\n      ")
    return f"  {step.name} = {step.formula}    shape {step.shape}{check}\n      {values}"


def _markdown_step(step: Step) -> str:
    check = "" if step.check is None else f", check {_verdict(step)}"
    return (f"**`{step.name} = {step.formula}`** (shape {step.shape}{check})\n\n"
            f"```\n{_values(step.value)}\n```\n")


def explain(model: Sequential, X, y, loss, step: float = 1e-5) -> Explanation:
    """Run one forward and backward pass of ``model`` on ``(X, y)`` and record every quantity.

    The model is copied to float64 (and to the CPU, from a GPU); nothing about it changes.
    Every gradient (with respect to each layer's output and each parameter) is compared with
    central finite differences. An element whose difference moves a ReLU or LeakyReLU unit to
    the other side of its kink measures the mean of two slopes, not the derivative, so it is
    left out of the check and counted in the step's ``at_kinks`` (as :func:`gradcheck` does).
    """
    loss = losses_module.get_loss(loss)
    model = model.astype("float64").to("cpu")
    X = np.asarray(to_numpy(X), dtype=np.float64)
    _, y = model._check_data(X, y, loss, "X", "y")
    report = Explanation(description=(
        f"{len(X)} samples, layers: " + ", ".join(repr(layer) for layer in model.layers)
        + f", loss {loss!r}"))
    report.start.append(Step("a0", "X (the input)", X))
    report.start.append(Step("y", _targets_formula(loss), np.array(y, copy=True)))

    # Forward: name each layer's output as the tutorials do. The generator's state before
    # each layer is kept so that re-running a layer for a check draws the same Dropout mask.
    names, values, rng_states, j = ["a0"], [X], [], 0
    for layer in model.layers:
        x_name = names[-1]
        rng_states.append(model.rng.bit_generator.state)
        out = layer.forward(values[-1], training=True)
        if isinstance(layer, L.Dense):
            j += 1
            name = f"z{j}"
            formula = f"{x_name} @ W{j}" + (f" + b{j}" if layer.use_bias else "")
            report.start.append(Step(f"W{j}", f"the initial weights of Dense layer {j}",
                                     layer.params["weight"].value.copy()))
            if layer.use_bias:
                report.start.append(Step(f"b{j}", f"the initial biases of Dense layer {j}",
                                         layer.params["bias"].value.copy()))
        elif type(layer) in ACTIVATION_FORMULAS:
            name = _fresh(f"a{j}", names)
            formula = ACTIVATION_FORMULAS[type(layer)][0].format(
                z=x_name, alpha=getattr(layer, "alpha", ""))
        elif isinstance(layer, L.Dropout):
            name, formula = _fresh(f"d{j}", names), f"{x_name} * mask / (1 - {layer.p})"
        elif isinstance(layer, L.BatchNorm):
            name = _fresh(f"n{j}", names)
            formula = f"gamma * ({x_name} - mean) / sqrt(var + eps) + beta"
            # (named as the backward pass names their gradients, dgamma1 and dbeta1)
            for pname, symbol, what in (("weight", "gamma", "scales"), ("bias", "beta", "shifts")):
                report.start.append(Step(f"{symbol}{x_name[1:]}",
                                         f"the initial {what} of the BatchNorm after {x_name}",
                                         layer.params[pname].value.copy()))
        else:
            name, formula = _fresh(f"h{j}", names), f"{type(layer).__name__}({x_name})"
            for pname, param in layer.params.items():
                report.start.append(Step(f"{name}.{pname}",
                                         f"the initial {pname} of {type(layer).__name__}",
                                         param.value.copy()))
        names.append(name)
        values.append(out)
        report.forward.append(Step(name, formula, out))

    # Loss and its gradient.
    loss_value = loss.forward(values[-1], y)
    report.loss = Step("L", _loss_formula(loss, names[-1]), np.array(loss_value))
    grad = loss.backward()
    checker = _Checker(model, loss, values, y, rng_states, step, floor=1e-4 * abs(loss_value))

    # Backward, last layer first, each gradient checked numerically.
    model.zero_grad()
    # The gradient with respect to a Dense layer's output z_j is the tutorials' delta_j.
    first = f"delta{names[-1][1:]}" if names[-1].startswith("z") else f"dL/d{names[-1]}"
    report.backward.append(Step(first, _loss_gradient(loss, names[-1], grad),
                                grad, *checker.intermediate(len(model.layers), grad)))
    for k in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[k]
        in_name, out_name = names[k], names[k + 1]
        g_name = report.backward[-1].name
        grad = layer.backward(grad)
        if isinstance(layer, L.Dense):
            index = out_name[1:]
            weight = layer.params["weight"]
            report.backward.append(Step(f"dW{index}", f"{in_name}.T @ {g_name}", weight.grad,
                                        *checker.parameter(weight)))
            if layer.use_bias:
                bias = layer.params["bias"]
                report.backward.append(Step(f"db{index}", f"sum({g_name}, axis=0)", bias.grad,
                                            *checker.parameter(bias)))
            if k > 0:
                report.backward.append(Step(f"dL/d{in_name}", f"{g_name} @ W{index}.T", grad,
                                            *checker.intermediate(k, grad)))
            continue
        delta = f"delta{in_name[1:]}" if in_name.startswith("z") else f"dL/d{in_name}"
        if type(layer) in ACTIVATION_FORMULAS:
            name = delta
            formula = ACTIVATION_FORMULAS[type(layer)][1].format(
                g=g_name, a=out_name, z=in_name, alpha=getattr(layer, "alpha", ""))
        elif isinstance(layer, L.Dropout):
            name, formula = f"dL/d{in_name}", f"{g_name} * mask / (1 - {layer.p})"
        elif isinstance(layer, L.BatchNorm):
            name = delta
            formula = (f"gamma / sqrt(var + eps) * ({g_name} - mean({g_name}) - x_hat * "
                       f"mean({g_name} * x_hat))")
            for pname, symbol, factor in (("weight", "dgamma", " * x_hat"), ("bias", "dbeta", "")):
                param = layer.params[pname]
                report.backward.append(Step(f"{symbol}{in_name[1:]}",
                                            f"sum({g_name}{factor}, axis=0)", param.grad,
                                            *checker.parameter(param)))
        else:
            name, formula = f"dL/d{in_name}", f"{type(layer).__name__}.backward({g_name})"
        report.backward.append(Step(name, formula, grad, *checker.intermediate(k, grad)))
    return report


def _fresh(name: str, taken: list[str]) -> str:
    while name in taken:
        name += "'"
    return name


def _targets_formula(loss) -> str:
    if isinstance(loss, losses_module.SoftmaxCrossEntropy):
        return "the targets (class labels; Y is their one-hot form)"
    return "the targets"


def _loss_formula(loss, out: str) -> str:
    if isinstance(loss, losses_module.MSE):
        return f"{loss.reduction}(({out} - y)**2)"
    if isinstance(loss, losses_module.BinaryCrossEntropy):
        p = f"sigmoid({out})" if loss.from_logits else out
        return f"-{loss.reduction}(y * log({p}) + (1 - y) * log(1 - {p}))"
    return f"{loss.reduction} over samples of -log(softmax({out})[y])"


def _loss_gradient(loss, out: str, grad: np.ndarray) -> str:
    n = len(grad) if isinstance(loss, losses_module.SoftmaxCrossEntropy) else grad.size
    scale = f" / {n}" if loss.reduction == "mean" else ""
    if isinstance(loss, losses_module.MSE):
        return f"2 * ({out} - y){scale}"
    if isinstance(loss, losses_module.BinaryCrossEntropy):
        if loss.from_logits:
            return f"(sigmoid({out}) - y){scale}"
        return f"({out} - y) / ({out} * (1 - {out})){scale}"
    return f"(softmax({out}) - Y){scale}    (Y: one-hot targets)"


class _Checker:
    """Central finite differences of the loss, re-running the network from a given layer with
    the same Dropout masks as the real forward pass, and leaving the layers' caches (which the
    ongoing backward pass still needs) as they were. Each check returns the relative error
    over the elements whose two evaluations kept every ReLU unit on the side of its kink it
    was on in the real pass (None if there are none), and how many were left out."""

    def __init__(self, model, loss, values, y, rng_states, step, floor) -> None:
        self.model, self.loss, self.values, self.y = model, loss, values, y
        self.rng_states, self.step, self.floor = rng_states, step, floor
        self.pattern = kink_pattern(model.layers)
        self.sides = None if self.pattern is None else self.pattern()  # the real pass's

    def _loss_from(self, start: int, value: np.ndarray) -> float:
        if start < len(self.rng_states):
            self.model.rng.bit_generator.state = self.rng_states[start]
        for layer in self.model.layers[start:]:
            value = layer.forward(value, training=True)
        return self.loss.forward(value, self.y)

    def _crossed_a_kink(self) -> bool:
        return self.pattern is not None and self.pattern() != self.sides

    def _numeric(self, array: np.ndarray, start: int, point: np.ndarray):
        """The central differences of the loss along each element of ``array``, and which
        elements' differences crossed a kink."""
        saved = [layer.__dict__.copy() for layer in self.model.layers]
        flat, numeric = array.reshape(-1), np.zeros(array.size)
        crossed = np.zeros(array.size, dtype=bool)
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + self.step
            plus = self._loss_from(start, point)
            crossed[k] = self._crossed_a_kink()
            flat[k] = original - self.step
            minus = self._loss_from(start, point)
            crossed[k] |= self._crossed_a_kink()
            flat[k] = original
            numeric[k] = (plus - minus) / (2 * self.step)
        for layer, state in zip(self.model.layers, saved, strict=True):
            layer.__dict__.update(state)
        return numeric.reshape(array.shape), crossed.reshape(array.shape)

    def _error(self, exact: np.ndarray, numeric: np.ndarray, crossed: np.ndarray):
        kept = ~crossed
        error = relative_error(exact[kept], numeric[kept], self.floor) if kept.any() else None
        return error, int(crossed.sum())

    def intermediate(self, index: int, grad: np.ndarray) -> tuple[float | None, int]:
        """Check ``grad`` = dL/d(the input of layer ``index``)."""
        point = self.values[index].copy()
        return self._error(grad, *self._numeric(point, index, point))

    def parameter(self, param) -> tuple[float | None, int]:
        exact = param.grad.copy()
        return self._error(exact, *self._numeric(param.value, 0, self.values[0]))

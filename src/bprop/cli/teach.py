"""``bprop demo``, ``bprop explain`` and ``bprop gradcheck``: the teaching commands."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from .. import demos
from ..nn.builder import mlp
from ..nn.layers import ACTIVATIONS, LAYERS, Dense, Sigmoid
from ..nn.losses import BinaryCrossEntropy, get_loss
from ..nn.model import Sequential
from ..tools import plotting
from ..tools.explain import explain
from ..tools.gradcheck import DEFAULT_TIME_BUDGET, format_seconds, gradcheck
from . import data as datasets
from .errors import UsageError
from .train import add_max_bytes_argument, load_model

LOSSES = {"mse": "mse", "bce": "bce", "cross_entropy": "softmax_cross_entropy"}


def run_demo(args: argparse.Namespace) -> int:
    if args.name == "activations":
        if not plotting.have_matplotlib():
            raise UsageError('drawing needs matplotlib: pip install "bprop[plot]"')
        path = plotting.plot_activations(Path(args.out) / "activations.png")
        print(f"activation functions and their derivatives: {path}")
        return 0
    demos.run(args.name, args.out)
    return 0


def small_network(layers: str, hidden: str, loss: str, seed: int,
                  output: str | None = None) -> Sequential:
    """A Sequential from sizes like "2,3,1": ``hidden`` after each hidden Dense layer and an
    output activation that suits ``loss`` (sigmoid for mse and bce, none for cross_entropy)."""
    try:
        sizes = [int(v) for v in layers.split(",")]
    except ValueError:
        raise UsageError(f"layers must be comma-separated integers, got {layers!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise UsageError(f"layers needs at least an input and an output size, got {sizes}")
    if hidden not in ACTIVATIONS:
        raise UsageError(f"unknown activation {hidden!r}; choose from "
                         f"{', '.join(sorted(ACTIVATIONS))}")
    output = output or ("none" if loss == "cross_entropy" else "sigmoid")
    model = mlp(sizes, activation=hidden, output=None if output == "none" else output,
                init="xavier", seed=seed, dtype="float64")
    # Small non-zero biases: with zero biases an all-zero sample (XOR's first) sits exactly on
    # ReLU's kink, where finite differences cannot check the slope.
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, Dense):
            layer.bias = rng.uniform(-0.2, 0.2, layer.n_outputs)
    return model


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="xor",
                        help="where the samples come from (default xor; any dataset that "
                        "bprop train knows)")
    parser.add_argument("--layers", default="2,3,1", help="sizes, e.g. 2,3,1 (default)")
    parser.add_argument("--activation", default="sigmoid", help="hidden activation")
    parser.add_argument("--output-activation", default=None,
                        help="sigmoid, identity, ... or none (default: sigmoid for mse and "
                        "bce, none for cross_entropy)")
    parser.add_argument("--loss", default="mse", choices=list(LOSSES))
    parser.add_argument("--samples", type=int, default=4, help="how many samples (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="text", choices=["text", "markdown", "html"])
    parser.add_argument("--output", help="write to this file instead of the terminal")


def run_explain(args: argparse.Namespace) -> int:
    if not 1 <= args.samples <= 64:
        raise UsageError(f"--samples must be between 1 and 64, got {args.samples}")
    data = datasets.load(args.dataset, scale="none", seed=args.seed)
    X, y = data.X_train[:args.samples], data.y_train[:args.samples]
    model = small_network(args.layers, args.activation, args.loss, args.seed,
                          args.output_activation)
    if model.n_inputs != X.shape[1]:
        raise UsageError(f"the layers start with {model.n_inputs} inputs but {args.dataset} "
                         f"has {X.shape[1]} features")
    if args.loss == "cross_entropy" and model.n_outputs < int(y.max()) + 1:
        raise UsageError(f"{args.dataset} has labels up to {int(y.max())}: the last layer "
                         f"needs at least {int(y.max()) + 1} outputs for cross_entropy")
    loss = LOSSES[args.loss]
    if loss == "bce" and not isinstance(model.layers[-1], Sigmoid):
        loss = BinaryCrossEntropy(from_logits=True)  # the output is a logit: use its form
    report = explain(model, X, y, loss)
    text = {"text": report.to_text, "markdown": report.to_markdown,
            "html": report.to_html}[args.format]()
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0 if report.all_checked() else 1


def add_gradcheck_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="check this saved model (else a new one from --layers)")
    parser.add_argument("--layer", choices=sorted(LAYERS),
                        help="check one layer on its own instead of a network")
    parser.add_argument("--layers", default="4,8,3",
                        help="sizes of the network to check (default 4,8,3)")
    parser.add_argument("--activation", default="tanh", help="hidden activation (default tanh)")
    parser.add_argument("--loss", default="cross_entropy", choices=list(LOSSES),
                        help="the loss whose gradient is checked (default cross_entropy; a "
                        "saved model uses its own)")
    parser.add_argument("--samples", type=int, default=5,
                        help="how many random input rows (default 5)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the network, the inputs and the sample (default 0)")
    parser.add_argument("--tolerance", type=float, default=1e-6,
                        help="the largest relative error that passes (default 1e-6)")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="check N random elements of each array (default: all of them "
                        "when that takes under --time-budget, else as many as fit it); "
                        "0 checks every element however long it takes")
    parser.add_argument("--time-budget", type=float, default=DEFAULT_TIME_BUDGET,
                        metavar="SECONDS",
                        help="how long a check may take before a sample is checked instead "
                        f"(default {DEFAULT_TIME_BUDGET:g})")
    add_max_bytes_argument(parser)


def run_gradcheck(args: argparse.Namespace) -> int:
    if args.samples < 1:
        raise UsageError(f"--samples must be at least 1, got {args.samples}")
    if not args.tolerance > 0:
        raise UsageError(f"--tolerance must be positive, got {args.tolerance:g}")
    if args.sample is not None and args.sample < 0:
        raise UsageError(f"--sample must be 0 (check every element) or more, got {args.sample}")
    if not (math.isfinite(args.time_budget) and args.time_budget > 0):
        raise UsageError(f"--time-budget must be a positive number of seconds, got "
                         f"{args.time_budget:g}")
    options = {"sample": "auto" if args.sample is None else args.sample,  # (0: every one)
               "time_budget": args.time_budget, "seed": args.seed, "verbose": True}
    rng = np.random.default_rng(args.seed)
    if args.layer:
        arguments = {"Dense": (4, 3), "BatchNorm": (4,)}.get(args.layer, ())
        target = LAYERS[args.layer](*arguments).build(args.seed)
        x = rng.standard_normal((args.samples, 4))
        report = gradcheck(target, x + 0.1 * np.sign(x), **options)
        what = repr(target)
    else:
        if args.model:
            model, _ = load_model(args.model, args.max_bytes)
            loss = model.loss or "mse"
        else:
            model = small_network(args.layers, args.activation, args.loss, args.seed)
            loss = LOSSES[args.loss]
        X = rng.standard_normal((args.samples, model.n_inputs))
        n_out = model.n_outputs
        loss = get_loss(loss)
        if loss.task == "multiclass":
            y = rng.integers(0, n_out, args.samples)
        elif loss.task == "binary":
            y = rng.integers(0, 2, (args.samples, n_out)).astype(float)
        else:
            y = rng.standard_normal((args.samples, n_out))
        report = gradcheck(model, X, y, loss=loss, **options)
        what = f"a network of {len(model.layers)} layers with {loss!r}"
    print(f"gradient check of {what} (central differences, float64)")
    print(report)
    if report.sampled:
        print("(--sample 0 checks every element; a larger --sample or --time-budget checks "
              "more)")
    print(f"took {format_seconds(report.seconds)} "
          f"(estimated {format_seconds(report.estimated_seconds)})")
    passed = report.passed(args.tolerance)
    print(f"worst relative error {report.worst:.2e}: "
          f"{'PASS' if passed else 'FAIL'} (tolerance {args.tolerance:g})")
    return 0 if passed else 1

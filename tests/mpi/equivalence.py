"""Run under ``mpiexec -n K``: every case trains one model in K processes and the same model in
this process alone, from the same seed, and process 0 prints one JSON line per case with the
largest relative difference between the two models' weights (per layer, relative to its largest
value) and whether every process ended with the same model."""

import json
import sys

import numpy as np
from _everywhere import run_everywhere

import bprop as bp
from bprop.data.augment import Augment
from bprop.distributed import MPIWorld


def before_batchnorm(model: bp.Sequential) -> set[str]:
    """The biases of Dense layers that a BatchNorm follows: BatchNorm subtracts the batch mean,
    so they change no output and their gradient is zero in exact arithmetic. What both runs
    give them is rounding noise, which Adam divides by its epsilon (1e-8): each run moves them,
    and the BatchNorm's running mean with them, by noise of its own, about 1e-10. They are
    compared on their own (absolutely), and such a model by its outputs."""
    return {f"{i}.bias" for i, layer in enumerate(model.layers[:-1])
            if isinstance(layer, bp.Dense) and layer.use_bias
            and isinstance(model.layers[i + 1], bp.BatchNorm)}


def relative_difference(a: bp.Sequential, b: bp.Sequential) -> float:
    """The largest difference of two models' parameters and running statistics, relative to
    the largest value of the layer it is in."""
    worst = 0.0
    state_a, state_b = a.state_dict(), b.state_dict()
    for name, value in state_a.items():
        if name in before_batchnorm(a):
            continue
        layer = name.split(".")[0]
        scale = max(np.abs(v).max() for n, v in state_a.items() if n.split(".")[0] == layer)
        worst = max(worst, float(np.abs(value - state_b[name]).max() / max(scale, 1e-300)))
    return worst


def noise_difference(a: bp.Sequential, b: bp.Sequential) -> float:
    """The largest absolute difference of the biases that a BatchNorm follows (0 without)."""
    state_a, state_b = a.state_dict(), b.state_dict()
    return max([float(np.abs(state_a[n] - state_b[n]).max()) for n in before_batchnorm(a)],
               default=0.0)


def output_difference(a: bp.Sequential, b: bp.Sequential, X: np.ndarray) -> float:
    """How far apart the two models' outputs are, relative to the largest."""
    out_a, out_b = a.forward(X), b.forward(X)
    return float(np.abs(out_a - out_b).max() / np.abs(out_b).max())


def network(case: dict) -> bp.Sequential:
    # A bias before a BatchNorm changes no output (see before_batchnorm): left out, as is
    # usual, except in the case that is about it.
    batchnorm = case.get("batchnorm", True)
    layers = [bp.Dense(6, 16, bias=not batchnorm or case.get("bias_before_batchnorm", False)),
              *([bp.BatchNorm(16)] if batchnorm else []), bp.ReLU()]
    if case.get("dropout"):
        layers.append(bp.Dropout(0.3))
    layers += [bp.Dense(16, 12), bp.Tanh(), bp.Dense(12, 8), bp.LeakyReLU(0.1),
               bp.Dense(8, 4 if case["loss"] != "mse" else 2)]
    if case["loss"] == "bce":
        layers += [bp.Dense(4, 1), bp.Sigmoid()]
    return bp.Sequential(layers, seed=case.get("seed", 0), dtype="float64")


OPTIMIZERS = {"sgd": lambda: bp.SGD(lr=0.05, momentum=0.9, nesterov=True),
              "adam": lambda: bp.Adam(lr=0.01), "adamw": lambda: bp.AdamW(lr=0.01),
              "rmsprop": lambda: bp.RMSProp(lr=0.005)}
REGULARIZERS = {None: lambda: None, "l1": lambda: bp.L1(1e-3), "l2": lambda: bp.L2(1e-3),
                "l1l2": lambda: bp.L1L2(1e-4, 1e-3)}


def data(case: dict):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(case.get("n", 203), 6))
    if case["loss"] == "mse":
        return X, np.column_stack([X[:, 0] * 2 - X[:, 1], np.sin(X[:, 2])])
    if case["loss"] == "bce":
        return X, (X[:, 0] + X[:, 1] > 0).astype(float)
    return X, (X[:, :4].argmax(axis=1))


def train(case: dict, world):
    model = network(case)
    X, y = data(case)
    weight = None
    if case.get("weights"):
        weight = np.random.default_rng(3).uniform(0, 2, len(X))
        weight[::5] = 0.0
    history = model.fit(
        X, y, loss={"ce": "cross_entropy", "bce": "bce", "mse": "mse"}[case["loss"]],
        optimizer=OPTIMIZERS[case["optimizer"]](), epochs=case.get("epochs", 1),
        batch_size=case.get("batch_size", 32), regularizer=REGULARIZERS[case.get("penalty")](),
        clip_norm=case.get("clip_norm"), sample_weight=weight, world=world,
        augment=Augment(shift=1, elastic=(1.0, 1.0), shape=(2, 3)) if case.get("augment")
        else None,
        metrics=case.get("metrics"))
    return model, history


CASES = [
    {"loss": "ce", "optimizer": opt, "penalty": pen}
    for opt in OPTIMIZERS for pen in REGULARIZERS
] + [
    {"loss": "mse", "optimizer": "adam", "clip_norm": 0.5},
    {"loss": "bce", "optimizer": "sgd", "weights": True},
    {"loss": "ce", "optimizer": "adam", "dropout": True, "epochs": 2},
    {"loss": "ce", "optimizer": "adam", "batch_size": 64, "n": 130},  # (last batch of 2)
    {"loss": "ce", "optimizer": "sgd", "batch_size": 2, "n": 41},      # (parts of 0 rows)
    {"loss": "ce", "optimizer": "adam", "metrics": ["accuracy"], "epochs": 2},
    {"loss": "ce", "optimizer": "adam", "batchnorm": False},
    {"loss": "ce", "optimizer": "adam", "bias_before_batchnorm": True},
    {"loss": "ce", "optimizer": "adam", "augment": True, "dropout": True},
    {"loss": "mse", "optimizer": "rmsprop", "batchnorm": False, "penalty": "l2"},
]


def main() -> None:
    world = MPIWorld()
    for case in CASES:
        together, history = train(case, world)
        alone, alone_history = train(case, None)
        digests = world.allgather(together.state_dict()["0.weight"].tobytes())
        if world.rank == 0:
            print(json.dumps({
                "case": case, "difference": relative_difference(together, alone),
                "noise_difference": noise_difference(together, alone),
                "output_difference": output_difference(together, alone, data(case)[0]),
                "loss_difference": abs(history["loss"][-1] - alone_history["loss"][-1])
                / abs(alone_history["loss"][-1]),
                "same_everywhere": all(d == digests[0] for d in digests),
                "history_keys": sorted(history.history)}), flush=True)
    if world.rank == 0:
        print("done", file=sys.stderr)


if __name__ == "__main__":
    run_everywhere(main)

"""Where one training step's time goes: matrix products against everything else.

Times the phases of bprop's training step as ``fit`` runs it (784-256-128-10 ReLU, softmax
cross-entropy, Adam, float32, MNIST) over one epoch, and the same matrix products on their own,
and prints the fraction of the step that is matrix products.

    python benchmarks/profile_step.py [--batch-size 128] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import bprop as bp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared"
                                                  / "data" / "mnist"))
    args = parser.parse_args()
    data_dir = args.data_dir if Path(args.data_dir).is_dir() else None
    (X, y), _ = bp.datasets.load_mnist(data_dir)
    X = X.astype(args.dtype, copy=False)
    sizes = [784, 256, 128, 10]
    model = bp.Sequential([bp.Dense(784, 256), bp.ReLU(), bp.Dense(256, 128), bp.ReLU(),
                           bp.Dense(128, 10)], seed=0, dtype=args.dtype)
    loss, optimizer = bp.SoftmaxCrossEntropy(), bp.Adam(1e-3)
    parameters = model.parameters()
    values = bp.nn.parameter.flat_views(parameters)[0]
    values_before = np.empty_like(values)
    phases = dict.fromkeys(["batch gather", "forward", "loss", "zero_grad", "backward",
                            "optimizer (guarded step)"], 0.0)
    order = np.random.default_rng(0).permutation(len(X))
    for _ in range(2):  # the first pass warms up; the second is reported
        totals = dict.fromkeys(phases, 0.0)
        for start in range(0, len(X), args.batch_size):
            t0 = time.perf_counter()
            rows = order[start:start + args.batch_size]
            X_batch, y_batch = X[rows], y[rows]
            t1 = time.perf_counter()
            out = model.forward(X_batch, training=True)
            t2 = time.perf_counter()
            loss.forward(out, y_batch)
            t3 = time.perf_counter()
            model.zero_grad()
            t4 = time.perf_counter()
            model.backward(loss.backward(), need_input_grad=False)
            t5 = time.perf_counter()
            # As fit steps: keeping the values to undo a diverging step, and checking them.
            optimizer.guarded_step(parameters, values_before)
            t6 = time.perf_counter()
            times = (t0, t1, t2, t3, t4, t5, t6)
            for name, a, b in zip(totals, times[:-1], times[1:], strict=True):
                totals[name] += b - a
        phases = totals
    step_total = sum(phases.values())
    matmul = matmul_seconds(sizes, len(X), args.batch_size, args.dtype)
    print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}, batch {args.batch_size}, "
          f"{args.dtype}")
    print("| phase (one epoch) | seconds | share |\n|---|---|---|")
    for name, seconds in phases.items():
        print(f"| {name} | {seconds:.3f} | {seconds / step_total:.0%} |")
    print(f"| **all** | {step_total:.3f} | 100% |")
    print(f"\nthe same matrix products alone: {matmul:.3f} s, "
          f"{matmul / step_total:.0%} of the training time")


def matmul_seconds(sizes: list[int], n_samples: int, batch: int, dtype: str) -> float:
    """One epoch of the network's matrix products (forward, weight and input gradients)."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((a, b)).astype(dtype)
               for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    acts = [rng.standard_normal((batch, n)).astype(dtype) for n in sizes]

    def step():
        for i, W in enumerate(weights):
            acts[i] @ W                      # forward
            acts[i].T @ acts[i + 1]          # weight gradient
            if i:
                acts[i + 1] @ W.T            # input gradient (not for the first layer)

    step()
    start = time.perf_counter()
    for _ in range(n_samples // batch):
        step()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

"""How well gradcheck foresees its own time, on an MNIST-sized network.

The network is 784-256-128-10 with ReLU (235,146 parameters) under softmax cross-entropy, on 32
random rows of 784 features with random labels; the input's 25,088 elements are checked too.
Each case reports the time gradcheck estimated before it started (from one timed forward
pass: two per checked element, plus the analytic pass) against the time it took, and how many
elements it checked:

* sampled: what ``bprop gradcheck`` does by default, a random sample per array sized to fit
  ``--time-budget`` (a minute), or ``--sample N`` elements per array;
* full (with ``--full``): every element, which takes many minutes.

    python benchmarks/gradcheck_scale.py [--time-budget 60] [--sample N] [--full]
"""

from __future__ import annotations

import argparse

import numpy as np

import bprop as bp
from bprop.tools.gradcheck import format_seconds

SIZES = (784, 256, 128, 10)
ROWS = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-budget", type=float, default=60.0,
                        help="seconds the sampled check may take (default 60)")
    parser.add_argument("--sample", type=int, default=None,
                        help="check this many elements per array instead of fitting the budget")
    parser.add_argument("--full", action="store_true",
                        help="also check every element (long: many minutes)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = bp.mlp(list(SIZES), activation="relu", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((ROWS, SIZES[0]))
    y = rng.integers(0, SIZES[-1], ROWS)
    n_parameters = sum(p.value.size for p in model.parameters())
    print(f"network {'-'.join(map(str, SIZES))} (relu), {n_parameters:,} parameters; "
          f"{ROWS} random rows ({X.size:,} input elements), softmax cross-entropy, float64")
    print(f"{'case':<8} {'checked':>20} {'estimated':>10} {'took':>10} {'took/est':>9} "
          f"{'worst error':>12}  result")

    cases = [("sampled", "auto" if args.sample is None else args.sample)]
    if args.full:
        cases.append(("full", None))
    for name, sample in cases:
        report = bp.gradcheck(model, X, y, loss="softmax_cross_entropy", seed=args.seed,
                              sample=sample, time_budget=args.time_budget, verbose=True)
        checked = f"{report.n_checked:,} of {report.n_elements:,}"
        ratio = report.seconds / report.estimated_seconds
        print(f"{name:<8} {checked:>20} {format_seconds(report.estimated_seconds):>10} "
              f"{format_seconds(report.seconds):>10} {ratio:>9.2f} {report.worst:>12.2e}  "
              f"{'PASS' if report.passed(1e-6) else 'FAIL'}", flush=True)
        if name == "sampled":
            print(f"{'':<8} a full check estimated at "
                  f"{format_seconds(report.full_estimated_seconds)}; per array: "
                  + ", ".join(f"{key} {report.checked[key]:,}/{report.sizes[key]:,}"
                              for key in report.sizes), flush=True)


if __name__ == "__main__":
    main()

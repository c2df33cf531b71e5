"""Train the same MLP the same way with bprop, PyTorch, JAX and scikit-learn; compare speed.

Every peer starts from the same weights and trains the same network (default 784-256-128-10,
ReLU, softmax cross-entropy, Adam lr 1e-3, float32, 5 epochs) on MNIST, each in a process of
its own (``bprop.compare`` does the training and measuring). The peers take turns over five
rounds (``--rounds``), so that the machine's drifting speed is shared out between them.
Reported per peer: seconds per epoch (median over the epochs, first epoch excluded; the best
round's, with the range of all rounds), bprop's time as a fraction of the peer's, achieved
GFLOP/s against the matrix-product peak measured here, test accuracy, peak memory, and the
time to predict the test set (best round). Missing peers are skipped with a message.

    python benchmarks/benchmark.py                         # batch 128 and 32, float32
    python benchmarks/benchmark.py --batch-sizes 32,128,512 --dtype float64 --json out.json
    python benchmarks/benchmark.py --openblas both         # also without OPENBLAS_* settings

See benchmarks/README.md for the method and the latest results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import bprop as bp
from bprop.tools import compare as comparison

# This folder's other script, imported without leaving the folder on sys.path, where its
# distributed.py would hide dask's distributed package from whoever imports this module.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from profile_step import matmul_seconds  # noqa: E402
finally:
    del sys.path[0]

TARGETS = {  # bprop's seconds per epoch as a fraction of each peer's, at most
    128: {"torch": 0.70, "jax": 1.0, "sklearn": 0.6},
    32: {"torch": 0.45, "sklearn": 0.6},
}
#: at batch 128, bprop's epoch takes at most this many times the same matrix products alone
MATMUL_TARGET = 1.5


def gemm_peak(dtype: str, size: int = 1024, repeats: int = 10) -> float:
    """GFLOP/s of NumPy's matrix product on square matrices, best of ``repeats``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def flops_per_epoch(sizes: list[int], n_samples: int) -> float:
    """Matrix-product FLOPs of one epoch: forward, weight gradients, and input gradients of
    every layer but the first."""
    products = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    per_sample = 2 * (2 * sum(products) + sum(products[1:]))
    return per_sample * n_samples


def run(args) -> dict:
    hidden = tuple(int(h) for h in args.hidden.split(","))
    peak = gemm_peak(args.dtype)
    adam = ("compiled, one pass (bprop.backend._fused)" if bp.optim.fused_adam_available()
            else "NumPy, thirteen passes (the C extension was not built, or BPROP_NO_FUSED is set)")
    report = {"machine": comparison.machine_description(), "gemm_peak_gflops": peak,
              "bprop_adam": adam, "settings": vars(args), "runs": []}
    print(f"# {report['machine']['description']}")
    print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}; "
          f"NumPy {args.dtype} GEMM peak {peak:.0f} GFLOP/s; bprop's Adam: {adam}", flush=True)
    peers = args.peers.split(",")
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        # The machine's speed drifts (other work on the host slows a whole process down by
        # up to half at times), so the peers take turns: each round trains every peer once,
        # starting one peer later than the round before, and a peer's time is its best
        # round's (such slowdowns only ever add time), with the range of all rounds beside it.
        rounds = []
        for r in range(args.rounds):
            order = peers[r % len(peers):] + peers[:r % len(peers)]
            rounds.append(comparison.compare(
                args.dataset, hidden=hidden, optimizer=args.optimizer, lr=args.lr,
                batch_size=batch_size, epochs=args.epochs, dtype=args.dtype,
                data_dir=args.data_dir, peers=order, verbose=False))
        X_train, X_test = comparison.load_data(rounds[0].settings)[:2]
        sizes = [X_train.shape[1], *hidden, 10]
        flops = flops_per_epoch(sizes, len(X_train))
        ran = {peer: [r for result in rounds for r in result.ran() if r.peer == peer]
               for peer in peers}
        skipped = {r.peer: r.status for result in rounds for r in result.results
                   if r.status != "ok"}  # a peer that failed in any round says so
        best = {peer: {"epoch": min(r.seconds_per_epoch for r in runs),
                       "predict": min(r.predict_seconds for r in runs)}
                for peer, runs in ran.items() if runs}
        ours = best.get("bprop")
        rows = []
        for peer, runs in ran.items():
            if not runs:
                continue
            seconds, predict = best[peer]["epoch"], best[peer]["predict"]
            rows.append({
                "peer": peer, "version": runs[0].version, "seconds_per_epoch": seconds,
                "rounds_seconds_per_epoch": [r.seconds_per_epoch for r in runs],
                "bprop_over_peer": ours["epoch"] / seconds if ours else None,
                "gflops": flops / seconds / 1e9,
                "percent_of_peak": 100 * flops / seconds / 1e9 / peak,
                "test_accuracy": float(np.median([r.test_accuracy for r in runs])),
                "peak_rss_mb": max(r.peak_rss_mb for r in runs),
                "training_mb": max(r.training_mb for r in runs), "predict_seconds": predict,
                "bprop_predict_over_peer": ours["predict"] / predict if ours else None,
                "epoch_seconds": [r.epoch_seconds for r in runs]})
        # The data as the peers hold them: in the benchmark's dtype.
        data_mb = (X_train.size + X_test.size) * np.dtype(args.dtype).itemsize / 2**20
        model_mb = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True)) \
            * np.dtype(args.dtype).itemsize / 2**20
        # The epoch's matrix products alone, in a bare loop (best of three): what bprop's
        # epoch would take if everything else were free.
        matmul = min(matmul_seconds(sizes, len(X_train), batch_size, args.dtype)
                     for _ in range(3))
        run_report = {"batch_size": batch_size, "flops_per_epoch": flops, "rows": rows,
                      "skipped": skipped, "data_mb": data_mb, "model_mb": model_mb,
                      "matmul_seconds_per_epoch": matmul}
        report["runs"].append(run_report)
        print_run(run_report, args)
    return report


def print_run(run_report: dict, args) -> None:
    batch = run_report["batch_size"]
    print(f"\n## batch {batch}, {args.dtype}, {args.optimizer}, {args.epochs} epochs, "
          f"{run_report['flops_per_epoch'] / 1e9:.1f} GFLOP of matrix products per epoch, "
          f"best of {args.rounds} round(s)")
    header = ("peer", "s/epoch", "rounds' range", "bprop/peer", "GFLOP/s", "% peak",
              "test acc", "peak RSS MB", "predict s", "bprop/peer")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in run_report["rows"]:
        spread = row["rounds_seconds_per_epoch"]
        print(f"| {row['peer']} {row['version']} | {row['seconds_per_epoch']:.3f} | "
              f"{min(spread):.3f}-{max(spread):.3f} | "
              f"{row['bprop_over_peer']:.2f} | {row['gflops']:.0f} | "
              f"{row['percent_of_peak']:.0f} | {row['test_accuracy']:.4f} | "
              f"{row['peak_rss_mb']:.0f} | {row['predict_seconds']:.4f} | "
              f"{row['bprop_predict_over_peer']:.2f} |")
    for peer, why in run_report["skipped"].items():
        print(f"- {peer} skipped: {why}")
    by_peer = {row["peer"]: row for row in run_report["rows"]}
    ours = by_peer.get("bprop")
    if ours is None:
        return
    for peer, limit in TARGETS.get(batch, {}).items():
        if peer in by_peer and args.dtype == "float32":
            ratio = by_peer[peer]["bprop_over_peer"]
            print(f"target bprop/{peer} <= {limit}: {ratio:.2f} "
                  f"{'met' if ratio <= limit else 'NOT MET'}")
    if args.dtype == "float64" and "sklearn" in by_peer:
        ratio = by_peer["sklearn"]["bprop_over_peer"]
        print(f"target bprop/sklearn <= 0.6 (float64): {ratio:.2f} "
              f"{'met' if ratio <= 0.6 else 'NOT MET'}")
    if "torch" in by_peer:
        # In points, rounded to a hundredth: 0.9800 - 0.9770 is 0.30000000000000027 points.
        gap = round(100 * (ours["test_accuracy"] - by_peer["torch"]["test_accuracy"]), 2)
        side = "above" if gap > 0 else "below" if gap < 0 else "level with"
        print(f"target accuracy within 0.3 points of PyTorch (either way): bprop "
              f"{abs(gap):.2f} points {side} {'met' if abs(gap) <= 0.3 else 'NOT MET'}")
        ratio = ours["predict_seconds"] / by_peer["torch"]["predict_seconds"]
        print(f"target inference at least as fast as PyTorch: bprop/torch {ratio:.2f} "
              f"{'met' if ratio <= 1 else 'NOT MET'}")
    matmul = run_report["matmul_seconds_per_epoch"]
    ratio = ours["seconds_per_epoch"] / matmul
    verdict = ("met" if ratio <= MATMUL_TARGET else "NOT MET") if batch == 128 else "(no target)"
    print(f"bprop's epoch over the same matrix products alone ({matmul:.3f} s): {ratio:.2f}; "
          f"target <= {MATMUL_TARGET} at batch 128: {verdict}")
    budget = 1.5 * (run_report["data_mb"] + run_report["model_mb"])
    print(f"target peak memory <= 1.5 x ({args.dtype} data {run_report['data_mb']:.0f} MB + "
          "model): "
          f"{ours['peak_rss_mb']:.0f} MB of {budget:.0f} MB "
          f"{'met' if ours['peak_rss_mb'] <= budget else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the four files (default: ../shared/data/<name>, "
                        "then $BPROP_DATA and the cache)")
    parser.add_argument("--batch-sizes", default="128,32")
    parser.add_argument("--hidden", default="256,128", help="hidden layer sizes (width, depth)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--peers", default="bprop,torch,jax,sklearn")
    parser.add_argument("--rounds", type=int, default=5,
                        help="train every peer this many times, taking turns (default 5)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--openblas", default="as-set", choices=["as-set", "unset", "both"],
                        help="run with the environment's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE "
                        "as they are (default), without them, or both, one after the other")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    unknown = [peer for peer in args.peers.split(",") if peer not in comparison.PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {unknown} in --peers; choose from "
                     f"{list(comparison.PEERS)}")
    if args.data_dir is None:
        shared = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                              args.dataset)
        args.data_dir = shared if os.path.isdir(shared) else None
    if args.openblas == "as-set":
        report = run(args)
    elif args.openblas == "unset" or args.openblas == "both":
        if args.openblas == "both":
            report = run(args)
            print("\n# the same without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE:", flush=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        argv = [a for a in sys.argv[1:] if not a.startswith("--openblas")]
        argv = [a for i, a in enumerate(argv) if not (i > 0 and argv[i - 1] == "--openblas")]
        argv = [a for a in argv if a not in ("as-set", "unset", "both")]
        if args.json and args.openblas == "both":  # the second setting gets its own file
            stem, dot, suffix = args.json.rpartition(".")
            unset_json = f"{stem}-openblas-unset.{suffix}" if dot else f"{args.json}-unset"
            argv = [unset_json if a == args.json else a for a in argv]
        subprocess.run([sys.executable, __file__, *argv], env=env, check=True)
        if args.openblas == "unset":
            return
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)


if __name__ == "__main__":
    main()

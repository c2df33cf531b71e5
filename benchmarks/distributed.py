r"""When training over MPI pays: steps per second on 1 and 2 processes here, and a cost model.

``model.fit(..., world=bprop.distributed.MPIWorld())`` under ``mpiexec -n K`` splits every
batch of B rows into K parts and adds the K gradients with one all-reduce of the flat gradient
buffer per step (:mod:`bprop.distributed`). This script measures what that costs and gains,
and predicts it for K machines on a network.

    python benchmarks/distributed.py run [--quick] [--out results.json]   # K=1 and K=2 here
    mpiexec -n 2 python benchmarks/distributed.py measure --sizes 784,256,128,10 --batch 128
    python benchmarks/distributed.py model --bandwidth-gbit 10 --latency-us 20 \
        --measured results.json

``measure`` (run under ``mpiexec -n K``) trains an MLP of ``--sizes`` (ReLU, softmax
cross-entropy, Adam lr 1e-3, float32) on synthetic data of MNIST's shape (uniform pixels,
random labels: the speed does not depend on what is learnt) with ``fit(..., world=MPIWorld())``
and prints, on process 0, one JSON line: K, steps per second (the median of ``--repeats``
one-epoch fits of ``--steps`` steps, after a warm-up fit), the bytes all-reduced per step (the
flat gradient buffer's ``nbytes``: parameters × 4) and the all-reduce's own time per step
(``world.sum_`` on a buffer of that size, timed apart from training; 0 for K=1).

``run`` launches ``measure`` with ``mpiexec`` (found beside the Python interpreter, else on
PATH) for K=1 and K=2 and two networks, MNIST's 784-256-128-10 and a wide 784-4096-4096-10,
and prints a Markdown table. Threads: K=1 runs twice, with ``OPENBLAS_NUM_THREADS=1`` and
with one thread per core, and the faster of the two is the peer the speed-ups are measured
against (two threads were the faster on the idle 2-core EPYC, one while another program
busy-waited on one of its cores: the peer is whichever this run finds faster); each
of the K=2 processes gets ``cores // 2`` threads. So the table compares ways of using the same
machine, never with more threads than cores (oversubscribed, the ranks would slow each other
down and the table would measure the contention). For K=1 it also times a small batch, so that
a step's time is split into a part proportional to the batch and a fixed part (see
:func:`fit_step_time`); ``model`` uses the two.

``model`` prints the cost model's predicted speed-up of K machines over one
(:func:`predicted_step_seconds`) for batch sizes 128 to 8192 and K up to 16, and the smallest
batch at which K machines beat one (:func:`break_even_batch`).

See benchmarks/README.md for the results on this project's machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MNIST = (784, 256, 128, 10)
WIDE = (784, 4096, 4096, 10)
QUICK_WIDE = (784, 1024, 1024, 10)  # (the wide network, narrowed so that --quick takes seconds)
SMALL_BATCH = 8  # the second batch size timed for K=1, to split off the fixed cost of a step


def n_parameters(sizes) -> int:
    """Weights and biases of an MLP with these layer sizes: sum of (n_in + 1) * n_out."""
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# -- the cost model ----------------------------------------------------------------------------
def ring_allreduce_seconds(nbytes: float, k: int, bandwidth_bytes: float,
                           latency_s: float) -> float:
    r"""Time of a ring all-reduce of ``nbytes`` over ``k`` machines (the standard ring model of
    Patarasuk & Yuan 2009, the algorithm Horovod and NCCL use):

    .. math::
        T_{\text{ring}}(n, K) = 2\,\frac{K-1}{K}\,\frac{n}{\beta} + 2\,(K-1)\,\alpha

    with :math:`\beta` the bandwidth (bytes/s) and :math:`\alpha` the latency of one message:
    a reduce-scatter and an all-gather, each of :math:`K-1` steps that send :math:`n/K` bytes.
    0 for one machine.

    >>> ring_allreduce_seconds(8e6, 2, 1e9, 1e-5)  # 8 MB, 2 machines, 1 GB/s, 10 us
    0.00802
    """
    if k <= 1:
        return 0.0
    return 2 * (k - 1) / k * nbytes / bandwidth_bytes + 2 * (k - 1) * latency_s


def predicted_step_seconds(batch: int, k: int, *, per_row_s: float, overhead_s: float,
                           nbytes: float, bandwidth_bytes: float, latency_s: float) -> float:
    r"""Predicted time of one training step of a global batch of ``batch`` rows on ``k``
    machines:

    .. math::
        T_K(B) = \frac{c\,B}{K} + o + T_{\text{ring}}(n, K)

    where :math:`c\,B` (``per_row_s * batch``) is the part of one machine's step that grows
    with the batch (the matrix products, the activations), which K machines share; :math:`o`
    (``overhead_s``) is the part that does not (every process updates all the parameters with
    Adam and pays Python's per-layer cost), which each machine pays whole; and
    :math:`T_{\text{ring}}` is :func:`ring_allreduce_seconds` of the ``nbytes`` gradient buffer.
    Assumptions: the compute is linear in the batch (fitted from two measured batch sizes
    by :func:`fit_step_time`; it is not exactly: small batches use the cores less well), the
    all-reduce does not overlap the compute (it does not in bprop: it runs after the backward
    pass), and the machines are alike. With ``k = 1`` this is exactly one machine's step,
    :math:`cB + o`.

    >>> predicted_step_seconds(128, 1, per_row_s=1e-5, overhead_s=1e-3, nbytes=1e6,
    ...                        bandwidth_bytes=1e9, latency_s=0.0)
    0.00228
    """
    return (per_row_s * batch / k + overhead_s
            + ring_allreduce_seconds(nbytes, k, bandwidth_bytes, latency_s))


def predicted_speedup(batch: int, k: int, **costs) -> float:
    """One machine's predicted step time over K machines': above 1 when K machines win."""
    return predicted_step_seconds(batch, 1, **costs) / predicted_step_seconds(batch, k, **costs)


def break_even_batch(k: int, *, per_row_s: float, nbytes: float, bandwidth_bytes: float,
                     latency_s: float) -> int:
    r"""The smallest global batch at which K machines take less time per step than one:
    :math:`c B (1 - 1/K) > T_{\text{ring}}`, so :math:`B = \lfloor T_{\text{ring}} /
    (c(1-1/K)) \rfloor + 1` (the fixed part :math:`o` is paid alike and cancels), and at least
    K rows (one per machine).

    >>> break_even_batch(2, per_row_s=1e-5, nbytes=1e6, bandwidth_bytes=1e9, latency_s=0.0)
    201
    """
    if k <= 1:
        return 1
    ring = ring_allreduce_seconds(nbytes, k, bandwidth_bytes, latency_s)
    return max(k, math.floor(ring / (per_row_s * (1 - 1 / k))) + 1)


def fit_step_time(batch: int, step_s: float, small_batch: int, small_step_s: float) -> dict:
    """Split one machine's step time into ``per_row_s * batch + overhead_s``: the line through
    the two measured (batch, seconds) points; the overhead is clipped at 0."""
    per_row = max((step_s - small_step_s) / (batch - small_batch), 1e-12)
    overhead = max(step_s - per_row * batch, 0.0)
    return {"per_row_s": per_row, "overhead_s": overhead}


# -- measuring: run under mpiexec -n K ---------------------------------------------------------
def measure(sizes, batch: int, steps: int, repeats: int, small_batch: int | None = None) -> dict:
    """Steps per second of ``fit(..., world=MPIWorld())`` in this communicator, the bytes
    all-reduced per step, and the all-reduce's time on a buffer of that size."""
    import bprop as bp
    from bprop.distributed import MPIWorld
    from bprop.nn.parameter import flat_views

    world = MPIWorld()
    rng = np.random.default_rng(0)  # (the same data in every process, as fit requires)
    X = rng.random((steps * batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], steps * batch)
    model = bp.mlp(list(sizes), seed=0, dtype="float32")
    optimizer = bp.Adam(lr=1e-3)

    def steps_per_second(rows: int, n_steps: int) -> float:
        def one_fit(n: int) -> float:
            world.comm.Barrier()
            start = time.perf_counter()
            model.fit(X[:n * rows], y[:n * rows], loss="softmax_cross_entropy",
                      optimizer=optimizer, batch_size=rows, epochs=1, shuffle=False,
                      world=world)
            world.comm.Barrier()
            return time.perf_counter() - start

        one_fit(max(2, n_steps // 5))  # warm-up: first products, Adam's moments, the caches
        # (process 0's clock decides for everyone; the fits ended together at the barrier)
        return world.agree(statistics.median(n_steps / one_fit(n_steps)
                                              for _ in range(repeats)))

    result = {"k": world.size, "sizes": list(sizes), "batch": batch, "steps": steps,
              "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
              "steps_per_s": steps_per_second(batch, steps)}
    grads = flat_views(model.parameters())[1]
    result["grad_bytes"] = int(grads.nbytes)
    buffer = np.ones_like(grads)
    world.sum_(buffer)
    times = []
    for _ in range(max(5, repeats * 3)):
        world.comm.Barrier()
        start = time.perf_counter()
        world.sum_(buffer)
        times.append(time.perf_counter() - start)
    result["allreduce_ms"] = world.agree(1e3 * statistics.median(times))
    if small_batch:
        result["small_batch"] = small_batch
        result["small_steps_per_s"] = steps_per_second(small_batch, steps)
    return result


# -- the driver: K=1 and K=2 here ----------------------------------------------------------------
def find_mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def launch(mpiexec: str, k: int, threads: int, sizes, batch: int, steps: int, repeats: int,
           small_batch: int | None) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    command = [mpiexec, "-n", str(k), sys.executable, os.path.abspath(__file__), "measure",
               "--sizes", ",".join(map(str, sizes)), "--batch", str(batch), "--steps",
               str(steps), "--repeats", str(repeats)]
    if small_batch:
        command += ["--small-batch", str(small_batch)]
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{finished.stderr[-2000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def run(args) -> int:
    mpiexec = find_mpiexec()
    if mpiexec is None:
        print("skipped: no mpiexec beside this Python or on PATH "
              '(pip install "bprop[mpi]" brings MPICH)')
        return 0
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        print('skipped: mpi4py is not installed (pip install "bprop[mpi]")')
        return 0
    if args.quick:
        plans = [(MNIST, 128, 20, 2), (QUICK_WIDE, 128, 4, 2)]
    else:
        plans = [(MNIST, 128, 200, 5), (WIDE, 128, 12, 3)]
    from bprop.tools.compare import machine_description
    report = {"machine": machine_description()["description"], "rows": [], "fits": {}}
    cores = os.cpu_count() or 1
    for sizes, batch, steps, repeats in plans:
        # One process with 1 thread and with every core (more threads are not always faster:
        # with another program on one core, one thread ran the wide products faster); K=2
        # with cores // 2 threads each, never more threads than cores.
        singles = [launch(mpiexec, 1, threads, sizes, batch, steps, repeats, SMALL_BATCH)
                   for threads in sorted({1, cores})]
        pair = launch(mpiexec, 2, max(1, cores // 2), sizes, batch, steps, repeats, None)
        single = max(singles, key=lambda row: row["steps_per_s"])  # (the peer: one's best)
        report["fits"]["-".join(map(str, sizes))] = {
            "batch": batch, "grad_bytes": single["grad_bytes"], "threads": single["threads"],
            "step_ms": 1e3 / single["steps_per_s"],
            **fit_step_time(batch, 1 / single["steps_per_s"], SMALL_BATCH,
                            1 / single["small_steps_per_s"])}
        for row in (*singles, pair):
            row["speedup"] = row["steps_per_s"] / single["steps_per_s"]
            report["rows"].append(row)
    print(f"# {report['machine']}; all K processes on this one machine (the all-reduce is a "
          "shared-memory copy); speed-up against the faster K=1 row")
    print(markdown_measured(report["rows"]))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


def markdown_measured(rows: list[dict]) -> str:
    lines = ["| model | batch | K | threads per process | steps/s | ms per step | "
             "speed-up vs K=1 | MB all-reduced per step | all-reduce ms per step |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {'-'.join(map(str, row['sizes']))} | {row['batch']} | {row['k']} | "
                     f"{row['threads']} | {row['steps_per_s']:.1f} | "
                     f"{1e3 / row['steps_per_s']:.2f} | {row['speedup']:.2f} | "
                     f"{row['grad_bytes'] / 1e6:.2f} | {row['allreduce_ms']:.2f} |")
    return "\n".join(lines)


# -- the model's tables ------------------------------------------------------------------------
def model_tables(fits: dict, bandwidth_gbit: float, latency_us: float,
                 batches=(128, 1024, 8192), ks=(1, 2, 4, 8, 16)) -> str:
    """Predicted speed-ups of K machines over one, per network and batch, and the smallest
    batch at which K machines win."""
    bandwidth, latency = bandwidth_gbit * 1e9 / 8, latency_us * 1e-6
    head = " | ".join(f"K={k}" for k in ks)
    lines = [f"Network {bandwidth_gbit:g} Gbit/s, latency {latency_us:g} us per message; "
             "predicted speed-up over one machine (below 1: slower)", "",
             f"| model | batch | one machine ms per step | {head} |",
             "|---|---|---|" + "---|" * len(ks)]
    for name, fit in fits.items():
        costs = {"per_row_s": fit["per_row_s"], "overhead_s": fit["overhead_s"],
                 "nbytes": fit["grad_bytes"], "bandwidth_bytes": bandwidth,
                 "latency_s": latency}
        for batch in batches:
            one = 1e3 * predicted_step_seconds(batch, 1, **costs)
            cells = " | ".join(f"{predicted_speedup(batch, k, **costs):.2f}" for k in ks)
            lines.append(f"| {name} | {batch} | {one:.1f} | {cells} |")
    several = [k for k in ks if k > 1]
    lines += ["", "The smallest global batch at which K machines take less time per step "
              "than one", "", "| model | MB per all-reduce | "
              + " | ".join(f"K={k}" for k in several) + " |", "|---|---|" + "---|" * len(several)]
    for name, fit in fits.items():
        cells = " | ".join(str(break_even_batch(
            k, per_row_s=fit["per_row_s"], nbytes=fit["grad_bytes"],
            bandwidth_bytes=bandwidth, latency_s=latency)) for k in several)
        lines.append(f"| {name} | {fit['grad_bytes'] / 1e6:.2f} | {cells} |")
    return "\n".join(lines)


def model(args) -> int:
    if args.measured:
        fits = json.loads(Path(args.measured).read_text())["fits"]
    elif args.compute_ms:
        # Given one machine's ms per step at batch 128 (and optionally the fixed part of it)
        steps = [float(v) for v in args.compute_ms.split(",")]
        fixed = ([float(v) for v in args.overhead_ms.split(",")] if args.overhead_ms
                 else [0.0] * len(steps))
        fits = {"-".join(map(str, sizes)): {
            "grad_bytes": 4 * n_parameters(sizes), "overhead_s": o / 1e3,
            "per_row_s": (s - o) / 1e3 / 128} for sizes, s, o in zip((MNIST, WIDE), steps, fixed,
                                                                     strict=False)}
    else:  # measure one process here now
        fits = {}
        for sizes, steps in ((MNIST, 100), (WIDE, 8)):
            row = measure(sizes, 128, steps, 3, SMALL_BATCH)
            fits["-".join(map(str, sizes))] = {
                "grad_bytes": row["grad_bytes"],
                **fit_step_time(128, 1 / row["steps_per_s"], SMALL_BATCH,
                                1 / row["small_steps_per_s"])}
    for name, fit in fits.items():
        print(f"# {name}: one machine's step = {1e6 * fit['per_row_s']:.2f} us per row "
              f"+ {1e3 * fit['overhead_s']:.2f} ms fixed; {fit['grad_bytes'] / 1e6:.2f} MB "
              "of gradients")
    print(model_tables(fits, args.bandwidth_gbit, args.latency_us))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    m = modes.add_parser("measure", help="run under mpiexec -n K; prints one JSON line")
    m.add_argument("--sizes", default="784,256,128,10")
    m.add_argument("--batch", type=int, default=128)
    m.add_argument("--steps", type=int, default=200)
    m.add_argument("--repeats", type=int, default=5)
    m.add_argument("--small-batch", type=int, default=None,
                   help="also time this batch size (to split off a step's fixed cost)")
    r = modes.add_parser("run", help="K=1 and K=2 here, two networks; a Markdown table")
    r.add_argument("--quick", action="store_true", help="a few steps of smaller networks")
    r.add_argument("--out", help="write the results (JSON) here; `model --measured` reads it")
    c = modes.add_parser("model", help="the cost model's predictions for K machines")
    c.add_argument("--bandwidth-gbit", type=float, default=10.0)
    c.add_argument("--latency-us", type=float, default=20.0)
    c.add_argument("--measured", help="a JSON file that `run --out` wrote")
    c.add_argument("--compute-ms", help="one machine's ms per step at batch 128: MNIST,wide")
    c.add_argument("--overhead-ms", help="the fixed part of those steps, ms: MNIST,wide")
    args = parser.parse_args(argv)
    if args.mode == "measure":
        result = measure(tuple(int(s) for s in args.sizes.split(",")), args.batch, args.steps,
                         args.repeats, args.small_batch)
        from bprop.distributed import MPIWorld
        if MPIWorld().rank == 0:
            print(json.dumps(result), flush=True)
        return 0
    return run(args) if args.mode == "run" else model(args)


if __name__ == "__main__":
    sys.exit(main())

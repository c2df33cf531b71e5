"""What a model costs in memory: building one, and loading it from its file, against its size.

Each case runs in a fresh Python process, which first imports NumPy and bprop and notes its
resident memory (the baseline, the interpreter's own), then does the case:

* build: ``Sequential([Dense(n, n)], dtype="float32", seed=0)``, then one training pass on 8
  rows (forward, backward), so that the gradients are allocated and written;
* load: ``bp.load`` of that model's file (written beforehand by another process), then the
  same pass.

The peak is the process's largest resident memory (``getrusage``'s ``ru_maxrss``) minus the
baseline; the ratio divides it by the bytes of the model's parameters. Weights and gradients
alone make 2.0; the target is at most 2.3. The seconds are those of building or loading the
model; the pass's seconds (most of them the first writing of the gradients' memory) follow.

    python benchmarks/memory.py [--size 20000] [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _memory_use import peak_bytes, resident_bytes  # (beside this script)

TARGET_RATIO = 2.3
CASES = ("build", "load")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20000,
                        help="the Dense layer is size x size (default 20000: 1.6 GB in float32)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--case", choices=[*CASES, "save"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:  # the child process: measure one case and report it as JSON
        print(json.dumps(_measure(args.case, args.size, args.dtype, Path(args.file))))
        return
    itemsize = 4 if args.dtype == "float32" else 8
    weights = (args.size * args.size + args.size) * itemsize
    print(f"Dense({args.size}, {args.size}), {args.dtype}: {weights:,} bytes of parameters "
          f"({weights / 1e6:.1f} MB, weights and bias); peak resident memory above the "
          "interpreter's, one fresh process per case")
    print(f"{'case':<8} {'seconds':>8} {'pass s':>7} {'peak MB':>10} {'ratio':>6} "
          f"{'target':>8}  result")
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "model.npz"
        _run("save", args, file)  # writes the file that "load" reads
        for case in CASES:
            result = _run(case, args, file)
            ratio = result["peak_bytes"] / weights
            verdict = "MET" if ratio <= TARGET_RATIO else "NOT MET"
            print(f"{case:<8} {result['seconds']:>8.2f} {result['pass_seconds']:>7.2f} "
                  f"{result['peak_bytes'] / 1e6:>10.1f} {ratio:>6.2f} "
                  f"{'<= ' + str(TARGET_RATIO):>8}  {verdict}", flush=True)


def _run(case: str, args: argparse.Namespace, file: Path) -> dict:
    finished = subprocess.run(
        [sys.executable, __file__, "--case", case, "--size", str(args.size), "--dtype",
         args.dtype, "--file", str(file)], capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        sys.exit(f"the {case} case failed:\n{finished.stderr}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def _measure(case: str, size: int, dtype: str, file: Path) -> dict:
    import numpy as np

    import bprop as bp

    baseline = resident_bytes()
    start = time.perf_counter()
    if case == "load":
        model = bp.load(file, max_bytes=2 * file.stat().st_size)
    else:
        model = bp.Sequential([bp.Dense(size, size)], dtype=dtype, seed=0)
    seconds = time.perf_counter() - start
    if case == "save":
        model.save(file)
    else:
        x = np.random.default_rng(0).standard_normal((8, size)).astype(dtype)
        out = model.forward(x, training=True)
        model.zero_grad()
        model.backward(np.ones_like(out), need_input_grad=False)
    return {"seconds": seconds, "pass_seconds": time.perf_counter() - start - seconds,
            "peak_bytes": peak_bytes() - baseline}


if __name__ == "__main__":
    main()

"""How fast bprop reads a large CSV file, and in how much memory, against NumPy's own reader.

The script writes, in a temporary folder, a file of ``--rows`` rows (default 10^6) and 11
numeric columns with a header line: 10 features (random normal numbers with 6 significant
digits) and a target of whole numbers 0, 1 or 2, about 90 MB. A second file has the same
features and a target of text labels (``cat``, ``dog``, ``bird``); ``--numeric-only`` leaves it
out. Each reader then runs in a fresh Python process, ``--repeat`` times:

* ``np.loadtxt(file, delimiter=",", skiprows=1)``, the reference (for the text file, with
  ``usecols`` for the 10 numeric columns, since NumPy cannot read the labels as numbers);
* ``bprop.data.csv.load_csv(file)``, which also finds the header and encodes the labels;
* ``bprop.data.csv.load_features(file)`` on the numeric file (all 11 columns).

Seconds are those of the call alone, the fastest of the repeats. Peak memory is the child's
largest resident memory (``getrusage``'s ``ru_maxrss``), the largest of the repeats: in all,
and above what the process held after its imports (``/proc/self/statm`` on Linux). A reader
meets the target when its seconds and its peak memory (in all, and above the imports) are each
at most twice NumPy's.

    python benchmarks/csv_speed.py [--rows 1000000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _memory_use import peak_bytes, resident_bytes  # (beside this script)

TARGET_RATIO = 2.0
COLUMNS = 11
LABELS = ("cat", "dog", "bird")
BLOCK_ROWS = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows of each generated file (default 1000000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh processes per reader; the fastest counts (default 3)")
    parser.add_argument("--numeric-only", action="store_true",
                        help="leave out the file with a text target")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child in ("write numeric", "write text"):
        _write(Path(args.file), args.rows, text=args.child == "write text")
        return
    if args.child is not None:  # a fresh process: one reader on one file, reported as JSON
        print(json.dumps(_measure(args.child, Path(args.file))))
        return
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    cases = [("numeric", "loadtxt"), ("numeric", "load_csv"), ("numeric", "load_features")]
    if not args.numeric_only:
        cases += [("text", "loadtxt_numeric_columns"), ("text", "load_csv")]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        files = {kind: Path(folder) / f"{kind}.csv"
                 for kind in (["numeric"] if args.numeric_only else ["numeric", "text"])}
        for kind, file in files.items():
            # Written by a child too: this process stays small, as Linux starts a child's
            # ru_maxrss at its parent's resident memory.
            subprocess.run([sys.executable, __file__, "--child", f"write {kind}", "--file",
                            str(file), "--rows", str(args.rows)], check=True)
        for kind, file in files.items():
            print(f"{kind} file: {args.rows:,} rows x {COLUMNS} columns, "
                  f"{file.stat().st_size / 1e6:.1f} MB")
        print(f"one fresh process per run, {args.repeat} runs per reader; seconds: the fastest; "
              "peak MB: the largest, in all and above the process's imports")
        print(f"{'file':<8} {'reader':<24} {'seconds':>8} {'peak MB':>8} {'above':>7} "
              f"{'x time':>7} {'x peak':>7} {'x above':>8}  target <= {TARGET_RATIO:g}x")
        reference = {}
        for kind, reader in cases:
            runs = [_run(reader, files[kind]) for _ in range(args.repeat)]
            result = {"file": kind, "reader": reader,
                      "seconds": min(r["seconds"] for r in runs),
                      "peak_bytes": max(r["peak_bytes"] for r in runs),
                      "above_imports_bytes": max(r["peak_bytes"] - r["imports_bytes"]
                                                 for r in runs),
                      "shape": runs[0]["shape"], "numpy": runs[0]["numpy"]}
            if reader.startswith("loadtxt"):
                reference[kind] = result
            base = reference[kind]
            ratios = {"time": result["seconds"] / base["seconds"],
                      "peak": result["peak_bytes"] / base["peak_bytes"],
                      "above_imports": (result["above_imports_bytes"]
                                        / max(1, base["above_imports_bytes"]))}
            result["ratios"] = ratios
            result["met"] = all(value <= TARGET_RATIO for value in ratios.values())
            verdict = "(reference)" if result is base else ("MET" if result["met"]
                                                            else "NOT MET")
            print(f"{kind:<8} {reader:<24} {result['seconds']:>8.2f} "
                  f"{result['peak_bytes'] / 1e6:>8.1f} {result['above_imports_bytes'] / 1e6:>7.1f} "
                  f"{ratios['time']:>7.2f} {ratios['peak']:>7.2f} {ratios['above_imports']:>8.2f}"
                  f"  {verdict}", flush=True)
            results.append(result)
    if args.json:
        report = {"rows": args.rows, "columns": COLUMNS, "repeat": args.repeat,
                  "target_ratio": TARGET_RATIO, "python": platform.python_version(),
                  "numpy": results[0]["numpy"], "machine": platform.machine(),
                  "results": results}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


def _write(path: Path, rows: int, text: bool) -> None:
    """Write the table block by block."""
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    with path.open("w", newline="") as file:
        file.write(",".join([f"f{j}" for j in range(COLUMNS - 1)] + ["target"]) + "\n")
        for start in range(0, rows, BLOCK_ROWS):
            count = min(BLOCK_ROWS, rows - start)
            features = rng.standard_normal((count, COLUMNS - 1))
            classes = rng.integers(0, len(LABELS), count)
            if not text:
                table = np.column_stack([features, classes])
                np.savetxt(file, table, delimiter=",", fmt=["%.6g"] * (COLUMNS - 1) + ["%d"])
                continue
            lines = io.StringIO()
            np.savetxt(lines, features, delimiter=",", fmt="%.6g")
            file.writelines(f"{line},{LABELS[c]}\n"
                            for line, c in zip(lines.getvalue().splitlines(), classes,
                                               strict=True))


def _run(reader: str, file: Path) -> dict:
    finished = subprocess.run(
        [sys.executable, __file__, "--child", reader, "--file", str(file)],
        capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        sys.exit(f"{reader} on {file.name} failed:\n{finished.stderr}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def _measure(reader: str, file: Path) -> dict:
    import numpy as np

    if not reader.startswith("loadtxt"):
        from bprop.data import csv as bprop_csv
    imports = resident_bytes()
    start = time.perf_counter()
    if reader == "loadtxt":
        result = np.loadtxt(file, delimiter=",", skiprows=1)
    elif reader == "loadtxt_numeric_columns":
        result = np.loadtxt(file, delimiter=",", skiprows=1, usecols=range(COLUMNS - 1))
    elif reader == "load_csv":
        result = bprop_csv.load_csv(file).X
    elif reader == "load_features":
        result = bprop_csv.load_features(file)
    else:
        raise SystemExit(f"unknown reader {reader!r}")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_bytes": peak_bytes(), "imports_bytes": imports,
            "shape": list(result.shape), "numpy": np.__version__}


if __name__ == "__main__":
    main()

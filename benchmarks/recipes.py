"""Run every recipe in recipes/ with three seeds and write the table of what they reach.

Each recipe is a config for ``bprop train --config recipes/NAME.toml``; this script runs it
as that command, once per seed, each in a process of its own, and reads the test accuracy the
run wrote to its ``metrics.json``. The test set is scored once, at the end of each run: the
recipes choose nothing on it (their validation split comes from the training set).

    python benchmarks/recipes.py --data-dir ../shared/data          # every recipe, 3 seeds
    python benchmarks/recipes.py --smoke --data-dir ../shared/data  # one epoch on 2000 samples

The table shows each recipe's mean test accuracy with its spread (lowest and highest of the
seeds), its mean wall time, its target and what it missed the target by, if it did, beside
the published figures of plain MLPs. Run it alone: other CPU-heavy work slows OpenBLAS down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"

#: each recipe's target: (least test accuracy, most minutes on this project's 2-core machine)
TARGETS = {"mnist-mlp": (0.986, 10), "mnist-mlp-augmented": (0.992, 45),
           "fashion-mnist-mlp": (0.905, 15)}

#: published test accuracies of plain MLPs, with their sources, shown beside the recipes
PUBLISHED = [
    ("MNIST", "784-800-10, cross-entropy", 0.984,
     "Simard, Steinkraus & Platt 2003, Best practices for convolutional neural networks"),
    ("MNIST", "3x1024 ReLU, dropout", 0.9875,
     "Srivastava et al. 2014, Dropout: a simple way to prevent neural networks from "
     "overfitting, table 2"),
    ("MNIST", "2x8192 ReLU, dropout and max-norm", 0.9905, "Srivastava et al. 2014, table 2"),
    ("MNIST", "784-800-10, elastic distortions", 0.993, "Simard, Steinkraus & Platt 2003"),
    ("MNIST", "deep MLP, deformed images", 0.9965,
     "Ciresan, Meier, Gambardella & Schmidhuber 2010, Deep big simple neural nets"),
    ("Fashion-MNIST", "MLP 256-128-100", 0.8833,
     "zalandoresearch/fashion-mnist's table of submitted results (untested by its authors); "
     "an MLP 256-128-64 at 90.0% was listed there until 2018"),
    ("Fashion-MNIST", "scikit-learn MLPClassifier", 0.871,
     "zalandoresearch/fashion-mnist's automatic scikit-learn benchmark"),
]


def run_recipe(path: Path, seed: int, out: Path, data_dir: str | None,
               extra: list[str]) -> dict:
    """``bprop train --config path --seed seed`` in a process of its own: the run's test
    scores and its wall time in seconds."""
    command = [sys.executable, "-m", "bprop", "train", "--config", str(path), "--seed",
               str(seed), "--out", str(out), "--quiet", *extra]
    # (BPROP_DATA rather than --data-dir: the system's folders, Debian's Fashion-MNIST
    # among them, are still looked in after it)
    env = {**os.environ, **({"BPROP_DATA": data_dir} if data_dir else {})}
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    seconds = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    return {"seed": seed, "seconds": seconds, "accuracy": metrics["test"]["accuracy"],
            "epochs": metrics["epochs"]}


def summarise(name: str, runs: list[dict]) -> dict:
    accuracies = [run["accuracy"] for run in runs]
    target, minutes = TARGETS.get(name, (None, None))
    mean = statistics.fmean(accuracies)
    mean_minutes = statistics.fmean(run["seconds"] for run in runs) / 60
    return {"recipe": name, "seeds": [run["seed"] for run in runs], "mean": mean,
            "lowest": min(accuracies), "highest": max(accuracies), "minutes": mean_minutes,
            "target": target, "target_minutes": minutes,
            "accuracy_missed_by": None if target is None else max(0.0, target - mean),
            "minutes_over_by": None if minutes is None else max(0.0, mean_minutes - minutes),
            "runs": runs}


def table(rows: list[dict]) -> str:
    lines = ["| recipe | test accuracy, mean (lowest-highest) | minutes per run | target | "
             "missed by |", "|---|---|---|---|---|"]
    for row in rows:
        target = (f"≥ {row['target']:.1%} in ≤ {row['target_minutes']} min"
                  if row["target"] is not None else "-")
        missed = []
        if row["accuracy_missed_by"]:
            missed.append(f"{row['accuracy_missed_by']:.2%} accuracy")
        if row["minutes_over_by"]:
            missed.append(f"{row['minutes_over_by']:.1f} min")
        lines.append(f"| {row['recipe']} | {row['mean']:.2%} ({row['lowest']:.2%}-"
                     f"{row['highest']:.2%}) | {row['minutes']:.1f} | {target} | "
                     f"{', '.join(missed) or 'met'} |")
    lines += ["", "| dataset | published plain MLP | test accuracy | source |",
              "|---|---|---|---|"]
    for dataset, model, accuracy, source in PUBLISHED:
        shown = f"{accuracy:.2%}" if isinstance(accuracy, float) else accuracy  # (a range)
        lines.append(f"| {dataset} | {model} | {shown} | {source} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default=None,
                        help="comma-separated recipe names (default: every recipes/*.toml)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data-dir", default=None,
                        help="the folder holding mnist/ and fashion-mnist/ (as BPROP_DATA; the "
                        "system's folders are looked in too)")
    parser.add_argument("--smoke", action="store_true",
                        help="one epoch on 2000 training samples, one seed: a check that every "
                        "recipe runs, not its accuracy")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    names = (args.recipes.split(",") if args.recipes
             else sorted(path.stem for path in RECIPES.glob("*.toml")))
    seeds = [0] if args.smoke else [int(s) for s in args.seeds.split(",")]
    extra = ["--epochs", "1", "--subset", "2000"] if args.smoke else []
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            path = RECIPES / f"{name}.toml"
            tomllib.loads(path.read_text())  # (a broken recipe fails here, by name)
            runs = [run_recipe(path, seed, Path(folder) / f"{name}-{seed}", args.data_dir,
                               extra) for seed in seeds]
            rows.append(summarise(name, runs))
            print(f"{name}: {rows[-1]['mean']:.2%} in {rows[-1]['minutes']:.1f} min per run",
                  file=sys.stderr, flush=True)
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}{' (smoke run)' if args.smoke else ''}\n")
    print(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

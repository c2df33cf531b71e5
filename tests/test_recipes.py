"""The recipes are valid configs of `bprop train`, and each runs (one epoch on a small subset,
a smoke test: the full runs are benchmarks/recipes.py's, recorded in benchmarks/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import load_script, real_mnist_dir

from bprop.cli import train

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "recipes").glob("*.toml"))


def recipes_benchmark():
    return load_script(ROOT / "benchmarks" / "recipes.py", "recipes_benchmark")


def test_there_are_recipes_and_each_has_a_target():
    names = {path.stem for path in RECIPES}
    assert {"mnist-mlp", "fashion-mnist-mlp"} <= names
    assert names <= set(recipes_benchmark().TARGETS)


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.stem)
def test_each_recipe_is_a_valid_config_that_keeps_a_validation_split(path):
    settings = {**train.DEFAULTS, **train.read_config(path)}
    train.check_settings(settings)
    assert settings["val_fraction"] > 0  # (choices are made on it, never on the test set)
    assert settings["dataset"] in ("mnist", "fashion-mnist")


def test_every_recipe_runs_one_epoch_on_a_subset(capsys):
    data = str(real_mnist_dir().parent)  # (the folder that holds mnist/ and fashion-mnist/)
    if any("fashion" in path.stem for path in RECIPES) and not any(
            (Path(folder) / "train-images-idx3-ubyte.gz").is_file() for folder in
            (Path(data) / "fashion-mnist", Path("/usr/share/datasets/fashion-mnist"))):
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    assert recipes_benchmark().main(["--smoke", "--data-dir", data]) == 0
    table = capsys.readouterr().out
    for path in RECIPES:
        row = next(line for line in table.splitlines() if line.startswith(f"| {path.stem} |"))
        accuracy = float(row.split("|")[2].split("%")[0]) / 100
        assert accuracy > 0.5, row  # (one epoch on 2000 samples already learns something)

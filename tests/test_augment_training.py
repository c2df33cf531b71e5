"""Augmentation in training: fit and bprop train augment each training batch (never the
validation data) from the model's generator, reproducibly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import real_mnist_dir

import bprop as bp
from bprop.backend.devices import stand_in_for_cuda
from bprop.cli import main
from bprop.data.augment import Augment


def images(n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 36)) < 0.3).astype(np.float64)  # (6x6 images)
    return X, (X[:, :18].sum(axis=1) > X[:, 18:].sum(axis=1)).astype(int)


def test_an_augmentation_that_changes_nothing_changes_nothing():
    X, y = images()
    plain, kept = (bp.mlp([36, 8, 2], seed=0, dtype="float64") for _ in range(2))
    plain.fit(X, y, loss="cross_entropy", epochs=3, batch_size=16)
    kept.fit(X, y, loss="cross_entropy", epochs=3, batch_size=16,
             augment=lambda batch, rng: batch)
    for name, value in plain.state_dict().items():
        np.testing.assert_array_equal(kept.state_dict()[name], value)


def test_each_training_batch_is_augmented_from_the_models_generator():
    X, y = images()
    model = bp.mlp([36, 8, 2], seed=0, dtype="float64")
    seen = []

    def record(batch, rng):
        seen.append((batch.shape, rng))
        return batch

    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=16, augment=record,
              validation_data=images(20, seed=1))
    assert [shape for shape, _ in seen] == [(16, 36)] * 8  # (training batches only)
    assert all(rng is model.rng for _, rng in seen)


def test_the_same_seed_gives_the_same_augmented_training():
    X, y = images()
    augment = Augment(shift=1, elastic=(2.0, 1.0), shape=(6, 6))
    runs = []
    for _ in range(2):
        model = bp.mlp([36, 8, 2], seed=3, dtype="float64")
        model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=16, augment=augment)
        runs.append(model.state_dict())
    plain = bp.mlp([36, 8, 2], seed=3, dtype="float64")
    plain.fit(X, y, loss="cross_entropy", epochs=2, batch_size=16)
    for name, value in runs[0].items():
        np.testing.assert_array_equal(runs[1][name], value)
    assert any(not np.array_equal(plain.state_dict()[n], v) for n, v in runs[0].items())


def test_augment_must_be_a_function_and_runs_on_the_cpu():
    X, y = images()
    with pytest.raises(TypeError, match="augment must be a function"):
        bp.mlp([36, 2], seed=0).fit(X, y, loss="cross_entropy", augment="shift")
    with stand_in_for_cuda():
        model = bp.mlp([36, 2], seed=0, device="cuda")
        with pytest.raises(ValueError, match="augmenting the training batches runs on the CPU"):
            model.fit(X, y, loss="cross_entropy", augment=Augment(shape=(6, 6)))


def test_bprop_train_augments_images_and_records_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist", "--data-dir", str(real_mnist_dir()), "--layers",
                 "784,32,10", "--epochs", "1",
                 "--subset", "1000", "--shift", "2", "--elastic-alpha", "34", "--quiet",
                 "--val-fraction", "0", "--out", str(out)]) == 0
    config = (out / "config.toml").read_text()
    assert "shift = 2" in config and "elastic_alpha = 34.0" in config
    assert json.loads((out / "metrics.json").read_text())["test"]["accuracy"] > 0.3


def test_bprop_train_refuses_augmenting_what_is_not_an_image(capsys):
    assert main(["train", "--dataset", "moons", "--shift", "2", "--epochs", "1"]) == 2
    assert "augmentation needs rows of 28x28 = 784 pixels, got 2 features" in \
        capsys.readouterr().err

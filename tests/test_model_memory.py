"""A model costs its size: its parameters are allocated once, in its dtype, and its gradients
when first needed. Measured with tracemalloc, which counts every array NumPy allocates (the
bytes asked for, whatever the processor or the operating system), at its peak."""

import tracemalloc

import numpy as np
import pytest

import bprop as bp

N = 1500  # a float32 Dense(N, N) holds 9 MB of weights: far above the bookkeeping's bytes


def weights_bytes(n=N, itemsize=4):
    return (n * n + n) * itemsize


def peak_bytes(action):
    """The most memory ``action()`` held at once, above what was held before it ran."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def one_pass(model):
    x = np.ones((8, model.n_inputs), model.dtype)
    out = model.forward(x, training=True)
    model.zero_grad()
    model.backward(np.ones_like(out), need_input_grad=False)


def test_a_new_layer_allocates_nothing_for_its_weights():
    assert peak_bytes(lambda: bp.Dense(20000, 20000)) < 100_000


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_building_a_model_allocates_its_parameters_once(dtype):
    itemsize = np.dtype(dtype).itemsize
    peak = peak_bytes(lambda: bp.Sequential([bp.Dense(N, N)], dtype=dtype, seed=0))
    # The buffer, and blocks of float64 draws of 512 KiB; before, a float64 draw of the whole
    # weight, its copy and a cast copy came on top (about 4 times the weights in float32).
    assert peak < weights_bytes(itemsize=itemsize) + 1.5 * 2**20


def test_the_gradients_come_with_the_first_backward_pass():
    model = bp.Sequential([bp.Dense(N, N)], dtype="float32", seed=0)
    assert model.parameters()[0]._home[0]._grads is None  # a model that predicts needs none
    model.predict(np.ones((4, N), np.float32))
    assert model.parameters()[0]._home[0]._grads is None
    assert peak_bytes(lambda: one_pass(model)) < weights_bytes() + 2**20


def test_loading_a_model_allocates_its_parameters_once(tmp_path):
    model = bp.Sequential([bp.Dense(N, N), bp.BatchNorm(N)], dtype="float32", seed=0)
    model.save(tmp_path / "model.npz")
    loaded = []
    peak = peak_bytes(lambda: loaded.append(bp.load(tmp_path / "model.npz")))
    # The buffer, and blocks of 1 MiB read from the file; before, every array read whole.
    assert peak < weights_bytes() + 6 * 4 * N + 3 * 2**20
    for a, b in zip(loaded[0].parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)


def test_weights_given_to_the_builder_or_a_new_layer_are_copied_once_in_their_dtype():
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((N, N)).astype(np.float32), np.zeros(N, np.float32)
    # bp.mlp(weights=...): nothing drawn, the arrays copied straight into the model's buffer
    peak = peak_bytes(lambda: bp.mlp([N, N], weights=[(W, b)], dtype="float32"))
    assert peak < weights_bytes() + 2**20

    def set_then_build():
        dense = bp.Dense(N, N)
        dense.weight = W          # kept in float32 until the model packs it: no float64 copy
        return bp.Sequential([dense], dtype="float32")

    assert peak_bytes(set_then_build) < 2 * weights_bytes() + 2**20
    model = set_then_build()
    np.testing.assert_array_equal(model.layers[0].weight, W)
    assert model.layers[0].weight.dtype == np.float32

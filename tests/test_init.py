"""Initial weights: drawn in blocks straight into the model's buffer, the same values as one
large draw, and nothing drawn for weights that are set or loaded instead."""

import numpy as np
import pytest

import bprop as bp
from bprop.nn import dense, init

# A weight of 300 x 517 has 155,100 elements: more than two blocks, none ending on a row.
N_IN, N_OUT = 300, 517


def one_large_draw(scheme, rng, shape):
    """The weights as Dense drew them before they were drawn in blocks."""
    n_in, n_out = shape
    if scheme == "he":
        return rng.normal(0.0, np.sqrt(2.0 / n_in), shape)
    if scheme == "xavier":
        limit = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-limit, limit, shape)
    if scheme == "lecun":
        return rng.normal(0.0, np.sqrt(1.0 / n_in), shape)
    if scheme == "normal":
        return rng.normal(0.0, 0.01, shape)
    if scheme == "uniform":
        return rng.uniform(-1.0, 1.0, shape)
    return np.zeros(shape)


def test_the_block_size_really_splits_the_test_weights():
    assert N_IN * N_OUT > 2 * init._BLOCK and init._BLOCK % N_OUT != 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scheme", init.INITS)
def test_drawing_in_blocks_gives_the_values_of_one_large_draw(scheme, dtype):
    weight = np.empty((N_IN, N_OUT), dtype)
    init.draw_weights(weight, scheme, np.random.default_rng(7))
    expected = one_large_draw(scheme, np.random.default_rng(7), (N_IN, N_OUT)).astype(dtype)
    np.testing.assert_array_equal(weight, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_seed_gives_a_model_the_weights_it_always_had(dtype):
    model = bp.Sequential([bp.Dense(N_IN, N_OUT), bp.ReLU(), bp.Dense(N_OUT, 3, init="xavier")],
                          seed=11, dtype=dtype)
    rng = np.random.default_rng(11)  # the layers draw in order from the model's generator
    first = one_large_draw("he", rng, (N_IN, N_OUT)).astype(dtype)
    second = one_large_draw("xavier", rng, (N_OUT, 3)).astype(dtype)
    np.testing.assert_array_equal(model.layers[0].weight, first)
    np.testing.assert_array_equal(model.layers[2].weight, second)
    assert not model.layers[0].bias.any()
    # The generator goes on from where the draws left it (shuffling, Dropout masks).
    assert model.rng.random() == rng.random()


def test_a_layer_built_on_its_own_draws_the_same_weights():
    layer = bp.Dense(N_IN, N_OUT, init="lecun").build(3, dtype="float32")
    expected = one_large_draw("lecun", np.random.default_rng(3), (N_IN, N_OUT))
    np.testing.assert_array_equal(layer.weight, expected.astype(np.float32))
    assert layer.weight.dtype == np.float32


@pytest.fixture
def draws(monkeypatch):
    """Counts the weights drawn, by the layers' one way of drawing them."""
    calls = []
    original = dense.draw_weights

    def counting(weight, scheme, rng):
        calls.append(weight.shape)
        original(weight, scheme, rng)

    monkeypatch.setattr(dense, "draw_weights", counting)
    return calls


def test_building_a_model_draws_each_weight_once(draws):
    bp.Sequential([bp.Dense(4, 3), bp.ReLU(), bp.Dense(3, 2)], seed=0)
    assert draws == [(4, 3), (3, 2)]


def test_nothing_is_drawn_for_weights_that_are_given(draws, tmp_path):
    given = bp.Dense(4, 3)
    given.weight = np.ones((4, 3))
    model = bp.Sequential([given, bp.Dense.from_weights(np.ones((3, 2)), bias=np.zeros(2))],
                          seed=0)
    assert draws == []
    np.testing.assert_array_equal(model.layers[1].weight, np.ones((3, 2)))
    # Nor for a model read from its file, nor for a copy in another dtype.
    bp.Sequential([bp.Dense(4, 3, init="zeros")], seed=0).save(tmp_path / "model.npz")
    bp.load(tmp_path / "model.npz").astype("float64")
    assert draws == []


def test_from_weights_keeps_the_dtype_of_the_weights_given():
    layer = bp.Dense.from_weights(np.ones((3, 2), np.float32), bias=[1.0, 2.0])
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    np.testing.assert_array_equal(layer.bias, [1.0, 2.0])
    assert bp.Dense.from_weights([[1, 2]]).weight.dtype == np.float64
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        bp.Dense.from_weights(np.ones((2, 2), np.float16))


def test_a_model_made_not_to_initialise_draws_nothing_and_holds_zeros(draws):
    model = bp.Sequential([bp.Dense(4, 3), bp.Dense(3, 2)], seed=0, initialise=False)
    assert draws == []
    assert not any(p.value.any() for p in model.parameters())
    # Its layers count as set: a copy in another dtype keeps their weights, it does not draw.
    model.layers[0].weight = np.full((4, 3), 0.5)
    np.testing.assert_array_equal(model.astype("float64").layers[0].weight, 0.5)
    assert draws == []

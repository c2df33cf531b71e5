"""bp.mlp: the one builder. It builds, layer for layer and weight for weight, the networks
that the command line, the estimators and compare wrote out by hand before it existed (the
reference recipes below are those hand-written builders), and refuses bad settings clearly."""

import numpy as np
import pytest

import bprop as bp
from bprop.cli import data as cli_data
from bprop.cli import teach, train
from bprop.tools import compare as comparison


def same_network(model, reference):
    """Layer types and configs, parameters and buffers, dtype and the generators' states."""
    assert [type(layer) for layer in model.layers] == [type(layer) for layer in reference.layers]
    assert [layer.get_config() for layer in model.layers] == \
        [layer.get_config() for layer in reference.layers]
    assert model.dtype == reference.dtype and model.seed == reference.seed
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype, name
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    # Nothing more (or less) was drawn: shuffling and Dropout masks will be the same too.
    assert model.rng.bit_generator.state == reference.rng.bit_generator.state
    return True


# -- the recipes of the four hand-written builders, as they were ----------------------------------
def train_recipe(sizes, activation, init, batch_norm, dropout, seed):
    """cli/train.py's build_model."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(bp.Dense(a, b, init=init))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(bp.BatchNorm(b))
            layers.append(bp.activation(activation))
            if dropout:
                layers.append(bp.Dropout(dropout))
    return bp.Sequential(layers, seed=seed)


def teach_recipe(sizes, hidden, output, seed):
    """cli/teach.py's small_network, before it sets its small biases."""
    stack = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        stack.append(bp.Dense(a, b, init="xavier"))
        if i < len(sizes) - 2:
            stack.append(bp.activation(hidden))
    if output != "none":
        stack.append(bp.activation(output))
    return bp.Sequential(stack, seed=seed, dtype="float64")


def glorot(sizes, activation, rng):
    """scikit-learn's initialisation, as the estimators and compare draw it."""
    factor = 2.0 if activation == "logistic" else 6.0
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = np.sqrt(factor / (n_in + n_out))
        weights.append((rng.uniform(-bound, bound, (n_in, n_out)),
                        rng.uniform(-bound, bound, n_out)))
    return weights


def estimator_recipe(sizes, activation, batch_norm, dropout, random_state, dtype):
    """estimators.py's _initialize."""
    names = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
    rng = np.random.default_rng(random_state)
    layers = []
    for i, (W, b) in enumerate(glorot(sizes, activation, rng)):
        dense = bp.Dense(*W.shape)
        dense.weight, dense.bias = W, b
        layers.append(dense)
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(bp.BatchNorm(W.shape[1]))
            layers.append(bp.activation(names[activation]))
            if dropout:
                layers.append(bp.Dropout(dropout))
    return bp.Sequential(layers, seed=rng.integers(2**31), dtype=dtype)


def compare_recipe(weights, activation, seed, dtype):
    """tools/compare.py's bprop peer."""
    layers = []
    for i, (W, b) in enumerate(weights):
        layers.append(bp.Dense.from_weights(W, b))
        if i < len(weights) - 1:
            layers.append(bp.activation({"logistic": "sigmoid"}.get(activation, activation)))
    return bp.Sequential(layers, seed=seed, dtype=dtype)


# -- the same networks ---------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [[2, 16, 2], [2, 8, 8, 3], [3, 1]])
@pytest.mark.parametrize("activation, init", [("relu", "he"), ("tanh", "xavier"),
                                              ("sigmoid", "lecun")])
@pytest.mark.parametrize("batch_norm, dropout", [(False, 0.0), (True, 0.0), (True, 0.25),
                                                 (False, 0.1)])
def test_the_command_lines_train_network(sizes, activation, init, batch_norm, dropout):
    model = bp.mlp(sizes, activation=activation, batch_norm=batch_norm, dropout=dropout,
                   init=init, seed=7)
    assert same_network(model, train_recipe(sizes, activation, init, batch_norm, dropout, 7))


def test_bprop_train_builds_it_through_mlp():
    data = cli_data.load("moons", seed=0)
    settings = dict(train.DEFAULTS, layers="2,8,8,2", batch_norm=True, dropout=0.2,
                    activation="tanh", init="xavier", seed=3)
    reference = train_recipe([2, 8, 8, 2], "tanh", "xavier", True, 0.2, 3)
    assert same_network(train.build_model(settings, data), reference)
    default = dict(train.DEFAULTS)  # no --layers: inputs, 32, outputs; relu, he, seed 0
    assert same_network(train.build_model(default, data),
                        train_recipe([2, 32, 2], "relu", "he", False, 0.0, 0))


@pytest.mark.parametrize("layers", ["2,3,1", "4,8,3", "2,5,5,1"])
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss, output, expected_output", [
    ("mse", None, "sigmoid"), ("bce", None, "sigmoid"), ("cross_entropy", None, "none"),
    ("mse", "identity", "identity"), ("mse", "none", "none"), ("bce", "tanh", "tanh")])
def test_the_teaching_commands_network(layers, hidden, loss, output, expected_output):
    sizes = [int(v) for v in layers.split(",")]
    model = teach.small_network(layers, hidden, loss, seed=3, output=output)
    reference = teach_recipe(sizes, hidden, expected_output, seed=3)
    rng = np.random.default_rng(3)  # small_network's small biases, drawn the same way
    for layer in reference.layers:
        if isinstance(layer, bp.Dense):
            layer.bias = rng.uniform(-0.2, 0.2, layer.n_outputs)
    assert same_network(model, reference)
    built = bp.mlp(sizes, activation=hidden, init="xavier", seed=3, dtype="float64",
                   output=None if expected_output == "none" else expected_output)
    assert [type(layer) for layer in built.layers] == [type(layer) for layer in model.layers]


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("batch_norm, dropout", [(False, 0.0), (True, 0.3)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_estimators_network(activation, batch_norm, dropout, dtype):
    sizes = [4, 6, 5, 3]
    reference = estimator_recipe(sizes, activation, batch_norm, dropout, 11, dtype)
    rng = np.random.default_rng(11)
    weights = glorot(sizes, activation, rng)
    names = {"logistic": "sigmoid"}
    model = bp.mlp(sizes, activation=names.get(activation, activation), batch_norm=batch_norm,
                   dropout=dropout, seed=rng.integers(2**31), dtype=dtype, weights=weights)
    assert same_network(model, reference)


@pytest.mark.parametrize("hidden", [(8,), (16, 8)])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compares_bprop_network(hidden, activation, dtype):
    settings = comparison.Settings(hidden=hidden, activation=activation, dtype=dtype, seed=5)
    weights = [(W.astype(dtype), b.astype(dtype))
               for W, b in comparison.initial_weights(settings, 64, 10)]
    reference = compare_recipe(weights, activation, seed=5, dtype=dtype)
    assert same_network(comparison.bprop_network(settings, weights), reference)


def test_the_same_network_trains_the_same_way():
    """Shuffling and Dropout masks come from the model's generator: equal after building,
    equal histories (bit for bit: the same arithmetic in the same order)."""
    X, y = bp.datasets.make_moons(120, noise=0.2, seed=0)
    histories = []
    for model in (bp.mlp([2, 16, 16, 2], batch_norm=True, dropout=0.2, seed=4),
                  train_recipe([2, 16, 16, 2], "relu", "he", True, 0.2, 4)):
        histories.append(model.fit(X, y, loss="softmax_cross_entropy",
                                   optimizer=bp.Adam(lr=0.01), epochs=3, batch_size=16).history)
    assert histories[0] == histories[1]


# -- what it builds ------------------------------------------------------------------------------
def test_layer_order_output_and_shapes():
    model = bp.mlp([5, 7, 6, 3], activation="tanh", output="softmax", batch_norm=True,
                   dropout=0.5, seed=0, dtype="float64")
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "BatchNorm", "Tanh", "Dropout", "Dense", "BatchNorm", "Tanh", "Dropout",
        "Dense", "Softmax"]
    assert (model.n_inputs, model.n_outputs, model.dtype) == (5, 3, np.dtype("float64"))
    assert [layer.p for layer in model.layers if isinstance(layer, bp.Dropout)] == [0.5, 0.5]
    out = model.forward(np.ones((4, 5)))
    assert out.shape == (4, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    assert [type(layer).__name__ for layer in bp.mlp([3, 2]).layers] == ["Dense"]


def test_a_linear_output_gives_logits_for_softmax_cross_entropy():
    X, y = bp.datasets.make_spirals(60, n_classes=3, noise=0.1, seed=0)
    model = bp.mlp([2, 32, 3], seed=0)
    assert isinstance(model.layers[-1], bp.Dense) and model.dtype == np.float32
    history = model.fit(X, y, loss="softmax_cross_entropy", optimizer=bp.Adam(lr=0.01),
                        epochs=30, batch_size=30)
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="takes logits"):
        bp.mlp([2, 4, 3], output="softmax").fit(X, y, loss="softmax_cross_entropy")


def test_init_none_is_denses_default_and_a_name_is_passed_on():
    assert [layer.init for layer in bp.mlp([2, 3, 1]).layers[::2]] == \
        [bp.Dense(2, 3).init] * 2
    zeros = bp.mlp([2, 3, 1], init="zeros", seed=0)
    assert all(not layer.weight.any() for layer in zeros.layers[::2])


def test_weights_are_used_as_given_and_nothing_is_drawn_for_them():
    W1, b1 = np.arange(6.0).reshape(2, 3), np.array([0.5, -0.5, 1.0])
    W2, b2 = np.ones((3, 1)), np.array([2.0])
    model = bp.mlp([2, 3, 1], seed=9, dtype="float64", weights=[(W1, b1), (W2, b2)])
    np.testing.assert_array_equal(model.layers[0].weight, W1)
    np.testing.assert_array_equal(model.layers[2].bias, b2)
    assert model.rng.bit_generator.state == np.random.default_rng(9).bit_generator.state
    x = np.array([[1.0, -1.0]])
    np.testing.assert_allclose(model.forward(x), np.maximum(x @ W1 + b1, 0) @ W2 + b2)


def test_the_seed_decides_the_weights():
    def weights(seed):
        return bp.mlp([3, 4, 2], seed=seed).state_dict()["0.weight"]

    np.testing.assert_array_equal(weights(1), weights(1))
    assert not np.array_equal(weights(1), weights(2))


# -- bad settings: one clear error each ------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, message", [
    ({"sizes": [3]}, ValueError, r"at least two layer sizes.*got \[3\]"),
    ({"sizes": []}, ValueError, "at least two layer sizes"),
    ({"sizes": 3}, TypeError, "sizes must be a list"),
    ({"sizes": "2,3,1"}, TypeError, "sizes must be a list"),
    ({"sizes": [2, 0, 1]}, ValueError, r"positive integers\), got \[2, 0, 1\]"),
    ({"sizes": [2, 3.5, 1]}, ValueError, "positive integers"),
    ({"sizes": [2, True, 1]}, ValueError, "positive integers"),
    ({"activation": "gelu"}, ValueError, "unknown activation 'gelu'; choose one of 'identity'"),
    ({"activation": None}, ValueError, "unknown activation None"),
    ({"output": "linear"}, ValueError, "unknown output 'linear'; choose one of .*'softmax'"),
    ({"output": "none"}, ValueError, "output=None for a linear output"),
    ({"init": "glorot"}, ValueError, "unknown init 'glorot'; choose one of 'he', 'xavier'"),
    ({"dropout": 1.0}, ValueError, r"dropout must be a probability in \[0, 1\), got 1.0"),
    ({"dropout": -0.1}, ValueError, "dropout must be a probability"),
    ({"dropout": float("nan")}, ValueError, "dropout must be a probability"),
    ({"dropout": True}, ValueError, "dropout must be a probability"),
    ({"dropout": "0.5"}, ValueError, "dropout must be a probability"),
    ({"batch_norm": "yes"}, TypeError, "batch_norm must be True or False, got 'yes'"),
    ({"seed": -1}, ValueError, "seed must be None or a non-negative integer"),
    ({"dtype": "float16"}, ValueError, "dtype must be 'float32' or 'float64'"),
    ({"weights": [(np.zeros((2, 3)), np.zeros(3))]}, ValueError,
     r"weights must be a list of 2 \(W, b\) pair"),
    ({"weights": [(np.zeros((2, 3)), np.zeros(3)), np.zeros((3, 1))]}, ValueError,
     r"weights\[1\] must be a pair \(W, b\)"),
    ({"weights": [(np.zeros((3, 2)), np.zeros(3)), (np.zeros((3, 1)), np.zeros(1))]},
     ValueError, r"weights\[0\]: W has shape \(3, 2\); the Dense layer from 2 to 3 needs \(2, 3\)"),
    ({"weights": [(np.zeros((2, 3)), np.zeros(3)), (np.zeros((3, 1)), np.zeros(2))]},
     ValueError, r"weights\[1\]: b has shape \(2,\)"),
    ({"weights": [(np.zeros((2, 3)), np.zeros(3)), (np.zeros((3, 1)), np.zeros(1))],
      "init": "he"}, ValueError, "give init .* or weights .*, not both"),
    ({"weights": [(np.full((2, 3), np.nan), np.zeros(3)), (np.zeros((3, 1)), np.zeros(1))]},
     ValueError, "must be finite"),
])
def test_bad_settings_are_refused_with_one_clear_error(kwargs, error, message):
    kwargs = {"sizes": [2, 3, 1], **kwargs}
    with pytest.raises(error, match=message):
        bp.mlp(**kwargs)


def test_mlp_is_exported():
    assert "mlp" in bp.__all__ and bp.mlp is bp.nn.builder.mlp

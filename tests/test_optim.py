import numpy as np
import pytest

import bprop as bp
from bprop.nn.parameter import Parameter, flat_views, pack


def test_sgd_step_by_hand():
    p = Parameter([[1.0, -2.0]])
    p.grad[:] = [[0.5, 0.25]]
    bp.SGD(lr=0.2).step([p])
    np.testing.assert_allclose(p.value, [[0.9, -2.05]])


def test_sgd_momentum_by_hand():
    # v <- mu v + g; theta <- theta - lr v   (PyTorch's definition)
    p = Parameter([1.0])
    opt = bp.SGD(lr=0.1, momentum=0.9)
    grads = [1.0, 2.0, -1.0]
    theta, velocity = 1.0, 0.0
    for g in grads:
        p.grad[:] = g
        opt.step([p])
        velocity = 0.9 * velocity + g
        theta -= 0.1 * velocity
        assert p.value[0] == pytest.approx(theta, rel=1e-15)
    assert theta == pytest.approx(1.0 - 0.1 * 1 - 0.1 * 2.9 - 0.1 * 1.61)


def test_momentum_state_survives_across_fit_calls():
    X = np.linspace(-1, 1, 8).reshape(-1, 1)
    y = 3 * X.ravel()

    def train(calls):
        model = bp.Sequential([bp.Dense(1, 1)], seed=0, dtype="float64")
        opt = bp.SGD(lr=0.05, momentum=0.9)
        for epochs in calls:
            model.fit(X, y, loss="mse", optimizer=opt, epochs=epochs, batch_size=None,
                      shuffle=False)
        return model.layers[0].weight.copy()

    np.testing.assert_array_equal(train([3, 2]), train([5]))


def test_one_step_updates_the_whole_model_through_one_flat_buffer():
    model = bp.Sequential([bp.Dense(3, 4), bp.ReLU(), bp.Dense(4, 2)], seed=0)
    values, grads = flat_views(model.parameters())
    assert values.size == 3 * 4 + 4 + 4 * 2 + 2
    for p in model.parameters():
        assert np.shares_memory(p.value, values) and np.shares_memory(p.grad, grads)
    before = [p.value.copy() for p in model.parameters()]
    grads[:] = 1.0
    bp.SGD(lr=0.5).step(model.parameters())
    for p, old in zip(model.parameters(), before, strict=True):
        np.testing.assert_allclose(p.value, old - 0.5)


def test_parameters_outside_a_buffer_are_packed_and_keep_their_values():
    a, b = Parameter(np.ones((2, 2))), Parameter(np.full(3, 2.0))
    values, grads = flat_views([a, b])
    np.testing.assert_array_equal(values, [1, 1, 1, 1, 2, 2, 2])
    values += 1
    np.testing.assert_array_equal(a.value, np.full((2, 2), 2.0))
    # The second call finds them already laid out and returns views of the same buffer.
    values_again, _ = flat_views([a, b])
    assert values_again.base is values.base


def test_a_subset_of_a_models_parameters_is_stepped_in_place():
    model = bp.Sequential([bp.Dense(2, 2), bp.Dense(2, 1)], seed=0)
    first, second = model.layers
    buffer = first.params["weight"]._home[0]  # the model's one buffer
    untouched = first.weight.copy()
    second.params["weight"].grad[:] = 1.0
    bp.SGD(lr=1.0).step(second.parameters())
    assert second.params["weight"]._home[0] is buffer  # not moved out of the model's buffer
    np.testing.assert_array_equal(first.weight, untouched)


def test_pack_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match="mixed dtypes"):
        pack([Parameter(np.zeros(2, np.float32)), Parameter(np.zeros(2))])


def test_optimizer_errors():
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        bp.SGD(lr=0)
    with pytest.raises(ValueError, match="momentum must be in"):
        bp.SGD(lr=0.1, momentum=1.0)
    with pytest.raises(TypeError, match="expected Parameter objects"):
        bp.SGD(lr=0.1).step([np.zeros(3)])
    with pytest.raises(ValueError, match="no parameters"):
        bp.SGD(lr=0.1).step([])


def test_optimizer_forgets_the_state_of_parameters_that_are_gone():
    import gc

    opt = bp.SGD(lr=0.1, momentum=0.9)
    for _ in range(3):
        model = bp.Sequential([bp.Dense(2, 2)], seed=0)
        model.parameters()[0].grad[:] = 1.0
        opt.step(model.parameters())
    del model
    gc.collect()
    assert len(opt._states) == 0

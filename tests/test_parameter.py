"""Parameter: a value and its gradient, allocated when first needed, and the flat buffer."""

import copy
import pickle

import numpy as np
import pytest

import bprop as bp
from bprop.nn.parameter import Parameter, flat_views, pack


def test_a_parameter_of_zeros_takes_memory_only_when_needed():
    param = Parameter.zeros((3, 2), decay=False)
    assert param._value is None and param._grad is None
    assert (param.shape, param.size, param.dtype, param.decay) == ((3, 2), 6, np.float64, False)
    param.astype("float32")  # only the label changes
    assert param._value is None and param.dtype == np.float32
    np.testing.assert_array_equal(param.value, np.zeros((3, 2), np.float32))
    assert param._grad is None
    np.testing.assert_array_equal(param.grad, np.zeros((3, 2), np.float32))


def test_setting_a_value_copies_checks_and_allocates_in_the_parameter_s_dtype():
    param = Parameter.zeros((2,), "float32")
    given = np.array([1.5, -2.0])
    param.value = given
    assert param.value.dtype == np.float32 and param.value is not given
    given[0] = 7.0
    np.testing.assert_array_equal(param.value, [1.5, -2.0])
    with pytest.raises(ValueError, match=r"shape \(2,\) to an array of shape \(3,\)"):
        param.value = [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="must be finite"):
        param.value = [1.0, np.inf]
    with pytest.raises(TypeError, match="must be numbers"):
        param.value = ["a", "b"]
    np.testing.assert_array_equal(param.value, [1.5, -2.0])  # a refused value changes nothing


@pytest.mark.parametrize("allocated", [False, True])
def test_copies_and_pickles_keep_values_gradients_and_laziness(allocated):
    param = Parameter.zeros((2, 3), "float32", decay=False)
    if allocated:
        param.value = np.arange(6.0).reshape(2, 3)
        param.grad[...] = 1.0
    for clone in (copy.deepcopy(param), pickle.loads(pickle.dumps(param))):
        assert (clone.shape, clone.dtype, clone.decay) == ((2, 3), np.float32, False)
        assert (clone._value is None, clone._grad is None) == (not allocated, not allocated)
        np.testing.assert_array_equal(clone.value, param.value)
        np.testing.assert_array_equal(clone.grad, param.grad)
        assert clone.value is not param.value


def test_a_parameter_pickled_before_gradients_were_lazy_loads():
    param = Parameter.__new__(Parameter)
    param.__setstate__({"value": np.ones(3), "grad": np.array([0.0, 2.0, 0.0]), "decay": True})
    np.testing.assert_array_equal(param.grad, [0.0, 2.0, 0.0])
    param.__setstate__({"value": np.ones(3), "grad": np.zeros(3), "decay": True})
    assert param._grad is None and not param.grad.any()


def test_packing_casts_into_one_buffer_and_leaves_unset_values_zero():
    drawn = Parameter(np.arange(4.0))
    unset = Parameter.zeros((2, 2))
    trained = Parameter([1.0, 2.0])
    trained.grad[...] = [3.0, 4.0]
    buffer = pack([drawn, unset, trained], "float32")
    np.testing.assert_array_equal(buffer.values, [0, 1, 2, 3, 0, 0, 0, 0, 1, 2])
    assert buffer.values.dtype == np.float32 and drawn.dtype == np.float32
    assert all(p._home[0] is buffer for p in (drawn, unset, trained))
    assert drawn._grad is None  # a zero gradient is not copied, and allocated when needed
    np.testing.assert_array_equal(buffer.grads, [0, 0, 0, 0, 0, 0, 0, 0, 3, 4])
    values, grads = flat_views([drawn, unset, trained])
    assert values.base is buffer.values and grads.base is buffer.grads
    grads[:] = 5.0  # the views are the parameters' arrays
    np.testing.assert_array_equal(unset.grad, np.full((2, 2), 5.0, np.float32))
    with pytest.raises(TypeError, match="mixed dtypes"):
        pack([Parameter([1.0]), Parameter(np.ones(1, np.float32))])


def test_a_model_s_copies_own_their_memory_and_keep_their_weights():
    model = bp.Sequential([bp.Dense(3, 2), bp.BatchNorm(2)], seed=0)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model)),
                  model.astype("float64")):
        for a, b in zip(clone.parameters(), model.parameters(), strict=True):
            np.testing.assert_array_equal(a.value, b.value)
            assert not np.shares_memory(a.value, b.value)
    wide = model.astype("float64")
    assert {p.dtype for p in wide.parameters()} == {np.dtype("float64")}
    assert len({id(p._home[0]) for p in wide.parameters()}) == 1  # one buffer again

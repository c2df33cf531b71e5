"""The CPU stand-in for CuPy (bprop.backend.standin): it refuses implicit conversion to NumPy,
computes exactly as NumPy does, keeps views as views, and counts host-device transfers."""

import copy
import operator
import pickle

import numpy as np
import pytest

from bprop.backend import standin as xp


@pytest.fixture
def host(rng):
    """A float64 (3, 4) array of values in (0.1, 1.1), on the host."""
    return rng.random((3, 4)) + 0.1


def to_host(value):
    """NumPy's view of a stand-in result (arrays through .get(), tuples item by item)."""
    if isinstance(value, tuple):
        return tuple(to_host(item) for item in value)
    assert isinstance(value, xp.ndarray), f"expected a stand-in array, got {type(value)}"
    return value.get()


def assert_same(device_result, host_result):
    """Equal values, dtype and shape, bit for bit."""
    if isinstance(host_result, tuple):
        assert len(device_result) == len(host_result)
        for d, h in zip(device_result, host_result, strict=True):
            assert_same(d, h)
        return
    got, want = to_host(device_result), np.asarray(host_result)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# --- refusing NumPy ---------------------------------------------------------------------------
def test_asarray_from_numpy_raises_cupys_message(host):
    x = xp.asarray(host)
    with pytest.raises(TypeError) as caught:
        np.asarray(x)
    assert str(caught.value) == ("Implicit conversion to a NumPy array is not allowed. "
                                 "Please use `.get()` to construct a NumPy array explicitly.")


@pytest.mark.parametrize("call, names", [
    (lambda x: np.exp(x), ("numpy.exp", "xp.exp")),
    (lambda x: np.add.reduce(x), ("numpy.add.reduce", "xp.add.reduce")),
    (lambda x: np.concatenate([x, x]), ("numpy.concatenate", "xp.concatenate")),
    (lambda x: np.linalg.norm(x), ("numpy.linalg.norm", "xp.linalg.norm")),
])
def test_numpy_functions_refuse_device_arrays_and_name_themselves(host, call, names):
    with pytest.raises(TypeError) as caught:
        call(xp.asarray(host))
    for name in names:
        assert name in str(caught.value)


@pytest.mark.parametrize("mix", [
    lambda x, h: x + h,
    lambda x, h: h + x,
    lambda x, h: x * h[0],           # a row of a NumPy array is a NumPy array still
    lambda x, h: operator.iadd(x, h),
    lambda x, h: x @ h.T,
    lambda x, h: x < h,
    lambda x, h: xp.exp(h),
    lambda x, h: xp.maximum(x, h),
    lambda x, h: xp.concatenate([x, h]),
    lambda x, h: xp.add(x, 1.0, out=h),
    lambda x, h: xp.copyto(x, h),
    lambda x, h: x.dot(h.T),
    lambda x, h: x.__setitem__(0, h[0]),
    lambda x, h: x.__setitem__(0, list(h[0])),
    lambda x, h: x[np.array([0, 1])],
    lambda x, h: x[[0, 1]],
    lambda x, h: x[h > 0.5],
])
def test_mixing_with_host_data_raises(host, mix):
    x = xp.asarray(host)
    with pytest.raises(TypeError, match="Unsupported type|stand-in device array"):
        mix(x, host.copy())
    np.testing.assert_array_equal(x.get(), host)  # and nothing was written


# --- the same arithmetic as NumPy -------------------------------------------------------------
BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
          operator.mod, operator.pow, operator.eq, operator.ne, operator.lt, operator.le,
          operator.gt, operator.ge, divmod]
BITWISE = [operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift]


@pytest.mark.parametrize("op", BINARY)
def test_binary_operators_equal_numpys(host, op):
    other = host[::-1, ::-1] + 0.5
    x, y = xp.asarray(host), xp.asarray(other)
    assert_same(op(x, y), op(host, other))
    assert_same(op(x, 1.5), op(host, 1.5))                  # a Python scalar: reflected too
    assert_same(op(2.5, x), op(2.5, host))
    assert_same(op(x, np.float32(3.0)), op(host, np.float32(3.0)))


@pytest.mark.parametrize("op", BINARY)
def test_numpy_scalars_on_the_left_compute_on_the_device(host, op):
    for scalar in (np.float32(2.0), np.float64(0.5), np.int64(3)):
        assert_same(op(scalar, xp.asarray(host)), op(scalar, host))


@pytest.mark.parametrize("op", BITWISE)
def test_bitwise_operators_equal_numpys(rng, op):
    a, b = rng.integers(0, 60, (3, 4)), rng.integers(0, 5, (3, 4))
    assert_same(op(xp.asarray(a), xp.asarray(b)), op(a, b))
    assert_same(op(7, xp.asarray(b)), op(7, b))
    assert_same(~xp.asarray(a), ~a)


def test_matmul_and_unary_operators_equal_numpys(host):
    x = xp.asarray(host)
    assert_same(x @ x.T, host @ host.T)
    assert_same(-x, -host)
    assert_same(+x, +host)
    assert_same(abs(x - 0.6), abs(host - 0.6))


@pytest.mark.parametrize("iop, op", [
    (operator.iadd, operator.add), (operator.isub, operator.sub), (operator.imul, operator.mul),
    (operator.itruediv, operator.truediv), (operator.ifloordiv, operator.floordiv),
    (operator.imod, operator.mod), (operator.ipow, operator.pow),
])
def test_inplace_operators_write_into_the_array(host, iop, op):
    other = host[::-1] + 0.5
    x = xp.asarray(host)
    row = x[1]                                    # a view, to see the write through it
    result = iop(x, xp.asarray(other))
    assert result is x
    assert_same(x, op(host, other))
    assert_same(row, op(host, other)[1])
    assert iop(x, 2.0) is x
    assert_same(x, op(op(host, other), 2.0))


def test_inplace_matmul_and_bitwise(rng):
    a = rng.random((3, 3))
    x = xp.asarray(a)
    x @= xp.asarray(a)
    assert_same(x, a @ a)
    n = rng.integers(0, 100, 5)
    m = xp.asarray(n)
    m &= 12
    m |= 1
    m ^= 3
    assert_same(m, ((n & 12) | 1) ^ 3)


@pytest.mark.parametrize("name, args, kwargs", [
    ("sum", (), {"axis": 0}), ("sum", (), {}), ("prod", (), {"axis": 1}), ("max", (), {}),
    ("min", (1,), {}), ("mean", (), {"axis": 1, "keepdims": True}), ("var", (), {"ddof": 1}),
    ("std", (), {}), ("argmax", (), {}), ("argmin", (), {"axis": 0}), ("any", (), {}),
    ("all", (), {"axis": 1}), ("reshape", (4, 3), {}), ("reshape", ((2, -1),), {}),
    ("ravel", (), {}), ("flatten", (), {}), ("astype", (np.float32,), {}), ("copy", (), {}),
    ("clip", (0.3, 0.7), {}), ("transpose", (), {}), ("transpose", (1, 0), {}),
    ("swapaxes", (0, 1), {}), ("round", (2,), {}), ("cumsum", (), {"axis": 1}),
    ("repeat", (2,), {"axis": 0}), ("view", (np.int64,), {}), ("nonzero", (), {}),
    ("argsort", (), {"axis": 1}), ("take", (3,), {}),
])
def test_methods_equal_numpys(host, name, args, kwargs):
    host = np.where(host > 0.8, 0.0, host)  # some zeros, for nonzero and all
    x = xp.asarray(host)
    assert_same(getattr(x, name)(*args, **kwargs), getattr(host, name)(*args, **kwargs))


def test_methods_taking_arrays_and_squeeze(host):
    x = xp.asarray(host)
    indices = np.array([2, 0, 5])
    assert_same(x.take(xp.asarray(indices)), host.take(indices))
    assert_same(x.dot(x.T), host.dot(host.T))
    assert_same(x[None, :, None].squeeze(), host)
    assert x.fill(0.25) is None
    assert_same(x, np.full_like(host, 0.25))


def both(host_args):
    """Each NumPy array among the arguments as a stand-in array (lists item by item)."""
    def device(value):
        if isinstance(value, np.ndarray):
            return xp.asarray(value)
        return [device(v) for v in value] if isinstance(value, list) else value
    return [device(value) for value in host_args]


@pytest.mark.parametrize("name, make_args", [
    ("zeros", lambda h: [(2, 3)]), ("ones", lambda h: [4]), ("empty_like", lambda h: [h]),
    ("zeros_like", lambda h: [h]), ("ones_like", lambda h: [h]), ("full", lambda h: [3, 2.5]),
    ("full_like", lambda h: [h, 7]), ("arange", lambda h: [1, 9, 2]),
    ("concatenate", lambda h: [[h, h]]), ("stack", lambda h: [[h, h], 1]),
    ("where", lambda h: [h > 0.5, h, 0.0]), ("maximum", lambda h: [h, 0.5]),
    ("minimum", lambda h: [h, h[::-1]]), ("exp", lambda h: [h]), ("log", lambda h: [h]),
    ("log1p", lambda h: [h]), ("expm1", lambda h: [h]), ("sqrt", lambda h: [h]),
    ("tanh", lambda h: [h]), ("abs", lambda h: [h - 0.5]), ("sign", lambda h: [h - 0.5]),
    ("clip", lambda h: [h, 0.2, 0.9]), ("matmul", lambda h: [h, h.T]), ("dot", lambda h: [h, h.T]),
    ("multiply", lambda h: [h, 3]), ("add", lambda h: [h, h]), ("subtract", lambda h: [1, h]),
    ("divide", lambda h: [h, 7]), ("negative", lambda h: [h]), ("reciprocal", lambda h: [h]),
    ("square", lambda h: [h]), ("isfinite", lambda h: [np.where(h > 0.5, np.inf, h)]),
    ("isnan", lambda h: [h - h]), ("sum", lambda h: [h]), ("mean", lambda h: [h, 0]),
    ("max", lambda h: [h]), ("min", lambda h: [h, 1]), ("argmax", lambda h: [h, 1]),
    ("all", lambda h: [h > 0.2]), ("any", lambda h: [h > 1.0]), ("take", lambda h: [h, 3]),
    ("array_equal", lambda h: [h, h]), ("allclose", lambda h: [h, h + 1e-12]),
    ("einsum", lambda h: ["ij,kj->ik", h, h]), ("round", lambda h: [h, 1]),
    ("logical_and", lambda h: [h > 0.3, h < 0.8]), ("logical_or", lambda h: [h > 0.8, h < 0.3]),
    ("logical_not", lambda h: [h > 0.5]), ("greater", lambda h: [h, 0.5]),
    ("less", lambda h: [h, 0.5]), ("equal", lambda h: [h, h]), ("sort", lambda h: [h]),
    ("argsort", lambda h: [h, 0]), ("cumsum", lambda h: [h]), ("nonzero", lambda h: [h > 0.5]),
])
def test_module_functions_equal_numpys(host, name, make_args):
    host_args = make_args(host)
    want = getattr(np, name)(*host_args)
    got = getattr(xp, name)(*both(host_args))
    if name == "empty_like":
        assert got.shape == want.shape and got.dtype == want.dtype
    else:
        assert_same(got, want)


def test_ufunc_methods_work_on_device_arrays(host):
    x = xp.asarray(host)
    assert_same(xp.add.reduce(x, axis=1), np.add.reduce(host, axis=1))
    assert_same(xp.multiply.outer(x[0], x[1]), np.multiply.outer(host[0], host[1]))
    counts, labels = np.zeros(3), np.array([0, 2, 2, 1, 2])
    device_counts = xp.asarray(counts)
    np.add.at(counts, labels, 1)
    assert xp.add.at(device_counts, xp.asarray(labels), 1) is None
    assert_same(device_counts, counts)


def test_module_attributes():
    assert xp.exp is xp.exp and xp.add is xp.add
    assert xp.exp.__name__ == "exp" and xp.exp.__doc__ == np.exp.__doc__
    assert xp.float32 is np.float32 and xp.intp is np.intp and xp.bool_ is np.bool_
    assert xp.finfo is np.finfo and xp.iinfo is np.iinfo and xp.dtype is np.dtype
    assert xp.errstate is np.errstate
    assert xp.newaxis is None and xp.inf == np.inf and np.isnan(xp.nan) and xp.pi == np.pi
    assert xp.issubdtype(xp.zeros(2, xp.float32).dtype, xp.floating)
    assert xp.result_type(xp.zeros(2, xp.float32), 1.0) == np.float32
    assert xp.StandinArray is xp.ndarray and isinstance(xp.zeros(1), xp.ndarray)
    with pytest.raises(AttributeError):
        xp.no_such_function  # noqa: B018
    assert "zeros" in dir(xp) and "count_transfers" in dir(xp)


# --- views share memory -----------------------------------------------------------------------
def test_slices_and_single_elements_are_views(host):
    x = xp.asarray(host)
    tail = x[1:]
    tail[...] = 0
    element = x[0, 2]
    element[...] = 5.0                        # a 0-d view, as in CuPy (NumPy: a scalar)
    column = x.T[3]
    column += 1.0
    want = host.copy()
    want[1:] = 0
    want[0, 2] = 5.0
    want[:, 3] += 1.0
    assert_same(x, want)


def test_reshape_of_a_flat_buffer_is_a_view():
    """As bprop keeps parameters: weights and biases are views into one flat buffer."""
    buffer = xp.zeros(10)
    weights, biases = buffer[:6].reshape(2, 3), buffer[6:8]
    weights -= 1.0
    biases[...] = xp.arange(2.0)
    xp.multiply(weights, 2.0, out=weights)
    assert_same(buffer, np.array([-2.0] * 6 + [0.0, 1.0, 0.0, 0.0]))
    assert weights.base is not None and buffer.base is None
    assert xp.shares_memory(weights.base, buffer)


def test_out_returns_the_same_stand_in(host):
    x, out = xp.asarray(host), xp.zeros((3, 4))
    assert xp.exp(x, out=out) is out
    assert xp.add(x, x, out) is out                            # positional out as well
    assert x.sum(axis=0, out=out[0]) is not None
    summed = xp.zeros(4)
    assert x.sum(axis=0, out=summed) is summed
    assert_same(out[1:], host[1:] + host[1:])
    assert_same(summed, host.sum(axis=0))
    assert x.clip(0.3, 0.6, out=x) is x
    assert_same(x, host.clip(0.3, 0.6))


def test_copyto_with_where_writes_only_where_true(host):
    destination, mask = xp.zeros((3, 4)), host > 0.5
    view = destination[:2]
    assert xp.copyto(destination, xp.asarray(host), where=xp.asarray(mask)) is None
    assert_same(destination, np.where(mask, host, 0.0))
    assert_same(view, np.where(mask, host, 0.0)[:2])


def test_indexing_with_device_keys_equals_numpys(host):
    x = xp.asarray(host)
    rows, mask = np.array([2, 0]), host > 0.5
    for key in [1, -1, slice(None, None, 2), ..., None, (1, 2), (..., 1), (None, 0, slice(1, 3)),
                (slice(None), np.newaxis)]:
        assert_same(x[key], np.asarray(host[key]))
    assert_same(x[xp.asarray(rows)], host[rows])
    assert_same(x[xp.asarray(mask)], host[mask])
    assert_same(x[xp.asarray(rows), 1:3], host[rows, 1:3])
    x[xp.asarray(mask)] = 0.0
    x[0, xp.asarray(np.array([1, 3]))] = xp.asarray(np.array([7.0, 8.0]))
    x[2] = np.float32(0.5)
    want = host.copy()
    want[mask] = 0.0
    want[0, [1, 3]] = [7.0, 8.0]
    want[2] = 0.5
    assert_same(x, want)


def test_reductions_and_elements_are_0d_device_arrays(host):
    x = xp.asarray(host)
    for result in [x.sum(), x.max(), x.mean(), x.argmax(), xp.sum(x), xp.mean(x), x[0, 0],
                   x[1][2], (x > 0.5).any(), xp.max(x)]:
        assert isinstance(result, xp.ndarray) and result.shape == () and result.ndim == 0
    assert x.sum().get() == host.sum()


def test_len_iteration_and_hash(host):
    x = xp.asarray(host)
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3 and all(isinstance(row, xp.ndarray) for row in rows)
    rows[2][...] = 0.0                                          # rows are views
    assert_same(x[2], np.zeros(4))
    assert [element.shape for element in x[0]] == [()] * 4
    with pytest.raises(TypeError):
        iter(x[0, 0])
    with pytest.raises(TypeError):
        len(x[0, 0])
    with pytest.raises(TypeError):
        hash(x)


def test_properties(host):
    x = xp.asarray(host.astype(np.float32))
    assert (x.shape, x.dtype, x.ndim, x.size, x.itemsize, x.nbytes) == (
        (3, 4), np.float32, 2, 12, 4, 48)
    assert x.strides == (16, 4) and x.flags.c_contiguous and not x.T.flags.c_contiguous
    assert_same(x.T, host.astype(np.float32).T)


# --- counted transfers ------------------------------------------------------------------------
def test_asarray_of_host_data_counts_one_transfer_to_the_device(host):
    with xp.count_transfers() as counts:
        x = xp.asarray(host)
    assert (counts.to_device, counts.bytes_to_device, counts.to_host) == (1, host.nbytes, 0)
    host[0, 0] = -1.0                                       # a copy: the host data moves on
    assert x[0, 0].item() != -1.0
    with xp.count_transfers() as counts:
        xp.asarray([1.0, 2.0], dtype=np.float32)
        xp.array(3)
        xp.asarray(np.float32(2.0))
    assert (counts.to_device, counts.bytes_to_device) == (3, 8 + np.array(3).nbytes + 4)


def test_device_data_given_to_asarray_or_array_does_not_move(host):
    x = xp.asarray(host)
    with xp.count_transfers() as counts:
        same = xp.asarray(x)
        cast = xp.asarray(x, dtype=np.float32)
        copied = xp.array(x)
        uncopied = xp.array(x, copy=False)
    assert (counts.to_device, counts.to_host) == (0, 0)
    assert same is x and uncopied is x and copied is not x and cast.dtype == np.float32
    copied[...] = 0.0
    assert x.sum().get() == host.sum()


WHOLE, ELEMENT = (lambda h: h.nbytes), (lambda h: h.itemsize)


@pytest.mark.parametrize("convert, moved", [
    (lambda x: x.get(), WHOLE), (lambda x: x.tolist(), WHOLE), (lambda x: xp.asnumpy(x), WHOLE),
    (lambda x: pickle.dumps(x), WHOLE), (lambda x: x[1, 1].item(), ELEMENT),
    (lambda x: float(x[0, 0]), ELEMENT), (lambda x: int(x[0, 0]), ELEMENT),
    (lambda x: bool(x[0, 0]), ELEMENT), (lambda x: complex(x[0, 0]), ELEMENT),
    (lambda x: f"{x[0, 0]:.3f}", ELEMENT), (lambda x: x[0, 0] > 0.5 and 1, lambda h: 1),
    (lambda x: operator.index(x.argmax()), lambda h: np.dtype(np.intp).itemsize),
])
def test_each_copy_to_the_host_counts_once(host, convert, moved):
    x = xp.asarray(host)
    with xp.count_transfers() as counts:
        convert(x)
    assert (counts.to_host, counts.bytes_to_host, counts.to_device) == (1, moved(host), 0)


def test_host_results_hold_the_values(host):
    x = xp.asarray(host)
    assert x.tolist() == host.tolist()
    assert x[1, 2].item() == host[1, 2] and float(x[1, 2]) == float(host[1, 2])
    assert f"{x[2, 3]:.4f}" == f"{host[2, 3]:.4f}"
    assert operator.index(x.argmax()) == host.argmax()
    assert range(10)[xp.asarray(np.intp(4))] == 4
    np.testing.assert_array_equal(xp.asnumpy(x), host)
    assert isinstance(xp.asnumpy(x), np.ndarray)


def test_asnumpy_of_host_data_is_not_counted(host):
    with xp.count_transfers() as counts:
        assert xp.asnumpy(host) is host
    assert counts.to_host == 0


def test_computing_on_the_device_moves_nothing(host):
    x = xp.asarray(host)
    with xp.count_transfers() as counts:
        y = xp.tanh(x @ x.T) * 2.0 - 1.0
        y += 1
        z = y.sum(axis=0) / y.max()
        z = xp.where(z > 0.5, z, 0.0)[1:]
        copy.deepcopy(z)
        copy.copy(z)
        repr(z)
        str(z)
        f"{z}"
        rng = xp.random.default_rng(0)
        rng.standard_normal((3, 3))
        rng.integers(0, 10, 5)
    assert (counts.to_device, counts.to_host, counts.bytes_to_device, counts.bytes_to_host) == (
        0, 0, 0, 0)


def test_count_transfers_resets_on_entry(host):
    x = xp.asarray(host)
    x.get()
    assert xp.transfers.to_host >= 1
    with xp.count_transfers() as counts:
        assert counts is xp.transfers
        assert (counts.to_device, counts.to_host, counts.bytes_to_host) == (0, 0, 0)
        x.get()
        x.get()
    assert (counts.to_host, counts.bytes_to_host) == (2, 2 * host.nbytes)
    xp.transfers.reset()
    assert xp.transfers.to_host == 0


@pytest.mark.parametrize("convert", [bool, float, int, lambda a: a.item(), operator.index])
def test_conversions_of_several_elements_fail_as_in_numpy(convert):
    host = np.arange(3)
    with pytest.raises((TypeError, ValueError)) as numpy_error:
        convert(host)
    with xp.count_transfers() as counts, pytest.raises(type(numpy_error.value)) as error:
        convert(xp.asarray(host))
    assert str(error.value) == str(numpy_error.value)
    assert counts.to_host == 0


def test_index_refuses_float_arrays():
    with pytest.raises(TypeError):
        operator.index(xp.asarray(2.0))


def test_repr_shows_the_values_marked_as_a_stand_in(host):
    x = xp.asarray(host)
    assert repr(x).startswith("standin.array(") and str(x) == repr(x)
    assert repr(x).replace("standin.", "").replace(" ", "") == repr(host).replace(" ", "")


# --- copies and pickling ----------------------------------------------------------------------
@pytest.mark.parametrize("duplicate", [copy.deepcopy, copy.copy,
                                       lambda value: pickle.loads(pickle.dumps(value))])
def test_copies_and_pickles_are_independent_stand_ins(host, duplicate):
    x = xp.asarray(host.astype(np.float32))
    state = {"weights": x, "step": 3}
    twin = duplicate(state) if duplicate is not copy.copy else {"weights": copy.copy(x)}
    assert isinstance(twin["weights"], xp.ndarray) and twin["weights"] is not x
    assert_same(twin["weights"], host.astype(np.float32))
    twin["weights"][...] = 0.0
    assert_same(x, host.astype(np.float32))


def test_pickling_goes_through_the_host_as_cupys_does(host):
    x = xp.asarray(host)
    with xp.count_transfers() as counts:
        data = pickle.dumps(x)
    assert (counts.to_host, counts.bytes_to_host, counts.to_device) == (1, host.nbytes, 0)
    with xp.count_transfers() as counts:
        pickle.loads(data)
    assert (counts.to_device, counts.bytes_to_device, counts.to_host) == (1, host.nbytes, 0)


# --- random numbers ---------------------------------------------------------------------------
@pytest.mark.parametrize("method, args, kwargs", [
    ("random", (5,), {}), ("random", ((2, 3),), {"dtype": np.float32}),
    ("standard_normal", ((2, 3),), {"dtype": np.float32}), ("normal", (1.0, 2.0, 4), {}),
    ("uniform", (-1.0, 1.0, 3), {}), ("integers", (0, 10, 6), {}), ("permutation", (8,), {}),
    ("binomial", (1, 0.3, 5), {}), ("choice", (10, 3), {"replace": False}),
])
def test_seeded_draws_are_numpys(method, args, kwargs):
    device, numpy_rng = xp.random.default_rng(42), np.random.default_rng(42)
    for _ in range(2):                                   # the second draw continues the stream
        assert_same(getattr(device, method)(*args, **kwargs),
                    getattr(numpy_rng, method)(*args, **kwargs))


def test_random_takes_device_arrays_and_shuffles_in_place(host):
    device, numpy_rng = xp.random.default_rng(3), np.random.default_rng(3)
    assert_same(device.normal(xp.asarray(host), 0.1), numpy_rng.normal(host, 0.1))
    x, h = xp.asarray(host), host.copy()
    assert device.shuffle(x) is None
    numpy_rng.shuffle(h)
    assert_same(x, h)
    out = xp.zeros(4)
    assert device.random(out=out) is out
    assert_same(out, numpy_rng.random(out=np.zeros(4)))
    assert xp.random.default_rng(device) is device


# --- the array module -------------------------------------------------------------------------
def test_get_array_module(host):
    x = xp.asarray(host)
    assert xp.get_array_module(x) is xp
    assert xp.get_array_module(host, 1.0, x) is xp
    assert xp.get_array_module(host) is np and xp.get_array_module() is np
    xm = xp.get_array_module(x)
    assert_same(xm.maximum(x, 0.5), np.maximum(host, 0.5))


def test_a_recording_runs_nothing_and_a_replay_runs_it_on_the_same_arrays():
    x, y = xp.zeros(3), xp.ones(3)
    stream = xp.cuda.Stream(non_blocking=True)
    stream.begin_capture()
    x += y
    total = (x * 2).sum()
    graph = stream.end_capture()
    assert x.get().tolist() == [0.0, 0.0, 0.0]  # nothing ran
    graph.launch()
    graph.launch()
    assert x.get().tolist() == [2.0, 2.0, 2.0] and float(total) == 12.0


def test_a_transfer_while_recording_is_refused():
    x = xp.ones(2)
    stream = xp.cuda.Stream()
    stream.begin_capture()
    try:
        with pytest.raises(RuntimeError, match="while a CUDA graph is being recorded"):
            float(x.sum())
        with pytest.raises(RuntimeError, match="while a CUDA graph is being recorded"):
            xp.asarray(np.ones(2))
    finally:
        stream.end_capture()
    assert float(x.sum()) == 2.0


def test_a_numpy_scalar_on_the_left_is_recorded_too():
    x, y = xp.ones(2), xp.zeros(2)
    stream = xp.cuda.Stream()
    stream.begin_capture()
    y += np.float64(2.0) * x  # (NumPy hands this to the stand-in's __array_ufunc__)
    graph = stream.end_capture()
    x[...] = 5.0
    graph.launch()
    assert y.get().tolist() == [10.0, 10.0]


def test_operations_sized_by_values_are_refused_while_recording():
    x = xp.asarray(np.array([1.0, -1.0, 2.0]))
    stream = xp.cuda.Stream()
    stream.begin_capture()
    try:
        for attempt in (lambda: x[x > 0], lambda: x.nonzero(), lambda: xp.flatnonzero(x)):
            with pytest.raises(RuntimeError, match="while a CUDA graph is being recorded"):
                attempt()
    finally:
        stream.end_capture()
    assert x[x > 0].get().tolist() == [1.0, 2.0]  # (outside a recording, as NumPy)

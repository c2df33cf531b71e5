"""The autograd engine: every operation against finite differences, the graph walk, errors."""

import numpy as np
import pytest

from bprop import autograd as ag
from bprop.autograd import Tensor
from bprop.tools.gradcheck import relative_error


def numeric_gradient(f, arrays, index, step=1e-6):
    """Central differences of the scalar f(*arrays) with respect to arrays[index]."""
    array = arrays[index]
    grad = np.zeros_like(array)
    for k in np.ndindex(array.shape):
        original = array[k]
        array[k] = original + step
        plus = f(*arrays)
        array[k] = original - step
        minus = f(*arrays)
        array[k] = original
        grad[k] = (plus - minus) / (2 * step)
    return grad


def check(operation, *shapes, positive=False, seed=0, away_from_zero=False):
    """Compare autograd's gradient of sum(operation(*inputs) * R) with finite differences."""
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(0.5, 2.0, s) if positive else rng.standard_normal(s) for s in shapes]
    if away_from_zero:
        arrays = [a + 0.1 * np.sign(a) for a in arrays]
    projection = rng.standard_normal(np.shape(operation(*[Tensor(a) for a in arrays]).data))

    def f(*values):
        return float((operation(*[Tensor(v) for v in values]).data * projection).sum())

    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    (operation(*tensors) * projection).sum().backward()
    for i, tensor in enumerate(tensors):
        assert tensor.grad.shape == arrays[i].shape
        error = relative_error(tensor.grad, numeric_gradient(f, arrays, i))
        assert error < 1e-6, (i, error)


@pytest.mark.parametrize("operation, shapes", [
    (lambda a, b: a + b, [(3, 4), (3, 4)]),
    (lambda a, b: a - b, [(3, 4), (4,)]),           # broadcasting a row
    (lambda a, b: a * b, [(3, 1), (1, 4)]),         # both sides broadcast
    (lambda a, b: a / b, [(2, 3), ()]),             # a scalar
    (lambda a, b: b - a * 2.5 + 1, [(2, 3), (2, 3)]),
    (lambda a: -a, [(5,)]),
    (lambda a, b: a @ b, [(3, 4), (4, 2)]),
    (lambda a, b: a @ b, [(4,), (4, 2)]),
    (lambda a, b: a @ b, [(3, 4), (4,)]),
    (lambda a, b: a @ b, [(4,), (4,)]),
    (lambda a: a.T, [(2, 3)]),
    (lambda a: a.transpose(1, 2, 0), [(2, 3, 4)]),
    (lambda a: a.reshape(3, 2), [(2, 3)]),
    (lambda a: a[1:, ::2], [(3, 4)]),
    (lambda a: a[np.array([0, 2, 0])], [(3, 2)]),   # a row picked twice
    (lambda a: a.sum(), [(3, 4)]),
    (lambda a: a.sum(axis=0), [(3, 4)]),
    (lambda a: a.mean(axis=1, keepdims=True), [(3, 4)]),
    (lambda a: a.max(axis=1), [(3, 4)]),
    (lambda a: a.max(), [(3, 4)]),
    (lambda a: a.softmax(axis=1), [(3, 4)]),
    (lambda a: a.log_softmax(axis=1), [(3, 4)]),
    (lambda a: a.log_softmax(axis=0), [(3, 4)]),
    (lambda a: a.exp(), [(2, 3)]),
    (lambda a: a.tanh(), [(2, 3)]),
    (lambda a: a.sigmoid(), [(2, 3)]),
])
def test_operations_match_finite_differences(operation, shapes):
    check(operation, *shapes)


@pytest.mark.parametrize("operation", [
    lambda a: a.log(), lambda a: a ** 2.5, lambda a: a ** -1, lambda a, b: a ** b,
    lambda a: 2.0 ** a,
], ids=["log", "pow", "reciprocal", "pow-tensor", "rpow"])
def test_operations_on_positive_inputs(operation):
    shapes = [(2, 3)] * operation.__code__.co_argcount
    check(operation, *shapes, positive=True)


@pytest.mark.parametrize("operation", [
    lambda a: a.relu(), lambda a: a.leaky_relu(0.2), lambda a: a.abs(), lambda a: a.softplus()])
def test_kinked_operations_away_from_the_kink(operation):
    check(operation, (4, 3), away_from_zero=True)


@pytest.mark.parametrize("loss", [
    lambda p, t: ag.mse(p, t),
    lambda p, t: ag.mse(p, t, reduction="sum"),
    lambda p, t: ag.binary_cross_entropy(p.sigmoid(), (t > 0) * 1.0),
    lambda p, t: ag.binary_cross_entropy(p, (t > 0) * 1.0, from_logits=True),
])
def test_losses_match_finite_differences(loss):
    rng = np.random.default_rng(1)
    target = rng.standard_normal((4, 2))
    check(lambda p: loss(p, target), (4, 2))


def test_softmax_cross_entropy_with_labels_and_one_hot():
    labels = np.array([0, 2, 1, 2])
    check(lambda z: ag.softmax_cross_entropy(z, labels), (4, 3))
    check(lambda z: ag.softmax_cross_entropy(z, np.eye(3)[labels]), (4, 3))


def test_a_shared_node_accumulates_its_gradient():
    x = Tensor(3.0, requires_grad=True)
    y = x * x + x          # x used three times
    y.backward()
    assert x.grad == 2 * 3.0 + 1
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    c = (b * b).sum() + b.sum()   # b used twice
    c.backward()
    np.testing.assert_allclose(a.grad, 2 * (2 * b.data) + 2)


def test_backward_twice_gives_exactly_twice_the_leaf_gradient_then_zero_grad():
    x = Tensor([1.0, -2.0], requires_grad=True)
    hidden = (x * 3).tanh()
    out = (hidden * hidden).sum()
    out.backward()
    once, hidden_grad = x.grad.copy(), hidden.grad.copy()
    out.backward()
    np.testing.assert_allclose(x.grad, 2 * once)          # leaves accumulate, as PyTorch's
    np.testing.assert_allclose(hidden.grad, hidden_grad)  # intermediates are not compounded
    x.zero_grad()
    out.backward()
    np.testing.assert_allclose(x.grad, once)


def test_matches_pytorch_on_a_small_network():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X, W1, W2 = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    ours = [Tensor(a, requires_grad=True) for a in (X, W1, W2)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (X, W1, W2)]
    ((ours[0] @ ours[1]).tanh() @ ours[2]).sigmoid().log().mean().backward()
    torch.log(torch.sigmoid(torch.tanh(theirs[0] @ theirs[1]) @ theirs[2])).mean().backward()
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_a_graph_100000_nodes_deep_does_not_overflow_the_stack():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0
    del y  # freeing the chain must not recurse either


def test_no_grad_records_nothing():
    w = Tensor(np.ones(3), requires_grad=True)
    with ag.no_grad():
        y = (w * 2).sum()
    assert not y.requires_grad and y.parents == () and y.op == ""
    assert (w * 2).requires_grad  # recording is back on after the block
    with pytest.raises(RuntimeError, match="does not depend on any tensor with requires_grad"):
        y.backward()


def test_constants_get_no_gradient():
    x, c = Tensor(2.0, requires_grad=True), Tensor(5.0)
    (x * c).backward()
    assert x.grad == 5.0 and c.grad is None


def test_numpy_arrays_on_the_left_defer_to_the_tensor():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_bad_input_gets_clear_errors():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(2, 3\) do not fit"):
        x @ x
    with pytest.raises(ValueError, match="@ takes 1-D or 2-D operands"):
        Tensor(np.ones((2, 2, 2))) @ x
    with pytest.raises(ValueError, match=r"needs a seed gradient of that shape"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"seed gradient has shape \(3,\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(TypeError, match="cannot combine a Tensor with str"):
        x + "1"
    with pytest.raises(TypeError, match="cannot combine a Tensor with dict"):
        x * {}
    with pytest.raises(TypeError, match="holds real numbers"):
        Tensor(["a"])
    with pytest.raises(ValueError, match="must match"):
        ag.mse(Tensor(np.ones((2, 2))), np.ones(3))


def test_an_explicit_seed_for_a_non_scalar():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).backward(np.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(x.grad, [2.0, 0.0, 12.0])


def test_the_tutorial_graph_renders_readably():
    x = Tensor(1.0, requires_grad=True, name="x")
    y = Tensor(2.0, requires_grad=True, name="y")
    w = Tensor(4.0, requires_grad=True, name="w")
    a = x + y
    a.name = "a"
    z = a * w
    z.name = "z"
    z.backward()
    text = ag.render_text(z)
    assert text.splitlines()[0] == "z = a * w    value 12  grad 1"
    assert "x    value 1  grad 4" in text and "w    value 4  grad 3" in text
    dot = ag.to_dot(z, title="z = (x + y) * w")
    assert dot.startswith("digraph computation {") and dot.rstrip().endswith("}")
    assert dot.count("shape=ellipse") == 2                 # the two operations
    assert dot.count("shape=record") == 5                  # x, y, a, w, z
    assert "grad 3" in dot and 'label="+"' in dot and 'label="*"' in dot


def test_a_shared_node_is_drawn_once():
    x = Tensor(2.0, requires_grad=True, name="x")
    y = x * x
    y.name = "y"
    text = ag.render_text(y)
    assert text.count("x    value 2") == 1 and "(shown above)" in text


def test_softplus_is_smooth_at_zero_and_never_overflows():
    z = Tensor([0.0, -1000.0, 1000.0], requires_grad=True)
    out = z.softplus()
    np.testing.assert_allclose(out.data, [np.log(2), 0.0, 1000.0])
    out.sum().backward()
    np.testing.assert_allclose(z.grad, [0.5, 0.0, 1.0])


def test_transpose_with_negative_or_tuple_axes():
    check(lambda a: a.transpose(-1, 0, 1), (2, 3, 4))
    check(lambda a: a.transpose((1, 0, 2)), (2, 3, 4))
    with pytest.raises(ValueError, match="not a permutation"):
        Tensor(np.ones((2, 3))).transpose(0, 0)


def test_float32_stays_float32_with_plain_numbers():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    for result in (x * 2.0, x + 1, x ** 2, x / 2, 2.0 - x, ag.mse(x.reshape(3, 1), [1, 2, 3])):
        assert result.dtype == np.float32
    (x * 2.0).sum().backward()
    assert x.grad.dtype == np.float32


def test_changing_data_after_use_is_caught():
    p, q = Tensor(2.0, requires_grad=True), Tensor(3.0, requires_grad=True)
    z = p * q
    p.data -= 1
    with pytest.raises(RuntimeError, match="was changed"):
        z.backward()
    array = np.ones(2)
    t = Tensor(array)
    array[0] = 7
    assert t.data[0] == 1  # a Tensor copies what it is made from


@pytest.mark.parametrize("target, message", [
    (np.array([0, -1]), "must lie in 0..2"),
    (np.array([0.0, 1.7]), "whole numbers"),
    (np.array([0, 1, 2]), "3 labels but logits have 2 rows"),
    (np.ones((2, 1)), "labels of shape \\(2,\\) or rows of shape \\(2, 3\\)"),
    (np.ones((2, 3)), "probability distribution"),
])
def test_softmax_cross_entropy_checks_its_target(target, message):
    with pytest.raises(ValueError, match=message):
        ag.softmax_cross_entropy(Tensor(np.zeros((2, 3))), target)


def test_numpy_interop_is_explicit():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError):
        np.exp(x)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x)
    assert bool(Tensor(1.0)) and not bool(Tensor(0.0))
    with pytest.raises(TypeError, match="not a Tensor"):
        x[Tensor([0])]
    with pytest.raises(TypeError, match="real numbers"):
        Tensor(1 + 2j)
    with pytest.raises(ValueError, match=r"shapes \(2,\) and \(3,\) cannot be broadcast"):
        x + np.ones(3)


def test_power_gradient_of_the_exponent_at_a_zero_base():
    base, exponent = Tensor([0.0, 2.0], requires_grad=True), Tensor(2.0, requires_grad=True)
    (base ** exponent).sum().backward()
    assert exponent.grad == pytest.approx(4 * np.log(2))  # the zero base contributes 0


def test_deep_graphs_render_within_a_depth_limit_and_dot_is_escaped():
    x = Tensor(1.0, requires_grad=True, name='a"b|{c}')
    y = x
    for _ in range(200):
        y = y * 1.0
    text = ag.render_text(y, max_depth=10)
    assert len(text.splitlines()) < 40 and "deeper than 10 levels" in text
    dot = ag.to_dot(x * 2.0, title='say "hi"')
    assert 'a\\"b\\|\\{c\\}' in dot and 'say \\"hi\\"' in dot

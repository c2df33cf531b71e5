"""Optimizers against their published update rules (by hand) and against PyTorch."""

import numpy as np
import pytest

import bprop as bp
from bprop.nn.parameter import Parameter


def run_steps(optimizer, grads, start=(1.0, -2.0), decay=True):
    p = Parameter(np.array(start), decay=decay)
    for g in grads:
        p.grad[:] = g
        optimizer.step([p])
    return p.value


GRADS = [np.array([0.5, -1.0]), np.array([0.2, 0.3]), np.array([-0.4, 0.1])]


def test_adam_first_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    theta, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(run_steps(bp.Adam(lr=lr), GRADS), theta, rtol=1e-14)
    # The first Adam step moves every coordinate by about lr, whatever the gradient's size.
    np.testing.assert_allclose(np.abs(run_steps(bp.Adam(lr=lr), GRADS[:1]) - [1.0, -2.0]),
                               lr, rtol=1e-6)


def test_adam_with_l2_weight_decay_by_hand():
    lr, wd = 0.01, 0.1
    theta, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(GRADS, start=1):
        g = g + wd * theta
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        theta = theta - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(run_steps(bp.Adam(lr=lr, weight_decay=wd), GRADS), theta,
                               rtol=1e-14)


def test_adamw_decouples_weight_decay_by_hand():
    lr, wd = 0.01, 0.1
    theta, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(GRADS, start=1):
        theta = theta * (1 - lr * wd)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        theta = theta - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(run_steps(bp.AdamW(lr=lr, weight_decay=wd), GRADS), theta,
                               rtol=1e-14)
    # Parameters exempt from decay (biases) see plain Adam.
    np.testing.assert_allclose(run_steps(bp.AdamW(lr=lr, weight_decay=wd), GRADS, decay=False),
                               run_steps(bp.Adam(lr=lr), GRADS), rtol=1e-14)


def test_sgd_nesterov_and_weight_decay_by_hand():
    lr, mu, wd = 0.1, 0.9, 0.01
    theta, velocity = np.array([1.0, -2.0]), np.zeros(2)
    for g in GRADS:
        g = g + wd * theta
        velocity = mu * velocity + g
        theta = theta - lr * (g + mu * velocity)
    optimizer = bp.SGD(lr=lr, momentum=mu, nesterov=True, weight_decay=wd)
    np.testing.assert_allclose(run_steps(optimizer, GRADS), theta, rtol=1e-14)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_rmsprop_by_hand(centered, momentum):
    lr, alpha, eps = 0.01, 0.99, 1e-8
    theta, square, mean, buffer = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2), np.zeros(2)
    for g in GRADS:
        square = alpha * square + (1 - alpha) * g**2
        mean = alpha * mean + (1 - alpha) * g
        denominator = np.sqrt(square - mean**2 if centered else square) + eps
        if momentum:
            buffer = momentum * buffer + g / denominator
            theta = theta - lr * buffer
        else:
            theta = theta - lr * g / denominator
    optimizer = bp.RMSProp(lr=lr, momentum=momentum, centered=centered)
    np.testing.assert_allclose(run_steps(optimizer, GRADS), theta, rtol=1e-13)


def test_weight_decay_skips_biases():
    weights, bias = Parameter([1.0]), Parameter([1.0], decay=False)
    bp.SGD(lr=0.5, weight_decay=0.1).step([weights, bias])  # zero gradients: decay only
    assert weights.value[0] == pytest.approx(1 - 0.5 * 0.1) and bias.value[0] == 1.0


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        bp.SGD(lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas must be two numbers"):
        bp.Adam(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="alpha must be in"):
        bp.RMSProp(alpha=1.5)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        bp.AdamW(weight_decay=-1)


@pytest.mark.parametrize("name, cls", [("sgd", bp.SGD), ("Adam", bp.Adam), ("ADAMW", bp.AdamW),
                                       ("rmsprop", bp.RMSProp)])
def test_get_optimizer_creates_one_by_name_in_any_case(name, cls):
    optimizer = bp.get_optimizer(name, lr=0.25, weight_decay=0.5)
    assert type(optimizer) is cls
    assert (optimizer.lr, optimizer.weight_decay) == (0.25, 0.5)
    assert type(bp.get_optimizer(name)) is cls  # with the class's defaults
    assert bp.get_optimizer(cls, lr=0.5).lr == 0.5
    assert bp.optim.get_optimizer is bp.get_optimizer


def test_get_optimizer_passes_each_setting_on():
    optimizer = bp.get_optimizer("rmsprop", lr=0.1, alpha=0.9, momentum=0.5, centered=True)
    assert optimizer.get_config() == bp.RMSProp(lr=0.1, alpha=0.9, momentum=0.5,
                                                centered=True).get_config()
    assert bp.get_optimizer("adam", betas=[0.8, 0.9]).betas == (0.8, 0.9)


def test_get_optimizer_returns_an_optimizer_as_it_is():
    optimizer = bp.SGD(lr=0.1)
    assert bp.get_optimizer(optimizer) is optimizer
    with pytest.raises(TypeError, match=r"settings \(lr\) are for an optimizer created by name"):
        bp.get_optimizer(optimizer, lr=0.2)


def test_get_optimizer_errors_name_the_choices():
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'; choose one of 'sgd', "
                                         "'adam', 'adamw', 'rmsprop'"):
        bp.get_optimizer("adagrad")
    with pytest.raises(TypeError, match="SGD takes no 'betas'; its settings are lr, momentum, "
                                        "nesterov, weight_decay"):
        bp.get_optimizer("sgd", lr=0.1, betas=(0.9, 0.99))
    with pytest.raises(TypeError, match="optimizer must be an Optimizer or one of 'sgd'"):
        bp.get_optimizer(3)
    with pytest.raises(ValueError, match="momentum must be in"):  # the class's own checks
        bp.get_optimizer("sgd", momentum=1.5)


# -- against PyTorch -----------------------------------------------------------------------------

def torch_twin(model):
    """A torch.nn.Sequential with the same layers and the same float64 weights."""
    torch = pytest.importorskip("torch")
    modules = []
    for layer in model.layers:
        if isinstance(layer, bp.Dense):
            linear = torch.nn.Linear(layer.n_inputs, layer.n_outputs, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.weight.T.copy()))
                linear.bias.copy_(torch.from_numpy(layer.bias.copy()))
            modules.append(linear)
        else:
            modules.append({bp.Tanh: torch.nn.Tanh, bp.ReLU: torch.nn.ReLU,
                            bp.Sigmoid: torch.nn.Sigmoid}[type(layer)]())
    return torch.nn.Sequential(*modules)


def param_groups(twin, weight_decay):
    weights = [p for name, p in twin.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in twin.named_parameters() if name.endswith("bias")]
    return [{"params": weights, "weight_decay": weight_decay},
            {"params": biases, "weight_decay": 0.0}]


OPTIMIZER_PAIRS = {
    "adam": (lambda: bp.Adam(lr=0.01),
             lambda torch, groups: torch.optim.Adam(groups, lr=0.01)),
    "adam-l2": (lambda: bp.Adam(lr=0.01, weight_decay=0.05),
                lambda torch, groups: torch.optim.Adam(groups, lr=0.01)),
    "adamw": (lambda: bp.AdamW(lr=0.01, weight_decay=0.1),
              lambda torch, groups: torch.optim.AdamW(groups, lr=0.01)),
    "sgd-nesterov": (lambda: bp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
                     lambda torch, groups: torch.optim.SGD(groups, lr=0.05, momentum=0.9,
                                                           nesterov=True)),
    "rmsprop": (lambda: bp.RMSProp(lr=0.005, momentum=0.5, centered=True),
                lambda torch, groups: torch.optim.RMSprop(groups, lr=0.005, momentum=0.5,
                                                          centered=True)),
}


@pytest.mark.parametrize("name", OPTIMIZER_PAIRS)
def test_twenty_steps_match_pytorch(name):
    torch = pytest.importorskip("torch")
    make_ours, make_theirs = OPTIMIZER_PAIRS[name]
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 3)), rng.integers(0, 3, 16)
    model = bp.Sequential([bp.Dense(3, 5), bp.Tanh(), bp.Dense(5, 3)], seed=1, dtype="float64")
    twin = torch_twin(model)
    ours = make_ours()
    theirs = make_theirs(torch, param_groups(twin, ours.weight_decay))
    loss = bp.SoftmaxCrossEntropy()
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(20):
        loss.forward(model.forward(X, training=True), y)
        model.zero_grad()
        model.backward(loss.backward())
        ours.step(model.parameters())
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(twin(X_t), y_t).backward()
        theirs.step()
    for ours_layer, theirs_layer in zip(model.layers[::2], twin[::2], strict=True):
        np.testing.assert_allclose(ours_layer.weight, theirs_layer.weight.detach().numpy().T,
                                   rtol=0, atol=1e-10)
        np.testing.assert_allclose(ours_layer.bias, theirs_layer.bias.detach().numpy(),
                                   rtol=0, atol=1e-10)


@pytest.mark.parametrize("make, name", [
    (lambda: bp.SGD(lr=0.1 + 1j), "lr"), (lambda: bp.SGD(lr=0.1, momentum=0.5j), "momentum"),
    (lambda: bp.Adam(betas=(0.9 + 0j, 0.999)), "betas"), (lambda: bp.Adam(eps=1e-8j), "eps"),
    (lambda: bp.RMSProp(alpha=0.99j), "alpha"), (lambda: bp.L2(0.1j), "strength"),
    (lambda: bp.AdamW(weight_decay=np.complex64(0.01)), "weight_decay"),
])
def test_complex_settings_are_a_type_error_naming_them(make, name):
    # (float() of a complex NumPy scalar would keep only its real part, with a warning)
    with pytest.raises(TypeError, match=f"^{name} holds complex numbers"):
        make()

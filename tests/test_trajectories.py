"""Proof of equal mathematics: from identical initial weights, 20 full-batch steps of plain SGD
(no momentum, no penalty, no shuffling) leave bprop, scikit-learn and PyTorch with the same
weights to 1e-8 (float64); likewise Adam against PyTorch.

The mappings where the peers define a quantity differently:

* scikit-learn's regression loss is *half* the mean squared error, so its gradient is half of
  ``bp.MSE``'s (and PyTorch's ``MSELoss``): the same step needs bprop's learning rate halved.
  ``bp.MLPRegressor`` uses scikit-learn's definition and needs no mapping.
* scikit-learn's ``alpha`` adds ``alpha / (2 m) * sum(W**2)`` per batch of ``m`` samples: it
  is ``bp.L2(alpha / m)``.
* the classifiers' losses agree as they are: softmax cross-entropy averaged over samples, and
  for two classes one logistic output (``bp.BinaryCrossEntropy(from_logits=True)``).
"""

import warnings

import numpy as np
import pytest

import bprop as bp

sklearn_nn = pytest.importorskip("sklearn.neural_network")
STEPS, LR = 20, 0.1


def data(task, rng):
    X = rng.standard_normal((24, 4))
    if task == "regression":
        return X, X @ rng.standard_normal(4) + 0.5
    if task == "binary":
        return X, (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, np.argmax(X[:, :3], axis=1)


def initial_weights(n_in, hidden, n_out, rng):
    sizes = [n_in, hidden, n_out]
    return [(rng.uniform(-0.5, 0.5, (a, b)), rng.uniform(-0.5, 0.5, b))
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)]


def bprop_core(task, activation, weights, X, y, optimizer="sgd"):
    """The core Sequential, with the documented loss mapping."""
    (W1, b1), (W2, b2) = weights
    model = bp.Sequential([bp.Dense.from_weights(W1, b1), bp.activation(activation),
                           bp.Dense.from_weights(W2, b2)], dtype="float64")
    loss = {"regression": bp.MSE(), "binary": bp.BinaryCrossEntropy(from_logits=True),
            "multiclass": bp.SoftmaxCrossEntropy()}[task]
    lr = LR / 2 if task == "regression" else LR   # scikit-learn halves the squared error
    opt = bp.SGD(lr=lr) if optimizer == "sgd" else bp.Adam(lr=0.01)
    model.fit(X, y, loss=loss, optimizer=opt, epochs=STEPS, batch_size=None, shuffle=False)
    return [(layer.weight, layer.bias) for layer in model.layers[::2]]


def sklearn_peer(task, activation, weights, X, y, alpha=0.0):
    cls = sklearn_nn.MLPRegressor if task == "regression" else sklearn_nn.MLPClassifier
    names = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}
    peer = cls(hidden_layer_sizes=(weights[0][0].shape[1],), activation=names[activation],
               solver="sgd", alpha=alpha, batch_size=len(X), learning_rate_init=LR,
               momentum=0.0, shuffle=False, tol=0.0, n_iter_no_change=10**6, max_iter=1,
               warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer.fit(X, y)                         # creates the network ...
        peer.coefs_ = [w.copy() for w, _ in weights]
        peer.intercepts_ = [b.copy() for _, b in weights]
        peer.set_params(max_iter=STEPS)
        peer.fit(X, y)                         # ... then 20 steps from our weights
    return list(zip(peer.coefs_, peer.intercepts_, strict=True))


def torch_peer(task, activation, weights, X, y, optimizer="sgd"):
    torch = pytest.importorskip("torch")
    (W1, b1), (W2, b2) = weights
    layers = [torch.nn.Linear(*W1.shape, dtype=torch.float64),
              {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[
                  activation](),
              torch.nn.Linear(*W2.shape, dtype=torch.float64)]
    with torch.no_grad():
        for linear, (W, b) in zip(layers[::2], weights, strict=True):
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
    net = torch.nn.Sequential(*layers)
    inputs = torch.from_numpy(X)
    if task == "multiclass":
        target, loss_fn, lr = torch.from_numpy(y), torch.nn.CrossEntropyLoss(), LR
    elif task == "binary":
        target, loss_fn, lr = (torch.from_numpy(y.astype(float)).reshape(-1, 1),
                               torch.nn.BCEWithLogitsLoss(), LR)
    else:
        target, loss_fn, lr = torch.from_numpy(y).reshape(-1, 1), torch.nn.MSELoss(), LR / 2
    opt = (torch.optim.SGD(net.parameters(), lr=lr) if optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=0.01))
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(net(inputs), target).backward()
        opt.step()
    return [(linear.weight.detach().numpy().T, linear.bias.detach().numpy())
            for linear in layers[::2]]


def assert_same(ours, theirs):
    for (W, b), (W_peer, b_peer) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(W, W_peer, rtol=0, atol=1e-8)
        np.testing.assert_allclose(b, b_peer, rtol=0, atol=1e-8)


CASES = [(task, activation) for task in ("binary", "multiclass", "regression")
         for activation in ("sigmoid", "tanh", "relu")]


@pytest.mark.parametrize("task, activation", CASES)
def test_sgd_matches_scikit_learn_and_pytorch(task, activation):
    rng = np.random.default_rng(0)
    X, y = data(task, rng)
    n_out = 3 if task == "multiclass" else 1
    weights = initial_weights(4, 5, n_out, rng)
    ours = bprop_core(task, activation, weights, X, y)
    moved = max(np.abs(w - w0).max() for (w, _), (w0, _) in zip(ours, weights, strict=True))
    assert moved > 1e-3  # the weights really changed in 20 steps
    assert_same(ours, sklearn_peer(task, activation, weights, X, y))
    assert_same(ours, torch_peer(task, activation, weights, X, y))


@pytest.mark.parametrize("task, activation", CASES[::4])
def test_the_estimators_follow_scikit_learn_with_no_mapping(task, activation):
    rng = np.random.default_rng(1)
    X, y = data(task, rng)
    n_out = 3 if task == "multiclass" else 1
    weights = initial_weights(4, 5, n_out, rng)
    cls = bp.MLPRegressor if task == "regression" else bp.MLPClassifier
    names = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}
    ours = cls((5,), activation=names[activation], solver="sgd", alpha=0.05, batch_size=24,
               learning_rate_init=LR, momentum=0.0, shuffle=False, tol=0.0,
               n_iter_no_change=10**6, max_iter=1, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y)
        ours.coefs_ = [w for w, _ in weights]
        ours.intercepts_ = [b for _, b in weights]
        ours.set_params(max_iter=STEPS).fit(X, y)
    theirs = sklearn_peer(task, activation, weights, X, y, alpha=0.05)
    assert_same(list(zip(ours.coefs_, ours.intercepts_, strict=True)), theirs)


def test_scikit_learns_alpha_is_l2_of_alpha_over_batch_size():
    rng = np.random.default_rng(2)
    X, y = data("multiclass", rng)
    weights = initial_weights(4, 5, 3, rng)
    (W1, b1), (W2, b2) = weights
    model = bp.Sequential([bp.Dense.from_weights(W1, b1), bp.Tanh(),
                           bp.Dense.from_weights(W2, b2)], dtype="float64")
    model.fit(X, y, loss="cross_entropy", optimizer=bp.SGD(lr=LR), epochs=STEPS,
              batch_size=None, shuffle=False, regularizer=bp.L2(0.3 / len(X)))
    ours = [(layer.weight, layer.bias) for layer in model.layers[::2]]
    assert_same(ours, sklearn_peer("multiclass", "tanh", weights, X, y, alpha=0.3))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_adam_matches_pytorch(task):
    rng = np.random.default_rng(3)
    X, y = data(task, rng)
    weights = initial_weights(4, 6, 3 if task == "multiclass" else 1, rng)
    assert_same(bprop_core(task, "tanh", weights, X, y, optimizer="adam"),
                torch_peer(task, "tanh", weights, X, y, optimizer="adam"))

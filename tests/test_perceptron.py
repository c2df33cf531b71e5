import numpy as np
import pytest

import bprop as bp


def test_perceptron_rule_by_hand():
    # One epoch on two points, zero start: both are mistakes (score 0) and move the boundary.
    X = np.array([[1.0, 2.0], [-1.0, -1.0]])
    model = bp.Perceptron(lr=0.5, max_epochs=1).fit(X, [1, -1])
    # w = 0.5*1*[1,2] ; then score of x2 = -1.5 + 0.5 = -1 -> correct, no update
    np.testing.assert_allclose(model.weights_, [0.5, 1.0])
    assert model.bias_ == 0.5
    assert model.mistakes_ == [1]


@pytest.mark.parametrize("labels", [(-1, 1), (0, 1)])
def test_converges_on_separable_data_and_keeps_label_convention(labels):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 3))
    score = X @ np.array([1.0, -2.0, 0.5]) + 0.1
    keep = np.abs(score) > 0.05
    X, score = X[keep], score[keep]
    y = np.where(score > 0, labels[1], labels[0])
    model = bp.Perceptron(max_epochs=500, shuffle=True, seed=1).fit(X, y)
    assert model.converged_ and model.mistakes_[-1] == 0
    assert model.score(X, y) == 1.0
    assert set(np.unique(model.predict(X))) == set(labels)


def test_does_not_claim_convergence_on_xor():
    X, y = bp.datasets.make_xor()
    model = bp.Perceptron(max_epochs=50).fit(X, y)
    assert not model.converged_ and len(model.mistakes_) == 50
    assert model.score(X, y) < 1.0


def test_perceptron_errors():
    with pytest.raises(ValueError, match="two classes labelled -1/\\+1 or 0/1"):
        bp.Perceptron().fit(np.zeros((3, 2)), [0, 1, 2])
    with pytest.raises(RuntimeError, match="not fitted"):
        bp.Perceptron().predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="different numbers of samples"):
        bp.Perceptron().fit(np.zeros((3, 2)), [0, 1])

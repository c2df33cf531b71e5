r"""Rosenblatt's perceptron: the first learning rule, before backpropagation.

Prediction is :math:`\hat y = \operatorname{sign}(w \cdot x + b)` with labels :math:`\pm 1`.
For each sample the perceptron gets wrong, it moves the boundary towards it:

.. math::
    w \leftarrow w + \eta\, y\, x, \qquad b \leftarrow b + \eta\, y

A sample counts as a mistake when :math:`y\,(w \cdot x + b) \le 0`: a point on the boundary is
wrong whatever its label. The step-function rule
:math:`w \leftarrow w + \eta\,(y - \hat y)\,x` with :math:`\hat y = [w \cdot x + b > 0]` counts a
0-labelled point on the line as right, so the two rules can take different paths.

On linearly separable data this stops making mistakes after finitely many updates
(Novikoff's theorem), which is why training ends at the first epoch without a mistake.
"""

from __future__ import annotations

import numpy as np

from .._checks import (
    as_array,
    as_features,
    check_positive_float,
    check_positive_int,
    check_same_length,
)
from .metrics import accuracy


class Perceptron:
    """Binary linear classifier trained with the perceptron rule.

    Parameters
    ----------
    lr : float
        Step size :math:`\\eta`. The weights start at zero, so in exact arithmetic ``lr`` only
        rescales them; in floating point a score that should be exactly 0 (a point on the
        line, which counts as a mistake) can round to either side, so a different ``lr`` can
        take a different path (0.1 instead of 1 converges on AND in 4 epochs instead of 9).
    max_epochs : int
        Passes over the data at most; training stops earlier after an epoch without mistakes.
    shuffle : bool
        Visit the samples in a new random order each epoch.
    seed : int or None
        Seeds the generator used for shuffling.

    Attributes (after ``fit``)
    --------------------------
    weights_ : array (n_features,)
    bias_ : float
    mistakes_ : list of int, the number of updates made in each epoch.
    converged_ : bool, whether the last epoch had no mistakes.
    classes_ : the two labels, as given: ``[-1, 1]`` or ``[0, 1]``.

    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> model = Perceptron().fit(X, [0, 0, 0, 1])   # logical AND
    >>> model.predict(X).tolist(), model.converged_
    ([0, 0, 0, 1], True)
    """

    def __init__(self, lr: float = 1.0, max_epochs: int = 100, shuffle: bool = False,
                 seed: int | None = None) -> None:
        self.lr = check_positive_float(lr, "lr")
        self.max_epochs = check_positive_int(max_epochs, "max_epochs")
        self.shuffle = shuffle
        self.seed = seed

    def fit(self, X, y) -> Perceptron:
        X = as_features(X, "X", np.float64)
        signs = self._signs(y)
        check_same_length(X, signs)
        rng = np.random.default_rng(self.seed)
        self.weights_ = np.zeros(X.shape[1])
        self.bias_ = 0.0
        self.mistakes_: list[int] = []
        for _ in range(self.max_epochs):
            order = rng.permutation(len(X)) if self.shuffle else range(len(X))
            mistakes = 0
            for i in order:
                if signs[i] * (X[i] @ self.weights_ + self.bias_) <= 0:
                    self.weights_ += self.lr * signs[i] * X[i]
                    self.bias_ += self.lr * signs[i]
                    mistakes += 1
            self.mistakes_.append(mistakes)
            if mistakes == 0:
                break
        self.converged_ = self.mistakes_[-1] == 0
        return self

    def decision_function(self, X) -> np.ndarray:
        """Signed score :math:`w \\cdot x + b` per sample; positive means ``classes_[1]``."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("this Perceptron is not fitted yet; call fit(X, y) first")
        X = as_features(X, "X", np.float64, len(self.weights_))
        return X @ self.weights_ + self.bias_

    def predict(self, X) -> np.ndarray:
        return np.where(self.decision_function(X) > 0, self.classes_[1], self.classes_[0])

    def score(self, X, y) -> float:
        """Accuracy on ``(X, y)``."""
        return accuracy(as_array(y, "y"), self.predict(X))

    def _signs(self, y) -> np.ndarray:
        y = as_array(y, "y")
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D labels, got shape {y.shape}")
        values = set(np.unique(y).tolist())
        if values <= {-1, 1}:
            self.classes_ = np.array([-1, 1])
        elif values <= {0, 1}:
            self.classes_ = np.array([0, 1])
        else:
            raise ValueError(
                f"the perceptron needs two classes labelled -1/+1 or 0/1, got labels "
                f"{sorted(values)}"
            )
        return np.where(y == self.classes_[1], 1.0, -1.0)

"""Rosenblatt's perceptron on linearly separable data: it stops making mistakes.

200 points in the plane, labelled by which side of the line x2 = 0.5 x1 + 0.2 they fall on,
with a gap of 0.1 around the line so that the data are separable with a margin.

Run: bprop demo perceptron, or python examples/perceptron.py
"""

import sys
from pathlib import Path

import numpy as np

import bprop as bp


def separable_data(n_samples: int = 200, margin: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = np.empty((0, 2))
    while len(X) < n_samples:
        points = rng.uniform(-1, 1, (n_samples, 2))
        distance = (points[:, 1] - 0.5 * points[:, 0] - 0.2) / np.hypot(1, 0.5)
        X = np.vstack([X, points[np.abs(distance) > margin]])
    X = X[:n_samples]
    y = np.where(X[:, 1] > 0.5 * X[:, 0] + 0.2, 1, -1)
    return X, y


def run(seed: int = 0) -> dict:
    X, y = separable_data(seed=seed)
    model = bp.Perceptron(max_epochs=1000, shuffle=True, seed=seed).fit(X, y)
    return {"model": model, "X": X, "y": y, "accuracy": model.score(X, y)}


def main(out_dir: str = "demo_output") -> None:
    result = run()
    model = result["model"]
    print(f"perceptron: mistakes per epoch {model.mistakes_}, "
          f"training accuracy {result['accuracy']:.0%}")
    bp.plotting.draw_or_explain("decision boundary", lambda: bp.plotting.plot_decision_boundary(
        model.predict, result["X"], result["y"], Path(out_dir) / "perceptron.png",
        title="perceptron decision boundary"))


if __name__ == "__main__":
    main(*sys.argv[1:])

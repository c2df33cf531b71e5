"""Regression: a 5-layer ReLU network fits y = x^2 + 2x - 3 on x in [-7, 5), step 0.05.

Inputs are divided by 7 and targets by 30 so that both are of order 1; with raw values
(targets up to 32) the first gradients are large enough to make plain SGD diverge. Predictions
are scaled back before they are scored.

Run: bprop demo quadratic, or python examples/quadratic.py
"""

import sys
from pathlib import Path

import bprop as bp

X_SCALE, Y_SCALE = 7.0, 30.0


def run(epochs: int = 500, seed: int = 0) -> dict:
    X, y = bp.datasets.make_quadratic()
    width = 32
    model = bp.mlp([1, width, width, width, width, 1], activation="relu", seed=seed)
    history = model.fit(X / X_SCALE, y / Y_SCALE, loss="mse",
                        optimizer=bp.SGD(lr=0.05, momentum=0.9), epochs=epochs, batch_size=16)
    fitted = model.predict(X / X_SCALE) * Y_SCALE
    return {"X": X, "y": y, "fitted": fitted, "history": history,
            "r2": bp.r2_score(y, fitted)}


def main(out_dir: str = "demo_output") -> None:
    result = run()
    print(f"y = x^2 + 2x - 3 with 5 ReLU layers: R^2 = {result['r2']:.5f}")
    bp.plotting.draw_or_explain("fit against data", lambda: bp.plotting.plot_fit(
        result["X"], result["y"], result["fitted"], Path(out_dir) / "quadratic.png",
        title=f"y = x^2 + 2x - 3, R^2 = {result['r2']:.4f}"))


if __name__ == "__main__":
    main(*sys.argv[1:])

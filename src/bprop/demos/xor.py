"""XOR with a 3-4-1 sigmoid network: the problem a single layer cannot solve.

The training loop is written out explicitly, the way the tutorial writes it, to show each step
of backpropagation through bprop's layers. Inputs carry a constant-1 third column in place of
biases, the initial weights are the tutorial's (``np.random.seed(1)``, uniform on [-1, 1)), and
the update rule matches its ``syn += layer.T.dot(delta)``: gradient descent on
``0.5 * sum(error ** 2)`` with learning rate 1, i.e. ``MSE(reduction="sum")`` with lr 0.5.

Run: bprop demo xor, or python examples/xor.py
"""

from pathlib import Path

import numpy as np

import bprop as bp


def run(steps: int = 60_000) -> dict:
    X, y = bp.datasets.make_xor(bias_column=True)
    legacy = np.random.RandomState(1)  # the tutorial's np.random.seed(1), kept local
    hidden = bp.Dense.from_weights(2 * legacy.random_sample((3, 4)) - 1)
    output = bp.Dense.from_weights(2 * legacy.random_sample((4, 1)) - 1)
    model = bp.Sequential([hidden, bp.Sigmoid(), output, bp.Sigmoid()], dtype="float64")
    loss, optimizer = bp.MSE(reduction="sum"), bp.SGD(lr=0.5)
    errors = []
    for step in range(steps):
        prediction = model.forward(X, training=True)   # forward, layer by layer
        loss.forward(prediction, y)                     # how wrong
        model.zero_grad()
        model.backward(loss.backward())                 # deltas, last layer to first
        optimizer.step(model.parameters())              # weights -= lr * gradient
        if step % 10_000 == 0:
            errors.append(float(np.abs(prediction.ravel() - y).mean()))
    prediction = model.forward(X).ravel()
    return {"model": model, "output": prediction, "target": y, "errors": errors,
            "mean_abs_error": float(np.abs(prediction - y).mean())}


def main(out_dir: str = "demo_output") -> None:
    result = run()
    for i, error in enumerate(result["errors"]):
        print(f"step {i * 10_000:>6}: mean absolute error {error:.6f}")
    print("outputs", np.array2string(result["output"], precision=4), "targets", result["target"])
    print(f"final mean absolute error: {result['mean_abs_error']:.6f}")
    model = result["model"]

    def predict(points):  # the tutorial's inputs carry a constant-1 third column
        with_bias = np.column_stack([points, np.ones(len(points))])
        return model.forward(with_bias).ravel() > 0.5

    X, y = bp.datasets.make_xor()
    bp.plotting.draw_or_explain("decision boundary", lambda: bp.plotting.plot_decision_boundary(
        predict, X, y, Path(out_dir) / "xor.png", title="XOR with a 3-4-1 sigmoid network"))


if __name__ == "__main__":
    main()

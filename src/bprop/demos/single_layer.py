"""The first tutorial network: one layer of weights and a sigmoid, no hidden layer.

Inputs are three bits whose third is a constant 1 (the tutorial's stand-in for a bias); the
target is the first bit. Started from the tutorial's own initial weights (numpy's legacy
generator seeded with 1, ``2 * random((3, 1)) - 1``), bprop reproduces its printed outputs.

Matching the update rule: the tutorial adds ``X.T @ ((y - out) * out * (1 - out))`` to its
weights, which is gradient descent with learning rate 1 on ``0.5 * sum((out - y) ** 2)``.
bprop's ``MSE(reduction="sum")`` has gradient ``2 * (out - y)``, so learning rate 0.5 gives
the same step. The tutorial prints the outputs of its last forward pass, computed *before* its
10,000th update: that is the output after 9,999 updates.

Run: bprop demo single-layer, or python examples/single_layer.py
"""

import numpy as np

import bprop as bp

TUTORIAL_OUTPUT = np.array([0.00966449, 0.00786506, 0.99358898, 0.99211957])


def tutorial_weights() -> np.ndarray:
    # A local RandomState(1) draws exactly what np.random.seed(1) then np.random.random would,
    # without touching numpy's global generator.
    return 2 * np.random.RandomState(1).random_sample((3, 1)) - 1


def run(updates: int = 9_999) -> dict:
    X, _ = bp.datasets.make_xor(bias_column=True)
    y = X[:, 0].copy()  # targets [0, 0, 1, 1]
    model = bp.Sequential([bp.Dense.from_weights(tutorial_weights()), bp.Sigmoid()],
                          dtype="float64")
    model.fit(X, y, loss=bp.MSE(reduction="sum"), optimizer=bp.SGD(lr=0.5), epochs=updates,
              batch_size=None, shuffle=False, metrics=[])
    output = model.forward(X).ravel()
    return {"output": output, "target": y, "max_deviation": float(np.abs(output - y).max())}


def main(out_dir: str = "demo_output") -> None:
    result = run()
    print("single-layer network, outputs after training:")
    print("  bprop   ", np.array2string(result["output"], precision=8))
    print("  tutorial", np.array2string(TUTORIAL_OUTPUT, precision=8))
    print(f"  largest difference from the tutorial: "
          f"{np.abs(result['output'] - TUTORIAL_OUTPUT).max():.1e}")


if __name__ == "__main__":
    main()

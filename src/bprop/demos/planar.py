"""The "planar flower": a shallow tanh network separates two interleaved classes.

400 points in two classes shaped as petals; no straight line separates them. As in the classic
exercise: 4 tanh hidden units, a sigmoid output, binary cross-entropy, full-batch gradient
descent with learning rate 1.2 and small normal initial weights (std 0.01).

Run: bprop demo planar, or python examples/planar.py
"""

import sys
from pathlib import Path

import bprop as bp


def run(epochs: int = 10_000, seed: int = 0) -> dict:
    X, y = bp.datasets.make_planar()
    # 2 inputs, 4 tanh hidden units, one sigmoid output, weights drawn with std 0.01
    model = bp.mlp([2, 4, 1], activation="tanh", output="sigmoid", init="normal", seed=seed,
                   dtype="float64")
    history = model.fit(X, y, loss=bp.BinaryCrossEntropy(), optimizer=bp.SGD(lr=1.2),
                        epochs=epochs, batch_size=None, shuffle=False)
    return {"model": model, "X": X, "y": y, "history": history,
            "accuracy": bp.accuracy(y, model.predict(X))}


def main(out_dir: str = "demo_output") -> None:
    result = run()
    history = result["history"]
    print(f"planar flower: loss {history['loss'][0]:.4f} -> {history['loss'][-1]:.4f}, "
          f"training accuracy {result['accuracy']:.1%}")
    bp.plotting.draw_or_explain("decision boundary", lambda: bp.plotting.plot_decision_boundary(
        result["model"].predict, result["X"], result["y"], Path(out_dir) / "planar.png",
        title=f"4 tanh hidden units: {result['accuracy']:.1%}"))


if __name__ == "__main__":
    main(*sys.argv[1:])

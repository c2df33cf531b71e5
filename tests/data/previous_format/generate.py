"""Write the model files of the previous format (format 1, optimizer state as bprop kept it
before it took PyTorch's names) that tests/test_optimizer_state.py loads.

Run it with the code of that format, commit d81a6f6, from the repository root::

    git worktree add /tmp/old_bprop d81a6f6
    PYTHONPATH=/tmp/old_bprop/src BPROP_NO_FUSED=1 python tests/data/previous_format/generate.py

(``BPROP_NO_FUSED=1``: that checkout has no compiled extension; NumPy runs every update.)
For each optimizer it trains a small float64 network for SAVED_AFTER steps of a fixed loop,
saves it with the optimizer (``<case>.npz``), trains CONTINUED more steps and writes the
weights and optimizer state reached (``<case>.after.npz``, with the training data).
"""

from pathlib import Path

import numpy as np

SAVED_AFTER, CONTINUED = 5, 10


def train(bp, model, optimizer, X, y, steps):
    """The loop of the test: full-batch halves in turn, no shuffling."""
    loss = bp.SoftmaxCrossEntropy()
    for step in range(steps):
        rows = slice(4 * (step % 2), 4 * (step % 2) + 4)
        model.zero_grad()
        loss.forward(model.forward(X[rows], training=True), y[rows])
        model.backward(loss.backward())
        optimizer.step(model.parameters())


def main() -> None:
    import bprop as bp

    here = Path(__file__).parent
    cases = {
        "adam": bp.Adam(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
        "adamw": bp.AdamW(lr=0.01, weight_decay=0.1),
        "sgd": bp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        "rmsprop": bp.RMSProp(lr=0.01, momentum=0.5, centered=True),
    }
    rng = np.random.default_rng(13)
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    for name, optimizer in cases.items():
        model = bp.Sequential([bp.Dense(4, 6), bp.Tanh(), bp.Dense(6, 3)], seed=13,
                              dtype="float64")
        train(bp, model, optimizer, X, y, SAVED_AFTER)
        model.save(here / f"{name}.npz", optimizer=optimizer)
        train(bp, model, optimizer, X, y, CONTINUED)
        state = optimizer.state_dict(model.parameters())
        np.savez(here / f"{name}.after.npz", X=X, y=y, step=state["step"],
                 **{f"param/{k}": p.value for k, p in model.named_parameters()},
                 **{f"optim/{k}": v for k, v in state["arrays"].items()})
        print(name, sorted(state["arrays"]), "written by", bp.__file__)


if __name__ == "__main__":
    main()

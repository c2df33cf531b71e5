"""A two-layer network trained on the moons with the autograd engine alone.

No layer classes and no hand-written backward pass: the forward computation is written with
Tensor operations, ``loss.backward()`` builds every gradient from the recorded graph, and the
update is plain gradient descent on the weight tensors. It is the same network as
``Sequential([Dense(2, 16), Tanh(), Dense(16, 2)])``, computed the other way.

Run: bprop demo autograd, or python examples/autograd_moons.py
"""

import numpy as np

import bprop as bp
from bprop import autograd as ag

GRAPH_LINES = 12  # of the graph printed by main (the rest is summed up in one line)


def run(epochs: int = 500, lr: float = 0.5, hidden: int = 16, seed: int = 0) -> dict:
    X, y = bp.datasets.make_moons(200, noise=0.1, seed=seed)
    rng = np.random.default_rng(seed)
    w1 = ag.Tensor(rng.normal(0, np.sqrt(1 / 2), (2, hidden)), requires_grad=True, name="W1")
    b1 = ag.Tensor(np.zeros(hidden), requires_grad=True, name="b1")
    w2 = ag.Tensor(rng.normal(0, np.sqrt(1 / hidden), (hidden, 2)), requires_grad=True,
                   name="W2")
    b2 = ag.Tensor(np.zeros(2), requires_grad=True, name="b2")
    parameters = [w1, b1, w2, b2]
    losses = []
    for _ in range(epochs):
        hidden_layer = (ag.Tensor(X) @ w1 + b1).tanh()
        loss = ag.softmax_cross_entropy(hidden_layer @ w2 + b2, y)
        for p in parameters:
            p.zero_grad()
        loss.backward()                     # the chain rule over the recorded graph
        for p in parameters:
            p.data -= lr * p.grad           # gradient descent, in place
        losses.append(loss.item())
    with ag.no_grad():
        logits = (ag.Tensor(X) @ w1 + b1).tanh() @ w2 + b2
    accuracy = bp.accuracy(y, logits.data.argmax(axis=1))
    return {"losses": losses, "accuracy": accuracy, "graph": ag.render_text(loss),
            "graph_head": ag.render_text(loss, max_lines=GRAPH_LINES)}


def main(out_dir: str = "demo_output") -> None:
    result = run()
    print(f"loss {result['losses'][0]:.4f} -> {result['losses'][-1]:.4f}, "
          f"training accuracy {result['accuracy']:.1%}")
    print("the graph of the last loss (nodes named t<k> are intermediate results):")
    print(result["graph_head"])


if __name__ == "__main__":
    main()

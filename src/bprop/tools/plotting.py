"""Pictures of what a network learned. Needs matplotlib (``pip install "bprop[plot]"``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # draw to files; works without a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            'drawing pictures needs matplotlib: pip install "bprop[plot]" (or matplotlib)'
        ) from None
    return plt


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (pictures are skipped, with a message, when not)."""
    try:
        _pyplot()
    except ImportError:
        return False
    return True


def draw_or_explain(label: str, draw) -> Path | None:
    """Call ``draw()`` (which returns the path it wrote) and say where the picture went; without
    matplotlib, say how to get it instead."""
    if not have_matplotlib():
        print(f'  (no {label} picture: pip install "bprop[plot]" to draw it)')
        return None
    path = draw()
    print(f"  {label}: {path}")
    return path


def plot_decision_boundary(predict, X: np.ndarray, y: np.ndarray, path, title: str = "",
                           resolution: int = 300) -> Path:
    """Colour the plane by ``predict`` (a function of (n, 2) points) and scatter ``(X, y)``.

    Writes a PNG to ``path`` and returns the path.
    """
    plt = _pyplot()
    X = np.asarray(X)
    margin = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 1e-9
    low, high = X.min(axis=0) - margin, X.max(axis=0) + margin
    xx, yy = np.meshgrid(np.linspace(low[0], high[0], resolution),
                         np.linspace(low[1], high[1], resolution))
    zz = np.asarray(predict(np.column_stack([xx.ravel(), yy.ravel()]))).reshape(xx.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(xx, yy, zz, alpha=0.3, cmap="coolwarm")
    ax.scatter(X[:, 0], X[:, 1], c=np.ravel(y), cmap="coolwarm", s=12, edgecolors="k",
               linewidths=0.3)
    ax.set_title(title)
    return _save(fig, plt, path)


def plot_fit(x: np.ndarray, y: np.ndarray, y_fit: np.ndarray, path, title: str = "") -> Path:
    """Scatter the data ``(x, y)`` and draw the fitted curve ``y_fit`` over it; write a PNG."""
    plt = _pyplot()
    x = np.ravel(x)
    order = np.argsort(x)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(x, np.ravel(y), s=8, label="data", color="tab:blue")
    ax.plot(x[order], np.ravel(y_fit)[order], color="tab:red", label="network")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    ax.set_title(title)
    return _save(fig, plt, path)


def plot_loss_curves(curves: dict[str, list[float]], path, title: str = "",
                     ylabel: str = "training loss") -> Path:
    """One line per named curve against the epoch; write a PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.set_title(title, fontsize=9)
    return _save(fig, plt, path)


def plot_confusion_matrices(matrices: dict[str, np.ndarray], path,
                            labels: list[str] | None = None) -> Path:
    """Side by side confusion matrices (rows: true class, columns: predicted), the classes
    named by ``labels`` if given; a PNG."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(4 * len(matrices), 4), squeeze=False)
    for ax, (name, matrix) in zip(axes[0], matrices.items(), strict=True):
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=6,
                        color="white" if count > matrix.max() / 2 else "black")
        ax.set_title(name)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_xticks(range(len(matrix)))
        ax.set_yticks(range(len(matrix)))
        if labels:
            ax.set_xticklabels(labels, rotation=90)
            ax.set_yticklabels(labels)
    return _save(fig, plt, path)


def plot_history(history: dict[str, list[float]], path) -> Path:
    """Loss (and accuracy, when recorded) per epoch, training and validation; a PNG."""
    plt = _pyplot()
    panels = [name for name in ("loss", "accuracy", "r2", "mae") if name in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], label="training")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
    return _save(fig, plt, path)


def plot_first_layer(weights: np.ndarray, side: int, path, count: int = 32) -> Path:
    """The first ``count`` units' incoming weights (n_inputs = side * side) as images."""
    plt = _pyplot()
    count = min(count, weights.shape[1])
    columns = min(8, count)
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < count:
            image = weights[:, k].reshape(side, side)
            limit = np.abs(image).max() or 1.0
            ax.imshow(image, cmap="coolwarm", vmin=-limit, vmax=limit)
    fig.suptitle("first-layer weights, one image per hidden unit")
    return _save(fig, plt, path)


def plot_activations(path) -> Path:
    """Each activation function and its derivative, as the layers compute them."""
    from ..nn.layers import LeakyReLU, ReLU, Sigmoid, Tanh

    plt = _pyplot()
    x = np.linspace(-4, 4, 401).reshape(-1, 1)
    layers = [Sigmoid(), Tanh(), ReLU(), LeakyReLU(0.1)]
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3.5))
    for ax, layer in zip(axes, layers, strict=True):
        value = layer.forward(x)
        slope = layer.backward(np.ones_like(x))   # the derivative, from the backward pass
        ax.plot(x, value, label="f(x)")
        ax.plot(x, slope, label="f'(x)", linestyle="--")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(repr(layer))
        ax.legend()
    return _save(fig, plt, path)


def _save(fig, plt, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

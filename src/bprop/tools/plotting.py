"""Pictures of what a network learned. Needs matplotlib (``pip install "bprop[plot]"``).

Every picture is meant to be read by someone learning: classes keep one colour each (a light
tint for the region a network predicts, the full colour with a dark edge for the samples),
axes say what they measure, counts stay readable at any number of classes, epochs are whole
numbers, and the epoch whose weights were saved is marked.

The palette (:func:`class_colours`) is plain NumPy, so it can be inspected without matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

#: Saturated class colours: matplotlib's "tab10" order with its grey replaced by a dark slate,
#: because a grey tint is hard to tell from the white background and from the brown one.
CLASS_HEX = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
             "#bcbd22", "#17becf", "#2f4f4f")
#: How much of a class colour its region keeps (the rest is white): light enough for the dots to
#: stand out on it, strong enough for the region to stand out from a white page.
REGION_TINT = 0.4
#: The smallest font for counts and tick labels, in points (8 pt is still readable on paper).
MIN_FONT_PT = 8.0
_DIGIT_WIDTH = 0.64  # a digit's width in units of the font size (0.636 in DejaVu Sans)
_CELL_FILL = 0.7  # the widest count fills at most this much of its cell's width


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


def draw_or_explain(label: str, draw: Callable[[], Path]) -> Path | None:
    """Call ``draw()`` (which returns the path it wrote) and say where the picture went; without
    matplotlib, say how to get it instead."""
    if not have_matplotlib():
        print(f'  (no {label} picture: pip install "bprop[plot]" to draw it)')
        return None
    path = draw()
    print(f"  {label}: {path}")
    return path


# -- colours ---------------------------------------------------------------------------------------
def class_colours(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Colours for ``n_classes`` classes: ``(regions, dots)``, each of shape (n_classes, 3), RGB
    in [0, 1].

    ``dots[k]`` is class k's saturated colour, for its samples; ``regions[k]`` is a light tint
    of the same hue, for the area where class k is predicted. Up to 10 classes get the fixed
    colours of :data:`CLASS_HEX`; more classes get evenly spaced hues.

    >>> regions, dots = class_colours(3)
    >>> regions.shape, bool((regions < 0.95).any(axis=1).all())
    ((3, 3), True)
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    if n_classes <= len(CLASS_HEX):
        dots = np.array([[int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)]
                         for h in CLASS_HEX[:n_classes]])
    else:
        dots = _hsv_to_rgb(np.arange(n_classes) / n_classes, saturation=0.8, value=0.75)
    regions = 1.0 - REGION_TINT * (1.0 - dots)
    return regions, dots


def _hsv_to_rgb(hue: np.ndarray, saturation: float, value: float) -> np.ndarray:
    # The textbook sector formula, so that the palette needs NumPy only.
    k = (np.array([5.0, 3.0, 1.0]) + hue[:, None] * 6) % 6
    return value - value * saturation * np.clip(np.minimum(k, 4 - k), 0, 1)


def lab_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How different two colours look: the CIE76 distance of sRGB colours ``a`` and ``b``
    (arrays of shape (..., 3) in [0, 1]) in CIELAB. About 2 is just noticeable; 20 is plain.

    >>> float(np.round(lab_distance(np.ones(3), np.zeros(3)), 1))
    100.0
    """
    return np.linalg.norm(_lab(a) - _lab(b), axis=-1)


def _lab(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=float)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                       [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.9505, 1.0, 1.089])  # relative to white (D65)
    edge = (6 / 29) ** 3
    f = np.where(xyz > edge, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def text_colour_for(background: Sequence[float]) -> str:
    """Black or white, whichever contrasts more with ``background`` (RGB in [0, 1]), by the
    WCAG contrast ratio; either way the ratio is at least 4.5."""
    black, white = contrast_ratio(background, (0, 0, 0)), contrast_ratio(background, (1, 1, 1))
    return "black" if black >= white else "white"


def contrast_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """The WCAG contrast ratio of two sRGB colours, from 1 (the same) to 21 (black on white)."""
    la, lb = sorted((_luminance(a), _luminance(b)))
    return (lb + 0.05) / (la + 0.05)


def _luminance(rgb: Sequence[float]) -> float:
    rgb = np.asarray(rgb, dtype=float)[:3]
    linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


# -- decision regions and fits ---------------------------------------------------------------------
#: the most classes a decision plot names in its legend
LEGEND_CLASSES = 20
#: about how many characters of legend text fit across a decision plot
_LEGEND_WIDTH_CHARS = 64


def plot_decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray,
                           y: np.ndarray, path, title: str = "", resolution: int = 300, *,
                           labels: Sequence[str] | None = None,
                           feature_names: Sequence[str] = ("feature 1", "feature 2"),
                           standardised: bool = False) -> Path:
    """Colour the plane by the class ``predict`` gives each point and scatter the samples
    ``(X, y)`` over it, each in its class's colour; write a PNG to ``path`` and return it.

    Parameters
    ----------
    predict : callable
        Maps points of shape (m, 2) to class labels of shape (m,).
    X : ndarray of shape (n, 2)
        The samples' two features.
    y : ndarray of shape (n,) or (n, 1)
        Their true labels: 0..k-1, or any values (such as -1 and 1, or booleans).
    path : str or Path
        Where the PNG goes.
    title : str
        The picture's title.
    resolution : int
        Grid points per axis at which ``predict`` is evaluated.
    labels : sequence of str, optional
        Class names for the legend, in class order; default the labels themselves.
    feature_names : pair of str
        The axis labels.
    standardised : bool
        Whether the features were standardised (zero mean, unit variance): the axes say so.
    """
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    X = np.asarray(X)
    y = np.ravel(y)
    margin = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 1e-9
    low, high = X.min(axis=0) - margin, X.max(axis=0) + margin
    xx, yy = np.meshgrid(np.linspace(low[0], high[0], resolution),
                         np.linspace(low[1], high[1], resolution))
    grid = np.ravel(predict(np.column_stack([xx.ravel(), yy.ravel()])))
    classes = _classes(y, grid, labels)
    regions, dots = class_colours(len(classes))
    grid_index = np.searchsorted(classes, grid).reshape(xx.shape)
    y_index = np.searchsorted(classes, y)
    names = list(labels) if labels is not None else [_label(c) for c in classes]

    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    # Regions as an image of class indices: crisp edges, and the colours exactly the palette's.
    ax.imshow(grid_index, origin="lower", extent=(low[0], high[0], low[1], high[1]),
              cmap=ListedColormap(regions), vmin=-0.5, vmax=len(classes) - 0.5,
              interpolation="nearest", aspect="auto")
    if len(np.unique(grid_index)) > 1:  # a thin line where the prediction changes
        ax.contour(xx, yy, grid_index, levels=np.arange(len(classes) - 1) + 0.5,
                   colors="0.25", linewidths=0.6)
    handles = []
    for k in range(len(names)):
        members = y_index == k
        ax.scatter(X[members, 0], X[members, 1], s=22, color=dots[k], edgecolors="0.1",
                   linewidths=0.6, zorder=3)
        handles.append((Patch(facecolor=regions[k], edgecolor="0.6"),
                        Line2D([], [], linestyle="none", marker="o", markersize=6,
                               markerfacecolor=dots[k], markeredgecolor="0.1")))
    # Below the plot, where it hides no sample: each class as its area's colour and its dot,
    # in as many columns as the names' length lets fit across the figure. Past
    # LEGEND_CLASSES no legend could be read (nor told apart by colour): the title says so.
    if len(names) <= LEGEND_CLASSES:
        widest = max(len(str(name)) for name in names)
        fig.legend(handles, names, title="class (dot: true class, area: predicted class)",
                   handler_map={tuple: HandlerTuple(ndivide=None, pad=0.3)},
                   loc="outside lower center", frameon=False, columnspacing=1.2,
                   ncols=max(1, min(len(names), 6, _LEGEND_WIDTH_CHARS // (widest + 6))),
                   handletextpad=0.4, title_fontsize=9)
    else:
        title = (f"{title} " if title else "") + f"({len(names)} classes: too many for a legend)"
    suffix = " (standardised)" if standardised else ""
    ax.set_xlabel(f"{feature_names[0]}{suffix}")
    ax.set_ylabel(f"{feature_names[1]}{suffix}")
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_title(title)
    return _save(fig, plt, path)


def _classes(y: np.ndarray, predicted: np.ndarray, labels: Sequence[str] | None) -> np.ndarray:
    """The sorted class values: 0..k-1 when the labels are such (so that a class that is never
    seen keeps its colour), else the distinct values of the labels and predictions."""
    values = np.concatenate([np.asarray(y).astype(float), np.asarray(predicted).astype(float)])
    whole = np.all(values == np.round(values)) and values.min() >= 0
    if whole:
        count = int(values.max()) + 1
        if labels is not None:
            count = max(count, len(labels))
        classes = np.arange(count, dtype=float)
    else:
        classes = np.unique(values)
    if labels is not None and len(labels) != len(classes):
        raise ValueError(f"{len(labels)} labels for {len(classes)} classes")
    return classes


def _label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def plot_fit(x: np.ndarray, y: np.ndarray, y_fit: np.ndarray, path, title: str = "", *,
             xlabel: str = "x", ylabel: str = "y", standardised: bool = False) -> Path:
    """Scatter the data ``(x, y)`` and draw the fitted curve ``y_fit`` over it; write a PNG.

    ``x``, ``y`` and ``y_fit`` hold n values each (any shape with n elements);
    ``standardised`` says on the x axis that x was standardised.
    """
    plt = _pyplot()
    x = np.ravel(x)
    order = np.argsort(x, kind="stable")
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.scatter(x, np.ravel(y), s=8, label="data", color=CLASS_HEX[0])
    ax.plot(x[order], np.ravel(y_fit)[order], color=CLASS_HEX[3], linewidth=2, label="network")
    ax.set_xlabel(xlabel + (" (standardised)" if standardised else ""))
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.set_title(title)
    return _save(fig, plt, path)


# -- curves ----------------------------------------------------------------------------------------
def plot_loss_curves(curves: dict[str, list[float]], path, title: str = "",
                     ylabel: str = "training loss", *, best_epoch: int | None = None,
                     saved: bool = True) -> Path:
    """One line per named curve against the epoch (1, 2, ...); write a PNG.

    ``best_epoch`` (counted from 1), when given, is marked with a dashed vertical line, labelled
    "best epoch N (saved)", or "best epoch N" with ``saved=False`` (when the weights kept are
    another epoch's, such as the last).
    """
    plt = _pyplot()
    length = max((len(values) for values in curves.values()), default=0)
    _check_best_epoch(best_epoch, length)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    _epoch_axis(ax, best_epoch, saved)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.set_title(title, fontsize=9)
    return _save(fig, plt, path)


def plot_history(history: dict[str, list[float]], path, *, best_epoch: int | None = None,
                 saved: bool = True, title: str = "") -> Path:
    """Loss (and accuracy, R², MAE when recorded) per epoch, training and validation; a PNG.

    ``history`` maps a metric's name (and ``val_`` + name) to one value per epoch;
    ``best_epoch`` (counted from 1), when given, is marked on every panel, labelled "best epoch
    N (saved)", or "best epoch N" with ``saved=False`` (when the weights kept are another
    epoch's, such as the last).
    """
    plt = _pyplot()
    panels = [name for name in ("loss", "accuracy", "r2", "mae") if name in history]
    if not panels:
        raise ValueError(f"nothing to draw: the history has {sorted(history)}, none of loss, "
                         "accuracy, r2, mae")
    _check_best_epoch(best_epoch, len(history[panels[0]]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False,
                             layout="constrained")
    for ax, name in zip(axes[0], panels, strict=True):
        epochs = range(1, len(history[name]) + 1)
        marker = "o" if len(epochs) <= 30 else None  # few epochs: show each one
        ax.plot(epochs, history[name], label="training", marker=marker, markersize=3)
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], label="validation", marker=marker,
                    markersize=3)
        _epoch_axis(ax, best_epoch, saved)
        ax.set_ylabel({"r2": "R²", "mae": "mean absolute error"}.get(name, name))
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, plt, path)


def _check_best_epoch(best_epoch: int | None, epochs: int) -> None:
    if best_epoch is not None and not (isinstance(best_epoch, (int, np.integer))
                                       and 1 <= best_epoch <= epochs):
        raise ValueError(f"best_epoch must be a whole number in 1..{epochs} (epochs count from "
                         f"1), got {best_epoch!r}")


def _epoch_axis(ax, best_epoch: int | None, saved: bool) -> None:
    from matplotlib.ticker import MaxNLocator  # (matplotlib is there: the caller drew)

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
    ax.set_xlabel("epoch")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="0.3", linestyle="--", linewidth=1, gid="best-epoch",
                   label=f"best epoch {best_epoch}" + (" (saved)" if saved else ""))


# -- confusion matrices ----------------------------------------------------------------------------
def plot_confusion_matrices(matrices: dict[str, np.ndarray], path,
                            labels: Sequence[str] | None = None) -> Path:
    """Side by side confusion matrices (rows: true class, columns: predicted), the classes
    named by ``labels`` if given; a PNG.

    Each matrix has shape (k, k). The picture grows with k so that every count fits its cell
    in at least :data:`MIN_FONT_PT` points, in black or white, whichever contrasts more with
    the cell.
    """
    plt = _pyplot()
    from matplotlib.colors import Normalize

    matrices = {name: np.asarray(matrix) for name, matrix in matrices.items()}
    if not matrices:
        raise ValueError("no confusion matrix to draw")
    k = max(len(matrix) for matrix in matrices.values())
    digits = max(len(str(int(matrix.max()))) for matrix in matrices.values())
    # 4 inches a matrix, more when a cell would be too small for the longest count at the
    # smallest readable font (cells of about an inch less the room for the labels).
    cell = max(MIN_FONT_PT * _DIGIT_WIDTH * digits / _CELL_FILL, MIN_FONT_PT * 1.6) / 72
    label_room = 1.1 + (0.075 * max(map(len, map(str, labels))) if labels else 0.0)
    side = max(4.0, k * cell + label_room)
    fig, axes = plt.subplots(1, len(matrices), figsize=(len(matrices) * side, side),
                             squeeze=False, layout="constrained")
    cmap = plt.get_cmap("Blues")
    texts = []
    for ax, (name, matrix) in zip(axes[0], matrices.items(), strict=True):
        norm = Normalize(vmin=0, vmax=max(int(matrix.max()), 1))
        ax.imshow(matrix, cmap=cmap, norm=norm)
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                texts.append(ax.text(j, i, str(count), ha="center", va="center",
                                     color=text_colour_for(cmap(norm(count)))))
        ax.set_title(name)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_xticks(range(len(matrix)))
        ax.set_yticks(range(len(matrix)))
        if labels:
            ax.set_xticklabels(labels, rotation=90)
            ax.set_yticklabels(labels)
    # The real cell size is known once the layout is done: fit the counts and ticks to it.
    fig.canvas.draw()
    cell_pt = min(ax.get_window_extent().width / len(m) for ax, m in
                  zip(axes[0], matrices.values(), strict=True)) * 72 / fig.dpi
    size = max(MIN_FONT_PT,
               min(12.0, _CELL_FILL * cell_pt / (_DIGIT_WIDTH * digits), 0.55 * cell_pt))
    for text in texts:
        text.set_fontsize(size)
    for ax in axes[0]:
        ax.tick_params(labelsize=max(MIN_FONT_PT, min(10.0, 0.6 * cell_pt)))
    return _save(fig, plt, path)


# -- weights and activations -----------------------------------------------------------------------
def plot_first_layer(weights: np.ndarray, side: int, path, count: int = 32) -> Path:
    """The first ``count`` units' incoming weights (``weights`` of shape (side * side, units))
    as images, blue negative, red positive."""
    plt = _pyplot()
    count = min(count, weights.shape[1])
    columns = min(8, count)
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows), squeeze=False,
                             layout="constrained")
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < count:
            image = weights[:, k].reshape(side, side)
            limit = np.abs(image).max() or 1.0
            ax.imshow(image, cmap="coolwarm", vmin=-limit, vmax=limit)
    fig.suptitle("first-layer weights, one image per hidden unit (blue < 0 < red)")
    return _save(fig, plt, path)


def plot_activations(path) -> Path:
    """Each activation function and its derivative, as the layers compute them."""
    from ..nn.layers import LeakyReLU, ReLU, Sigmoid, Tanh

    plt = _pyplot()
    x = np.linspace(-4, 4, 401).reshape(-1, 1)
    layers = [Sigmoid(), Tanh(), ReLU(), LeakyReLU(0.1)]
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3.5),
                             layout="constrained")
    for ax, layer in zip(axes, layers, strict=True):
        value = layer.forward(x)
        slope = layer.backward(np.ones_like(x))   # the derivative, from the backward pass
        ax.plot(x, value, label="f(x)")
        ax.plot(x, slope, label="f'(x)", linestyle="--")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel("x")
        ax.set_title(repr(layer))
        ax.legend()
    return _save(fig, plt, path)


def _save(fig, plt, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The constrained layout (each figure's) keeps titles and legends inside the picture, whose
    # size stays the figure's; no version stamp, so that the same drawing gives the same file.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path

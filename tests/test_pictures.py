"""Pictures and printed explanations a learner can read: a palette where every class shows,
labelled axes, readable counts at any class count, whole-number epochs, the saved epoch marked,
explain's starting values, and a cut graph that says what it left out."""

import re
import struct

import numpy as np
import pytest

import bprop as bp
from bprop import autograd as ag
from bprop import demos
from bprop.cli import main
from bprop.tools import plotting
from bprop.tools.explain import explain

WHITE = np.ones(3)


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


@pytest.fixture
def figures(monkeypatch):
    """Every figure the plotting functions save, kept for inspection after it is written."""
    pytest.importorskip("matplotlib", reason="the pictures need matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    kept = []
    save = plotting._save

    def keep(fig, plt, path):
        written = save(fig, plt, path)
        FigureCanvasAgg(fig).draw()  # (closed by pyplot: a canvas again, to measure the layout)
        kept.append(fig)
        return written

    monkeypatch.setattr(plotting, "_save", keep)
    return kept


def assert_sensible_png(path, low=(300, 300), high=(3000, 3000)):
    width, height = png_size(path)
    assert low[0] <= width <= high[0] and low[1] <= height <= high[1], (path, width, height)
    assert path.stat().st_size > 5_000, path  # something is drawn on it


def assert_nothing_clipped(fig):
    """Titles, axis labels and legends lie inside the picture."""
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    pieces = [text for ax in fig.axes for text in (ax.title, ax.xaxis.label, ax.yaxis.label)]
    pieces += fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    if fig._suptitle is not None:
        pieces.append(fig._suptitle)
    for piece in pieces:
        if piece.get_visible() and getattr(piece, "get_text", lambda: "x")():
            extent = piece.get_window_extent(renderer)
            assert (extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1
                    and extent.y0 >= box.y0 - 1 and extent.y1 <= box.y1 + 1), piece


# -- the palette (NumPy only) ---------------------------------------------------------------------
@pytest.mark.parametrize("n", range(2, 11))
def test_every_class_region_shows_on_white_and_every_dot_on_its_region(n):
    regions, dots = plotting.class_colours(n)
    assert regions.shape == dots.shape == (n, 3)
    # Plainly different from the page (CIELAB distance 20; the old middle class was about 3).
    assert plotting.lab_distance(regions, WHITE).min() >= 20
    # A dot stands out on its own class's region, which is where most dots lie.
    assert plotting.lab_distance(dots, regions).min() >= 20
    # Regions tell classes apart, and so do dots.
    between = plotting.lab_distance(regions[:, None], regions[None])
    assert between[~np.eye(n, dtype=bool)].min() >= 10
    between = plotting.lab_distance(dots[:, None], dots[None])
    assert between[~np.eye(n, dtype=bool)].min() >= 20


def test_the_old_coolwarm_middle_class_would_fail_the_palette_check():
    # coolwarm's middle at alpha 0.3 over white, the README's old picture: nearly white.
    middle = 1 - 0.3 * (1 - np.array([0.865, 0.865, 0.865]))
    assert plotting.lab_distance(middle, WHITE) < 20


def test_many_classes_still_get_distinct_colours():
    regions, dots = plotting.class_colours(16)
    assert len({tuple(np.round(c, 3)) for c in dots}) == 16
    assert plotting.lab_distance(regions, WHITE).min() >= 10
    with pytest.raises(ValueError, match="at least 1"):
        plotting.class_colours(0)


@pytest.mark.parametrize("background", [(1, 1, 1), (0, 0, 0), (0.03, 0.19, 0.42), (0.42, 0.68,
                                                                                  0.84)])
def test_text_colour_contrasts_with_any_cell(background):
    colour = {"black": (0, 0, 0), "white": (1, 1, 1)}[plotting.text_colour_for(background)]
    assert plotting.contrast_ratio(colour, background) >= 4.5


# -- decision regions -----------------------------------------------------------------------------
def three_sectors(points):
    return ((np.arctan2(points[:, 1], points[:, 0]) + np.pi) // (2 * np.pi / 3)).astype(int)


def test_decision_regions_use_the_palette_with_a_legend_and_axis_labels(tmp_path, figures):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 2))
    path = plotting.plot_decision_boundary(three_sectors, X, three_sectors(X),
                                           tmp_path / "d.png", title="three classes",
                                           standardised=True)
    assert_sensible_png(path)
    fig = figures[-1]
    ax = fig.axes[0]
    regions, dots = plotting.class_colours(3)
    colours = ax.images[0].cmap(np.arange(3))[:, :3]
    np.testing.assert_allclose(colours, regions)
    assert ax.get_xlabel() == "feature 1 (standardised)"
    assert ax.get_ylabel() == "feature 2 (standardised)"
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["0", "1", "2"]
    assert "true" in legend.get_title().get_text()
    # Each class's dots are drawn in its saturated colour with a dark edge.
    for k, points in enumerate(ax.collections[-3:]):
        np.testing.assert_allclose(points.get_facecolor()[0, :3], dots[k])
        assert np.max(points.get_edgecolor()[0, :3]) < 0.3
    assert_nothing_clipped(fig)


def test_decision_regions_with_signed_labels_and_names(tmp_path, figures):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 2))

    def sign(points):
        return np.where(points[:, 0] > 0, 1, -1)

    plotting.plot_decision_boundary(sign, X, sign(X), tmp_path / "s.png",
                                    labels=["no", "yes"], feature_names=("age", "income"))
    fig = figures[-1]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["no", "yes"]
    assert fig.axes[0].get_xlabel() == "age" and "standardised" not in fig.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="3 labels for 2 classes"):
        plotting.plot_decision_boundary(sign, X, sign(X), tmp_path / "t.png",
                                        labels=["a", "b", "c"])


def test_fit_and_activation_and_first_layer_pictures(tmp_path, figures):
    x = np.linspace(-1, 1, 50)
    assert_sensible_png(plotting.plot_fit(x, x ** 2, x ** 2 + 0.01, tmp_path / "f.png",
                                          title="fit", standardised=True))
    assert figures[-1].axes[0].get_xlabel() == "x (standardised)"
    assert_sensible_png(plotting.plot_activations(tmp_path / "a.png"), high=(3000, 600))
    weights = np.random.default_rng(0).standard_normal((64, 12))
    assert_sensible_png(plotting.plot_first_layer(weights, 8, tmp_path / "w.png"),
                        low=(300, 100))
    for fig in figures:
        assert_nothing_clipped(fig)


# -- curves ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [2, 3, 7, 60])
def test_curves_tick_whole_epochs(tmp_path, figures, epochs):
    values = list(np.linspace(1, 0.1, epochs))
    history = {"loss": values, "val_loss": values[::-1], "accuracy": values,
               "val_accuracy": values}
    assert_sensible_png(plotting.plot_history(history, tmp_path / "h.png"))
    assert_sensible_png(plotting.plot_loss_curves({"bprop": values}, tmp_path / "l.png"))
    for fig in figures:
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
            assert ax.get_xlabel() == "epoch"
            assert not [line for line in ax.get_lines() if line.get_gid() == "best-epoch"]
        assert_nothing_clipped(fig)


def test_the_saved_epoch_is_marked_when_given(tmp_path, figures):
    history = {"loss": [1.0, 0.6, 0.4, 0.3, 0.25], "val_loss": [1.0, 0.7, 0.5, 0.55, 0.6]}
    plotting.plot_history(history, tmp_path / "h.png", best_epoch=3)
    plotting.plot_loss_curves({"a": [3.0, 2.0], "b": [3.0, 1.0]}, tmp_path / "l.png",
                              best_epoch=2, title="a long title " * 6)
    for fig, best in zip(figures, (3, 2), strict=True):
        ax = fig.axes[0]
        marks = [line for line in ax.get_lines() if line.get_gid() == "best-epoch"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [best, best]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"best epoch {best} (saved)" in labels
        assert_nothing_clipped(fig)
    plotting.plot_history(history, tmp_path / "h.png", best_epoch=3, saved=False)
    labels = [t.get_text() for t in figures[-1].axes[0].get_legend().get_texts()]
    assert "best epoch 3" in labels and not any("saved" in label for label in labels)
    for wrong in (0, 6, 2.5):
        with pytest.raises(ValueError, match="best_epoch must be a whole number in 1..5"):
            plotting.plot_history(history, tmp_path / "x.png", best_epoch=wrong)


# -- confusion matrices ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 10, 30])
def test_confusion_counts_are_readable_at_any_class_count(tmp_path, figures, k):
    rng = np.random.default_rng(k)
    matrix = rng.integers(0, 60, (k, k))
    np.fill_diagonal(matrix, 1135)  # MNIST-sized counts on the diagonal: four digits
    path = plotting.plot_confusion_matrices({"test set": matrix}, tmp_path / "c.png",
                                            labels=[f"class {i}" for i in range(k)])
    assert_sensible_png(path, high=(4000, 4000))
    fig = figures[-1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    cell = ax.get_window_extent(renderer).width / k
    image = ax.images[0]
    assert len(ax.texts) == np.count_nonzero(matrix)
    for text in ax.texts:
        assert text.get_fontsize() >= 8, text.get_fontsize()
        assert text.get_window_extent(renderer).width <= cell  # the count fits its cell
        j, i = (int(round(v)) for v in text.get_position())
        background = image.to_rgba(matrix[i, j])[:3]
        colour = {"black": (0, 0, 0), "white": (1, 1, 1)}[text.get_color()]
        assert plotting.contrast_ratio(colour, background) >= 4.5
    for label in ax.get_xticklabels() + ax.get_yticklabels():
        assert label.get_fontsize() >= 8
    assert_nothing_clipped(fig)


def test_side_by_side_matrices_keep_their_titles(tmp_path, figures):
    matrix = np.array([[30, 2, 0], [1, 25, 4], [0, 3, 35]])
    names = {"bprop": matrix, "scikit-learn MLPClassifier": matrix, "PyTorch (torch.nn)": matrix}
    path = plotting.plot_confusion_matrices(names, tmp_path / "m.png",
                                            labels=["setosa", "versicolor", "virginica"])
    assert png_size(path) == (1200, 400)
    fig = figures[-1]
    assert [ax.get_title() for ax in fig.axes] == list(names)
    assert_nothing_clipped(fig)


def test_the_same_drawing_gives_the_same_file(tmp_path):
    pytest.importorskip("matplotlib", reason="the pictures need matplotlib")
    matrix = np.array([[5, 1], [0, 7]])
    first = plotting.plot_confusion_matrices({"a": matrix}, tmp_path / "1.png")
    second = plotting.plot_confusion_matrices({"a": matrix}, tmp_path / "2.png")
    assert first.read_bytes() == second.read_bytes()


# -- explain --------------------------------------------------------------------------------------
def printed_values(printed, name):
    """The values printed under the step called ``name``, in the shape printed beside it."""
    match = re.search(rf"^  {re.escape(name)} = .*?    shape \(([\d, ]*)\).*\n((?:      .*\n)+)",
                      printed, flags=re.M)
    assert match, name
    shape = tuple(int(n) for n in match[1].replace(",", " ").split())
    numbers = match[2].replace("[", " ").replace("]", " ").split()
    return np.array([float(n) for n in numbers]).reshape(shape)


def test_explain_starts_from_values_a_student_can_redo_by_hand(capsys):
    assert main(["explain"]) == 0
    printed = capsys.readouterr().out
    start = printed.index("START")
    assert start < printed.index("FORWARD PASS")
    for name in ("a0", "y", "W1", "b1", "W2", "b2"):
        assert printed.index(f"\n  {name} = ") > start, name
    a0, W1, b1 = (printed_values(printed, name) for name in ("a0", "W1", "b1"))
    W2, b2, y = (printed_values(printed, name) for name in ("W2", "b2", "y"))
    assert a0.shape == (4, 2) and W1.shape == (2, 3) and b1.shape == (3,) and y.shape == (4, 1)
    # z1 = a0 @ W1 + b1 by hand, from the printed (4-decimal) values.
    np.testing.assert_allclose(a0 @ W1 + b1, printed_values(printed, "z1"), atol=2e-4)
    a1 = printed_values(printed, "a1")
    np.testing.assert_allclose(a1 @ W2 + b2, printed_values(printed, "z2"), atol=5e-4)
    np.testing.assert_array_equal(y.ravel(), [0, 1, 1, 0])  # XOR's targets


def test_explain_reports_the_parameters_of_the_network_it_was_given():
    X, y = bp.datasets.make_xor()
    model = bp.Sequential([bp.Dense(2, 3), bp.BatchNorm(3), bp.Tanh(), bp.Dense(3, 1)], seed=3)
    weight = model.layers[0].weight.copy()
    report = explain(model, X, y, "mse")
    names = [step.name for step in report.start]
    assert names == ["a0", "y", "W1", "b1", "gamma1", "beta1", "W2", "b2"]
    np.testing.assert_array_equal(report.start[2].value, weight)
    assert "gamma1 = the initial" in report.to_text() and "## Start" in report.to_markdown()
    assert "<h2>Start</h2>" in report.to_html()


@pytest.mark.parametrize("argv", [["--activation", "relu"],
                                  ["--activation", "relu", "--layers", "2,5,1"],
                                  ["--activation", "relu", "--loss", "cross_entropy", "--layers",
                                   "2,4,2", "--dataset", "moons", "--samples", "8"]])
def test_explain_never_prints_a_negative_zero(argv, capsys):
    # ReLU's backward multiplies negative gradients by 0: these runs hold -0.0 values.
    assert main(["explain", *argv]) == 0
    printed = capsys.readouterr().out
    assert "delta1 = dL/da1 * (z1 > 0)" in printed
    assert not re.search(r"-0\.(?!\d)", printed), "a -0. in explain's output"
    assert re.search(r"(?<![-\d])0\.(?!\d)", printed)  # the zeros are printed, as 0.


# -- the cut graph ---------------------------------------------------------------------------------
def chain(length):
    x = ag.Tensor(1.0, requires_grad=True, name="x")
    y = x
    for _ in range(length):
        y = y * 1.0
    return y


def test_a_graph_cut_by_lines_says_how_many_nodes_it_left_out():
    loss = chain(10)  # 21 nodes: x, ten constants, ten products
    whole = ag.render_text(loss)
    assert len(whole.splitlines()) == 21 and "not drawn" not in whole
    cut = ag.render_text(loss, max_lines=5).splitlines()
    assert len(cut) == 6 and cut[:5] == whole.splitlines()[:5]
    assert cut[-1].startswith("... 16 of the graph's 21 nodes not drawn")
    assert "cut at 5 lines" in cut[-1]
    with pytest.raises(ValueError, match="max_lines must be at least 1"):
        ag.render_text(loss, max_lines=0)


def test_a_graph_cut_by_depth_says_how_many_nodes_it_left_out():
    text = ag.render_text(chain(200), max_depth=10).splitlines()
    assert any(line.endswith("... (deeper than 10 levels; not drawn)") for line in text[:-1])
    match = re.fullmatch(r"\.\.\. (\d+) of the graph's 401 nodes not drawn: deeper than 10 "
                         r"levels", text[-1])
    assert match, text[-1]
    drawn = sum("    value " in line for line in text)  # one line for each node drawn
    assert drawn == 21 and int(match[1]) == 401 - drawn


def test_the_autograd_demo_says_what_its_graph_leaves_out(capsys):
    demos.run("autograd")
    printed = capsys.readouterr().out
    graph = printed.split("intermediate results):\n")[1].splitlines()
    assert graph[0].startswith("t11 = ")
    note = graph[12]
    assert re.fullmatch(r"\.\.\. 4 of the graph's 16 nodes not drawn \(b1, W2, b2, t0\): "
                        r"the picture is cut at 12 lines", note), note


@pytest.mark.parametrize("n_classes, name", [(12, "class_{}"), (30, "{}")])
def test_a_decision_plot_of_many_or_long_class_names_fits_its_figure(tmp_path, n_classes, name):
    import warnings

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = rng.integers(0, n_classes, 200)
    centres = rng.normal(size=(n_classes, 2))

    def predict(points):
        return ((points[:, None, :] - centres) ** 2).sum(axis=2).argmin(axis=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (constrained layout warns when a legend cannot fit)
        path = plotting.plot_decision_boundary(predict, X, y, tmp_path / "many.png",
                                               labels=[name.format(k) for k in range(n_classes)])
    assert path.stat().st_size > 5000

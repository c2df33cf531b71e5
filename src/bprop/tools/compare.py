"""Train the same network with bprop, scikit-learn and PyTorch, side by side, and compare.

Every peer gets the same architecture, optimizer, learning rate, batch size, number of epochs,
data split and initial weights (scikit-learn and PyTorch allow setting them), and no weight
penalty. Each peer runs in a fresh process of its own, so that its peak memory is measured
honestly (the peak resident set size of that process, and how much of it training added on top
of the interpreter, libraries and data: the peak is reset after the data are loaded, where Linux
allows it). A peer that is not installed is skipped with a one-line message.

From Python::

    result = bp.compare("digits", epochs=10)
    print(result.table())

From a shell::

    bprop compare --dataset mnist --hidden 256,128 --epochs 5 --out compare-mnist
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._version import __version__
from ..backend.devices import get_device
from ..nn.builder import mlp
from ..nn.init import sklearn_weights
from ..optim.callbacks import Callback
from ..optim.optimizers import get_optimizer

PEERS = ("bprop", "sklearn", "torch", "torch-gpu", "jax")
DATASETS = ("digits", "mnist", "fashion-mnist")
OPTIMIZERS = ("adam", "sgd")


@dataclass
class Settings:
    """What is compared: the same for every peer."""

    dataset: str = "digits"
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 10
    seed: int = 0
    dtype: str = "float32"
    data_dir: str | None = None
    target: str | int = -1
    test_size: float = 0.2
    device: str = "cpu"  # where bprop trains (PyTorch on the GPU is the torch-gpu peer)


@dataclass
class PeerResult:
    peer: str
    status: str = "ok"  # "ok", "failed: <the error>", or why the peer was skipped
    test_accuracy: float | None = None
    train_seconds: float | None = None
    seconds_per_epoch: float | None = None   # median, first epoch excluded
    epoch_seconds: list[float] = field(default_factory=list)
    predict_seconds: float | None = None       # inference on the whole test set
    peak_rss_mb: float | None = None
    training_mb: float | None = None
    loss_curve: list[float] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    version: str = ""


@dataclass
class Comparison:
    settings: Settings
    results: list[PeerResult]
    machine: dict

    def ran(self) -> list[PeerResult]:
        return [r for r in self.results if r.status == "ok"]

    def table(self, markdown: bool = False) -> str:
        """The comparison as a text (or Markdown) table, one row per peer that ran."""
        header = ["peer", "test accuracy", "train time (s)", "time/epoch (s)",
                  "peak RSS (MB)", "training memory (MB)"]
        rows = [[f"{r.peer} {r.version}".strip(), f"{r.test_accuracy:.4f}",
                 f"{r.train_seconds:.2f}", f"{r.seconds_per_epoch:.3f}",
                 f"{r.peak_rss_mb:.0f}", f"{r.training_mb:.0f}"] for r in self.ran()]
        if markdown:
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            return "\n".join(lines)
        widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        return "\n".join(lines)

    def describe(self) -> str:
        s = self.settings
        hidden = ",".join(map(str, s.hidden))
        return (f"{s.dataset}: hidden layers {hidden}, {s.activation}, {s.optimizer} lr {s.lr}, "
                f"batch {s.batch_size}, {s.epochs} epochs, seed {s.seed}")

    def save(self, folder) -> list[Path]:
        """Write ``comparison.json``, ``comparison.md`` and, with matplotlib, the loss curves
        and confusion matrices as PNG; return the paths written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = {"settings": asdict(self.settings), "machine": self.machine,
                "results": [asdict(r) for r in self.results]}
        paths = [folder / "comparison.json", folder / "comparison.md"]
        paths[0].write_text(json.dumps(data, indent=2) + "\n")
        skipped = [f"- {r.peer}: {r.status}" if r.status.startswith("failed")
                   else f"- {r.peer}: skipped ({r.status})"
                   for r in self.results if r.status != "ok"]
        paths[1].write_text("\n".join([
            f"# Comparison on {self.settings.dataset}", "", self.describe(), "",
            self.table(markdown=True), "", *skipped, "",
            f"Machine: {self.machine['description']}", ""]))
        from .plotting import have_matplotlib

        if not have_matplotlib():
            print('no pictures: pip install "bprop[plot]" (matplotlib) to draw them')
        elif self.ran():
            from .plotting import plot_confusion_matrices, plot_loss_curves

            curves = {r.peer: r.loss_curve for r in self.ran()}
            paths.append(plot_loss_curves(curves, folder / "loss_curves.png",
                                          title=self.describe()))
            matrices = {r.peer: np.array(r.confusion) for r in self.ran()}
            paths.append(plot_confusion_matrices(matrices, folder / "confusion_matrices.png"))
        return paths


def compare(dataset: str = "digits", *, hidden=(128,), activation: str = "relu",
            optimizer: str = "adam", lr: float = 1e-3, batch_size: int = 128,
            epochs: int = 10, seed: int = 0, dtype: str = "float32", data_dir=None, target=-1,
            test_size: float = 0.2, peers=PEERS, out_dir=None, verbose: bool = True,
            device: str = "cpu") -> Comparison:
    """Train the same network with each of ``peers`` and compare them.

    Parameters
    ----------
    dataset : "digits" (offline, from scikit-learn's package), "mnist", "fashion-mnist", or
        the path of a CSV file (with ``target`` naming its target column).
    hidden, activation, optimizer, lr, batch_size, epochs, seed : the network and its training,
        the same for every peer (``activation`` in relu, tanh, logistic; ``optimizer`` in
        adam, sgd).
    dtype : "float32" (default) or "float64", for every peer.
    device : where bprop trains: "cpu" (default), "cuda" or "auto" (PyTorch on the GPU is
        the "torch-gpu" peer).
    peers : any of "bprop", "sklearn", "torch", "torch-gpu", "jax".
    out_dir : if given, the table (JSON, Markdown) and pictures are written there.

    Returns
    -------
    Comparison
        ``comparison.table()`` prints it.
    """
    settings = Settings(dataset=str(dataset), hidden=tuple(int(h) for h in hidden),
                        activation=activation, optimizer=optimizer, lr=float(lr),
                        batch_size=int(batch_size), epochs=int(epochs), seed=int(seed),
                        dtype=str(np.dtype(dtype)),
                        data_dir=None if data_dir is None else str(data_dir), target=target,
                        test_size=float(test_size),
                        # (resolved here: "auto" is decided, and said, once)
                        device=get_device(device).name)
    _check_settings(settings, peers)
    load_data(settings)  # fail early, in this process, on a missing or broken dataset
    results = []
    for peer in peers:
        missing = missing_requirement(peer)
        if missing:
            if verbose:
                print(f"{peer}: skipped ({missing})", flush=True)
            results.append(PeerResult(peer, status=missing))
            continue
        if verbose:
            print(f"{peer}: training ...", flush=True)
        result = _run_in_subprocess(peer, settings)
        if verbose and result.status == "ok":
            print(f"{peer}: test accuracy {result.test_accuracy:.4f} in "
                  f"{result.train_seconds:.2f} s", flush=True)
        elif verbose:
            print(f"{peer}: failed ({result.status})", flush=True)
        results.append(result)
    comparison = Comparison(settings, results, machine_description())
    if out_dir is not None:
        comparison.save(out_dir)
    return comparison


def _check_settings(settings: Settings, peers) -> None:
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; choose from {list(PEERS)}")
    if settings.activation not in ("relu", "tanh", "logistic"):
        raise ValueError(f"activation must be relu, tanh or logistic, got "
                         f"{settings.activation!r}")
    if settings.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be adam or sgd, got {settings.optimizer!r}")
    if settings.dataset not in DATASETS and not settings.dataset.endswith(".csv"):
        raise ValueError(f"unknown dataset {settings.dataset!r}; choose from {list(DATASETS)} "
                         "or give the path of a .csv file")
    if not settings.hidden or min(settings.hidden) < 1:
        raise ValueError(f"hidden layer sizes must be positive, got {settings.hidden}")
    if settings.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {settings.dtype!r}")
    if settings.epochs < 1 or settings.batch_size < 1 or not settings.lr > 0:
        raise ValueError("epochs, batch_size and lr must be positive")


def missing_requirement(peer: str) -> str:
    """Why ``peer`` cannot run here ("" if it can)."""
    module = {"sklearn": "sklearn", "torch": "torch", "torch-gpu": "torch",
              "jax": "jax"}.get(peer)
    if module and importlib.util.find_spec(module) is None:
        install = {"sklearn": "pip install scikit-learn",
                   "torch": "pip install torch (the CPU build on this project's machines: "
                            "pip install torch==2.13.0)",
                   "jax": "pip install jax"}[module]
        return f"{module} is not installed: {install}"
    if peer == "torch-gpu":
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU is available"
    return ""


# -- the data and the starting point, identical in every process ----------------------------------
def load_data(settings: Settings):
    """``X_train, X_test, y_train, y_test`` as float32 features and int64 labels."""
    from .. import data as datasets
    from ..data.preprocessing import StandardScaler, train_test_split

    if settings.dataset == "digits":
        X, y = datasets.load_digits()
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=settings.test_size, stratify=y, seed=settings.seed)
    elif settings.dataset in ("mnist", "fashion-mnist"):
        load = datasets.load_mnist if settings.dataset == "mnist" else datasets.load_fashion_mnist
        (X_train, y_train), (X_test, y_test) = load(settings.data_dir)
    else:
        data = datasets.load_csv(settings.dataset, target=settings.target)
        if data.y.dtype.kind == "f":
            raise ValueError(f"{settings.dataset}: the target column {data.target_name!r} holds "
                             "continuous values; compare trains classifiers (class labels)")
        X_train, X_test, y_train, y_test = train_test_split(
            data.X, data.y, test_size=settings.test_size, stratify=data.y, seed=settings.seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    # Whatever the labels are (-1/1, 0/5/10, ...), every peer sees classes 0..k-1.
    classes, codes = np.unique(np.concatenate([y_train, y_test]), return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{settings.dataset} has a single class; compare needs at least two")
    y_train, y_test = codes[:len(y_train)], codes[len(y_train):]
    return (X_train.astype(np.float32, copy=False), X_test.astype(np.float32, copy=False),
            y_train.astype(np.int64), y_test.astype(np.int64))


def initial_weights(settings: Settings, n_features: int, n_classes: int):
    """Glorot-uniform weights and biases (scikit-learn's initialisation), from the seed."""
    sizes = [n_features, *settings.hidden, n_classes]
    weights = sklearn_weights(sizes, np.random.default_rng(settings.seed),
                              logistic=settings.activation == "logistic")
    return [(W.astype(np.float32), b.astype(np.float32)) for W, b in weights]


# -- one peer, in its own process ---------------------------------------------------------------
def _run_in_subprocess(peer: str, settings: Settings) -> PeerResult:
    """Run ``peer`` in a fresh Python process (``python -m bprop.tools.compare``), which works
    from any script, guarded by ``if __name__ == "__main__"`` or not; a peer that fails is
    reported as failed, and the others still run."""
    payload = json.dumps({"peer": peer, "settings": asdict(settings)})
    done = subprocess.run([sys.executable, "-m", "bprop.tools.compare", payload],
                          capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        errors = done.stderr.strip().splitlines()
        return PeerResult(peer, status=f"failed: {errors[-1] if errors else 'no output'}")
    return PeerResult(**json.loads(lines[-1]))


def _worker(payload: str) -> None:
    """The other end of :func:`_run_in_subprocess`: train one peer, print its result as
    JSON on the last line."""
    request = json.loads(payload)
    settings = Settings(**request["settings"])
    settings.hidden = tuple(settings.hidden)
    print(json.dumps(asdict(run_peer(request["peer"], settings))), flush=True)


def run_peer(peer: str, settings: Settings) -> PeerResult:
    """Load the data, train ``peer`` from the shared initial weights, evaluate; measured."""
    X_train, X_test, y_train, y_test = load_data(settings)
    dtype = np.dtype(settings.dtype)
    X_train, X_test = X_train.astype(dtype, copy=False), X_test.astype(dtype, copy=False)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    weights = [(W.astype(dtype), b.astype(dtype))
               for W, b in initial_weights(settings, X_train.shape[1], n_classes)]
    train = {"bprop": _train_bprop, "sklearn": _train_sklearn, "torch": _train_torch,
             "torch-gpu": _train_torch, "jax": _train_jax}[peer]
    module = {"sklearn": "sklearn.neural_network", "torch": "torch", "torch-gpu": "torch",
              "jax": "jax"}.get(peer)
    if module:  # importing the library is not training either
        importlib.import_module(module)
    rss_before = current_rss_mb()
    reset_peak_rss()  # so that loading the data does not count as training
    predict, loss_curve, epoch_seconds, version = train(settings, weights, X_train, y_train,
                                                        peer)
    peak = peak_rss_mb()
    predicted = predict(X_test)
    predict_seconds = min(_timed(predict, X_test) for _ in range(3))
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (y_test, predicted), 1)
    # The first epoch carries one-off costs (JIT compilation, memory pools): the median of the
    # others is the steady speed.
    steady = epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds
    return PeerResult(peer, test_accuracy=float(np.mean(predicted == y_test)),
                      train_seconds=float(sum(epoch_seconds)),
                      seconds_per_epoch=float(np.median(steady)), epoch_seconds=epoch_seconds,
                      predict_seconds=predict_seconds, peak_rss_mb=peak,
                      training_mb=max(peak - rss_before, 0.0),
                      loss_curve=[float(v) for v in loss_curve], confusion=confusion.tolist(),
                      version=version)


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


class _EpochTimer(Callback):
    """The seconds each epoch of ``fit`` took."""

    def on_train_begin(self, model):
        self.times, self.last = [], time.perf_counter()

    def on_epoch_end(self, epoch, history):
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now


def bprop_network(settings: Settings, weights):
    """bprop's network for ``settings``, starting from ``weights`` (:func:`initial_weights`)."""
    sizes = [weights[0][0].shape[0], *(W.shape[1] for W, _ in weights)]
    return mlp(sizes, activation={"logistic": "sigmoid"}.get(settings.activation,
                                                              settings.activation),
               seed=settings.seed, dtype=settings.dtype, weights=weights,
               device=settings.device)


def _train_bprop(settings, weights, X, y, peer):
    model = bprop_network(settings, weights)
    optimizer = get_optimizer(settings.optimizer, lr=settings.lr)
    timer = _EpochTimer()
    history = model.fit(X, y, loss="softmax_cross_entropy", optimizer=optimizer,
                        epochs=settings.epochs, batch_size=settings.batch_size, metrics=[],
                        callbacks=[timer])
    return model.predict, history["loss"], timer.times, __version__


def _train_sklearn(settings, weights, X, y, peer):
    import warnings

    import sklearn
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=settings.hidden, activation=settings.activation,
                        solver=settings.optimizer, alpha=0.0, batch_size=settings.batch_size,
                        learning_rate_init=settings.lr, momentum=0.0, max_iter=1, tol=0.0,
                        n_iter_no_change=settings.epochs + 1, warm_start=True,
                        random_state=settings.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one_of_each = [np.flatnonzero(y == label)[0] for label in np.unique(y)]
        clf.fit(X[one_of_each], y[one_of_each])  # builds the network; its weights are replaced
        coefs = [W.copy() for W, _ in weights]
        intercepts = [b.copy() for _, b in weights]
        if len(np.unique(y)) == 2:
            # scikit-learn gives two classes one logistic output; sigmoid(z1 - z0) is exactly
            # the softmax of the other peers' two outputs, so this is the same starting network.
            coefs[-1] = coefs[-1][:, 1:] - coefs[-1][:, :1]
            intercepts[-1] = intercepts[-1][1:] - intercepts[-1][:1]
        clf.coefs_, clf.intercepts_ = coefs, intercepts
        clf.loss_curve_ = []
        clf.set_params(max_iter=settings.epochs)
        start = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - start
    # scikit-learn trains every epoch in one call: each epoch gets the average.
    return clf.predict, clf.loss_curve_, [seconds / settings.epochs] * settings.epochs, \
        sklearn.__version__


def _train_torch(settings, weights, X, y, peer):
    import torch

    device = "cuda" if peer == "torch-gpu" else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(settings.seed)
    activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
                  "logistic": torch.nn.Sigmoid}[settings.activation]
    dtype = getattr(torch, settings.dtype)
    modules = []
    for i, (W, b) in enumerate(weights):
        linear = torch.nn.Linear(*W.shape, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if i < len(weights) - 1:
            modules.append(activation())
    net = torch.nn.Sequential(*modules).to(device)
    if settings.optimizer == "adam":  # the fastest Adam PyTorch has on each device
        optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr, fused=True)
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=settings.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    X_t, y_t = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    n = len(X)
    losses, times = [], []
    for _ in range(settings.epochs):
        start = time.perf_counter()
        order = torch.randperm(n, device=device)
        total = torch.zeros((), device=device, dtype=dtype)
        for first in range(0, n, settings.batch_size):
            rows = order[first:first + settings.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(X_t[rows]), y_t[rows])
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(rows)
        losses.append(float(total) / n)  # float() waits for the device
        times.append(time.perf_counter() - start)

    def predict(X_new):
        with torch.no_grad():
            return net(torch.from_numpy(X_new).to(device)).argmax(dim=1).cpu().numpy()

    return predict, losses, times, torch.__version__


def _train_jax(settings, weights, X, y, peer):
    import jax
    import jax.numpy as jnp

    if settings.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    activation = {"relu": jax.nn.relu, "tanh": jnp.tanh,
                  "logistic": jax.nn.sigmoid}[settings.activation]
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights]
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, settings.lr

    def loss_fn(params, xb, yb):
        h = xb
        for W, b in params[:-1]:
            h = activation(h @ W + b)
        logits = h @ params[-1][0] + params[-1][1]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=1))

    @jax.jit
    def step(params, moments, t, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        if settings.optimizer == "sgd":
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), moments, loss
        mean, square = moments
        mean = jax.tree_util.tree_map(lambda m, g: beta1 * m + (1 - beta1) * g, mean, grads)
        square = jax.tree_util.tree_map(lambda v, g: beta2 * v + (1 - beta2) * g * g, square,
                                        grads)
        size = lr / (1 - beta1**t)
        correction = jnp.sqrt(1 - beta2**t)
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - size * m / (jnp.sqrt(v) / correction + eps), params, mean,
            square)
        return params, (mean, square), loss

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    moments = (zeros, zeros)
    X_d, y_d = jnp.asarray(X), jnp.asarray(y)
    rng = np.random.default_rng(settings.seed)
    n, t = len(X), 0
    losses, times = [], []
    for _ in range(settings.epochs):
        start = time.perf_counter()
        order = jnp.asarray(rng.permutation(n))
        total = 0.0
        for first in range(0, n, settings.batch_size):
            rows = order[first:first + settings.batch_size]
            t += 1
            params, moments, loss = step(params, moments, t, X_d[rows], y_d[rows])
            total += loss * len(rows)
        losses.append(float(total) / n)
        times.append(time.perf_counter() - start)

    forward = jax.jit(lambda params, x: loss_logits(params, x, activation))

    def predict(X_new):
        return np.asarray(forward(params, jnp.asarray(X_new)).argmax(axis=1))

    return predict, losses, times, jax.__version__


def loss_logits(params, x, activation):
    for W, b in params[:-1]:
        x = activation(x @ W + b)
    return x @ params[-1][0] + params[-1][1]


# -- measuring -----------------------------------------------------------------------------------
def current_rss_mb() -> float:
    """This process's resident memory now (Linux; 0 where /proc is absent)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    """Restart the peak-memory count (Linux: writing 5 to /proc/self/clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """This process's peak resident memory since the start or the last reset."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def machine_description() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count()
    description = (f"{cpu}, {cores} cores, Python {platform.python_version()}, "
                   f"NumPy {np.__version__}, {platform.system()}")
    return {"description": description, "cpu": cpu, "cores": cores,
            "python": platform.python_version(), "numpy": np.__version__,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}


# -- command line --------------------------------------------------------------------------------
def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bprop compare`` options to ``parser``."""
    parser.add_argument("--dataset", default="digits",
                        help="digits (default, offline), mnist, fashion-mnist, or a CSV path")
    parser.add_argument("--target", default="-1",
                        help="the CSV's target column, by name or index (default: last)")
    parser.add_argument("--data-dir", default=None, help="folder holding the dataset's files")
    parser.add_argument("--hidden", default="128",
                        help="hidden layer sizes, comma-separated (default: 128)")
    parser.add_argument("--activation", default="relu", choices=["relu", "tanh", "logistic"])
    parser.add_argument("--optimizer", default="adam", choices=list(OPTIMIZERS))
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                        help="where bprop trains (default cpu; PyTorch's GPU run is the "
                             "torch-gpu peer)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated, from {','.join(PEERS)}")
    parser.add_argument("--out", default="compare-output",
                        help="folder for comparison.json, comparison.md and the pictures")
    return parser


def run_from_arguments(args: argparse.Namespace) -> int:
    target = int(args.target) if args.target.lstrip("-").isdigit() else args.target
    try:
        hidden = tuple(int(size) for size in args.hidden.split(","))
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers, got {args.hidden!r}") \
            from None
    comparison = compare(args.dataset, hidden=hidden, activation=args.activation,
                         optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size,
                         epochs=args.epochs, seed=args.seed, dtype=args.dtype,
                         data_dir=args.data_dir, device=args.device,
                         target=target, peers=[p for p in args.peers.split(",") if p],
                         out_dir=args.out)
    print()
    print(comparison.describe())
    print(comparison.table())
    print(f"\nwritten to {args.out}/ (comparison.json, comparison.md and pictures)")
    failed = [r.peer for r in comparison.results if r.status.startswith("failed")]
    if failed or not comparison.ran():
        print(f"bprop compare: {', '.join(failed) or 'no peer'} "
              f"{'failed' if failed else 'ran'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    _worker(sys.argv[1])

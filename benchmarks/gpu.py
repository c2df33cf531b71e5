"""Train the same MLPs with bprop on a GPU (CuPy) and with PyTorch on the same GPU; compare.

Workloads (MNIST's 60,000 training images, ReLU, softmax cross-entropy, Adam lr 1e-3, float32,
every peer from the same He-normal weights drawn once with NumPy):

    mnist-128, mnist-1024, mnist-8192   784-256-128-10 at batch 128, 1024 and 8192
    wide-4096                           784-4096-4096-10 at batch 4096

Peers, one after another in this process:

    bprop           bp.mlp(..., device="cuda"); fit moves the data to the GPU once
    torch-eager     PyTorch eager on "cuda", torch.optim.Adam(fused=True)
    torch-graph     the whole step (gather of the batch's rows, forward, backward, capturable
                    Adam) captured in CUDA graphs with torch.cuda.graph, replayed per batch
    torch-compile   torch.compile(model, mode="reduce-overhead") with the fused Adam

Reported per workload and peer: seconds per epoch (median of the epochs after the first, the
GPU synchronised before each reading of the clock), bprop's time as a fraction of the peer's,
achieved GFLOP/s (the epoch's matrix products: forward and weight gradients of every layer,
input gradients of every layer but the first, which no peer computes; as benchmark.py counts
them), that rate against cuBLAS's float32 GEMM rate measured in the same run (CuPy, two
8192x8192 matrices, best of five), peak GPU memory (bprop: what CuPy's memory pool holds after
training, which only grows while nothing frees the pool, so its high-water mark; PyTorch:
torch.cuda.max_memory_allocated), and test accuracy on the 10,000 test images. A peer that
fails is reported with its reason; the others still run. Then the issue's targets (set for an
H100/H200), each met or NOT MET (a miss does not change the exit status):

* at batch 128, bprop's seconds per epoch at most 0.5 x PyTorch eager's, and at most
  PyTorch's with CUDA graphs (torch-graph, torch-compile);
* the wide network at 70% of the measured GEMM rate or more;
* bprop's test accuracy within 0.3 points of PyTorch eager's, either way.

    python benchmarks/gpu.py                                   # on a machine with a GPU
    python benchmarks/gpu.py --workloads mnist-128 --peers bprop,torch-eager --out gpu.json
    python benchmarks/gpu.py --dry-run                         # anywhere (see below)

Without a usable GPU (no CuPy, no driver) the script says why on one line and exits with
status 2, unless ``--dry-run`` is given. The dry run goes through the same functions with
bprop on the CPU stand-in for CuPy (``bprop.backend.standin``, NumPy underneath), on the first
1,024 training and 512 test images, for 2 epochs by default, with the wide network narrowed to
784-512-512-10; the PyTorch peers run on the CPU (torch-graph cannot: it is skipped), and the
GEMM rate is NumPy's on 1024x1024 matrices. It shows that every part runs and writes its table
and JSON, and it counts the host-device copies bprop's fit makes (the data go over once, then
one permutation per epoch, and one read-back of the loss per epoch), which the real run cannot
count. Its times, rates and accuracies say nothing about a GPU. On two cores it takes about
5 seconds, or 25 with torch-compile (PyTorch compiling for the CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import bprop as bp
from bprop.backend.devices import DeviceUnavailableError, get_device, stand_in_for_cuda
from bprop.data import load_mnist
from bprop.tools import compare as comparison

# This folder's other script, imported without leaving the folder on sys.path, where its
# distributed.py would hide dask's distributed package from whoever imports this module.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from benchmark import flops_per_epoch  # noqa: E402
finally:
    del sys.path[0]

WORKLOADS = {  # name: (hidden sizes, batch size)
    "mnist-128": ((256, 128), 128),
    "mnist-1024": ((256, 128), 1024),
    "mnist-8192": ((256, 128), 8192),
    "wide-4096": ((4096, 4096), 4096),
}
PEERS = ("bprop", "torch-eager", "torch-graph", "torch-compile")
LR, SEED = 1e-3, 0

#: the dry run's smaller problem: slices of the data, and narrower hidden layers where the
#: real ones would take minutes on a CPU
DRY_RUN = {"n_train": 1024, "n_test": 512, "epochs": 2, "hidden": {"wide-4096": (512, 512)},
           "gemm_size": 1024}
GEMM_SIZE, GEMM_REPEATS = 8192, 5

TARGET_EAGER = 0.5   # at batch 128: bprop's s/epoch at most this fraction of torch-eager's
TARGET_GRAPH = 1.0   # ... and at most this fraction of the CUDA-graph peers'
TARGET_GEMM = 0.70   # the wide network: at least this fraction of the GEMM rate
TARGET_POINTS = 0.3  # accuracy: at most this many points from torch-eager's, either way


@dataclass
class Problem:
    """One workload as it is trained: the data, the layer sizes and the starting weights."""

    name: str
    sizes: list[int]
    batch_size: int
    X_train: np.ndarray  # (n_train, 784) float32
    y_train: np.ndarray  # (n_train,) int64
    X_test: np.ndarray   # (n_test, 784) float32
    y_test: np.ndarray   # (n_test,) int64
    weights: list[tuple[np.ndarray, np.ndarray]] = field(repr=False)  # W (n_in, n_out), b


@dataclass
class PeerRun:
    """What one peer's training gave: the raw measurements, before any ratio."""

    version: str
    epoch_seconds: list[float]
    losses: list[float]
    predictions: np.ndarray  # (n_test,) labels
    peak_memory_bytes: int | None = None
    transfers: dict | None = None  # the stand-in's counts of bprop's fit (dry run only)


# -- the starting point ---------------------------------------------------------------------------
def he_normal_weights(sizes: list[int], seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` per Dense layer: W of shape (n_in, n_out) from N(0, 2 / n_in), b zeros;
    float32, drawn once for all peers from a seeded Generator."""
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)).astype(np.float32),
             np.zeros(n_out, dtype=np.float32))
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]


def problems(names: list[str], data_dir, dry_run: bool) -> list[Problem]:
    """The workloads ``names`` on MNIST (sliced, and the wide network narrowed, in a dry run)."""
    (X_train, y_train), (X_test, y_test) = load_mnist(data_dir)
    if dry_run:
        X_train, y_train = X_train[:DRY_RUN["n_train"]], y_train[:DRY_RUN["n_train"]]
        X_test, y_test = X_test[:DRY_RUN["n_test"]], y_test[:DRY_RUN["n_test"]]
    result = []
    for name in names:
        hidden, batch_size = WORKLOADS[name]
        if dry_run:
            hidden = DRY_RUN["hidden"].get(name, hidden)
        sizes = [X_train.shape[1], *hidden, 10]
        result.append(Problem(name, sizes, batch_size, X_train, y_train, X_test, y_test,
                              he_normal_weights(sizes)))
    return result


# -- measuring ------------------------------------------------------------------------------------
def synchronize(xp) -> None:
    """Wait for the GPU's queued work (a no-op for NumPy and the stand-in, which do not queue)."""
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def gemm_rate(xp, size: int, repeats: int = GEMM_REPEATS) -> dict:
    """GFLOP/s (2 size**3 flops) of ``a @ b`` on two float32 (size, size) arrays of ``xp``,
    best of ``repeats`` after one warm-up product."""
    rng = np.random.default_rng(SEED)
    a = xp.asarray(rng.standard_normal((size, size), dtype=np.float32))
    b = xp.asarray(rng.standard_normal((size, size), dtype=np.float32))
    a @ b
    synchronize(xp)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        synchronize(xp)
        times.append(time.perf_counter() - start)
    del a, b
    return {"size": size, "best_seconds": min(times), "gflops": 2 * size**3 / min(times) / 1e9}


class _EpochClock(bp.Callback):
    """The seconds each epoch of bprop's fit took, the device synchronised at each reading."""

    def __init__(self, xp):
        self.xp, self.times = xp, []

    def on_train_begin(self, model):
        synchronize(self.xp)
        self.last = time.perf_counter()

    def on_epoch_end(self, epoch, history):
        synchronize(self.xp)
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now


def _free_gpu_memory() -> None:
    """Drop the last peer's arrays and give CuPy's and PyTorch's cached blocks back, so that the
    next peer's peak memory is its own."""
    gc.collect()
    cupy, torch = sys.modules.get("cupy"), sys.modules.get("torch")  # (only if imported)
    if cupy is not None:
        cupy.get_default_memory_pool().free_all_blocks()
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# -- the peers: one function each --------------------------------------------------------------
def train_bprop(problem: Problem, epochs: int) -> PeerRun:
    """bprop on "cuda" (the CPU stand-in in a dry run)."""
    model = bp.mlp(problem.sizes, activation="relu", seed=SEED, dtype="float32",
                   weights=problem.weights, device="cuda")
    xp = model.device.xp
    clock = _EpochClock(xp)
    counting = xp.count_transfers() if hasattr(xp, "count_transfers") else contextlib.nullcontext()
    with counting as counts:
        history = model.fit(problem.X_train, problem.y_train, loss="softmax_cross_entropy",
                            optimizer=bp.Adam(lr=LR), epochs=epochs,
                            batch_size=problem.batch_size, metrics=[], callbacks=[clock])
    transfers = None
    if counts is not None:
        transfers = {name: getattr(counts, name) for name in
                     ("to_device", "to_host", "bytes_to_device", "bytes_to_host")}
    peak = None
    if xp.__name__ == "cupy":
        peak = int(xp.get_default_memory_pool().total_bytes())
    return PeerRun(bp.__version__, clock.times, list(history["loss"]),
                   model.predict(problem.X_test), peak, transfers)


def _torch_network(problem: Problem, device: str):
    """PyTorch's copy of the network, starting from the problem's weights (W.T per Linear)."""
    import torch

    modules = []
    for i, (W, b) in enumerate(problem.weights):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if i < len(problem.weights) - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules).to(device)


def _torch_epochs(step, n: int, batch_size: int, epochs: int, device: str):
    """Run ``epochs`` shuffled epochs of ``step(rows)`` (one training step on the rows given as
    a device index tensor, returning the batch's mean loss as a device scalar); the seconds and
    the mean loss of each epoch."""
    import torch

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    torch.manual_seed(SEED)
    times, losses = [], []
    for _ in range(epochs):
        sync()
        start = time.perf_counter()
        order = torch.randperm(n, device=device)
        total = torch.zeros((), device=device)
        for first in range(0, n, batch_size):
            rows = order[first:first + batch_size]
            total += step(rows) * len(rows)
        losses.append(float(total) / n)  # (one read-back per epoch, as bprop's)
        sync()
        times.append(time.perf_counter() - start)
    return times, losses


def _torch_predictions(net, X, device: str) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(X).to(device)).argmax(dim=1).cpu().numpy()


def _torch_peak(device: str) -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated()) if device == "cuda" else None


def _torch_start(problem: Problem, device: str):
    """The network, the data on ``device`` (once), and the memory counter reset."""
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        torch.set_num_threads(os.cpu_count() or 1)
    net = _torch_network(problem, device)
    X = torch.from_numpy(problem.X_train).to(device)
    y = torch.from_numpy(problem.y_train).to(device)
    return net, X, y


def train_torch_eager(problem: Problem, epochs: int, device: str) -> PeerRun:
    """PyTorch eager with its fused Adam."""
    import torch

    net, X, y = _torch_start(problem, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(rows):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(X[rows]), y[rows])
        loss.backward()
        optimizer.step()
        return loss.detach()

    times, losses = _torch_epochs(step, len(X), problem.batch_size, epochs, device)
    peak = _torch_peak(device)
    return PeerRun(torch.__version__, times, losses,
                   _torch_predictions(net, problem.X_test, device), peak)


def train_torch_graph(problem: Problem, epochs: int, device: str) -> PeerRun:
    """PyTorch with the whole step in a CUDA graph: one graph per batch shape (the full batch,
    and the last, shorter one when the batch size does not divide the data), fed through a
    static index tensor; Adam with capturable=True so that its step count lives on the GPU."""
    import torch

    if device != "cuda":
        raise RuntimeError("CUDA graphs need a CUDA GPU")
    net, X, y = _torch_start(problem, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, capturable=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    n, batch = len(X), min(problem.batch_size, len(X))
    shapes = sorted({batch, n % batch} - {0}, reverse=True)
    indices = {rows: torch.arange(rows, device=device) for rows in shapes}

    def step_on(rows):
        loss = loss_fn(net(X[rows]), y[rows])
        loss.backward()
        optimizer.step()
        return loss.detach()

    # The warm-up steps (on a side stream, as torch.cuda.graph's documentation asks; the capture
    # uses the same stream, so that no library handle is first made mid-capture) change the
    # weights and Adam's moments: they are put back after the capture, in place, since the
    # graphs hold those very tensors.
    start_values = [p.detach().clone() for p in net.parameters()]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for rows in shapes:
            for _ in range(3):
                optimizer.zero_grad(set_to_none=True)
                step_on(indices[rows])
    torch.cuda.current_stream().wait_stream(side)
    graphs = {}
    for rows in shapes:
        graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)  # the graph's backward makes its own gradients
        with torch.cuda.graph(graph, stream=side):
            loss = step_on(indices[rows])
        graphs[rows] = (graph, loss)
    with torch.no_grad():
        for p, value in zip(net.parameters(), start_values, strict=True):
            p.copy_(value)
        for state in optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.zero_()
    del start_values

    def step(rows):
        graph, loss = graphs[len(rows)]
        indices[len(rows)].copy_(rows)
        graph.replay()
        return loss

    times, losses = _torch_epochs(step, n, batch, epochs, device)
    peak = _torch_peak(device)
    return PeerRun(torch.__version__, times, losses,
                   _torch_predictions(net, problem.X_test, device), peak)


def train_torch_compile(problem: Problem, epochs: int, device: str) -> PeerRun:
    """PyTorch with the network compiled by torch.compile(mode="reduce-overhead") (which runs
    it in CUDA graphs on a GPU; the first epoch pays for the compilation) and the fused Adam."""
    import torch

    net, X, y = _torch_start(problem, device)
    compiled = torch.compile(net, mode="reduce-overhead")
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(rows):
        torch.compiler.cudagraph_mark_step_begin()  # a new training step, for its CUDA graphs
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(compiled(X[rows]), y[rows])
        loss.backward()
        optimizer.step()
        return loss.detach()

    times, losses = _torch_epochs(step, len(X), problem.batch_size, epochs, device)
    peak = _torch_peak(device)
    # (predicted by the plain module, which shares the weights: no compilation for 10,000 rows)
    return PeerRun(torch.__version__, times, losses,
                   _torch_predictions(net, problem.X_test, device), peak)


TORCH_PEERS = {"torch-eager": train_torch_eager, "torch-graph": train_torch_graph,
               "torch-compile": train_torch_compile}


def torch_unavailable(dry_run: bool) -> str | None:
    """Why the PyTorch peers cannot run here, or None."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not dry_run and not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} sees no CUDA GPU"
    return None


def run_peer(peer: str, problem: Problem, epochs: int, dry_run: bool) -> dict:
    """Train ``peer`` on ``problem``; its row of the report (status "ok", or why not)."""
    if peer != "bprop":
        why = torch_unavailable(dry_run)
        if why:
            return {"status": f"skipped: {why}"}
        if dry_run and peer == "torch-graph":
            return {"status": "skipped: CUDA graphs need a CUDA GPU (dry run)"}
    _free_gpu_memory()
    try:
        if peer == "bprop":
            run = train_bprop(problem, epochs)
        else:
            run = TORCH_PEERS[peer](problem, epochs, "cpu" if dry_run else "cuda")
    except Exception as error:  # a peer that fails is reported; the others still run
        reason = str(error).strip().splitlines()
        return {"status": f"failed: {type(error).__name__}: {reason[0] if reason else ''}"}
    finally:
        _free_gpu_memory()
    steady = run.epoch_seconds[1:] if len(run.epoch_seconds) > 1 else run.epoch_seconds
    row = {"status": "ok", "version": run.version,
           "seconds_per_epoch": float(np.median(steady)), "epoch_seconds": run.epoch_seconds,
           "loss": run.losses,
           "test_accuracy": float(np.mean(run.predictions == problem.y_test)),
           "peak_memory_mb": (None if run.peak_memory_bytes is None
                              else run.peak_memory_bytes / 2**20)}
    if run.transfers is not None:
        row["transfers"] = run.transfers
    return row


# -- the run, its table and its targets -----------------------------------------------------
def machine(dry_run: bool) -> dict:
    """The host (as benchmark.py describes it), and the GPU and libraries of this run."""
    description = comparison.machine_description()
    description.update(gpu=None, cupy=None, cuda_runtime=None, torch=None,
                       torch_allow_tf32=None, CUPY_TF32=os.environ.get("CUPY_TF32"))
    if dry_run:
        description["gpu"] = "none: dry run on the CPU stand-in (bprop.backend.standin)"
    else:
        cupy = get_device("cuda").xp
        properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        description.update(gpu=properties["name"].decode(), cupy=cupy.__version__,
                           cuda_runtime=cupy.cuda.runtime.runtimeGetVersion())
    if torch_unavailable(dry_run) is None:
        import torch

        description.update(torch=torch.__version__,
                           torch_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    return description


def run(args: argparse.Namespace) -> dict:
    """Every workload with every peer; the report (see ``--out``)."""
    dry_run = args.dry_run
    report = {"dry_run": dry_run, "machine": machine(dry_run), "settings": {
        "epochs": args.epochs, "workloads": args.workloads, "peers": args.peers,
        "data_dir": args.data_dir, "lr": LR, "seed": SEED, "dtype": "float32"}}
    print(f"# {report['machine']['description']}; GPU: {report['machine']['gpu']}")
    xp = get_device("cuda").xp
    size = DRY_RUN["gemm_size"] if dry_run else GEMM_SIZE
    gemm = gemm_rate(xp, size)
    gemm["what"] = ("dry run: NumPy on the CPU through the stand-in, not a GPU figure" if dry_run
                    else "cuBLAS float32 through CuPy")
    report["gemm"] = gemm
    _free_gpu_memory()
    print(f"# float32 GEMM, {size}x{size}, best of {GEMM_REPEATS}: {gemm['gflops']:.0f} GFLOP/s "
          f"({gemm['what']})", flush=True)
    report["workloads"] = []
    for problem in problems(args.workloads, args.data_dir, dry_run):
        flops = flops_per_epoch(problem.sizes, len(problem.X_train))
        workload = {"name": problem.name, "sizes": problem.sizes,
                    "batch_size": problem.batch_size, "n_train": len(problem.X_train),
                    "n_test": len(problem.X_test), "flops_per_epoch": flops, "peers": {}}
        if problem.sizes[1:-1] != list(WORKLOADS[problem.name][0]):
            workload["note"] = (f"dry run: hidden layers narrowed to {problem.sizes[1:-1]} "
                                f"from {list(WORKLOADS[problem.name][0])}")
        for peer in args.peers:
            workload["peers"][peer] = run_peer(peer, problem, args.epochs, dry_run)
        ours = workload["peers"].get("bprop", {}).get("seconds_per_epoch")
        for row in workload["peers"].values():
            if row["status"] == "ok":
                row["bprop_over_peer"] = ours / row["seconds_per_epoch"] if ours else None
                row["gflops"] = flops / row["seconds_per_epoch"] / 1e9
                row["fraction_of_gemm"] = row["gflops"] / gemm["gflops"]
        report["workloads"].append(workload)
        print_workload(workload, args.epochs, dry_run)
    report["targets"] = targets(report)
    print()
    for target in report["targets"]:
        print(target["line"])
    return report


def print_workload(workload: dict, epochs: int, dry_run: bool) -> None:
    sizes = "-".join(str(s) for s in workload["sizes"])
    batch = f"batch {workload['batch_size']}"
    if workload["batch_size"] > workload["n_train"]:
        batch += " (all the images in one)"
    print(f"\n## {workload['name']}: {sizes} at {batch}, "
          f"{workload['n_train']} training images, {epochs} epochs, "
          f"{workload['flops_per_epoch'] / 1e9:.1f} GFLOP per epoch"
          + (" (dry run: not GPU figures)" if dry_run else ""))
    if "note" in workload:
        print(f"({workload['note']})")
    header = ("peer", "s/epoch", "bprop/peer", "GFLOP/s", "% of GEMM", "peak MB", "test acc")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for peer, row in workload["peers"].items():
        if row["status"] != "ok":
            continue
        ratio = "-" if row["bprop_over_peer"] is None else f"{row['bprop_over_peer']:.2f}"
        memory = "-" if row["peak_memory_mb"] is None else f"{row['peak_memory_mb']:.0f}"
        print(f"| {peer} {row['version']} | {row['seconds_per_epoch']:.4f} | {ratio} | "
              f"{row['gflops']:.0f} | {100 * row['fraction_of_gemm']:.0f} | {memory} | "
              f"{row['test_accuracy']:.4f} |")
    for peer, row in workload["peers"].items():
        if row["status"] != "ok":
            print(f"- {peer} {row['status']}")
    transfers = workload["peers"].get("bprop", {}).get("transfers")
    if transfers:
        print(f"- bprop's fit on the stand-in: {transfers['to_device']} copies to the device "
              f"({transfers['bytes_to_device'] / 2**20:.1f} MB), {transfers['to_host']} back "
              f"({transfers['bytes_to_host']} bytes)")


def targets(report: dict) -> list[dict]:
    """The issue's targets, judged on this run: one dict per target with its printed line."""
    by_name = {w["name"]: w for w in report["workloads"]}
    prefix = "(dry run, not GPU figures) " if report["dry_run"] else ""
    judged = []

    def judge(text: str, value: float | None, limit: float, met: bool | None, why: str = "",
              shown: str | None = None):
        if value is None:
            line = f"{prefix}target {text}: not judged ({why})"
        else:
            shown = f"{value:.2f}" if shown is None else shown
            line = f"{prefix}target {text}: {shown} {'met' if met else 'NOT MET'}"
        judged.append({"target": text, "value": value, "limit": limit, "met": met,
                       "line": line})

    def ok(workload: dict, peer: str) -> tuple[dict | None, str]:
        row = workload["peers"].get(peer)
        if row is None:
            return None, f"{peer} was not asked for"
        return (row, "") if row["status"] == "ok" else (None, f"{peer} {row['status']}")

    if "mnist-128" in by_name:
        workload = by_name["mnist-128"]
        ours, why = ok(workload, "bprop")
        for peer, limit in (("torch-eager", TARGET_EAGER), ("torch-graph", TARGET_GRAPH),
                            ("torch-compile", TARGET_GRAPH)):
            theirs, why_not = ok(workload, peer)
            ratio = ours["seconds_per_epoch"] / theirs["seconds_per_epoch"] \
                if ours and theirs else None
            judge(f"mnist-128 bprop/{peer} s/epoch <= {limit}", ratio, limit,
                  None if ratio is None else ratio <= limit, why or why_not)
    if "wide-4096" in by_name:
        ours, why = ok(by_name["wide-4096"], "bprop")
        fraction = ours["fraction_of_gemm"] if ours else None
        judge(f"wide-4096 bprop GFLOP/s >= {TARGET_GEMM} x GEMM rate "
              f"({report['gemm']['gflops']:.0f} GFLOP/s)", fraction, TARGET_GEMM,
              None if fraction is None else fraction >= TARGET_GEMM, why)
    for workload in report["workloads"]:
        ours, why = ok(workload, "bprop")
        theirs, why_not = ok(workload, "torch-eager")
        gap, shown = None, None
        if ours and theirs:
            # in points, rounded to a hundredth (0.9800 - 0.9770 is 0.30000000000000027 points)
            gap = round(100 * (ours["test_accuracy"] - theirs["test_accuracy"]), 2)
            side = "above" if gap > 0 else "below" if gap < 0 else "level with"
            shown = f"bprop {abs(gap):.2f} points {side}"
        judge(f"{workload['name']} test accuracy within {TARGET_POINTS} points of torch-eager's "
              "(either way)", gap, TARGET_POINTS,
              None if gap is None else abs(gap) <= TARGET_POINTS, why or why_not, shown)
    return judged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs per run (default 5; {DRY_RUN['epochs']} with --dry-run)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, from {','.join(WORKLOADS)} (default: all)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated, from {','.join(PEERS)} (default: all)")
    parser.add_argument("--out", help="also write the results to this JSON file")
    parser.add_argument("--data-dir", default=None,
                        help="folder with MNIST's four files (default: ../shared/data/mnist "
                        "beside the repository, then $BPROP_DATA and the cache)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run everything on the CPU, bprop on the stand-in for CuPy, on a "
                        "slice of the data: a check that the script works, not a measurement")
    args = parser.parse_args(argv)
    args.workloads, args.peers = args.workloads.split(","), args.peers.split(",")
    for option, given, known in (("--workloads", args.workloads, WORKLOADS),
                                 ("--peers", args.peers, PEERS)):
        unknown = [name for name in given if name not in known]
        if unknown:
            parser.error(f"unknown name(s) {unknown} in {option}; choose from {list(known)}")
    if args.epochs is None:
        args.epochs = DRY_RUN["epochs"] if args.dry_run else 5
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.data_dir is None:
        shared = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
        args.data_dir = shared if os.path.isdir(shared) else None
    if not args.dry_run:
        try:
            get_device("cuda")  # (before any data are read)
        except DeviceUnavailableError as error:
            message = " ".join(str(error).split())
            print(f"gpu.py: {message} (python benchmarks/gpu.py --dry-run runs without a GPU)",
                  file=sys.stderr)
            return 2
    with stand_in_for_cuda() if args.dry_run else contextlib.nullcontext():
        report = run(args)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(report, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/distributed.py: its quick run measures K=1 and K=2 with the right bytes per step,
and its cost model behaves as its formula says."""

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import load_script

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "distributed.py"


def parameters_of(sizes) -> int:
    """Weights and biases, counted here by hand: n_in * n_out + n_out per Dense layer."""
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))


def test_the_quick_run_measures_one_and_two_processes():
    pytest.importorskip("mpi4py", reason="measuring across processes needs mpi4py")
    beside = Path(sys.executable).parent / "mpiexec"
    if not beside.exists() and shutil.which("mpiexec") is None:
        pytest.skip("no mpiexec beside this Python or on PATH")
    finished = subprocess.run([sys.executable, str(SCRIPT), "run", "--quick"],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    rows = [line.split("|")[1:-1] for line in finished.stdout.splitlines()
            if re.match(r"\| 784-", line)]
    found = {}
    for cells in rows:  # model, batch, K, threads, steps/s, ms, speed-up, MB, all-reduce ms
        found.setdefault((cells[0].strip(), int(cells[2])), []).append(
            (float(cells[4]), float(cells[7]), float(cells[8]), float(cells[6])))
    expected_models = {"784-256-128-10": (784, 256, 128, 10),
                       "784-1024-1024-10": (784, 1024, 1024, 10)}
    assert set(found) == {(name, k) for name in expected_models for k in (1, 2)}
    for (name, k), measured in found.items():
        for steps_per_s, mb, allreduce_ms, _ in measured:
            assert steps_per_s > 0
            # float32 gradients: 4 bytes per parameter (the table shows MB to 2 decimals)
            assert mb == pytest.approx(parameters_of(expected_models[name]) * 4 / 1e6,
                                       abs=0.006)
            assert (allreduce_ms == 0.0) if k == 1 else (allreduce_ms > 0)
        if k == 1:  # (K=1 with 1 thread and with every core: the faster is the peer)
            assert max(speedup for *_, speedup in measured) == 1.0


COSTS = {"per_row_s": 2e-5, "overhead_s": 1.5e-3, "nbytes": 4 * 235_146,
         "bandwidth_bytes": 10e9 / 8, "latency_s": 20e-6}


def test_one_machine_is_predicted_to_take_its_own_step_time():
    bench = load_script(SCRIPT, "distributed_benchmark")
    for batch in (1, 128, 8192):
        assert bench.predicted_step_seconds(batch, 1, **COSTS) == pytest.approx(
            2e-5 * batch + 1.5e-3, rel=1e-12)
        no_overhead = dict(COSTS, overhead_s=0.0)
        assert bench.predicted_step_seconds(batch, 1, **no_overhead) == pytest.approx(
            2e-5 * batch, rel=1e-12)
        assert bench.predicted_speedup(batch, 1, **COSTS) == pytest.approx(1.0, rel=1e-12)


def test_a_bigger_batch_never_lowers_the_predicted_speedup():
    bench = load_script(SCRIPT, "distributed_benchmark")
    for k in (2, 4, 8, 16):
        speedups = [bench.predicted_speedup(b, k, **COSTS) for b in (8, 64, 128, 1024, 8192,
                                                                     65536)]
        assert all(later >= earlier for earlier, later in zip(speedups, speedups[1:], strict=False))
        assert speedups[-1] > speedups[0]


def test_a_free_network_gives_a_speedup_of_k():
    bench = load_script(SCRIPT, "distributed_benchmark")
    free = dict(COSTS, overhead_s=0.0, bandwidth_bytes=math.inf, latency_s=0.0)
    for k in (2, 4, 16):
        assert bench.predicted_speedup(1024, k, **free) == pytest.approx(k, rel=1e-12)


def test_the_ring_formula_on_a_case_worked_by_hand():
    bench = load_script(SCRIPT, "distributed_benchmark")
    # 4 machines, 100 MB, 1 GB/s, 10 us: 2 * 3/4 * 0.1 s + 2 * 3 * 10 us = 0.15 s + 60 us
    assert bench.ring_allreduce_seconds(100e6, 4, 1e9, 10e-6) == pytest.approx(0.15006,
                                                                               rel=1e-12)
    assert bench.ring_allreduce_seconds(100e6, 1, 1e9, 10e-6) == 0.0
    # and the step of a global batch of 1000 rows at 1 ms per row, fixed 2 ms:
    # 1000 * 1e-3 / 4 + 2e-3 + 0.15006 = 0.40206 s
    assert bench.predicted_step_seconds(1000, 4, per_row_s=1e-3, overhead_s=2e-3, nbytes=100e6,
                                        bandwidth_bytes=1e9, latency_s=10e-6) == pytest.approx(
        0.40206, rel=1e-12)


def test_the_break_even_batch_is_where_k_machines_start_to_win():
    bench = load_script(SCRIPT, "distributed_benchmark")
    for k in (2, 4, 8, 16):
        batch = bench.break_even_batch(k, **{key: COSTS[key] for key in COSTS
                                             if key != "overhead_s"})
        assert bench.predicted_speedup(batch, k, **COSTS) > 1
        if batch > k:
            assert bench.predicted_speedup(batch - 1, k, **COSTS) <= 1

"""Training across processes under mpiexec: K processes train the model one process trains,
callbacks run once, every process stops together, and one failing process ends them all.

The scripts that run under mpiexec are in tests/mpi/; each process 0 prints what it saw.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bprop as bp
from bprop.distributed import MPIWorld

pytest.importorskip("mpi4py", reason="mpi4py is not installed: the tests across processes "
                    'skip (pip install "bprop[mpi]")')

SCRIPTS = Path(__file__).resolve().parent / "mpi"


def mpiexec() -> str:
    """The mpiexec beside this Python (pip's mpich wheel puts it there), else on the PATH."""
    beside = Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.is_file() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: install an MPI (pip install mpich) to run these tests")
    return found


def run(n: int, *command: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``command`` in ``n`` processes; one BLAS thread each, so that three share two cores."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([mpiexec(), "-n", str(n), *command], capture_output=True,
                          text=True, timeout=timeout, env=env)


def printed_json(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("processes", [2, 3])
def test_k_processes_train_the_model_one_process_trains(processes):
    cases = printed_json(run(processes, sys.executable, str(SCRIPTS / "equivalence.py")))
    assert len(cases) == 26
    for case in cases:
        name = case["case"]
        if not name.get("bias_before_batchnorm"):
            # every weight and running statistic, relative to the largest of its layer
            assert case["difference"] <= 1e-10, name
        # (a bias a BatchNorm follows: rounding noise in both runs; see equivalence.py)
        assert case["noise_difference"] <= 1e-8, name
        assert case["output_difference"] <= 1e-10, name
        assert case["loss_difference"] <= 1e-12, name
        assert case["same_everywhere"], name
    with_metrics = [c for c in cases if c["case"].get("metrics")]
    assert with_metrics and "accuracy" in with_metrics[0]["history_keys"]


def test_callbacks_run_once_and_every_process_stops_together():
    (seen,) = printed_json(run(2, sys.executable, str(SCRIPTS / "callbacks.py")))
    stopped = seen["epochs"][0]
    assert seen["epochs"] == [stopped, stopped] and stopped < 60  # (early stopping stopped)
    assert seen["callback_calls"] == [stopped, 0]  # (process 0 alone ran the callbacks)
    assert seen["same_model"] and seen["best_restored"]
    for message in seen["different_data"]:
        assert "processes [1] were given other data than process 0" in message
    assert seen["diverged"] == ["the training loss became NaN or infinite in epoch 1"] * 2
    assert seen["rates"] == [0.05, 0.05]  # (process 0's callback halved it three times)


def test_one_failing_process_ends_every_process_with_its_error():
    start = time.monotonic()
    result = run(2, sys.executable, str(SCRIPTS / "failing.py"), timeout=60)
    took = time.monotonic() - start
    assert result.returncode != 0
    assert "process 1 of 2 failed, which ends them all: RuntimeError: a deliberate failure " \
           "in process 1" in result.stderr
    assert "not reached" not in result.stdout
    assert took < 20  # (the training would take minutes; the others did not wait)


def test_mpirun_bprop_train_distributed_writes_one_run_like_one_process(tmp_path):
    options = ["--dataset", "moons", "--layers", "2,16,2", "--epochs", "2", "--seed", "3",
               "--quiet"]
    together = run(2, sys.executable, "-m", "bprop", "train", "--distributed", *options,
                   "--out", str(tmp_path / "together"))
    assert together.returncode == 0, together.stderr[-3000:]
    assert together.stdout.count("saved ") == 1  # (process 0 alone wrote and said so)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    alone = subprocess.run([sys.executable, "-m", "bprop", "train", *options, "--out",
                            str(tmp_path / "alone")], capture_output=True, text=True, env=env,
                           timeout=120)
    assert alone.returncode == 0, alone.stderr
    a = bp.load(tmp_path / "together" / "model.npz").state_dict()
    b = bp.load(tmp_path / "alone" / "model.npz").state_dict()
    for name, value in b.items():
        np.testing.assert_allclose(a[name], value, rtol=0, atol=1e-5 * np.abs(value).max(),
                                   err_msg=name)
    assert (tmp_path / "together" / "metrics.json").is_file()


def test_ctrl_c_stops_every_process_at_the_epoch_end_and_saves_the_best_model(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    # (a runner started in the background ignores SIGINT, and so would the child: give it the
    # default handling, which a Ctrl-C in a terminal meets)
    with subprocess.Popen(
            [mpiexec(), "-n", "2", sys.executable, "-m", "bprop", "train", "--distributed",
             "--dataset", "moons", "--layers", "2,32,2", "--epochs", "1000000", "--out",
             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as process:
        try:
            for line in process.stdout:  # wait until training is under way
                if line.startswith("epoch 20/"):
                    break
            process.send_signal(signal.SIGINT)
            output, errors = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == 130, errors
    assert "stopping every process at the end of this epoch" in errors
    assert "saving the best model so far" in errors
    assert errors.count("saving the best model so far") == 1  # (process 0 alone saves)
    assert bp.load(out / "model.npz").n_inputs == 2


def test_a_model_without_parameters_is_refused():
    from bprop.distributed import DistributedStep

    with pytest.raises(ValueError, match="no parameters"):
        DistributedStep(bp.Sequential([bp.Tanh()]), "mse", bp.SGD(), world=None)


def test_distributed_training_refuses_a_gpu_device_on_the_command_line(capsys):
    from bprop.cli import main

    assert main(["train", "--distributed", "--device", "cuda", "--epochs", "1"]) == 2
    assert "--distributed trains on the CPU" in capsys.readouterr().err


def test_without_mpi4py_the_world_says_what_to_install(hide_package):
    hide_package("mpi4py")
    with pytest.raises(bp.MissingPackageError, match=r'pip install "bprop\[mpi\]"'):
        MPIWorld()

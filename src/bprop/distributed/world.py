"""MPIWorld: the processes that ``mpirun -n K`` started, training one model together.

Every process runs the same script on the same data; ``model.fit(..., world=MPIWorld())``
then trains as one process would (see :mod:`bprop.distributed.step`). The collectives are
MPI's, through mpi4py: a broadcast of process 0's model at the start and at the end, one
in-place all-reduce of the flat gradient buffer per step (and three small ones per BatchNorm
layer), one of the loss per epoch.

>>> world = MPIWorld()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import numpy as np

from ..interop.common import require
from ..nn.parameter import flat_views
from .step import RAISED_EVERYWHERE, DistributedStep

INSTALL = 'pip install "bprop[mpi]" (mpi4py and MPICH from PyPI; a system MPI works too)'


class MPIWorld:
    """The processes of an MPI communicator (``MPI.COMM_WORLD`` by default).

    Raises
    ------
    MissingPackageError
        Without mpi4py, saying what to install.
    """

    def __init__(self, comm=None) -> None:
        mpi = require("mpi4py.MPI", "MPIWorld", INSTALL)
        self._mpi = mpi
        self.comm = mpi.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()

    def __repr__(self) -> str:
        return f"MPIWorld(rank={self.rank}, size={self.size})"

    # -- what fit asks of a world --------------------------------------------------------------
    def training_step(self, model, loss, optimizer, **settings) -> DistributedStep:
        return DistributedStep(model, loss, optimizer, self, **settings)

    def start(self, model) -> None:
        """Process 0's weights, running statistics and random generators, everywhere."""
        self._broadcast_model(model)
        for owner in (model, *model.layers):
            rng = getattr(owner, "rng", None)
            if isinstance(rng, np.random.Generator):
                rng.bit_generator.state = self.agree(rng.bit_generator.state)

    def finish(self, model) -> None:
        """Process 0's model after training (callbacks run there), everywhere."""
        self._broadcast_model(model)

    def agree(self, value):
        return self.comm.bcast(value, root=0)

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """An error in one process prints its message and ends every process (MPI's abort):
        the others would wait for it in the next collective for ever. A diverged training
        stops every process at the same step, and is raised as it is."""
        try:
            yield
        except RAISED_EVERYWHERE:
            raise
        except BaseException as error:
            if self.size > 1:
                print(f"bprop: process {self.rank} of {self.size} failed, which ends them all: "
                      f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
                self.comm.Abort(1)
            raise

    # -- the collectives the step uses ---------------------------------------------------------
    def part(self, rows: int) -> tuple[int, int]:
        """This process's rows ``start, stop`` of a batch of ``rows``: parts in order of rank,
        the first ``rows % size`` of them one row longer."""
        size, extra = divmod(rows, self.size)
        start = self.rank * size + min(self.rank, extra)
        return start, start + size + (self.rank < extra)

    def sum_(self, array: np.ndarray) -> None:
        """Replace ``array`` (contiguous) by its sum over every process, in place."""
        if self.size > 1:
            self.comm.Allreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM)

    def sum(self, value: float) -> float:
        """The sum of ``value`` over every process."""
        return float(self.comm.allreduce(float(value), op=self._mpi.SUM))

    def allgather(self, value) -> list:
        """Every process's ``value``, in order of rank."""
        return self.comm.allgather(value)

    def _broadcast_model(self, model) -> None:
        parameters = model.parameters()
        if parameters:
            values, _ = flat_views(parameters)
            self.comm.Bcast(values, root=0)
        for layer in model.layers:
            for buffer in layer.buffers.values():
                self.comm.Bcast(buffer, root=0)

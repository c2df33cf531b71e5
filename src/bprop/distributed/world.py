"""MPIWorld: the processes that ``mpirun -n K`` started, training one model together.

Every process runs the same script on the same data; ``model.fit(..., world=MPIWorld())``
then trains as one process would (see :mod:`bprop.distributed.step`). The collectives are
MPI's, through mpi4py: a broadcast of process 0's model at the start and at the end, one
in-place all-reduce of the flat gradient buffer per step (and three small ones per BatchNorm
layer), one of the loss per epoch.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
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
        self._interrupt_asked = self._stopping_together = False

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

    def interrupted(self) -> bool:
        """Whether Ctrl-C reached any process during the epoch (mpirun passes it to all)."""
        asked = bool(self.comm.allreduce(self._interrupt_asked, op=self._mpi.LOR))
        self._stopping_together = asked
        return asked

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """An error in one process prints its message and ends every process (MPI's abort):
        the others would wait for it in the next collective for ever. A diverged training,
        and a Ctrl-C, stop every process at the same point, and are raised as they are: the
        first Ctrl-C stops them all at the end of the epoch, a second one ends them at once."""
        self._interrupt_asked = self._stopping_together = False
        previous = self._catch_interrupts()
        try:
            yield
        except RAISED_EVERYWHERE:
            raise
        except KeyboardInterrupt:
            if not self._stopping_together:
                self._abort("KeyboardInterrupt", "interrupted again")
            raise
        except BaseException as error:
            self._abort(type(error).__name__, error)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _catch_interrupts(self):
        """Note a first Ctrl-C instead of raising it, so that every process stops at the same
        point (see :meth:`interrupted`); the handler it replaced, or None where none can be set
        (outside the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def note(signum, frame) -> None:
            if self._interrupt_asked:
                raise KeyboardInterrupt
            self._interrupt_asked = True
            if self.rank == 0:
                print("\nbprop: stopping every process at the end of this epoch (Ctrl-C again "
                      "ends them at once)", file=sys.stderr, flush=True)

        return signal.signal(signal.SIGINT, note)

    def _abort(self, kind: str, error) -> None:
        if self.size > 1:
            print(f"bprop: process {self.rank} of {self.size} failed, which ends them all: "
                  f"{kind}: {error}", file=sys.stderr, flush=True)
            self.comm.Abort(1)

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

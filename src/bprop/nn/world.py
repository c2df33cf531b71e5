"""The processes a model trains in: one, unless ``fit`` is given a world of several.

``Sequential.fit(..., world=...)`` asks its world for the training step, starts every process
from the same model, runs callbacks and prints in one process only, stops them together, and
ends with the same model everywhere. :class:`SingleProcess`, the default, does all of that as
the identity; :class:`bprop.distributed.MPIWorld` does it across processes that MPI started
(``mpirun -n K python train.py``), each computing the gradient of its part of every batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from .step import TrainingStep


class World(Protocol):
    """What ``fit`` needs of the processes it trains in."""

    #: this process's number, 0 to size - 1; process 0 runs callbacks and prints
    rank: int
    #: how many processes train together
    size: int

    def training_step(self, model, loss, optimizer, **settings) -> TrainingStep:
        """The step every process runs on its part of each batch."""

    def start(self, model) -> None:
        """Give every process process 0's model: weights, running statistics, generators."""

    def agree(self, value):
        """Process 0's ``value``, in every process (a decision to stop, say)."""

    def interrupted(self) -> bool:
        """Whether Ctrl-C was pressed during the epoch that ended, in any process: every
        process then stops at the same point (one process stops where it is pressed)."""

    def finish(self, model) -> None:
        """Give every process process 0's model after training (which callbacks may have
        changed there, restoring the best weights, say)."""

    def together(self) -> contextlib.AbstractContextManager:
        """A context in which an error of one process ends every process, with its message,
        instead of leaving the others waiting for it."""


class SingleProcess:
    """One process: the world ``fit`` trains in by default."""

    rank = 0
    size = 1

    def training_step(self, model, loss, optimizer, **settings) -> TrainingStep:
        return TrainingStep(model, loss, optimizer, **settings)

    def start(self, model) -> None:
        pass

    def agree(self, value):
        return value

    def interrupted(self) -> bool:
        return False  # (Ctrl-C stops one process at once, where it is)

    def finish(self, model) -> None:
        pass

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        yield

"""Training one model in several processes (data parallelism over MPI).

``mpirun -n K python train.py``, where ``train.py`` calls
``model.fit(X, y, ..., world=bprop.distributed.MPIWorld())`` in every process, trains the
model that one process would train from the same seed and ``batch_size``: each process
computes the gradient of its part of every batch, and one all-reduce per step adds them up
(:mod:`.step`, :mod:`.world`). mpi4py is needed only when an :class:`MPIWorld` is made
(``pip install "bprop[mpi]"``).
"""

from .step import DifferentDataError, DistributedStep, Shard
from .world import MPIWorld

__all__ = ["DifferentDataError", "DistributedStep", "MPIWorld", "Shard"]

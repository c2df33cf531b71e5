"""Run under ``mpiexec -n 2``: process 1 fails in its third training step; every process must
end at once, with process 1's message, instead of waiting for it in the next all-reduce."""

import numpy as np

import bprop as bp
from bprop.distributed import MPIWorld
from bprop.nn.layer import Layer


class FailsInProcessOne(Layer):
    """The identity, until its third training pass in process 1."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank, self.passes = rank, 0

    def _forward(self, x, training):
        self.passes += training
        if self.rank == 1 and self.passes == 3:
            raise RuntimeError("a deliberate failure in process 1")
        return x

    def _backward(self, grad_out, need_input_grad):
        return grad_out


world = MPIWorld()
model = bp.Sequential([bp.Dense(4, 8), FailsInProcessOne(world.rank), bp.ReLU(),
                       bp.Dense(8, 2)], seed=0, dtype="float64")
X = np.random.default_rng(0).normal(size=(400, 4))
model.fit(X, (X[:, 0] > 0).astype(int), loss="cross_entropy", epochs=1000, batch_size=8,
          world=world)
print("not reached: training should have ended with the failure")

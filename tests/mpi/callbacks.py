"""Run under ``mpiexec -n K``: callbacks (early stopping, the best weights, printing) run in
process 0 alone, every process stops at the same epoch and ends with process 0's model, data
that differ between processes are refused in all of them, and a diverging training raises the
same error in every process. Process 0 prints one JSON line of what it saw."""

import json

import numpy as np
from _everywhere import run_everywhere

import bprop as bp
from bprop.distributed import DifferentDataError, MPIWorld


def main() -> None:
    world = MPIWorld()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    X_val = rng.normal(size=(40, 3))
    y_val = (X_val[:, 0] > 0).astype(int)

    calls = []
    model = bp.Sequential([bp.Dense(3, 8), bp.Tanh(), bp.Dense(8, 2)], seed=1, dtype="float64")
    best = bp.BestState(monitor="val_loss")
    history = model.fit(X, y, loss="cross_entropy", optimizer=bp.SGD(lr=2.0), epochs=60,
                        batch_size=16, validation_data=(X_val, y_val), world=world, verbose=1,
                        callbacks=[best, bp.EarlyStopping(monitor="val_loss", patience=2),
                                   lambda epoch, history: calls.append(epoch)])
    epochs = world.allgather(len(history["loss"]))
    digests = world.allgather(model.state_dict()["0.weight"].tobytes())
    restored = bool(np.array_equal(model.state_dict()["0.weight"],
                                   best.state["0.weight"])) if world.rank == 0 else None

    try:
        model.fit(X + world.rank, y, loss="cross_entropy", epochs=1, world=world)
        different = "not refused"
    except DifferentDataError as error:
        different = str(error)
    differents = world.allgather(different)

    diverging = bp.Sequential([bp.Dense(3, 2)], seed=0, dtype="float64")
    try:
        diverging.fit(X * 1e154, y, loss="cross_entropy", optimizer=bp.SGD(lr=1e10), epochs=3,
                      world=world)
        diverged = "not raised"
    except bp.TrainingDivergedError as error:
        diverged = str(error).split(";")[0]
    divergeds = world.allgather(diverged)

    # a callback in process 0 that halves the learning rate: every process must follow it
    optimizer = bp.SGD(lr=0.4)
    halving = bp.Sequential([bp.Dense(3, 2)], seed=0, dtype="float64")

    def halve(epoch, history):
        optimizer.lr /= 2

    halving.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=3, world=world,
                callbacks=[halve])
    rates = world.allgather(optimizer.lr)

    calls_everywhere = world.allgather(len(calls))
    if world.rank == 0:
        print(json.dumps({"epochs": epochs, "callback_calls": calls_everywhere,
                          "same_model": all(d == digests[0] for d in digests),
                          "best_restored": restored, "different_data": differents,
                          "diverged": divergeds, "rates": rates}), flush=True)


if __name__ == "__main__":
    run_everywhere(main)

r"""The training step of several processes: each computes the gradient of its part of every
batch, and one all-reduce of the flat gradient buffer makes it the whole batch's.

For a batch of :math:`m` rows split into parts :math:`P_r` of :math:`m_r` rows (in order of
rank), a mean loss is :math:`L = \frac{1}{m}\sum_i \ell_i = \sum_r \frac{m_r}{m} L_r`, where
:math:`L_r` is the mean over :math:`P_r`; so process :math:`r` scales its part's loss and its
gradient by :math:`m_r / m` (by :math:`w_r / w`, the sums of the sample weights, for a weighted
mean; not at all for a summed loss), and the sum over processes is the batch's gradient,
uneven parts included. The penalty's gradient is added after the sum, once. BatchNorm and
Dropout see the whole batch through a :class:`Shard` (their means and their masks are the
batch's), so K processes compute what one process would, up to the order of the sums.

Every decision the step makes (a non-finite loss, gradient or update undoes it) is taken on
values that every process has alike, so all of them undo the same step and raise the same
:class:`~bprop.TrainingDivergedError`: a process whose part of the loss is not finite fills
its gradients with NaN before the all-reduce, and the NaN reaches every process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..nn.history import TrainingDivergedError
from ..nn.layers import BatchNorm, Dropout
from ..nn.step import _FAILURES, EpochResult, StepResult, TrainingStep


class DifferentDataError(ValueError):
    """The processes were given different data; raised in every process alike."""


#: the errors every process raises at the same point: they end the run as they are
RAISED_EVERYWHERE = (TrainingDivergedError, DifferentDataError)


@dataclass
class Shard:
    """This process's rows ``start:stop`` of a batch of ``rows`` samples that the processes
    of ``world`` share (its weights summing to ``weight_total``, when it has weights)."""

    rows: int
    start: int
    stop: int
    world: object
    weight_total: float | None = None

    def means(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Each (rows here, features) array's mean over the whole batch's rows: the sums of
        every process, added in one all-reduce, over ``rows``."""
        sums = np.concatenate([array.sum(axis=0) for array in arrays])
        self.world.sum_(sums)
        sums /= self.rows
        return np.split(sums, np.cumsum([array.shape[1] for array in arrays])[:-1])

    @contextlib.contextmanager
    def on(self, layers: list) -> Iterator[Shard]:
        """Show the batch-wide layers (BatchNorm, Dropout) this shard while a step runs."""
        for layer in layers:
            layer.shard = self
        try:
            yield self
        finally:
            for layer in layers:
                layer.shard = None


class DistributedStep(TrainingStep):
    """:class:`~bprop.TrainingStep` across the processes of ``world`` (an
    :class:`~bprop.distributed.MPIWorld`); every process calls it with the same data.

    ``step(X_batch, y_batch)`` takes the whole batch in every process and trains on this
    process's part; its result holds the batch's loss (one extra all-reduce) and this part's
    output. :meth:`epoch` (which ``fit`` runs) reduces the loss once per epoch. The model must
    be the same in every process to begin with: ``world.start(model)`` makes it process 0's
    (``fit`` does).
    """

    def __init__(self, model, loss, optimizer, world, **settings) -> None:
        if not model.device.is_cpu:
            raise ValueError("training across processes runs on the CPU; move the model "
                             "there first (model.to('cpu'))")
        if not model.parameters():
            raise ValueError("this model has no parameters: processes training it together "
                             "would have no gradients to add up")
        super().__init__(model, loss, optimizer, **settings)
        self.world = world
        self._shared_layers = [layer for layer in model.layers
                               if isinstance(layer, (BatchNorm, Dropout))]
        self._shard: Shard | None = None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.update(world=None, _shard=None)  # (a communicator does not pickle)
        return state

    def __call__(self, X_batch, y_batch, sample_weight=None) -> StepResult:
        X_batch, y_batch = self.model._check_data(X_batch, y_batch, self.loss, "X_batch",
                                                  "y_batch")
        weight = self.check_weight(sample_weight, len(X_batch))
        self.model.loss = self.loss
        out, value, penalty, _ = self._shared_step(X_batch, y_batch, np.arange(len(X_batch)),
                                                   weight)
        return StepResult(out, self.world.sum(value), penalty)

    def _epoch(self, X, y, batch_size: int, shuffle: bool, keep_outputs: bool = False,
               weights=None) -> EpochResult:
        self._check_same_data(X, y, batch_size, shuffle, weights)
        mean = self.loss.reduction == "mean"
        data_total, penalty_total, outputs = 0.0, 0.0, []
        for rows in self.batches(len(X), batch_size, shuffle):
            rows = np.arange(len(X))[rows]  # (the same batches in every process)
            weight = None if weights is None else weights.host[rows]
            if weight is not None and not weight.any():
                continue  # (nothing to learn from a batch that weighs nothing)
            out, value, penalty, mine = self._shared_step(X, y, rows, weight)
            # This process's share of the batch's loss, as the one-process epoch adds it up
            data_total += value * len(rows) if mean else value
            penalty_total += penalty * len(rows)
            if keep_outputs:
                outputs.append((out.copy(), mine))
        total = self.world.sum(data_total) + penalty_total
        if keep_outputs:  # (every process scores the epoch's outputs alike)
            outputs = [part for parts in self.world.allgather(outputs) for part in parts]
        return EpochResult(total / len(X) if mean else total + 0.0, outputs)

    def _shared_step(self, X, y, rows: np.ndarray, weight) -> tuple:
        """One step on the batch ``X[rows]``, of which this process trains on its part; the
        part's output, its share of the loss, the penalty, and the part's rows."""
        start, stop = self.world.part(len(rows))
        total = None if weight is None else float(weight.sum())
        self._shard = Shard(len(rows), start, stop, self.world, total)
        mine = rows[start:stop]
        # (every process augments the whole batch, so that the generator stays alike in all)
        inputs = X[mine] if self.augment is None else self._inputs(X, rows)[start:stop]
        try:
            with self._shard.on(self._shared_layers):
                out, value, penalty = self._step(
                    inputs, y[mine], None if weight is None else weight[start:stop])
        finally:
            self._shard = None
        return out, value, penalty, mine

    # -- where the step differs from one process's ---------------------------------------------
    def _batch_size(self, X_batch, weight) -> float:
        shard = self._shard
        return shard.rows if weight is None else shard.weight_total

    def _data_loss(self, out, y_batch, weight) -> tuple:
        shard = self._shard
        here = len(out) if weight is None else float(weight.sum())
        if here == 0:  # (a part with no rows, or weighing nothing, adds nothing)
            return 0.0, np.zeros_like(out)
        value, grad = super()._data_loss(out, y_batch, weight)
        if self.loss.reduction == "sum":
            return value, grad
        share = here / (shard.rows if weight is None else shard.weight_total)
        return value * share, grad * share

    def _check_loss(self, value: float, penalty: float, saved_buffers: list) -> bool:
        """The penalty, alike in every process, stops the step here when it is not finite;
        this part's loss is one process's, and goes out with the gradients (see
        :meth:`_combine`)."""
        super()._check_loss(0.0, penalty, saved_buffers)
        return bool(np.isfinite(value))

    def _combine(self, grads: np.ndarray, loss_finite: bool, saved_buffers: list) -> None:
        """Add every process's gradients up (one in-place all-reduce). A process whose part
        of the loss is not finite sends NaN everywhere, which fails the step in every
        process."""
        if not loss_finite:
            grads.fill(np.nan)
        self.world.sum_(grads)
        # (a loss that failed anywhere left NaN in every element, a gradient that failed in
        # some: the first element tells the common case apart at once)
        if grads.size and np.isnan(grads[0]) and np.isnan(grads).all():
            self._abandon(saved_buffers, _FAILURES[1])

    def _check_same_data(self, X, y, batch_size: int, shuffle: bool, weights) -> None:
        """Refuse, in every process alike, data (or batch settings) that differ between
        processes: their batches would not be parts of one batch."""
        step = max(1, len(X) // 1000)
        mine = (X.shape, y.shape, float(X[::step].sum()), float(np.asarray(y[::step],
                                                                           float).sum()),
                batch_size, shuffle, None if weights is None else float(weights.host.sum()))
        every = self.world.allgather(mine)
        if any(other != every[0] for other in every):
            different = [rank for rank, other in enumerate(every) if other != every[0]]
            raise DifferentDataError(f"processes {different} were given other data than "
                                     f"process 0 "
                                     f"(shapes {[e[:2] for e in every]}); every process "
                                     "must call fit with the same X, y, sample weights and "
                                     "batch size")

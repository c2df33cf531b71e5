r"""The training step: the one that ``Sequential.fit``, the scikit-learn estimators, the command
line and every tool train through, and that your own loop can call too.

For a mini-batch ``(X, y)`` of :math:`m` samples, one step is::

    out = model.forward(X, training=True)           # layer by layer
    value = loss.forward(out, y)                    # how wrong
    penalty = regularizer.forward(weights)          # (optional) L1 / L2 on the weights
    model.zero_grad()
    model.backward(loss.backward())                 # the chain rule, last layer to first
    regularizer.backward(weights)                   # adds the penalty's gradient
    clip the gradients                              # (optional)
    optimizer.step(parameters)                      # weights -= lr * (a rule of the gradient)

with one guarantee on top: if the loss, a gradient or an updated weight is NaN or infinite,
the step is undone (the weights, the optimizer's state and BatchNorm's running statistics are
as they were before it) and :class:`~bprop.TrainingDivergedError` is raised.

**On a GPU** the step is the same arithmetic through the device's array module, but nothing in
it waits for the GPU or copies anything back: its tests become flags on the device, and the
undo is a masked copy that applies only where a flag says so. Once a step has failed, the
steps after it in the epoch are undone the same way, so the model stops exactly where the CPU
would; the epoch reads its loss and the flags back in one copy at its end, and raises there.
``fit`` puts the training data on the device once, when they take at most half of its free
memory, and otherwise sends each mini-batch over as it comes.

With ``scale_penalty_by_batch=True`` the penalty and its gradient are divided by the batch's
:math:`m`: ``L2(alpha)`` then costs :math:`\frac{\alpha}{2m}\sum W^2` per batch, which is how
scikit-learn's MLPs apply ``alpha``.

**Sample weights** (``sample_weight``, one per sample) are sliced into batches as the targets
are. Each batch's loss is then its weighted mean (or weighted sum, for a summed loss), and
with ``scale_penalty_by_batch`` the penalty is divided by the batch's weight sum instead of
its :math:`m`, as scikit-learn's MLPs do; the epoch's loss averages the batches' losses by
their numbers of samples, as scikit-learn's ``loss_curve_`` does. A batch whose weights are all
zero carries nothing to learn from and is skipped. On a GPU the weights go over with the data,
once, and are an input of the recorded step.

>>> import numpy as np, bprop as bp
>>> X, y = bp.datasets.make_xor()
>>> model = bp.Sequential([bp.Dense(2, 4), bp.Tanh(), bp.Dense(4, 1), bp.Sigmoid()], seed=0)
>>> step = bp.TrainingStep(model, loss="bce", optimizer=bp.SGD(lr=1.0, momentum=0.9))
>>> for epoch in range(300):
...     for rows in step.batches(len(X), batch_size=4):
...         result = step(X[rows], y[rows])
>>> model.predict(X).tolist(), result.loss < 0.05
([0, 1, 1, 0], True)
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple, NoReturn, Protocol

import numpy as np

from .._checks import (
    all_finite,
    check_positive_float,
    check_positive_int,
    check_sample_weight,
    finite_flag,
)
from ..backend import graphs, kernels
from ..backend.devices import Device, array_module, is_cupy, to_numpy
from ..optim.optimizers import Optimizer, _clip_device_norm, clip_grad_norm, clip_grad_value
from ..optim.regularizers import Regularizer
from .history import History, TrainingDivergedError
from .layers import BatchNorm, Dropout
from .losses import Loss, get_loss, takes_sample_weight
from .parameter import Parameter, flat_views


class Network(Protocol):
    """What a step needs of the model it trains (a :class:`~bprop.Sequential` has it all)."""

    layers: list
    rng: np.random.Generator
    loss: Loss | None
    device: Device

    def parameters(self) -> list[Parameter]: ...
    def zero_grad(self) -> None: ...
    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray: ...
    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray | None: ...
    def _check_data(self, X, y, loss: Loss, x_name: str, y_name: str
                    ) -> tuple[np.ndarray, np.ndarray]: ...
    def _check_loss_fits_output(self, loss: Loss) -> None: ...


class StepResult(NamedTuple):
    """What one step returns: the network's output for the batch (training mode), the data
    loss and the penalty (0.0 without a regularizer), both as the loss reports them."""

    output: np.ndarray
    loss: float
    penalty: float


class EpochResult(NamedTuple):
    """One pass over the data: the training loss (data loss plus penalty; averaged over the
    samples for a mean loss, summed for a summed one), and, when asked for, each batch's
    output with its rows (for metrics)."""

    loss: float
    outputs: list[tuple[np.ndarray, np.ndarray | slice]]


class TrainingStep:
    """One guarded gradient step on a mini-batch; see the module docstring.

    Parameters
    ----------
    model : Sequential (or anything with what :class:`Network` lists)
    loss : Loss or name ("mse", "bce", "softmax_cross_entropy")
    optimizer : Optimizer
        Its state carries over from call to call (and from step object to step object).
    regularizer : L1, L2 or L1L2, optional
    scale_penalty_by_batch : bool
        Divide the penalty (and its gradient) by the batch's number of samples.
    clip_value, clip_norm : float, optional
        Clip each gradient element to ``[-clip_value, clip_value]`` and/or rescale the
        gradients to a global L2 norm of at most ``clip_norm``, before the update.
    augment : callable, optional
        ``augment(X_batch, rng)`` gives the batch's inputs as the epoch trains on them
        (e.g. :class:`bprop.data.augment.Augment`), drawn from the model's generator: each
        epoch then sees other versions of the training samples. CPU only.

    Notes
    -----
    Calling the step, ``step(X_batch, y_batch)`` (or ``step(X_batch, y_batch,
    sample_weight=w)``, ``w`` of shape (m,)), checks the batch (shapes, dtype, finite values,
    targets that fit the loss) and returns a :class:`StepResult`. :meth:`batches` gives one
    epoch's mini-batches; :meth:`epoch` runs them all.

    Raises
    ------
    TrainingDivergedError
        When the loss, a gradient or an updated weight is NaN or infinite; the step is undone.
    """

    def __init__(self, model: Network, loss: Loss | str, optimizer: Optimizer, *,
                 regularizer: Regularizer | None = None, scale_penalty_by_batch: bool = False,
                 clip_value: float | None = None, clip_norm: float | None = None,
                 augment=None) -> None:
        self.model, self.loss, self.optimizer = model, get_loss(loss), optimizer
        model._check_loss_fits_output(self.loss)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a bprop Optimizer, e.g. SGD(lr=0.1); got {optimizer!r}")
        if regularizer is not None and not isinstance(regularizer, Regularizer):
            raise TypeError(f"regularizer must be L1, L2 or L1L2, got {regularizer!r}")
        self.regularizer = regularizer
        self.scale_penalty_by_batch = bool(scale_penalty_by_batch)
        self.clip_value = None if clip_value is None else check_positive_float(
            clip_value, "clip_value")
        self.clip_norm = None if clip_norm is None else check_positive_float(
            clip_norm, "clip_norm")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a function augment(X_batch, rng), e.g. "
                            f"bprop.data.augment.Augment(shift=2); got {augment!r}")
        if augment is not None and not model.device.is_cpu:
            raise ValueError("augmenting the training batches runs on the CPU; train on the "
                             "CPU, or augment the data before fit")
        self.augment = augment
        self.parameters = model.parameters()
        self._buffers = [b for layer in model.layers for b in layer.buffers.values()]
        self._has_batchnorm = any(isinstance(layer, BatchNorm) for layer in model.layers)
        self._values_before: np.ndarray | None = None
        # When the optimizer carries a NaN or infinite gradient into the values (bprop's own
        # do), the guarded update's test of the values catches it and the gradients need no
        # pass of their own; clipping could make an infinite gradient finite, and so might an
        # update written elsewhere (a sign, a clip): then the gradients are looked at first.
        self._check_gradients = (self.clip_value is not None or self.clip_norm is not None
                                 or not optimizer.carries_nonfinite_gradients)

    def __getstate__(self) -> dict:
        """What a pickle keeps (an estimator pickles its step): the model, loss, optimizer and
        settings; not the device's flags, recorded graphs and streams, nor the backup of the
        values, which are made anew at the next step."""
        state = dict(self.__dict__)
        for name in _TRANSIENT:
            state.pop(name, None)
        state["_values_before"] = None
        return state

    @property
    def xp(self):
        """The array module the model computes through (numpy, or cupy on a GPU)."""
        return self.parameters[0].xp if self.parameters else np

    # -- the public calls, which check what they are given -------------------------------------
    def __call__(self, X_batch: np.ndarray, y_batch: np.ndarray, sample_weight=None
                 ) -> StepResult:
        """One step on ``(X_batch, y_batch)``: forward, loss, backward, guarded update, each
        sample weighted by ``sample_weight`` (m,) when given. (On a GPU this call, unlike
        ``fit``, reads the step's loss and flags back at once.)"""
        X_batch, y_batch = self.model._check_data(X_batch, y_batch, self.loss, "X_batch",
                                                  "y_batch")
        weight = self.check_weight(sample_weight, len(X_batch))
        self.model.loss = self.loss
        if self.xp is np:
            return self._step(X_batch, y_batch, weight)
        X_batch, y_batch = self._place(X_batch, y_batch, always=True)
        placed = self._place_weights(weight, X_batch)
        self._start_device_epoch()
        out, value, penalty = self._device_step(X_batch, y_batch,
                                                self.loss.reduction == "mean",
                                                None if placed is None else placed.placed)
        self._finish_device_epoch()
        return StepResult(out, float(value), float(penalty))

    def epoch(self, X: np.ndarray, y: np.ndarray, batch_size: int = 32, shuffle: bool = True,
              sample_weight=None) -> EpochResult:
        """Every mini-batch of ``(X, y)`` once (see :meth:`batches`), each sample weighted by
        ``sample_weight`` (n_samples,) when given; the epoch's loss."""
        X, y = self.model._check_data(X, y, self.loss, "X", "y")
        weight = self.check_weight(sample_weight, len(X))
        batch_size = min(check_positive_int(batch_size, "batch_size"), len(X))
        self.model.loss = self.loss
        X, y = self._place(X, y)
        return self._epoch(X, y, batch_size, shuffle, weights=self._place_weights(weight, X))

    def check_weight(self, sample_weight, n_samples: int) -> np.ndarray | None:
        """``sample_weight`` checked for ``n_samples`` samples (1-D, finite, non-negative, not
        all zero), in the model's dtype on the host; None for none. A loss that cannot weigh
        its samples is refused here."""
        if sample_weight is None:
            return None
        if not takes_sample_weight(self.loss):
            raise TypeError(f"the loss {self.loss!r} does not take sample weights: its "
                            "_forward(pred, target, weight=None) has no weight argument")
        return check_sample_weight(sample_weight, n_samples, self.model.dtype)

    def batches(self, n_samples: int, batch_size: int, shuffle: bool = True
                ) -> list[np.ndarray | slice]:
        """The rows of each mini-batch of one epoch over ``n_samples`` samples: a permutation
        drawn from the model's seeded generator (slices in order when not shuffling). With a
        BatchNorm layer, a last batch of one sample joins the batch before it (the variance
        of one sample is undefined)."""
        n_samples = check_positive_int(n_samples, "n_samples")
        batch_size = check_positive_int(batch_size, "batch_size")
        starts = list(range(0, n_samples, batch_size))
        if self._has_batchnorm and len(starts) > 1 and n_samples - starts[-1] == 1:
            starts.pop()
        stops = starts[1:] + [n_samples]
        if not shuffle:
            return [slice(a, b) for a, b in zip(starts, stops, strict=True)]
        order = self.model.rng.permutation(n_samples)
        return [order[a:b] for a, b in zip(starts, stops, strict=True)]

    # -- the inner loop, on data already checked -----------------------------------------------
    def _epoch(self, X: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool,
               keep_outputs: bool = False, weights: Weights | None = None) -> EpochResult:
        """One epoch over data already checked and placed (:meth:`_place`), with the
        weights it placed (or None)."""
        if self.xp is not np:
            return self._device_epoch(X, y, batch_size, shuffle, keep_outputs, weights)
        mean = self.loss.reduction == "mean"
        total, outputs = 0.0, []
        for rows in self.batches(len(X), batch_size, shuffle):
            if weights is None:
                out, value, penalty = self._step(self._inputs(X, rows), y[rows])
            elif not weights.host[rows].any():
                continue  # (nothing to learn from a batch that weighs nothing)
            else:
                out, value, penalty = self._step(self._inputs(X, rows), y[rows],
                                                 weights.host[rows])
            # A mean loss is averaged over the epoch's samples, a summed one summed over them;
            # the penalty is charged per sample, batch by batch.
            total += (value if not mean else value * len(out)) + penalty * len(out)
            if keep_outputs:
                outputs.append((out.copy(), rows))
        return EpochResult(total / len(X) if mean else total + 0.0, outputs)

    def _inputs(self, X: np.ndarray, rows) -> np.ndarray:
        """The batch's inputs, augmented when the step augments."""
        if self.augment is None:
            return X[rows]
        return self.augment(X[rows], self.model.rng).astype(X.dtype, copy=False)

    def _step(self, X_batch: np.ndarray, y_batch: np.ndarray, weight=None) -> StepResult:
        model, parameters = self.model, self.parameters
        regularizer = self._penalty(self._batch_size(X_batch, weight))
        # Running statistics change in the forward pass: keep them to undo a bad batch.
        saved_buffers = [b.copy() for b in self._buffers]
        # Non-finite values are detected here and reported in one clear error, not warned about.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = model._forward(X_batch, training=True)
            value, grad_out = self._data_loss(out, y_batch, weight)
            penalty = 0.0 if regularizer is None else regularizer.forward(parameters)
            loss_finite = self._check_loss(value, penalty, saved_buffers)
            if not all(all_finite(buffer) for buffer in self._buffers):
                self._abandon(saved_buffers, _FAILURES[2])
            model.zero_grad()
            model._backward(grad_out, need_input_grad=False)
            if not parameters:
                return StepResult(out, value, penalty)
            values, grads = self._flat()  # (views: clipping below rescales grads in place)
            self._combine(grads, loss_finite, saved_buffers)
            if regularizer is not None:
                regularizer.backward(parameters)
            if self._check_gradients and not all_finite(grads):
                self._abandon(saved_buffers, _FAILURES[3])
            if self.clip_value is not None:
                clip_grad_value(parameters, self.clip_value)
            if self.clip_norm is not None:
                clip_grad_norm(parameters, self.clip_norm)
            if not self.optimizer.guarded_step(parameters, self._values_before):
                values[...] = self._values_before  # (the optimizer has put its state back)
                self._abandon(saved_buffers, _FAILURES[4] if all_finite(grads)  # (as read)
                              else _FAILURES[3])
        return StepResult(out, value, penalty)

    # The four places where a step of several processes (bprop.distributed) differs from
    # this one, which holds the whole batch.
    def _batch_size(self, X_batch: np.ndarray, weight) -> float:
        """The batch's number of samples, or the sum of its sample weights: what a penalty
        scaled by batch is divided by."""
        return len(X_batch) if weight is None else float(weight.sum())

    def _data_loss(self, out: np.ndarray, y_batch: np.ndarray, weight) -> tuple:
        """The batch's loss and its gradient with respect to the network's output."""
        value = (self.loss._forward(out, y_batch) if weight is None  # (checked data)
                 else self.loss._forward(out, y_batch, weight))
        return value, self.loss.backward()

    def _check_loss(self, value: float, penalty: float, saved_buffers: list) -> bool:
        """Stop the step if the loss is not finite; whether it is (here: always, if it
        returns)."""
        if not np.isfinite(value + penalty):
            self._abandon(saved_buffers, f"{_FAILURES[1]} ({value + penalty})")
        return True

    def _combine(self, grads: np.ndarray, loss_finite: bool, saved_buffers: list) -> None:
        """Make ``grads``, the data gradients of the rows this step holds (penalty not yet
        added), the whole batch's: here the step holds the whole batch, so they are."""

    # -- the same step on a device, where nothing is read back until the epoch ends ------------
    def _place(self, X: np.ndarray, y: np.ndarray, always: bool = False):
        """``(X, y)`` on the model's device when they take at most half of its free memory
        (or ``always``), else as they are, for :meth:`_device_epoch` to send batch by batch."""
        if self.xp is np:
            return X, y
        device = self.model.device
        if not always and X.nbytes + y.nbytes > device_free_bytes(device) // 2:
            return X, y
        return device.asarray(X), device.asarray(y)

    def _place_weights(self, weight: np.ndarray | None, X_placed) -> Weights | None:
        """Checked sample weights (on the host) placed where :meth:`_place` put the data
        ``X_placed`` (one copy to a device), as :class:`Weights`; None for none."""
        if weight is None:
            return None
        if array_module(X_placed) is np:
            return Weights(weight, weight)
        return Weights(self.model.device.asarray(weight), weight)

    def _start_device_epoch(self) -> None:
        """Reset the flags an epoch on a device keeps where the model is: made there once and
        then reset in place (a recorded step writes the arrays it recorded)."""
        xp = self.xp
        flags = getattr(self, "_flags", None)
        if flags is None or array_module(flags[0]) is not xp:
            self._flags = (
                xp.ones((), dtype=bool),        # healthy: no step has failed yet
                xp.zeros((), dtype=xp.int64),   # the number of steps kept
                xp.zeros((), dtype=xp.int64),   # why the first failed step failed (_FAILURES)
                xp.zeros((), dtype=xp.float64),  # the epoch's summed loss
            )
            self._graphs: dict = {}
        healthy, kept, failure, total = self._flags
        healthy.fill(True)
        for counter in (kept, failure, total):
            counter.fill(0)
        self._steps_before = self.optimizer._step_count(self.parameters)
        settings = self._settings()
        if settings != getattr(self, "_graphs_settings", None):
            # (a schedule changed the learning rate, or a setting changed: record anew)
            self._graphs, self._graphs_settings = {}, settings

    def _device_epoch(self, X, y, batch_size: int, shuffle: bool, keep_outputs: bool,
                      weights: Weights | None = None) -> EpochResult:
        xp, mean = self.xp, self.loss.reduction == "mean"
        resident = array_module(X) is xp
        batches = self.batches(len(X), batch_size, shuffle)
        if weights is not None:  # (a batch that weighs nothing is skipped, as on the CPU;
            # decided from the weights on the host, so nothing waits for the device)
            batches = [rows for rows in batches if weights.host[rows].any()]
        w = None if weights is None else weights.placed
        # The permutation goes over in one copy; a batch's rows are then sliced from it there.
        order = xp.asarray(np.concatenate(batches)) if resident and shuffle else None
        self._start_device_epoch()
        outputs, start = [], 0
        stream = self._graph_stream() if resident else None
        if stream is not None:
            # (the graphs' stream waits for the one the data and flags were queued on)
            stream.wait_event(xp.cuda.get_current_stream().record())
        data = (X, y) if w is None else (X, y, w)
        sent = None if resident else _BatchSender(data, batches, xp)
        with contextlib.nullcontext() if stream is None else stream:
            for rows in batches:
                count = _count(rows, len(X))
                if sent is not None:  # (too large for the device: this batch goes over now)
                    batch = sent.next()
                elif order is None:
                    batch = tuple(array[rows] for array in data)
                else:
                    picked = order[start:start + count]
                    batch = tuple(array[picked] for array in data)
                start += count
                if stream is None:
                    out = self._device_step(*batch[:2], mean, *batch[2:])[0]
                else:
                    out = self._replayed_step(*batch[:2], mean, *batch[2:])
                if keep_outputs:
                    outputs.append((out.copy(), rows))
            if stream is not None:
                stream.synchronize()  # (before the default stream reads the results)
            total = self._finish_device_epoch()
        return EpochResult(total / len(X) if mean else total + 0.0, outputs)

    def _device_step(self, X_batch, y_batch, mean: bool, w_batch=None):
        """:meth:`_step` on a device: ``(out, loss, penalty)`` as device arrays, the step's
        tests folded into the epoch's flags and the step undone (restore_where) where they
        say it failed (see the module's docstring); the batch's loss is added to the epoch's
        (averaged over the epoch's samples for a ``mean`` loss, else summed). ``w_batch``:
        the batch's sample weights, on the device (their sum stays there too)."""
        # (the stand-in computes with NumPy, which would warn where CuPy is silent)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._device_step_unwarned(X_batch, y_batch, mean, w_batch)

    def _device_step_unwarned(self, X_batch, y_batch, mean: bool, w_batch=None):
        model, parameters = self.model, self.parameters
        regularizer = self._penalty(len(X_batch) if w_batch is None else w_batch.sum())
        xp, rows = self.xp, len(X_batch)
        healthy_so_far, kept_steps, failure, total = self._flags
        saved_buffers = [b.copy() for b in self._buffers]
        out = model._forward(X_batch, training=True)
        value = (self.loss._forward(out, y_batch) if w_batch is None
                 else self.loss._forward(out, y_batch, w_batch))
        penalty = 0.0 if regularizer is None else regularizer._forward(parameters)
        loss_finite = xp.isfinite(value + penalty)
        stats_finite = xp.ones((), dtype=bool)
        for buffer in self._buffers:
            stats_finite = stats_finite & finite_flag(buffer)
        model.zero_grad()
        model._backward(self.loss.backward(), need_input_grad=False)
        kept = healthy_so_far & loss_finite & stats_finite
        grads_finite = xp.ones((), dtype=bool)
        if parameters:
            if regularizer is not None:
                regularizer.backward(parameters)
            values, grads = self._flat()
            grads_finite = finite_flag(grads)
            if self._check_gradients:
                kept = kept & grads_finite
            if self.clip_value is not None:
                xp.clip(grads, -self.clip_value, self.clip_value, out=grads)
            if self.clip_norm is not None:
                _clip_device_norm(grads, self.clip_norm)
            kept = self.optimizer.guarded_step(parameters, self._values_before, kept)
        failed = ~kept
        if parameters:
            kernels.restore_where(failed, self._values_before, values)
        for buffer, saved in zip(self._buffers, saved_buffers, strict=True):
            kernels.restore_where(failed, saved, buffer)
        # The reason of the first failure: the first test that failed, else the update.
        reason = xp.where(~loss_finite, 1, xp.where(~stats_finite, 2,
                                                    xp.where(~grads_finite, 3, 4)))
        xp.copyto(failure, reason, where=healthy_so_far & ~kept)
        kept_steps += kept
        charge = (value if not mean else value * rows) + penalty * rows
        total += xp.where(kept, charge, 0)
        xp.copyto(healthy_so_far, kept)
        return out, value, penalty

    def _graph_stream(self):
        """The stream a recorded step runs on, or None where steps are not recorded: with a
        CuPy too old to record, with Dropout (a recorded step would draw the same masks at
        every replay), or after a recording failed. (The CPU stand-in records, as CuPy.)"""
        if not graphs.recording_possible(self.xp) or getattr(self, "_no_graphs", False):
            return None
        if any(isinstance(layer, Dropout) and layer.p for layer in self.model.layers):
            return None
        stream = getattr(self, "_stream", None)
        if stream is None:
            stream = self._stream = self.xp.cuda.Stream(non_blocking=True)
        return stream

    def _replayed_step(self, X_batch, y_batch, mean: bool, w_batch=None):
        """One step through a recorded graph: the batch copied into the graph's inputs and
        the graph replayed. A batch of a new shape first runs as it is (which compiles its
        kernels and makes the arrays the step keeps) and then records its graph, which runs
        it; where recording fails, steps run as they are from then on.

        A replay reads and writes the very arrays it recorded, so a graph is recorded again
        when any array it uses from outside itself was replaced since (the model moved to
        another device and back, the optimizer's state was loaded or reset): the graph keeps
        those arrays, and their identities, to tell."""
        arrays = self._arrays_outside_the_graph()
        identities = tuple(map(id, arrays))
        batch = (X_batch, y_batch) if w_batch is None else (X_batch, y_batch, w_batch)
        key = tuple(array.shape for array in batch)  # (weights or none: a graph each)
        entry = self._graphs.get(key)
        if isinstance(entry, _Recorded) and entry.identities != identities:
            entry = None
        if entry is None:
            self._graphs[key] = _WARMING_UP
            return self._device_step(X_batch, y_batch, mean, w_batch)[0]
        if entry is _WARMING_UP:
            inputs = tuple(array.copy() for array in batch)
            results = []
            graph = graphs.StepGraph.record(
                lambda: results.append(self._device_step(*inputs[:2], mean, *inputs[2:])[0]),
                self.xp, self._stream)
            if graph is None or not results:
                self._no_graphs, self._graphs = True, {}
                return self._device_step(X_batch, y_batch, mean, w_batch)[0]
            entry = self._graphs[key] = _Recorded(graph, inputs, results[0], arrays, identities)
        for graph_input, array in zip(entry.inputs, batch, strict=True):
            graph_input[...] = array
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # (as in the step)
            entry.graph.replay()
        return entry.output

    def _arrays_outside_the_graph(self) -> list:
        """The device arrays a recorded step reads or writes that it did not make itself: the
        parameters' buffers, the running statistics, the optimizer's state, the step's own."""
        arrays = [*self._buffers, *self._flags]
        if self.parameters:
            buffer = self.parameters[0]._home[0]
            arrays += [buffer.values, buffer.grads, self._values_before]
            arrays += self.optimizer._state_arrays(self.parameters)
        return arrays

    def _settings(self) -> tuple:
        """What a recorded step takes as fixed besides its arrays: the settings of the
        optimizer, the layers, the loss, the penalty and the clipping."""
        return (repr(self.optimizer), repr(self.loss), repr(self.regularizer),
                self.scale_penalty_by_batch, self.clip_value, self.clip_norm,
                *map(repr, self.model.layers))

    def _finish_device_epoch(self) -> float:
        """Read the epoch's loss and flags back (one copy), put the optimizer's step count
        right, and raise if a step failed; the epoch's summed loss."""
        xp = self.xp
        _, kept_steps, failure, total = self._flags
        summary = to_numpy(xp.stack([total, kept_steps.astype(xp.float64),
                                     failure.astype(xp.float64)]))
        kept, failure = int(summary[1]), int(summary[2])
        if self.parameters:
            self.optimizer._set_step_count(self.parameters, self._steps_before + kept)
        if failure:
            raise TrainingDivergedError(_FAILURES[failure], History())
        return float(summary[0])

    # -- machinery -------------------------------------------------------------------------
    def _penalty(self, batch_size) -> Regularizer | None:
        """The penalty of one batch: divided by ``batch_size`` (its number of samples, or the
        sum of its sample weights: a float, or a 0-d array on a device) when scaled by
        batch. (Made anew: the strength may change.)"""
        if self.regularizer is None or not self.scale_penalty_by_batch:
            return self.regularizer
        return self.regularizer._scaled_by(1 / batch_size)

    def _flat(self) -> tuple[np.ndarray, np.ndarray]:
        """The parameters' flat values and gradients (free: the model packed them into one
        buffer), and the array that keeps the values from before the update."""
        values, grads = flat_views(self.parameters)
        if (self._values_before is None or self._values_before.shape != values.shape
                or self._values_before.dtype != values.dtype
                or array_module(self._values_before) is not array_module(values)):
            self._values_before = array_module(values).empty_like(values)
        return values, grads

    def _abandon(self, saved_buffers: list[np.ndarray], message: str) -> NoReturn:
        """Put the running statistics back as they were before the step, and stop: the step
        diverged (the caller has put back whatever else it changed)."""
        for buffer, copy_ in zip(self._buffers, saved_buffers, strict=True):
            buffer[...] = copy_
        raise TrainingDivergedError(message, History())


#: what a step keeps only while it runs on a device (see TrainingStep.__getstate__)
_TRANSIENT = ("_flags", "_graphs", "_graphs_settings", "_stream", "_no_graphs",
              "_steps_before")

#: a graph whose batch shape has run once, as it is, and is recorded the next time
_WARMING_UP = "warming up"


class Weights(NamedTuple):
    """Checked sample weights (n_samples,): where the data were placed (the device, or the
    host for data sent batch by batch), and on the host (which decides, without waiting for
    the device, which batches weigh nothing)."""

    placed: object
    host: np.ndarray


class _Recorded(NamedTuple):
    """A recorded step: the graph, its input arrays and output, and the arrays from outside it
    that it uses (kept, so that their identities stay theirs) with those identities."""

    graph: graphs.StepGraph
    inputs: tuple
    output: object
    arrays: list
    identities: tuple


class _BatchSender:
    """The mini-batches of data too large for the device, sent over one at a time. With CuPy
    each batch is gathered into page-locked host memory and copied, on a stream of its own,
    into one of two device arrays used in turn, while the step before it computes; a copy
    into a device array waits until the step that read it last is done. Elsewhere (the
    stand-in) a batch is simply copied when it is needed."""

    def __init__(self, data: tuple, batches: list, xp) -> None:
        # (data: (X, y), or (X, y, sample_weight), each sliced into the same batches)
        self.data, self.batches, self.xp = data, list(batches), xp
        self.position, self.n_samples = 0, len(data[0])
        self.pinned = is_cupy(xp)
        if self.pinned:
            import cupyx

            rows = max(_count(b, self.n_samples) for b in self.batches)
            shapes = [((rows, *array.shape[1:]), array.dtype) for array in data]
            self.host = [[cupyx.empty_pinned(*shape) for shape in shapes] for _ in range(2)]
            self.device = [[xp.empty(*shape) for shape in shapes] for _ in range(2)]
            self.copies = xp.cuda.Stream(non_blocking=True)
            self.copied: list = [None, None]  # each slot's copy, as an event
            self._send(0, after=None)

    def _send(self, index: int, after) -> None:
        """Start copying batch ``index`` to the device (CuPy only), once the compute stream
        has passed the event ``after`` (the end of the last step that read that slot)."""
        if index >= len(self.batches):
            return
        rows, slot = self.batches[index], index % 2
        count = _count(rows, self.n_samples)
        for host, device, data in zip(self.host[slot], self.device[slot], self.data,
                                      strict=True):
            host[:count] = data[rows]  # (the slot's last copy is done: see next)
            if after is not None:
                self.copies.wait_event(after)
            device[:count].set(host[:count], stream=self.copies)
        self.copied[slot] = self.copies.record()

    def next(self):
        """The next batch on the device (and, with CuPy, the one after it on its way)."""
        index = self.position
        self.position += 1
        if not self.pinned:
            rows = self.batches[index]
            return tuple(self.xp.asarray(array[rows]) for array in self.data)
        slot, count = index % 2, _count(self.batches[index], self.n_samples)
        compute = self.xp.cuda.get_current_stream()
        compute.wait_event(self.copied[slot])
        self.copied[slot].synchronize()  # (its page-locked buffers may be refilled after)
        # The other slot was read by the step before this one, queued already: the copy
        # into it waits for that step.
        self._send(index + 1, after=compute.record())
        return tuple(array[:count] for array in self.device[slot])


def _count(rows, n_samples: int) -> int:
    """How many samples ``rows`` (a slice or an array of indices) picks of ``n_samples``."""
    return len(range(n_samples)[rows]) if isinstance(rows, slice) else len(rows)


#: why a step failed, by the number a device step records
_FAILURES = {
    1: "the training loss became NaN or infinite",
    2: "a running statistic (BatchNorm) became NaN or infinite",
    3: "a gradient became NaN or infinite",
    4: "a parameter or the optimizer's state overflowed to infinity in the update",
}


def device_free_bytes(device) -> int:
    """The free memory of ``device`` in bytes, as its array module reports it (CuPy's pool
    included); practically unlimited for the CPU stand-in, which does not model memory."""
    xp = device.xp
    if getattr(xp, "__name__", "") != "cupy":
        return 1 << 62
    with device:
        free, _ = xp.cuda.runtime.memGetInfo()
        return int(free) + int(xp.get_default_memory_pool().free_bytes())

"""Sequential: a stack of layers, its forward and backward passes, ``fit``, ``evaluate`` and
``predict``.

``fit`` checks the data once and then runs the one training step (:mod:`bprop.nn.step`) on
every mini-batch: forward layer by layer, the loss, backward in reverse (the chain rule), and
the optimizer's guarded update, undone if anything became NaN or infinite.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import numpy as np

from .._checks import (
    all_finite,
    as_array,
    as_features,
    as_float_dtype,
    check_finite,
    check_positive_int,
    check_same_length,
    check_sample_weight,
    check_seed,
)
from ..backend.devices import CPU, Device, array_module, get_device, on_device, to_numpy
from ..optim.optimizers import SGD, Optimizer
from ..optim.regularizers import Regularizer
from ..optim.schedules import Schedule
from .history import History, TrainingDivergedError
from .layers import Layer, Sigmoid, Softmax
from .losses import (
    BinaryCrossEntropy,
    Loss,
    SoftmaxCrossEntropy,
    check_distributions,
    class_labels,
    get_loss,
    takes_logits,
    takes_sample_weight,
)
from .metrics import METRICS
from .model_file import save
from .parameter import Parameter, move, pack
from .step import TrainingStep
from .world import SingleProcess, World

#: inference runs over slices of rows whose widest activation takes about this many bytes
_INFERENCE_SLICE_BYTES = 2**20
#: the same on a GPU, where slices only bound the memory (they gain no cache)
_DEVICE_SLICE_BYTES = 2**26


class Sequential:
    """A feed-forward network: layers applied one after another.

    Parameters
    ----------
    layers : sequence of Layer
        For example ``[Dense(2, 8), Tanh(), Dense(8, 1), Sigmoid()]``. Consecutive Dense sizes
        must chain.
    seed : int or None
        Seeds the model's own ``numpy.random.Generator``, the only source of randomness for
        initialisation and shuffling (the global ``np.random`` state is never used): the same
        seed and data give the same results.
    dtype : {"float32", "float64"}
        Precision of parameters and computation. Inputs are converted to it at the public
        entry points; nothing inside is silently upcast.
    initialise : bool
        Draw the weights of the layers whose weights are not set yet (the default). False
        leaves them at zero and takes them as set, drawing nothing: for a model whose weights
        are loaded next (:meth:`load_state_dict`, as :func:`bprop.load` does).
    device : {"cpu", "cuda", "auto"}
        Where the parameters, their gradients, the optimizer's state and the computation
        live: the CPU (NumPy) or an NVIDIA GPU (CuPy, ``pip install "bprop[gpu]"``); see
        :meth:`to`. The weights are drawn on the CPU from the seeded generator and then
        moved, so a seed gives the same initial weights on every device.

    Notes
    -----
    The parameters of all layers live in one buffer, allocated once in ``dtype``; the layers'
    initial weights are drawn straight into it, and the gradients are allocated when first
    needed, so a model costs its size: its weights, and as much again for the gradients once
    it trains. (Training adds the optimizer's state, e.g. Adam's two moments and the spares
    that let a diverging step be undone, and one copy of the weights for that undo.)
    :meth:`forward` and :meth:`backward` check their arguments once and then run the layers'
    inner passes, which hold only the arithmetic; :meth:`_forward` and :meth:`_backward` are
    those unchecked passes, for a training loop that has checked its data already.

    >>> import bprop as bp
    >>> model = bp.Sequential([bp.Dense(2, 3), bp.ReLU(), bp.Dense(3, 1)], seed=0)
    >>> model.forward(np.zeros((4, 2))).shape
    (4, 1)
    >>> sum(p.size for p in model.parameters())
    13
    """

    #: the shape of the last forward pass's output, which backward's grad_out must have
    _output_shape: tuple[int, ...] | None = None
    #: where the model lives (see :meth:`to`); a class default for models pickled before
    device: Device = CPU

    def __init__(self, layers: Sequence[Layer], seed: int | None = None, dtype="float32", *,
                 initialise: bool = True, device="cpu"):
        if isinstance(layers, Layer) or not isinstance(layers, Sequence):
            raise TypeError("layers must be a list of layers, e.g. [Dense(2, 4), ReLU()]")
        for i, layer in enumerate(layers):
            if isinstance(layer, type) and issubclass(layer, Layer):
                name = layer.__name__
                raise TypeError(f"layer {i} is the class {name}; write {name}()")
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {layer!r}, which is not a bprop Layer")
        if not layers:
            raise ValueError("a Sequential model needs at least one layer")
        for i, layer in enumerate(layers):
            if any(layer is other for other in layers[:i]):
                raise ValueError(
                    f"layer {i} {layer!r} appears twice in the list; each position needs its own "
                    "layer object (a layer caches its input for the backward pass)")
            if any(p._home is not None for p in layer.parameters()):
                raise ValueError(
                    f"layer {i} {layer!r} already belongs to another model; create a new layer, "
                    "or copy the weights over with new_layer.weight = old_layer.weight")
        target = get_device(device)  # (before anything is built: a missing GPU is said first)
        self.layers = list(layers)
        self.dtype = as_float_dtype(dtype)
        self.seed = check_seed(seed)
        self.rng = np.random.default_rng(self.seed)
        self.n_inputs, self.n_outputs = _chain_sizes(self.layers)
        self.loss: Loss | None = None
        self.training = False
        self.stop_training = False
        # The buffer first, in the model's dtype, so that the weights are drawn straight into it.
        self._pack()
        for layer in self.layers:
            if not initialise:
                layer._initialised = True
            layer.build(self.rng, self.dtype)
        self.to(target)

    def _pack(self) -> None:
        parameters = self.parameters()
        if parameters:  # (each parameter keeps its buffer, param._home)
            pack(parameters, self.dtype, xp=self.device.xp)

    def __setstate__(self, state: dict) -> None:
        # A pickled parameter carries its own array (see Parameter.__getstate__): an
        # unpickled or copied model packs them into one buffer again, on its device, as a
        # training step (recorded on a GPU, too) expects of a model.
        self.__dict__.update(state)
        self._pack()

    def to(self, device) -> Sequential:
        """Move the model to ``device`` (``"cpu"``, ``"cuda"`` or ``"auto"``), in
        place, and return it, as PyTorch's ``module.to`` does.

        The parameters move in one copy of the model's buffer, the running statistics with
        them; gradients start again at zero, and what the layers cached for a backward pass
        is dropped. An optimizer's state follows the parameters at its next step. Dropout
        draws its masks from a generator of the new device, seeded from its old one.

        Raises
        ------
        DeviceUnavailableError
            For ``"cuda"`` without CuPy or without a visible GPU.
        """
        target = get_device(device)
        if target == self.device:
            return self
        xp = target.xp
        with target:
            parameters = self.parameters()
            if parameters:
                move(parameters, xp)
            for layer in self.layers:
                for name, buffer in layer.buffers.items():
                    layer.buffers[name] = (np.array(to_numpy(buffer)) if xp is np
                                           else xp.array(xp.asarray(buffer)))
                _drop_cached_arrays(layer)
            self._generators_onto(xp)
        self.device = target
        return self

    def _generators_onto(self, xp) -> None:
        """Give each layer that draws at run time (Dropout) a generator of ``xp``'s device,
        seeded from the one it has (unless it has one of that device already)."""
        for layer in self.layers:
            rng = getattr(layer, "rng", None)
            if rng is None or (xp is np) == isinstance(rng, np.random.Generator):
                continue
            seed = int(rng.integers(2**63 - 1))
            layer.rng = np.random.default_rng(seed) if xp is np else xp.random.default_rng(seed)

    # -- the two passes ----------------------------------------------------------------------
    def forward(self, x, training: bool | None = None) -> np.ndarray:
        """Output of the network for input ``x`` of shape (m, n_inputs).

        ``training`` switches Dropout and BatchNorm to their training behaviour; None (the
        default) uses the model's mode, set by :meth:`train` and :meth:`eval` (eval at first).
        """
        x = self._on_own_device(as_features(x, "x", self.dtype, self.n_inputs))
        return self._forward(x, self.training if training is None else training)

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """:meth:`forward` without its checks: ``x`` must already be a finite (m, n_inputs)
        array of the model's dtype."""
        for layer in self.layers:
            x = layer._forward(x, training)
            layer._output_shape = x.shape  # (what the layer's own backward() would check)
        self._output_shape = x.shape
        return x

    def _infer(self, X: np.ndarray, check_as: str | None = None) -> np.ndarray:
        """The output for ``X`` in inference mode, computed a slice of rows at a time.

        In inference every layer treats rows independently (a rule for all layers, see
        :class:`~bprop.nn.layers.Layer`), so slicing changes where the activations live, not
        what they are (up to the last bits that a matrix product's blocking may change): a
        slice's fit in the processor's cache (predicting the 10,000 MNIST test images this
        way takes about 7% less time than in one piece), and a large ``X`` needs little
        memory beyond its output. With ``check_as`` (the name of ``X`` for the error message),
        each slice is first checked for NaN and infinity, while it is in the cache anyway,
        instead of in a pass of its own over all of ``X``.
        """
        # On a GPU, cache-sized slices gain nothing, but slices still bound the memory the
        # activations take: slices of about 64 MB there, each copied over when X is on the host.
        on_gpu = not self.device.is_cpu
        widest = max([1, *(layer.n_outputs or 0 for layer in self.layers)])
        budget = _DEVICE_SLICE_BYTES if on_gpu else _INFERENCE_SLICE_BYTES
        rows = max(64, budget // (widest * X.dtype.itemsize))
        out = None
        for start in range(0, max(len(X), 1), rows):
            part = self._on_own_device(X[start:start + rows])
            if check_as is not None and not all_finite(part):
                check_finite(to_numpy(X), check_as)  # raises, naming the first bad value
            part_out = self._forward(part, training=False)
            if len(X) <= rows:
                return part_out
            if out is None:
                out = array_module(part_out).empty((len(X), *part_out.shape[1:]),
                                                   dtype=part_out.dtype)
            out[start:start + rows] = part_out
        return out

    def _on_own_device(self, array):
        """``array`` in this model's memory: copied there from the host or from another
        device, as it is when it is there already."""
        if array_module(array) is self.device.xp:
            return array
        return self.device.asarray(array)

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate ``grad_out`` (dLoss/dOutput) through every layer, last to first.

        Adds each parameter's gradient into ``param.grad`` and returns dLoss/dInput (None with
        ``need_input_grad=False``, which spares the first layer that product: training on data
        never needs it).
        """
        if self._output_shape is None:
            raise RuntimeError("backward() was called before forward()")
        grad_out = self._on_own_device(as_array(grad_out, "grad_out", self.dtype))
        if grad_out.shape != self._output_shape:
            raise ValueError(f"grad_out has shape {grad_out.shape} but the model's last output "
                             f"had shape {self._output_shape}")
        return self._backward(grad_out, need_input_grad)

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        """:meth:`backward` without its checks: ``grad_out`` must be an array of the model's
        dtype and of the last forward output's shape."""
        for layer in self.layers[:0:-1]:
            grad_out = layer._backward(grad_out, True)
        return self.layers[0]._backward(grad_out, need_input_grad)

    __call__ = forward

    def train(self) -> Sequential:
        """Switch to training mode (Dropout drops, BatchNorm uses batch statistics)."""
        self.training = True
        return self

    def eval(self) -> Sequential:
        """Switch to inference mode (Dropout is the identity, BatchNorm uses running stats)."""
        self.training = False
        return self

    # -- parameters --------------------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``[("0.weight", param), ("0.bias", param), ...]``: layer index and parameter name."""
        return [(f"{i}.{name}", p) for i, layer in enumerate(self.layers)
                for name, p in layer.params.items()]

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by name (``"0.weight"``, ``"3.running_mean"``)."""
        state = {name: p.value.copy() for name, p in self.named_parameters()}
        for i, layer in enumerate(self.layers):
            state.update({f"{i}.{name}": b.copy() for name, b in layer.buffers.items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Set parameters and buffers from :meth:`state_dict` output (names must match)."""
        expected = {name: p.shape for name, p in self.named_parameters()}
        for i, layer in enumerate(self.layers):
            expected.update({f"{i}.{name}": b.shape for name, b in layer.buffers.items()})
        if set(state) != set(expected):
            missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
            raise ValueError(f"state does not fit this model: missing {missing}, "
                             f"unexpected {extra}")
        for name, shape in expected.items():
            given = getattr(state[name], "shape", None)  # (an array of any device)
            given = np.shape(state[name]) if given is None else tuple(given)
            if given != shape:
                raise ValueError(f"{name} has shape {given} in the state but {shape} in the "
                                 "model")
        for name, param in self.named_parameters():
            param.value = state[name]
        for i, layer in enumerate(self.layers):
            for name, buffer in layer.buffers.items():
                buffer[...] = self._on_own_device(state[f"{i}.{name}"])

    def save(self, path, optimizer: Optimizer | None = None) -> None:
        """Write the model (and optionally ``optimizer``'s state) to one file; see
        :func:`bprop.save`."""
        save(self, path, optimizer=optimizer)

    def to_onnx(self, path: str | os.PathLike | None = None, opset: int | None = None,
                **options):
        """Write the model as an ONNX model to ``path`` and return it; see
        :func:`bprop.export_onnx`, which takes the same ``options``."""
        # The converter sits outside the core, and imports this module: it is looked up when
        # called, so that the core never loads it (nor the onnx package).
        from ..interop.onnx_export import export_onnx

        return export_onnx(self, path, opset, **options)

    def astype(self, dtype) -> Sequential:
        """A copy of the model (same weights) computing in ``dtype``."""
        clone = copy.deepcopy(self)
        clone.dtype = as_float_dtype(dtype)
        clone._pack()
        for layer in clone.layers:
            layer.build(clone.rng, clone.dtype)
        clone._generators_onto(clone.device.xp)  # (build gave Dropout the model's host one)
        return clone

    def summary(self) -> str:
        """A table of the layers, their output widths and parameter counts."""
        lines = [f"{'#':>3}  {'layer':<40} {'outputs':>8} {'params':>9}"]
        width = self.n_inputs
        total = 0
        for i, layer in enumerate(self.layers):
            width = layer.n_outputs or width
            count = sum(p.size for p in layer.parameters())
            total += count
            lines.append(f"{i:>3}  {layer!r:<40} {width if width else '?':>8} {count:>9,}")
        lines.append(f"total parameters: {total:,} ({self.dtype.name})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {layer!r}" for layer in self.layers)
        device = "" if self.device.is_cpu else f", device={self.device.name!r}"
        return f"Sequential([\n{inner},\n], dtype={self.dtype.name!r}{device})"

    # -- training ----------------------------------------------------------------------------
    def fit(
        self,
        X,
        y,
        *,
        loss,
        optimizer: Optimizer | None = None,
        epochs: int = 1,
        batch_size: int | None = 32,
        shuffle: bool = True,
        validation_data: tuple | None = None,
        metrics: Sequence[str] | None = None,
        regularizer: Regularizer | None = None,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        schedule: Schedule | None = None,
        callbacks: Sequence = (),
        verbose: int = 0,
        sample_weight=None,
        augment=None,
        world: World | None = None,
    ) -> History:
        """Train with mini-batch gradient descent; return the per-epoch :class:`History`.

        Parameters
        ----------
        X : array of shape (n_samples, n_inputs)
        y : targets: class labels (n_samples,) or one-hot rows for
            :class:`SoftmaxCrossEntropy`; values in [0, 1] for :class:`BinaryCrossEntropy`;
            values of shape (n_samples, n_outputs) (or (n_samples,) for one output) for
            :class:`MSE`.
        loss : Loss or name ("mse", "bce", "softmax_cross_entropy")
        optimizer : Optimizer, default ``SGD(lr=0.01)``. Its state (momentum, moments)
            carries over to the next ``fit`` call with the same optimizer.
        epochs : passes over the data.
        batch_size : samples per gradient step; None for the whole set at once.
        shuffle : reshuffle the samples every epoch (with the model's generator).
        validation_data : ``(X_val, y_val)`` evaluated after every epoch.
        metrics : names from ``"accuracy"``, ``"mae"``, ``"mse"``, ``"r2"``; by default
            accuracy for classification losses and none for regression.
        regularizer : :class:`~bprop.L1`, :class:`~bprop.L2` or :class:`~bprop.L1L2`; its
            penalty is included in the reported training loss and in the gradient.
        clip_value, clip_norm : clip each gradient element to ``[-clip_value, clip_value]``
            and/or rescale the gradients to a global L2 norm of at most ``clip_norm``, before
            every step.
        schedule : a learning-rate schedule built on ``optimizer``, stepped after every epoch.
        callbacks : :class:`~bprop.Callback` objects or functions ``f(epoch, history)``;
            returning True stops training (so does setting ``model.stop_training = True``).
        verbose : 0 silent, 1 one line per epoch.
        sample_weight : array of shape (n_samples,), optional
            Each sample's weight in the loss and its gradient (finite, >= 0, not all zero):
            each batch's loss is the weighted mean of its samples' losses (for a mean loss;
            the weighted sum for a summed one), so an integer weight k counts a sample k
            times and a weight 0 leaves it out. The training metrics are weighted too.
        augment : ``augment(X_batch, rng)``, e.g. :class:`bprop.data.augment.Augment`
            (random shifts, elastic distortions): each training batch as this epoch sees it,
            drawn from the model's generator (validation data are never augmented).
        world : the processes training together, e.g. ``bprop.distributed.MPIWorld()`` under
            ``mpirun -n K``; by default this process alone. Every process calls ``fit`` with
            the same data; each computes the gradient of its part of every batch, and they
            combine them into the whole batch's, so K processes train the model one would.
            Process 0's model is the start, callbacks run and ``verbose`` prints in process 0
            only (the learning rate they set, and their decision to stop, reach every
            process), all stop together, and every process ends with process 0's model.

        Raises
        ------
        TrainingDivergedError
            When the loss or a gradient becomes NaN or infinite; the model keeps its last
            finite weights.
        """
        loss = get_loss(loss)
        optimizer = SGD(lr=0.01) if optimizer is None else optimizer
        # (the step checks the optimizer, the loss against the last layer, the regularizer
        # and the clipping bounds)
        world = SingleProcess() if world is None else world
        step = world.training_step(self, loss, optimizer, regularizer=regularizer,
                                   clip_value=clip_value, clip_norm=clip_norm, augment=augment)
        if schedule is not None and getattr(schedule, "optimizer", None) is not optimizer:
            raise ValueError("the schedule was built on a different optimizer than the one "
                             "given to fit; build it on the same one")
        callbacks = list(callbacks)
        for callback in callbacks:
            if not (_is_callback_object(callback) or callable(callback)):
                raise TypeError(f"a callback must be a Callback or a function, got {callback!r}")
        epochs = check_positive_int(epochs, "epochs")
        metrics = self._metric_names(metrics, loss)
        X, y = self._check_data(X, y, loss, "X", "y")
        weight = step.check_weight(sample_weight, len(X))
        batch_size = len(X) if batch_size is None else min(
            check_positive_int(batch_size, "batch_size"), len(X))
        X_placed, y_placed = step._place(X, y)  # on the model's device, once, if they fit
        weights = step._place_weights(weight, X_placed)  # (with them)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val)")
            X_val, y_val = self._check_data(*validation_data, loss, "X_val", "y_val")
        self.loss = loss
        self.stop_training = False
        history = History()
        self._check_monitors([schedule, *callbacks], metrics, validation_data is not None)
        if world.rank != 0:  # (callbacks save, print and decide in process 0 alone)
            callbacks, verbose = [], 0
        was_training = self.training
        try:
            with world.together():
                for callback in callbacks:
                    if _is_callback_object(callback):
                        callback.model = self
                        callback.on_train_begin(self)
                world.start(self)  # (after on_train_begin: a callback may load weights)
                for epoch in range(epochs):
                    scores = self._train_epoch(X_placed, y_placed, y, step, batch_size,
                                               shuffle, metrics, epoch, history, weights)
                    if validation_data is not None:
                        val = self._evaluate(X_val, y_val, loss, metrics)
                        scores.update({f"val_{k}": v for k, v in val.items()})
                    scores["lr"] = optimizer.lr
                    history.append(scores)
                    if verbose:
                        text = "  ".join(f"{k}={v:.4g}" for k, v in scores.items())
                        print(f"epoch {epoch + 1}/{epochs}  {text}", flush=True)
                    if schedule is not None:
                        schedule.step(self._monitored(schedule, history))
                    for callback in callbacks:
                        hook = (callback.on_epoch_end if _is_callback_object(callback)
                                else callback)
                        if hook(epoch, history):
                            self.stop_training = True
                    # (what process 0's callbacks decided and set, for every process)
                    self.stop_training, optimizer.lr = world.agree((self.stop_training,
                                                                    optimizer.lr))
                    if world.interrupted():
                        raise KeyboardInterrupt
                    if self.stop_training:
                        break
                for callback in callbacks:
                    if _is_callback_object(callback):
                        callback.on_train_end(self)
                world.finish(self)
        finally:
            self.training = was_training
        return history

    def _check_monitors(self, watchers: list, metrics: list[str], validating: bool) -> None:
        """Refuse, before any epoch runs, a callback or schedule watching a value that the
        history will not have."""
        keys = {"loss", "lr", *metrics}
        if validating:
            keys |= {"val_loss", *(f"val_{m}" for m in metrics)}
        for watcher in watchers:
            monitor = getattr(watcher, "monitor", None)
            if monitor is not None and monitor not in keys:
                hint = ("pass validation_data to fit" if monitor.startswith("val_")
                        else "add it to metrics")
                raise ValueError(f"{type(watcher).__name__} monitors {monitor!r} but the history "
                                 f"will have only {sorted(keys)}; {hint} or monitor='loss'")

    def _train_epoch(self, X, y, y_host, step: TrainingStep, batch_size: int, shuffle: bool,
                     metrics: list[str], epoch: int, history: History, weights=None
                     ) -> dict[str, float]:
        """One pass over the data (``X``, ``y`` where :meth:`TrainingStep._place` put them, the
        sample ``weights`` where :meth:`TrainingStep._place_weights` put them, or None) in
        mini-batches; the epoch's running loss and metrics (scored against ``y_host``)."""
        try:
            result = step._epoch(X, y, batch_size, shuffle, keep_outputs=bool(metrics),
                                 weights=weights)
        except TrainingDivergedError as error:
            raise TrainingDivergedError(
                f"{error} in epoch {epoch + 1}; training stopped, the model keeps its last "
                "finite weights and the optimizer's state (moments, step count) was reset to "
                "what it was before that step. Try a smaller learning rate, scaled inputs, or "
                "gradient clipping (clip_norm=...).", history) from None
        scores = {"loss": result.loss}
        if metrics:
            # Running values over the epoch's batches, as Keras reports them (read back from
            # a device in one copy).
            xp = array_module(result.outputs[0][0])
            out_all = to_numpy(xp.concatenate([out for out, _ in result.outputs]))
            rows = np.concatenate([np.arange(len(X))[b] for _, b in result.outputs])
            scores.update(self._scores(out_all, y_host[rows], step.loss, metrics,
                                       None if weights is None else weights.host[rows]))
        return scores

    @staticmethod
    def _monitored(schedule: Schedule, history: History) -> float | None:
        monitor = getattr(schedule, "monitor", None)
        if monitor is None:
            return None
        if monitor not in history:
            raise ValueError(
                f"{type(schedule).__name__} monitors {monitor!r} but the history has only "
                f"{sorted(history.history)}; pass validation_data to fit or monitor='loss'"
            )
        return history[monitor][-1]

    # -- evaluation and prediction -----------------------------------------------------------
    def evaluate(self, X, y, loss=None, metrics: Sequence[str] | None = None,
                 sample_weight=None) -> dict[str, float]:
        """Loss and metrics on ``(X, y)`` in inference mode, e.g. ``{"loss": .., "accuracy": ..}``.

        ``loss`` defaults to the one the model was last trained with. ``sample_weight``
        (n_samples,) weights each sample in the loss (a weighted mean, as in :meth:`fit`) and
        in the metrics.
        """
        loss = self._loss_or_last(loss)
        self._check_loss_fits_output(loss)
        X, y = self._check_data(X, y, loss, "X", "y")
        weight = None
        if sample_weight is not None:
            if not takes_sample_weight(loss):
                raise TypeError(f"the loss {loss!r} does not take sample weights: its "
                                "_forward(pred, target, weight=None) has no weight argument")
            weight = check_sample_weight(sample_weight, len(X), self.dtype)
        return self._evaluate(X, y, loss, self._metric_names(metrics, loss), weight)

    def _evaluate(self, X, y, loss: Loss, metrics: list[str], weight=None) -> dict[str, float]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = to_numpy(self._infer(X))  # (scored on the host, where y is)
            y = to_numpy(y)
            scores = {"loss": loss.forward(out, y, sample_weight=weight) if weight is not None
                      else loss.forward(out, y)}
        scores.update(self._scores(out, y, loss, metrics, weight))
        return scores

    def predict(self, X) -> np.ndarray:
        """Predictions for ``X``.

        Class labels (n_samples,) for a multi-class model, 0/1 labels for a binary one (shape
        (n_samples,) for a single output), and the network's output for regression (shape
        (n_samples,) for a single output). The task comes from the loss the model was trained
        with, or, before training, from its last layer (Softmax, Sigmoid, or anything else).
        """
        X = as_features(X, "X", self.dtype, self.n_inputs, check_values=False)
        return to_numpy(self._decide(self._infer(X, check_as="X")))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities: (n_samples, n_classes) for multi-class, P(class 1) per output
        column for binary. Raises for a regression model."""
        X = as_features(X, "X", self.dtype, self.n_inputs, check_values=False)
        return to_numpy(self._probabilities(self._infer(X, check_as="X")))

    def _task(self, loss: Loss | None = None) -> str:
        loss = self.loss if loss is None else loss
        if loss is not None:
            return loss.task
        last = self.layers[-1]
        return {Softmax: "multiclass", Sigmoid: "binary"}.get(type(last), "regression")

    def _probabilities(self, out: np.ndarray, loss: Loss | None = None) -> np.ndarray:
        """Class probabilities from the network's output ``out``, which holds logits when the
        (given or last-used) loss works on logits."""
        loss = self.loss if loss is None else loss
        task = self._task(loss)
        if task == "regression":
            raise ValueError("predict_proba is for classifiers; this model does regression")
        if not takes_logits(loss):
            return out
        xp = array_module(out)
        with np.errstate(over="ignore"):
            if task == "binary":
                return 1 / (1 + xp.exp(-out))
            exp = xp.exp(out - out.max(axis=1, keepdims=True))
            return exp / exp.sum(axis=1, keepdims=True)

    def _decide(self, out: np.ndarray, loss: Loss | None = None) -> np.ndarray:
        """Predicted labels (or values, for regression) from the network's output."""
        task = self._task(loss)
        if task == "multiclass":
            return out.argmax(axis=1)
        if task == "binary":
            labels = (self._probabilities(out, loss) >= 0.5).astype(np.int64)
            return labels.ravel() if labels.shape[1] == 1 else labels
        return out.ravel() if out.shape[1] == 1 else out

    def _scores(self, out, y, loss: Loss, metrics: list[str], weight=None
                ) -> dict[str, float]:
        if not metrics:
            return {}
        scores = {}
        for name in metrics:
            if name == "accuracy":
                if loss.task == "regression":
                    raise ValueError("the accuracy metric needs a classification loss")
                truth = y.argmax(axis=1) if (loss.task == "multiclass" and y.ndim == 2) else y
                predicted = self._decide(out, loss)
                scores[name] = METRICS[name](truth.reshape(predicted.shape), predicted,
                                             sample_weight=weight)
            else:
                scores[name] = METRICS[name](y, out, sample_weight=weight)
        return scores

    # -- checks ------------------------------------------------------------------------------
    def _loss_or_last(self, loss) -> Loss:
        if loss is not None:
            return get_loss(loss)
        if self.loss is None:
            raise ValueError("this model has not been trained yet: pass loss=... to evaluate")
        return self.loss

    def _check_loss_fits_output(self, loss: Loss) -> None:
        last = self.layers[-1]
        if isinstance(loss, SoftmaxCrossEntropy) and isinstance(last, (Softmax, Sigmoid)):
            raise ValueError(
                f"SoftmaxCrossEntropy takes logits, but the model ends with {last!r}; remove "
                "that last layer (the loss applies the softmax itself, exactly and stably)"
            )
        if isinstance(loss, BinaryCrossEntropy):
            if not loss.from_logits and not isinstance(last, Sigmoid):
                raise ValueError(
                    f"BinaryCrossEntropy() takes probabilities, but the model ends with "
                    f"{last!r}; end it with Sigmoid() or use BinaryCrossEntropy(from_logits=True)"
                )
            if loss.from_logits and isinstance(last, Sigmoid):
                raise ValueError(
                    "BinaryCrossEntropy(from_logits=True) takes logits, but the model ends with "
                    "Sigmoid(); remove it or use BinaryCrossEntropy()"
                )

    def _metric_names(self, metrics, loss: Loss) -> list[str]:
        if metrics is None:
            return [] if loss.task == "regression" else ["accuracy"]
        if isinstance(metrics, str):
            metrics = [metrics]
        for name in metrics:
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}; choose from {sorted(METRICS)}")
            if name == "accuracy" and loss.task == "regression":
                raise ValueError(f"accuracy needs a classification loss, not {loss!r}")
        return list(metrics)

    def _check_data(self, X, y, loss: Loss, x_name: str, y_name: str):
        """``(X, y)`` checked, in host memory (data given on a device are copied back to be
        checked; the caller moves them to the model's device)."""
        X, y = to_numpy(X), to_numpy(y)
        X = as_features(X, x_name, self.dtype, self.n_inputs)
        y = as_array(y, y_name)
        check_same_length(X, y, x_name, y_name)
        n_outputs = self.n_outputs
        if isinstance(loss, SoftmaxCrossEntropy):
            if y.ndim == 1:
                return X, class_labels(y, n_outputs if n_outputs else int(y.max()) + 1)
            y = y.astype(self.dtype, copy=False)
            if n_outputs is not None and y.shape != (len(X), n_outputs):
                raise ValueError(
                    f"{y_name} must be labels of shape ({len(X)},) or one-hot rows of shape "
                    f"({len(X)}, {n_outputs}), got shape {y.shape}"
                )
            check_distributions(y, y_name)
            return X, y
        y = y.astype(self.dtype, copy=False)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if n_outputs is not None and y.shape[1:] != (n_outputs,):
            raise ValueError(
                f"{y_name} has shape {y.shape} but the model has {n_outputs} output(s); targets "
                f"must have shape ({len(X)}, {n_outputs})"
                + (" or 1-D" if n_outputs == 1 else "")
            )
        check_finite(y, y_name)
        if isinstance(loss, BinaryCrossEntropy) and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                f"{y_name} must hold 0/1 labels (or probabilities in [0, 1]) for "
                f"BinaryCrossEntropy, got values from {y.min()} to {y.max()}"
            )
        return X, y


def _drop_cached_arrays(layer: Layer) -> None:
    """Forget what ``layer`` kept from its last passes (inputs, outputs, masks, ReLU's zeros):
    arrays of the device it leaves, which the next forward pass makes anew. (A layer that keeps
    arrays of its own between passes, beyond its parameters and buffers, keeps them as
    buffers, which move.)"""
    for name, value in list(vars(layer).items()):
        if name.startswith("_") and (on_device(value) or isinstance(value, np.ndarray)):
            setattr(layer, name, None)


def _is_callback_object(callback) -> bool:
    """Whether ``callback`` is a :class:`~bprop.Callback` (known by its three hooks, so that the
    model need not import the callbacks, which are written against the model) rather than a
    plain function ``f(epoch, history)``."""
    return all(hasattr(callback, hook)
               for hook in ("on_train_begin", "on_epoch_end", "on_train_end"))


def _chain_sizes(layers: list[Layer]) -> tuple[int | None, int | None]:
    """Check that each layer's input width matches the previous output; return (in, out)."""
    n_inputs = width = None
    for i, layer in enumerate(layers):
        if layer.n_inputs is not None:
            if width is not None and layer.n_inputs != width:
                raise ValueError(
                    f"layer {i} {layer!r} expects {layer.n_inputs} inputs but the layer before "
                    f"it gives {width}; the sizes of consecutive layers must chain"
                )
            if n_inputs is None and width is None:
                n_inputs = layer.n_inputs
        if layer.n_outputs is not None:
            width = layer.n_outputs
    return n_inputs, width

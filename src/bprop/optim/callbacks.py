"""Callbacks: code that runs inside ``fit`` at the end of every epoch.

A callback is either a :class:`Callback` or any function ``f(epoch, history)``. Returning
True from ``on_epoch_end`` (or from the function), or setting ``model.stop_training = True``,
ends training after the current epoch::

    def stop_when_good(epoch, history):
        return history["val_accuracy"][-1] > 0.99

    model.fit(X, y, loss=..., validation_data=(X_val, y_val), callbacks=[stop_when_good])
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from .._checks import check_positive_float
from .._progress import ProgressBar
from .schedules import improved, resolve_mode

if TYPE_CHECKING:
    from ..nn.model import History, Sequential


class Callback:
    """Base class; override the hooks you need. ``epoch`` counts from 0."""

    def on_train_begin(self, model: Sequential) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, epoch: int, history: History) -> bool | None:
        """Called after each epoch with the history so far; return True to stop training."""

    def on_train_end(self, model: Sequential) -> None:
        """Called once after the last epoch (also when a callback stopped training)."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        A history key: ``"val_loss"`` (default), ``"val_accuracy"``, ``"loss"``, ...
    patience : int
        Epochs without improvement to tolerate before stopping.
    min_delta : float
        How much better than the best so far a value must be to count as an improvement.
    mode : {"auto", "min", "max"}
        Whether lower or higher is better; ``"auto"`` means higher for accuracy and r2.
    restore_best_weights : bool
        At the end of training, put back the weights (and BatchNorm statistics) of the best
        epoch.

    Attributes
    ----------
    best, best_epoch : the best monitored value and its epoch (from 0).
    stopped_epoch : the epoch after which training stopped, or None.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = check_positive_float(min_delta, "min_delta", allow_zero=True)
        self.mode = resolve_mode(mode, monitor)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, model: Sequential) -> None:
        self.model = model
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.stopped_epoch: int | None = None
        self._waited = 0

    def on_epoch_end(self, epoch: int, history: History) -> bool:
        if self.monitor not in history:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r} but the history has only "
                f"{sorted(history.history)}; pass validation_data to fit or monitor='loss'"
            )
        value = history[self.monitor][-1]
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self._waited = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = self.model.state_dict()
            return False
        self._waited += 1
        if self._waited > self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, model: Sequential) -> None:
        if self.restore_best_weights and self.best_state is not None:
            model.load_state_dict(self.best_state)


class BestState(Callback):
    """Keep a copy of the weights of the best epoch so far (by ``monitor``), so that they can
    be put back at any moment, for instance when training is interrupted.

    ``restore(model)`` loads them; ``best_epoch`` says which epoch they are from, and
    ``history`` holds the metrics of every epoch that finished.
    """

    def __init__(self, monitor: str = "loss", mode: str = "auto") -> None:
        self.monitor = monitor
        self.mode = resolve_mode(mode, monitor)

    def on_train_begin(self, model: Sequential) -> None:
        self.model = model
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.state: dict | None = None
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch: int, history: History) -> None:
        self.history = history.history
        value = history[self.monitor][-1]
        if improved(value, self.best, self.mode, 0.0):
            self.best, self.best_epoch = value, epoch
            self.state = self.model.state_dict()

    def restore(self, model: Sequential) -> bool:
        """Put the best weights back; False if no epoch has finished yet."""
        if self.state is None:
            return False
        model.load_state_dict(self.state)
        return True


class Progress(Callback):
    """Report each epoch: a progress bar over the epochs with the latest loss and metrics when
    the output is a terminal, one plain line per epoch otherwise (logs, CI, pipes)."""

    def __init__(self, epochs: int, stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.stream = sys.stdout if stream is None else stream

    def on_train_begin(self, model: Sequential) -> None:
        self.bar = ProgressBar(self.epochs, "training", stream=self.stream, unit=" epochs")
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, history: History) -> None:
        scores = "  ".join(f"{name} {values[-1]:.4g}" for name, values in history.history.items()
                           if name != "lr")
        if self.bar.interactive:
            self.bar.label = f"epoch {epoch + 1}/{self.epochs}  {scores}"
            self.bar.update(1)
        else:
            elapsed = time.perf_counter() - self.started
            print(f"epoch {epoch + 1}/{self.epochs}  {scores}  ({elapsed:.1f} s)",
                  file=self.stream, flush=True)

    def on_train_end(self, model: Sequential) -> None:
        if self.bar.interactive:
            self.bar.close()

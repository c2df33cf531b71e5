r"""Learning-rate schedules: change ``optimizer.lr`` from one epoch to the next.

A schedule is bound to an optimizer, sets the learning rate of the first epoch when it is
created, and moves on one epoch each time ``step()`` is called (PyTorch's convention)::

    opt = Adam(lr=1e-3)
    schedule = CosineLR(opt, total_epochs=50, warmup_epochs=5)
    for epoch in range(50):
        ...                                # train one epoch with opt.lr
        schedule.step()

``fit(..., schedule=schedule)`` calls ``step`` after every epoch. :class:`ReduceLROnPlateau`
instead takes the monitored value: ``schedule.step(val_loss)``; in ``fit`` it reads it from the
history.
"""

from __future__ import annotations

import math

from .._checks import check_choice, check_positive_float, check_positive_int
from .optimizers import Optimizer


class Schedule:
    """Base class: subclasses give the learning rate of each epoch with :meth:`lr_at`."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"a schedule needs a bprop Optimizer, got {optimizer!r}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self, metric: float | None = None) -> float:
        """Move to the next epoch; return its learning rate."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epoch={self.epoch}, lr={self.optimizer.lr:.3g})"


class StepLR(Schedule):
    r"""Multiply the rate by ``gamma`` every ``step_size`` epochs:
    :math:`\eta_e = \eta_0\,\gamma^{\lfloor e / s \rfloor}`.

    >>> from bprop.optim import SGD
    >>> schedule = StepLR(SGD(lr=1.0), step_size=2, gamma=0.5)
    >>> [schedule.step() for _ in range(5)]
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = check_positive_float(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(Schedule):
    r"""Multiply the rate by ``gamma`` every epoch: :math:`\eta_e = \eta_0\,\gamma^e`.

    >>> from bprop.optim import SGD
    >>> schedule = ExponentialLR(SGD(lr=1.0), gamma=0.5)
    >>> [schedule.step() for _ in range(3)]
    [0.5, 0.25, 0.125]
    """

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = check_positive_float(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


class CosineLR(Schedule):
    r"""Linear warm-up, then cosine annealing down to ``min_lr``.

    For :math:`e < w` (``warmup_epochs``): :math:`\eta_e = \eta_0 (e + 1) / (w + 1)`, rising
    towards :math:`\eta_0`. Then, with :math:`T` = ``total_epochs``,

    .. math::
        \eta_e = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})
                 \Big(1 + \cos\frac{\pi (e - w)}{T - w}\Big),

    reaching :math:`\eta_{min}` at :math:`e = T` and staying there.

    >>> from bprop.optim import SGD
    >>> opt = SGD(lr=1.0)
    >>> schedule = CosineLR(opt, total_epochs=5, warmup_epochs=1)
    >>> [opt.lr] + [round(schedule.step(), 4) for _ in range(5)]
    [0.5, 1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, optimizer: Optimizer, total_epochs: int, warmup_epochs: int = 0,
                 min_lr: float = 0.0) -> None:
        self.total_epochs = check_positive_int(total_epochs, "total_epochs")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) \
                or not 0 <= warmup_epochs < self.total_epochs:
            raise ValueError(
                f"warmup_epochs must be an integer in [0, total_epochs), got {warmup_epochs!r}")
        self.warmup_epochs = warmup_epochs
        self.min_lr = check_positive_float(min_lr, "min_lr", allow_zero=True)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        warmup, total = self.warmup_epochs, self.total_epochs
        if epoch < warmup:
            return self.base_lr * (epoch + 1) / (warmup + 1)
        progress = min(epoch - warmup, total - warmup) / (total - warmup)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * progress))


class ReduceLROnPlateau(Schedule):
    """Multiply the rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    An epoch improves on the best value so far when it is lower by more than ``min_delta``
    (``mode="min"``) or higher by more than ``min_delta`` (``mode="max"``); ``"auto"`` picks
    ``"max"`` for accuracy and r2 and ``"min"`` otherwise. After a reduction the count starts
    again; the rate never goes below ``min_lr``. ``min_delta`` is absolute (Keras's rule);
    PyTorch's default is relative (``threshold=1e-4``, ``threshold_mode="rel"``) and its
    ``threshold_mode="abs"`` is this rule.

    >>> from bprop.optim import SGD
    >>> schedule = ReduceLROnPlateau(SGD(lr=1.0), factor=0.5, patience=1)
    >>> [schedule.step(loss) for loss in [1.0, 0.9, 0.9, 0.9, 0.8]]
    [1.0, 1.0, 1.0, 0.5, 0.5]
    """

    def __init__(self, optimizer: Optimizer, monitor: str = "val_loss", factor: float = 0.1,
                 patience: int = 10, min_delta: float = 0.0, mode: str = "auto",
                 min_lr: float = 0.0) -> None:
        self.monitor = monitor
        self.factor = check_positive_float(factor, "factor")
        if self.factor >= 1:
            raise ValueError(f"factor must be below 1, got {factor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        self.patience = patience
        self.min_delta = check_positive_float(min_delta, "min_delta", allow_zero=True)
        self.mode = resolve_mode(mode, monitor)
        self.min_lr = check_positive_float(min_lr, "min_lr", allow_zero=True)
        self.best: float | None = None
        self.bad_epochs = 0
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.optimizer.lr if epoch else self.base_lr

    def step(self, metric: float | None = None) -> float:
        if metric is None:
            raise ValueError(f"ReduceLROnPlateau.step needs the monitored value ({self.monitor})")
        self.epoch += 1
        if improved(metric, self.best, self.mode, self.min_delta):
            self.best, self.bad_epochs = float(metric), 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                # Never raise the rate: a min_lr above the current rate only stops reductions.
                self.optimizer.lr = min(self.optimizer.lr,
                                        max(self.optimizer.lr * self.factor, self.min_lr))
                self.bad_epochs = 0
        return self.optimizer.lr


def resolve_mode(mode: str, monitor: str) -> str:
    """``"min"`` or ``"max"``; ``"auto"`` is ``"max"`` for accuracy and r2 metrics."""
    check_choice(mode, "mode", ("auto", "min", "max"))
    if mode != "auto":
        return mode
    return "max" if monitor.endswith(("accuracy", "r2")) else "min"


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` in direction ``mode``.

    A NaN or infinite value never counts as an improvement.
    """
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta

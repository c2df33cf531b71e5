"""What training leaves behind: the per-epoch :class:`History`, and the error that carries it
when training stops because a step diverged."""

from __future__ import annotations


class TrainingDivergedError(FloatingPointError):
    """Raised when a training step makes the loss, a gradient or a weight NaN or infinite.

    The step that diverged was undone: the model keeps the last weights that were finite (and
    the optimizer and BatchNorm their state from before that step); ``history`` holds the
    epochs completed before it (empty when the step was run on its own).
    """

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


class History:
    """Per-epoch values of the loss and every metric, for training and validation.

    ``history["loss"]`` is the list of training losses, one per epoch; validation values are
    under ``"val_loss"``, ``"val_accuracy"`` and so on.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}

    def append(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.history.setdefault(name, []).append(float(value))

    @property
    def epochs(self) -> int:
        return len(self.history.get("loss", []))

    def __getitem__(self, name: str) -> list[float]:
        return self.history[name]

    def __contains__(self, name: str) -> bool:
        return name in self.history

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v)
        return f"History(epochs={self.epochs}{', ' if last else ''}{last})"

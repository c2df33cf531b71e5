"""A dependency-free progress bar for long work (downloads, epochs).

It redraws one line in place when its stream is a terminal, and otherwise stays silent until
it closes, then prints one summary line, so logs and CI output are not flooded.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``bar = ProgressBar(total, "label"); bar.update(n); ...; bar.close()``."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None,
                 unit: str = "", width: int = 30) -> None:
        self.total, self.label, self.unit, self.width = total, label, unit, width
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self._last_draw = 0.0

    def update(self, amount: int) -> None:
        self.done += amount
        now = time.perf_counter()
        if self.interactive and now - self._last_draw > 0.1:
            self._last_draw = now
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def close(self) -> None:
        end = "\n"
        self.stream.write(("\r" if self.interactive else "") + self._line() + end)
        self.stream.flush()

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.started
        amount = _human(self.done, self.unit)
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            return (f"{self.label} [{bar}] {fraction:4.0%} {amount}/"
                    f"{_human(self.total, self.unit)} {elapsed:.1f}s")
        return f"{self.label} {amount} {elapsed:.1f}s"


def _human(count: float, unit: str) -> str:
    if unit != "B":
        return f"{count:,}{unit}"
    for prefix in ("B", "KB", "MB", "GB"):
        if count < 1024 or prefix == "GB":
            return f"{count:.0f}{prefix}" if prefix == "B" else f"{count:.1f}{prefix}"
        count /= 1024
    return f"{count:.1f}GB"

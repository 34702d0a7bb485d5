"""A one-line progress display for training epochs.

On a terminal the line is redrawn in place (at most a few times a second); when
the output is a file or a pipe nothing is drawn, since the per-epoch log line says
what matters without filling the log with one line per batch.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class EpochProgress:
    """Shows the batches done, the mean loss so far, lines per second and the time left.

    Args:
        epoch: the epoch's number, and `epochs` the planned total, for the label.
        batches: the epoch's number of batches.
        stream: where to draw; default stderr.
        show: draw or not; None: draw if `stream` is a terminal.
        interval: the least seconds between redraws.
    """

    def __init__(self, epoch: int, epochs: int, batches: int, *, stream: TextIO | None = None,
                 show: bool | None = None, interval: float = 0.2):
        self.label = f"epoch {epoch}/{epochs}"
        self.batches = batches
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if show is None else show
        self.interval = interval
        self.started = self._drawn = time.monotonic()
        self.done = self.lines = 0
        self.loss_sum = 0.0
        self._width = 0

    def update(self, loss: float, lines: int) -> None:
        """Count one finished batch of `lines` lines with mean loss `loss`."""
        self.done += 1
        self.lines += lines
        self.loss_sum += loss
        now = time.monotonic()
        if self.enabled and (now - self._drawn >= self.interval or self.done == self.batches):
            self._drawn = now
            self._draw(now - self.started)

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(self.done, 1)

    def _draw(self, seconds: float) -> None:
        rate = self.lines / max(seconds, 1e-9)
        left = (self.batches - self.done) * seconds / self.done
        text = (f"{self.label} {self.done}/{self.batches}  loss {self.mean_loss:.4f}  "
                f"{rate:.0f} lines/s  {left:.0f}s left")
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()

    def close(self) -> None:
        """End the line, so that what is printed next starts on a new one."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()

"""Learning-rate schedules, one rate per epoch.

Each rate is a pure function of the run's settings, how far it has come and its
history so far (the rows of the epochs already trained), so a resumed run
recomputes exactly the rate that an uninterrupted one would have used; there is
no schedule state to checkpoint.

- "constant": the base rate throughout.
- "cosine": from the base rate down towards 0 along half a cosine over the run
  (the last epoch still trains at a small, non-zero rate). How far the run has
  come is the share of its epochs done, or of its time limit used if that is
  larger, so that a run stopped by its time limit still ends at a low rate.
- "plateau": the base rate, multiplied by `factor` whenever `patience` epochs pass
  without a better validation CER (the count starts again after each cut).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SCHEDULES = ("constant", "cosine", "plateau")


def check_schedule(schedule: str, factor: float, patience: int) -> None:
    """Raise ValueError, quoting the value, for an unknown schedule or bad settings."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if not 0 < factor < 1:
        raise ValueError(f"the plateau factor must be in (0, 1), got {factor!r}")
    if patience < 1:
        raise ValueError(f"the plateau patience must be >= 1, got {patience!r}")


def run_progress(epoch: int, epochs: int, seconds: float = 0.0,
                 time_limit: float | None = None) -> float:
    """The share of a run done before `epoch` (1-based): of its epochs, or of its time
    limit after `seconds` if that is larger; in [0, 1]."""
    done = (epoch - 1) / max(epochs, 1)
    if time_limit:
        done = max(done, seconds / time_limit)
    return min(done, 1.0)


def learning_rate(schedule: str, base: float, progress: float, history: Sequence[dict], *,
                  factor: float = 0.3, patience: int = 8) -> float:
    """The learning rate of the next epoch.

    Args:
        schedule: one of `SCHEDULES`.
        base: the rate of the first epoch.
        progress: the share of the run done (`run_progress`), for "cosine".
        history: one dict per finished epoch, in order, each with "val_cer", for
            "plateau".
        factor, patience: the plateau cut and how many epochs without a better
            validation CER trigger it.
    """
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * progress))
    rate, best, waited = base, math.inf, 0
    for row in history:
        if row["val_cer"] < best:
            best, waited = row["val_cer"], 0
        else:
            waited += 1
            if waited >= patience:
                rate, waited = rate * factor, 0
    return rate

"""Stopping and checkpointing inside an epoch: when a mid-epoch checkpoint is due (:class:`CheckpointEvery`) and
what Ctrl-C does while a run trains (:func:`ctrl_c_stops_at_a_step`, :class:`TrainingInterrupted`)."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training at a step boundary, after a checkpoint of that step was written.

    ``where``: e.g. "epoch 2, step 37 of 95"; ``saved``: the checkpoint file (or pointer) written."""

    def __init__(self, where: str, saved: str):
        super().__init__(f"interrupted at {where}; saved {saved}")
        self.where, self.saved = where, saved


DEFAULT_CHECKPOINT_SECONDS = 300.0  # a mid-epoch checkpoint after this much training time


@dataclass(frozen=True)
class CheckpointEvery:
    """When to write a checkpoint inside an epoch (one is always written at an epoch's end): after ``steps``
    training steps, or after ``seconds`` of training since the last one; both None: only at epoch ends."""

    steps: int | None = None
    seconds: float | None = DEFAULT_CHECKPOINT_SECONDS

    @classmethod
    def parse(cls, text: str) -> CheckpointEvery:
        """``"500"`` (steps), ``"90s"``, ``"5m"``, ``"1h"`` (training time), or ``"0"`` / ``"epoch"`` (epoch ends
        only)."""
        t = str(text).strip().lower()
        if t in ("0", "epoch"):
            return cls(None, None)
        units = {"s": 1.0, "m": 60.0, "h": 3600.0}
        try:
            if t[-1:] in units:
                value = float(t[:-1]) * units[t[-1]]
                if math.isfinite(value) and value > 0:
                    return cls(None, value)
            elif int(t) > 0:
                return cls(int(t), None)
        except ValueError:
            pass
        raise ValueError(f"--checkpoint-every must be a number of steps (500), a training time (90s, 5m, 1h), or 0 "
                         f"(epoch ends only), got {text!r}")

    def describe(self) -> str:
        if self.steps:
            return f"every {self.steps:,} steps"
        if self.seconds:
            return f"every {self.seconds / 60:g} min of training" if self.seconds >= 60 else \
                f"every {self.seconds:g} s of training"
        return "at epoch ends only"


@contextmanager
def ctrl_c_stops_at_a_step(request_stop: Callable[[], bool]):
    """While training: the first Ctrl-C calls ``request_stop()`` (the trainer stops after the current step,
    checkpointed there); when that returns False (asked already) the next one stops at once (the last checkpoint
    stays). Only in the main thread, and only where Python's own handler is installed (not where SIGINT is ignored,
    as for a background job of a script, or handled by someone else)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def handler(signum, frame):
        if not request_stop():
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)

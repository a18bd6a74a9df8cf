"""``PhaseClock``: where one training process spends its wall-clock time.

Every moment between the clock's start and its record belongs to exactly one phase: the current
base phase (``switch``) unless a ``with clock.phase(name)`` block is open, so the phases add up
to the time the clock ran. The two absolute timestamps (``time.time()``) let a caller outside the
process (``mpdsnn bench --levels pipeline``) add what the process did before the clock started
(interpreter start, imports) and after its record (artifact logging, exit).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

STARTUP, DATA, TRAINING, EVALUATION, PROBES, TEARDOWN = (
    "start-up", "data", "training", "evaluation", "probes", "teardown")
PHASES = (STARTUP, DATA, TRAINING, EVALUATION, PROBES, TEARDOWN)
"""The trainer's phases, in the order a run meets them."""
BETWEEN_EPOCHS = "between epochs"
"""Epoch bookkeeping outside the phases: checkpoint, scheduler step, epoch log and metrics."""


class PhaseClock:
    """Seconds per phase (``perf_counter``), and when the clock started and recorded
    (``time.time()``)."""

    def __init__(self, first: str) -> None:
        self.started_at = time.time()
        self._last = time.perf_counter()
        self._current = [first]
        self.seconds: dict[str, float] = {first: 0.0}

    def switch(self, phase: str) -> None:
        """From now on, time outside any ``phase`` block counts toward ``phase``."""
        self._settle()
        self._current[0] = phase

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """The block's time counts toward ``name`` (and not toward the phase around it)."""
        self._settle()
        self._current.append(name)
        try:
            yield
        finally:
            self._settle()
            self._current.pop()

    def record(self) -> dict[str, Any]:
        """``phase_seconds`` (phase -> seconds so far) and ``phase_clock`` (``started_at``,
        ``recorded_at``: seconds since the epoch), as metrics.json holds them."""
        self._settle()
        return {"phase_seconds": dict(self.seconds),
                "phase_clock": {"started_at": self.started_at, "recorded_at": time.time()}}

    def _settle(self) -> None:
        now = time.perf_counter()
        name = self._current[-1]
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now

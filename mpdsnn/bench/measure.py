"""Measurement primitives: interleaved wall/device time and activation memory.

Time: every candidate of one workload runs once per round, round after round, so a load change
on a shared machine hits all of them alike; the median over rounds is reported. Memory: the bytes
autograd keeps for backward, counted through ``torch.autograd.graph.saved_tensors_hooks`` - what
a training step must hold between forward and backward, measured the same way on any device.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import Tensor


@dataclass(frozen=True)
class Timing:
    """Seconds per call over the measured rounds: ``median`` and inter-quartile range ``iqr``."""

    median: float
    iqr: float
    rounds: int

    @classmethod
    def of(cls, seconds: list[float]) -> "Timing":
        if len(seconds) >= 4:
            q1, _, q3 = statistics.quantiles(seconds, n=4)
        else:
            q1 = q3 = statistics.median(seconds)
        return cls(statistics.median(seconds), q3 - q1, len(seconds))


def time_interleaved(candidates: dict[str, Callable[[], Any]], warmup: int, repeats: int,
                     device: torch.device) -> dict[str, Timing]:
    """Run each candidate ``warmup`` times, then ``repeats`` rounds of one call each.

    On CUDA the time is device time between two events around the call (the host waits for
    the stream after each call); elsewhere it is ``perf_counter`` wall time.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            seconds[name].append(_time_once(fn, device))
    return {name: Timing.of(s) for name, s in seconds.items()}


def _time_once(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def saved_bytes(forward: Callable[[], Any], exclude: Iterable[Tensor] = ()) -> int:
    """Bytes of the distinct storages autograd saves for backward while ``forward()`` runs.

    Storages are counted once however many views of them are saved; ``exclude`` (a model's
    parameters and buffers) is left out, so the number is activation memory only. The graph
    is freed before returning.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: set[int] = set()
    total = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key not in seen and key not in skip:
            seen.add(key)
            total += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out
    return total


def peak_bytes(fn: Callable[[], Any], device: torch.device,
               before: Callable[[], Any] | None = None) -> int | None:
    """CUDA only: the most memory allocated above the starting level during one ``fn()``.
    ``before`` runs first (e.g. freeing the last step's gradients, which ``fn`` would free only
    after the baseline was taken, hiding their size from the peak)."""
    if device.type != "cuda":
        return None
    if before is not None:
        before()
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base

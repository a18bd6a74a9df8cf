"""Data-loading throughput: how many samples per second a Dataset delivers through a DataLoader.

A hook for the frame cache and the real datasets: ``loader_throughput(dataset)`` works on any
map-style ``torch.utils.data.Dataset`` and measures what the training loop would see.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from torch.utils.data import DataLoader, Dataset

from mpdsnn.errors import UserError


def loader_throughput(dataset: Dataset, batch_size: int = 32, num_workers: int = 0,
                      max_batches: int | None = None, warmup_batches: int = 1,
                      **loader_options: Any) -> dict[str, float]:
    """Iterate ``warmup_batches`` untimed, then up to ``max_batches`` timed (all if None).

    Returns ``samples``, ``seconds`` and ``samples_per_s`` of the timed part. Worker start-up
    falls in the warm-up, so the number is the steady state a long epoch sees.
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, **loader_options)
    batches = iter(loader)
    for _ in range(warmup_batches):
        if next(batches, None) is None:
            break
    samples, t0 = 0, time.perf_counter()
    timed = batches if max_batches is None else itertools.islice(batches, max_batches)
    for batch in timed:
        samples += len(batch[0]) if isinstance(batch, (list, tuple)) else len(batch)
    seconds = time.perf_counter() - t0
    if samples == 0:
        raise UserError(f"the dataset gave no batches to time after {warmup_batches} warm-up "
                        f"batch(es) of {batch_size}; use a larger dataset or fewer warm-up batches")
    return {"samples": float(samples), "seconds": seconds, "samples_per_s": samples / seconds}

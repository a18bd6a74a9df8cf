"""Event streams -> frames ``[T, C, H, W]`` (C = 2 polarities), cached on disk per sample.

Frames start from ``tonic.transforms.ToFrame`` counts in T bins of equal event count
(``"count"``, the CIFAR10-DVS convention of SPEC section 6) or of equal duration (``"time"``).
Then either ``"counts"``: the counts, averaged down to the benchmark size over whole input areas
(every event keeps its share; a bilinear interpolate from 128 to 48 px would skip about half of
the input pixels), or ``"tet"``: TET's binary frames and PIL resize (:mod:`mpdsnn.data.tet_frames`).
The cache path names EVERY preprocessing parameter (dataset, T, binning, size, framing, format
version) and the source folder, so changing T can never read frames made for another T (the trap
of tonic's ``DiskCachedDataset``, whose path ignores the transform).
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from tonic.transforms import ToFrame
from torch import Tensor
from torch.utils.data import Dataset

from mpdsnn.data.tet_frames import tet_frames
from mpdsnn.errors import UserError
from mpdsnn.files import atomic_write_bytes

log = logging.getLogger(__name__)

FRAMES_VERSION = 2  # bump when to_frames changes, so old caches are not reused (2: no bilinear)
Binning = Literal["count", "time"]
Framing = Literal["counts", "tet"]


@dataclass(frozen=True)
class FrameSpec:
    """How one dataset's events become frames. ``sensor``: tonic's (W, H, P)."""

    dataset: str
    T: int
    binning: Binning
    size: tuple[int, int]  # (H, W) after resizing
    sensor: tuple[int, int, int]
    framing: Framing = "counts"

    def key(self) -> str:
        """The cache folder name: every parameter that changes the frames."""
        return (f"v{FRAMES_VERSION}-T{self.T}-{self.binning}-{self.size[0]}x{self.size[1]}"
                f"-{self.framing}")


def event_counts(events: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """Structured events (fields x, y, t, p) -> counts ``[T, P, H, W]`` at the sensor's size.

    tonic drops the remainder of the events when their count is not a multiple of T (as TET's
    script does); a stream with fewer events than T gives empty frames."""
    if spec.binning == "count":
        to_frame = ToFrame(sensor_size=spec.sensor, n_event_bins=spec.T)
    else:
        to_frame = ToFrame(sensor_size=spec.sensor, n_time_bins=spec.T)
    return np.asarray(to_frame(events), dtype=np.float32)


def area_resize(frames: Tensor, size: tuple[int, int]) -> Tensor:
    """``[T, P, H, W]`` -> ``[T, P, *size]`` by averaging each output pixel's input area
    (adaptive average pooling when shrinking), so every input pixel is counted."""
    if tuple(frames.shape[-2:]) == size:
        return frames
    return F.interpolate(frames, size=size, mode="area")


def to_frames(events: np.ndarray, spec: FrameSpec) -> Tensor:
    """Structured events -> float frames ``[T, P, H, W]`` at ``spec.size``: counts averaged over
    areas (``"counts"``) or TET's binary frames resized as TET does (``"tet"``)."""
    counts = event_counts(events, spec)
    if spec.framing == "tet":
        return tet_frames(counts, spec.size)
    return area_resize(torch.from_numpy(counts), spec.size).contiguous()


class EventSource(ABC):
    """Where a dataset's samples are: sorted ``(relative path, label)`` pairs under ``root`` and
    how to read one into structured events. Subclasses read through tonic's dataset classes or
    tonic's file readers; :meth:`read` turns any reading failure into a :class:`UserError`
    naming the file."""

    def __init__(self, root: Path, samples: Sequence[tuple[str, int]], tag: str) -> None:
        self.root = Path(root)
        self.samples = sorted(samples)
        self.tag = tag  # e.g. "tonic" or "mirror": goes into the cache path with root's hash

    @abstractmethod
    def _read(self, relpath: str) -> np.ndarray:
        """Structured events of one recording (fields include x, y, t, p)."""

    def read(self, relpath: str) -> np.ndarray:
        try:
            return self._read(relpath)
        except UserError:
            raise
        except Exception as exc:  # any library reader error: say which file, keep the cause
            raise UserError(f"cannot read event file {self.root / relpath}: "
                            f"{type(exc).__name__}: {exc}. Replace or delete the file") from exc

    def cache_tag(self) -> str:
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]
        return f"{self.tag}-{digest}"


class EventFrames(Dataset):
    """``(frames [T, 2, H, W] float, label)`` for ``samples`` of ``source``, computed on first use
    and cached as ``<cache_dir>/<dataset>/<spec.key()>/<source tag>/<relative path>.npy``."""

    def __init__(self, source: EventSource, samples: Sequence[tuple[str, int]], spec: FrameSpec,
                 cache_dir: Path | None) -> None:
        self.source = source
        self.samples = list(samples)
        self.spec = spec
        self.cache = (Path(cache_dir) / spec.dataset / spec.key() / source.cache_tag()
                      if cache_dir is not None else None)
        if self.cache is not None and not self.cache.is_dir():  # else silent: the epoch is slower
            log.info("%s: %s recordings will be framed on first use and cached in %s (the first "
                     "epoch is slower)", spec.dataset, f"{len(self.samples):,}", self.cache)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        relpath, label = self.samples[i]
        if self.cache is None:
            return to_frames(self.source.read(relpath), self.spec), label
        path = self.cache / (relpath + ".npy")
        if path.is_file():
            return torch.from_numpy(np.load(path)), label
        frames = to_frames(self.source.read(relpath), self.spec)
        # atomic: DataLoader workers may race on the same sample
        atomic_write_bytes(path, lambda f: np.save(f, frames.numpy()))
        return frames, label


@dataclass(frozen=True)
class EventAugment:
    """Training augmentation on frames ``[T, C, H, W]``: a flip of the last axis (p = 0.5, when
    ``flip``) and a roll of up to ``max_roll`` pixels along H and W (TET's CIFAR10-DVS recipe,
    ``data_loaders.py`` L88-94: on TET's ``[p, x, y]`` frames the flip reverses event y). Draws
    from torch's global RNG, which the engine seeds (and DataLoader seeds per worker)."""

    flip: bool = True
    max_roll: int = 5

    def __call__(self, x: Tensor) -> Tensor:
        if self.flip and torch.rand(()) < 0.5:
            x = torch.flip(x, dims=(-1,))
        if self.max_roll > 0:
            dy, dx = torch.randint(-self.max_roll, self.max_roll + 1, (2,)).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        return x


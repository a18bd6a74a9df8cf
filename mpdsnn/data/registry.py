"""One registry of datasets: embedded (no download), static images (torchvision) and event
streams (tonic). A dataset declares what the engine and models need to know about it
(:class:`DatasetInfo`) and a builder that returns its splits (:class:`DataSplits`).

Samples are ``(x, label)``: static ``x`` is ``[C, H, W]`` (float, normalised), event ``x`` is
``[T, C, H, W]`` frames. The engine turns a batch into time-first ``[T, N, C, H, W]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from torch.utils.data import Dataset

from mpdsnn.errors import UserError, unknown_name


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: Literal["static", "events"]
    input_shape: tuple[int, int, int]  # (C, H, W) of one image or one frame
    num_classes: int
    default_T: int
    default_model: str
    description: str
    model_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """Where and how to load. ``root``: cache and download folder (``data/`` by default).
    ``mirror``: a local copy a user points at (offline clusters); used instead of a download.
    ``seed``: seed of any split the dataset must make itself (recorded in the fingerprint)."""

    root: Path = Path("data")
    T: int = 4
    seed: int = 0
    mirror: Path | None = None
    download: bool = True
    augment: bool = True
    train_subset: int | None = None
    test_subset: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSplits:
    """``fingerprint``: a short hash identifying the exact data (files and split) a run saw."""

    train: Dataset
    test: Dataset
    fingerprint: str
    val: Dataset | None = None
    notes: dict[str, Any] = field(default_factory=dict)


DatasetBuilder = Callable[[DataConfig], DataSplits]
_DATASETS: dict[str, tuple[DatasetInfo, DatasetBuilder]] = {}


def register_dataset(info: DatasetInfo) -> Callable[[DatasetBuilder], DatasetBuilder]:
    def decorator(builder: DatasetBuilder) -> DatasetBuilder:
        if info.name in _DATASETS:
            raise ValueError(f"dataset {info.name!r} is registered twice")
        _DATASETS[info.name] = (info, builder)
        return builder

    return decorator


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    if name not in _DATASETS:
        raise unknown_name("dataset", name, list(_DATASETS))
    return _DATASETS[name][0]


def load_dataset(name: str, config: DataConfig) -> DataSplits:
    dataset_info(name)  # raises the listing error for an unknown name
    if config.T <= 0:
        raise UserError(f"T must be a positive number of timesteps, got {config.T}")
    return _DATASETS[name][1](config)

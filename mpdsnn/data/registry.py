"""One registry of datasets: embedded (no download), static images (torchvision) and event
streams (tonic). A dataset declares what the engine and models need to know about it
(:class:`DatasetInfo`) and a builder that returns its splits (:class:`DataSplits`).

Samples are ``(x, label)``: static ``x`` is ``[C, H, W]`` (float, normalised), event ``x`` is
``[T, C, H, W]`` frames. The engine turns a batch into time-first ``[T, N, C, H, W]``.
"""

from __future__ import annotations

import importlib
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
    embedded: bool = False  # ships inside an installed package: no download, no mirror


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

ENTRY_POINT_GROUP = "mpdsnn.datasets"
"""Other packages add datasets here: ``name = "package.module"``, a module whose import
registers the dataset with :func:`register_dataset` (docs/adding-a-dataset.md)."""
BUILTIN = {
    "digits": "mpdsnn.data.digits", "digits-dvs": "mpdsnn.data.digits_dvs",
    "cifar10": "mpdsnn.data.cifar", "cifar100": "mpdsnn.data.cifar",
    "cifar10-dvs": "mpdsnn.data.events", "dvs-gesture": "mpdsnn.data.events",
    "nmnist": "mpdsnn.data.events", "imagenet": "mpdsnn.data.imagenet",
}
"""Built-in datasets by the module that registers them, imported on first use: training on
CIFAR-10 never imports tonic, and `import mpdsnn.data` costs nothing."""


def register_dataset(info: DatasetInfo) -> Callable[[DatasetBuilder], DatasetBuilder]:
    def decorator(builder: DatasetBuilder) -> DatasetBuilder:
        if info.name in _DATASETS:
            raise ValueError(f"dataset {info.name!r} is registered twice")
        _DATASETS[info.name] = (info, builder)
        return builder

    return decorator


def _plugins() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(name: str) -> None:
    """Import the module that registers ``name`` (built-in first, then entry points)."""
    if name in _DATASETS:
        return
    module = BUILTIN.get(name) or _plugins().get(name)
    if module is not None:
        importlib.import_module(module)


def list_datasets() -> list[str]:
    for module in {*BUILTIN.values(), *_plugins().values()}:
        importlib.import_module(module)
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    _load(name)
    if name not in _DATASETS:
        raise unknown_name("dataset", name, sorted({*BUILTIN, *_plugins(), *_DATASETS}))
    return _DATASETS[name][0]


def load_dataset(name: str, config: DataConfig) -> DataSplits:
    dataset_info(name)  # raises the listing error for an unknown name
    if config.T <= 0:
        raise UserError(f"T must be a positive number of timesteps, got {config.T}")
    return _DATASETS[name][1](config)

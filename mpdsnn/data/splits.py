"""Seeded subsets and holdouts, shared by every downloaded dataset, and the data fingerprint.

A base dataset returns raw samples (a PIL image, or frames ``[T, C, H, W]``); the splits are
:class:`TransformedSubset` views of it with their own transform, so a validation holdout taken
from the training files is evaluated without training augmentation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from mpdsnn.data.registry import DataConfig, DataSplits
from mpdsnn.errors import UserError, did_you_mean

# Separate random streams per purpose: changing val_size must not reshuffle the test subset.
_STREAM_VAL, _STREAM_TRAIN_SUBSET, _STREAM_TEST_SUBSET = 1, 2, 3


class TransformedSubset(Dataset):
    """``base[indices[i]]`` with ``transform`` applied to ``x``. Picklable for DataLoader workers."""

    def __init__(self, base: Dataset, indices: Sequence[int], transform: Callable | None) -> None:
        self.base = base
        self.indices = list(indices)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        x, y = self.base[self.indices[i]]
        return (self.transform(x) if self.transform is not None else x), int(y)


def check_options(name: str, options: dict[str, Any], allowed: Iterable[str] | Mapping[str, Any]
                  ) -> dict[str, Any]:
    """Unknown option keys are an error (a typo must not silently fall back to a default).
    Returns ``options`` merged over ``allowed`` when it maps the options to their defaults."""
    names = sorted(allowed)
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(map(repr, unknown))} for dataset {name!r}; "
                        f"{did_you_mean(unknown, names)}valid options: {', '.join(names) or '(none)'}")
    return {**allowed, **options} if isinstance(allowed, Mapping) else dict(options)


def seeded_subset(n: int, size: int | None, seed: int, stream: int) -> list[int]:
    """``size`` indices of ``range(n)`` drawn without replacement (sorted), or all of them."""
    if size is None or size >= n:
        return list(range(n))
    if size <= 0:
        raise UserError(f"a subset size must be positive, got {size}")
    rng = np.random.default_rng([seed, stream])
    return sorted(rng.choice(n, size=size, replace=False).tolist())


def holdout(n: int, val_size: int | float, seed: int) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into (train, val): ``val_size`` is a count or a fraction in (0, 1)."""
    if isinstance(val_size, float) and 0 < val_size < 1:
        count = max(1, round(val_size * n))
    elif isinstance(val_size, int) and not isinstance(val_size, bool):
        count = val_size
    else:
        count = 0
    if not 0 < count < n:
        raise UserError(f"val_size must be a count in 1..{n - 1} or a fraction in (0, 1) leaving "
                        f"training samples, got {val_size!r} for {n} training samples")
    val = seeded_subset(n, count, seed, _STREAM_VAL)
    chosen = set(val)
    return [i for i in range(n) if i not in chosen], val


def file_number(relpath: str) -> int:
    """The number that ends a file's name (``cat/cifar10_cat_907.aedat4`` -> 907)."""
    match = re.search(r"(\d+)\.[^./]+$", relpath)
    if match is None:
        raise UserError(f"{relpath}: a split by file index needs a file name ending in its "
                        f"number (e.g. cifar10_cat_907.aedat4); rename it or use a seeded split")
    return int(match.group(1))


def split_by_file_index(samples: Sequence[tuple[str, int]], first_test: int,
                        end: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train, test) by the number in each file's name, the same in every class: train below
    ``first_test``, test from ``first_test`` to ``end - 1``. A number outside, or a split with
    no test file, is an error (the published split is fixed: it cannot be scaled to a copy)."""
    train, test = [], []
    for relpath, label in sorted(samples):
        number = file_number(relpath)
        if number >= end:
            raise UserError(f"{relpath}: file number {number} is outside the split by file "
                            f"index (0..{end - 1}); remove the file or use a seeded split")
        (train if number < first_test else test).append((relpath, label))
    if not train or not test:
        raise UserError(f"the split by file index puts files numbered {first_test}..{end - 1} "
                        f"in test and the rest in train, and this copy has {len(train)} train / "
                        f"{len(test)} test files: use a seeded split (e.g. split: \"9:1\")")
    return train, test


def short_hash(payload: Any) -> str:
    """16 hex digits of the sha256 of ``payload`` as canonical JSON."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def relative_paths(paths: Iterable[str | Path], root: Path) -> list[str]:
    """POSIX paths relative to ``root`` (a string prefix cut, ``os.path.relpath`` being too slow
    for 60,000 files)."""
    prefix = os.path.join(str(root), "")
    return [p[len(prefix):] if p.startswith(prefix) else Path(os.path.relpath(p, root)).as_posix()
            for p in map(str, paths)]


def files_digest(root: Path, relpaths: Iterable[str]) -> str:
    """Identify a set of files cheaply by relative path and size (not content: hashing 60,000
    images on every load would cost more than the epoch)."""
    return short_hash(sorted((rel, os.path.getsize(os.path.join(root, rel))) for rel in relpaths))


def make_splits(train_base: Dataset, test_base: Dataset, config: DataConfig,
                train_transform: Callable | None, eval_transform: Callable | None,
                identity: dict[str, Any], notes: dict[str, Any] | None = None) -> DataSplits:
    """Seeded validation holdout (``options["val_size"]``), seeded train/test subsets, and the
    fingerprint over ``identity`` (files and preprocessing) plus the exact indices chosen."""
    train_idx = list(range(len(train_base)))
    val_idx: list[int] | None = None
    val_size = config.options.get("val_size")
    if val_size is not None:
        train_idx, val_idx = holdout(len(train_base), val_size, config.seed)
    train_idx = [train_idx[i] for i in
                 seeded_subset(len(train_idx), config.train_subset, config.seed, _STREAM_TRAIN_SUBSET)]
    test_idx = seeded_subset(len(test_base), config.test_subset, config.seed, _STREAM_TEST_SUBSET)
    fingerprint = short_hash({
        **identity,
        "train_transform": repr(train_transform),
        "eval_transform": repr(eval_transform),
        "indices": {"train": short_hash(train_idx), "test": short_hash(test_idx),
                    "val": short_hash(val_idx) if val_idx is not None else None},
    })
    return DataSplits(
        train=TransformedSubset(train_base, train_idx, train_transform),
        test=TransformedSubset(test_base, test_idx, eval_transform),
        val=TransformedSubset(train_base, val_idx, eval_transform) if val_idx is not None else None,
        fingerprint=fingerprint,
        notes={**(notes or {}), "n_train": len(train_idx), "n_test": len(test_idx),
               "n_val": len(val_idx) if val_idx is not None else 0},
    )

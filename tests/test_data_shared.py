"""Real-data checks on the read-only mirrors in the shared data folder (never required): run
with ``MPDSNN_SHARED_DATA=/path/to/shared/data``; skipped otherwise."""

import os
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from mpdsnn.data import cifar, events  # noqa: F401 - registers the datasets
from mpdsnn.data.cifar import CIFAR10_CLASSES
from mpdsnn.data.registry import DataConfig, load_dataset

SHARED = os.environ.get("MPDSNN_SHARED_DATA")
pytestmark = pytest.mark.skipif(not SHARED, reason="set MPDSNN_SHARED_DATA to the shared data "
                                                   "folder (nmnist-small.tar.gz, cifar10-jpeg.tar.gz)")


def _archive(name: str) -> Path:
    path = Path(SHARED) / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_nmnist_small_mirror_matches_its_published_checks(tmp_path):
    with tarfile.open(_archive("nmnist-small.tar.gz")) as tar:
        tar.extractall(tmp_path, filter="data")
    splits = load_dataset("nmnist", DataConfig(root=tmp_path / "root",
                                               mirror=tmp_path / "nmnist-small", T=10))
    assert (len(splits.train), len(splits.test)) == (1000, 100)
    source = splits.train.base.source
    total = 0
    for relpath, _ in source.samples:
        ev = source.read(relpath)
        assert ev["x"].max() <= 33 and ev["y"].max() <= 33
        total += len(ev)
    assert total == 4_518_827
    first = source.read("Train/5/00001.bin")[0]
    assert (first["x"], first["y"], first["t"], first["p"]) == (18, 16, 893, 1)
    assert Counter(label for _, label in splits.test.base.samples)[8] == 2
    x, _ = splits.train[0]
    assert x.shape == (10, 2, 34, 34)


def test_cifar10_jpeg_mirror_layout_and_a_few_images(tmp_path):
    """Lists all 60,000 members but unpacks only 3 images per class and split."""
    per_folder: dict[tuple[str, str], int] = Counter()
    chosen = []
    with tarfile.open(_archive("cifar10-jpeg.tar.gz")) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3:
                key = (parts[-3], parts[-2])
                per_folder[key] += 1
                if per_folder[key] <= 3:
                    chosen.append(member)
        tar.extractall(tmp_path, members=chosen, filter="data")
    assert sum(n for (split, _), n in per_folder.items() if split == "train") == 50_000
    assert sum(n for (split, _), n in per_folder.items() if split == "test") == 10_000
    assert sorted({c for _, c in per_folder}) == list(CIFAR10_CLASSES)
    mirror = Path(chosen[0].name).parents[2]
    splits = load_dataset("cifar10", DataConfig(root=tmp_path / "root", mirror=tmp_path / mirror,
                                                augment=False))
    assert (len(splits.train), len(splits.test)) == (30, 30)
    assert splits.train.base.classes == list(CIFAR10_CLASSES)
    for i in range(0, 30, 7):
        x, y = splits.test[i]
        assert x.shape == (3, 32, 32) and y == i // 3

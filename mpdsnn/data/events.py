"""Event-camera datasets through tonic: CIFAR10-DVS, DVS-Gesture, N-MNIST.

Samples are ``(x, label)`` with ``x`` ``[T, 2, H, W]`` float event counts (``T = DataConfig.T``).

Recipes (SPEC section 6, and what we chose where it is open):

- ``cifar10-dvs``: T frames of equal event count built and resized to 48x48 exactly as TET's
  code does (:mod:`mpdsnn.data.tet_frames`); train: flip + roll of up to 5 px (TET's). No
  official split: ``options["split"]`` "tet" (default: TET's script, by file index, files
  0-899 of each class train and 900-999 test), "tet-7:3" (the same script before August 2024:
  0-699 / 700-999), or a seeded per-class draw "9:1" or "7:3", written by :func:`prepare_split`
  as a JSON index under ``DataConfig.root/splits/``.
- ``dvs-gesture``: T = 16 frames of equal event count, 128x128 counts averaged down to 32x32
  over 4x4 areas (``options["size"] = 64`` for 64x64; neither the DS-ATGO paper nor the code of
  DS-ATGO, MPD-AGL or TET has DVS-Gesture, so this is our choice, SPEC section 6); train: roll
  of up to 5 px, no flip (a flip turns a right-hand wave into a left-hand wave, another class).
  Official train/test split.
- ``nmnist``: T = 10 frames of equal event count at the sensor's 34x34; no augmentation (the
  saccades already move the digit). Official split; a mirror may be a partial copy.

Options (all datasets): ``binning`` ("count" or "time"), ``size`` (square side in pixels),
``cache`` (default true: frames cached under ``DataConfig.root/frames/``), ``val_size`` (count
or fraction held out of the training files); ``split`` for cifar10-dvs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mpdsnn.data import event_sources as src
from mpdsnn.data.frames import EventAugment, EventFrames, FrameSpec, Framing
from mpdsnn.data.registry import DataConfig, DatasetInfo, DataSplits, register_dataset
from mpdsnn.data.splits import (
    check_options,
    files_digest,
    make_splits,
    short_hash,
    split_by_file_index,
)
from mpdsnn.errors import UserError, unknown_name
from mpdsnn.files import atomic_write_bytes

log = logging.getLogger(__name__)

# Test fraction per class of each seeded CIFAR10-DVS split convention.
SPLIT_CONVENTIONS = {"9:1": 0.1, "7:3": 0.3}
# TET's split by the number in the file name: (first test index, end). preprocess/
# dvscifar_dataloader.py of brain-intelligence-lab/temporal_efficient_training, create_npy:
# train_test_portion 0.9 (L96, since commit 643be1c, Aug 2024; 0.7 before), train = files
# 0 .. int(portion * 1000) - 1 of each class, test = the rest up to 999 (L98-99, gather_addr L58-64).
INDEX_SPLITS = {"tet": (900, 1000), "tet-7:3": (700, 1000)}
DEFAULT_SPLIT = "tet"
_OPTIONS = ("binning", "size", "cache", "val_size")


@dataclass(frozen=True)
class _Recipe:
    name: str
    title: str
    sensor: tuple[int, int, int]
    size: int
    framing: Framing
    augment: EventAugment | None


CIFAR10DVS = _Recipe("cifar10-dvs", "CIFAR10-DVS", (128, 128, 2), 48, "tet",
                     EventAugment(flip=True, max_roll=5))
DVS_GESTURE = _Recipe("dvs-gesture", "DVS-Gesture", (128, 128, 2), 32, "counts",
                      EventAugment(flip=False, max_roll=5))
NMNIST = _Recipe("nmnist", "N-MNIST", (34, 34, 2), 34, "counts", None)


def frame_spec(recipe: _Recipe, config: DataConfig) -> FrameSpec:
    binning = config.options.get("binning", "count")
    if binning not in ("count", "time"):
        raise unknown_name("binning", str(binning), ["count", "time"])
    size = config.options.get("size", recipe.size)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise UserError(f"option size must be a positive number of pixels, got {size!r}")
    return FrameSpec(recipe.name, config.T, binning, (size, size), recipe.sensor, recipe.framing)


# ---------------------------------------------------------------- CIFAR10-DVS split

def prepare_split(samples: Sequence[tuple[str, int]], root: Path, seed: int,
                  convention: str = "9:1", dataset: str = "cifar10-dvs") -> Path:
    """Write (or reuse) a seeded per-class train/test split of ``samples`` as a JSON index.

    Samples are sorted by relative path first (tonic lists files in filesystem order), then each
    class's files are shuffled by ``numpy.random.default_rng([seed, label])`` and the first
    ``round(n * test_fraction)`` (at least 1 when a class has 2 or more files) go to test. The
    file name carries convention, seed and a digest of the file list, so a different copy of the
    data gets its own split file. Returns the path of the index file."""
    if convention not in SPLIT_CONVENTIONS:
        raise unknown_name("split convention", convention, [*SPLIT_CONVENTIONS, *INDEX_SPLITS])
    samples = sorted((str(p), int(y)) for p, y in samples)
    digest = short_hash(samples)[:8]
    path = Path(root) / "splits" / f"{dataset}_{convention.replace(':', 'to')}_seed{seed}_{digest}.json"
    if path.is_file():
        return path
    fraction = SPLIT_CONVENTIONS[convention]
    train: list[str] = []
    test: list[str] = []
    for label in sorted({y for _, y in samples}):
        files = [p for p, y in samples if y == label]
        order = np.random.default_rng([seed, label]).permutation(len(files))
        n_test = min(max(1, round(len(files) * fraction)), len(files) - 1) if len(files) > 1 else 0
        test += [files[i] for i in order[:n_test]]
        train += [files[i] for i in order[n_test:]]
    index = {"dataset": dataset, "convention": convention, "seed": seed, "files_digest": digest,
             "n_train": len(train), "n_test": len(test),
             "train": sorted(train), "test": sorted(test)}
    atomic_write_bytes(path, lambda f: f.write(json.dumps(index, indent=1).encode()))
    log.info("wrote %s split %s (seed %d): %d train / %d test", dataset, convention, seed,
             len(train), len(test))
    return path


def load_split(path: Path, samples: Sequence[tuple[str, int]]) -> tuple[list, list]:
    """(train, test) samples of an index written by :func:`prepare_split`."""
    try:
        index = json.loads(Path(path).read_text())
        names = {"train": index["train"], "test": index["test"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"split index {path} is unreadable ({exc}): delete it to write it "
                        f"again") from None
    labels = dict(samples)
    unknown = [p for p in names["train"] + names["test"] if p not in labels]
    if unknown or len(names["train"]) + len(names["test"]) != len(labels):
        raise UserError(f"split index {path} does not match the data files ({len(unknown)} "
                        f"unknown, e.g. {unknown[:1]}): delete it to write it again")
    return ([(p, labels[p]) for p in names["train"]], [(p, labels[p]) for p in names["test"]])


# ---------------------------------------------------------------- builders

def _build(recipe: _Recipe, config: DataConfig, source: src.EventSource,
           train: list, test: list, extra: dict) -> DataSplits:
    spec = frame_spec(recipe, config)
    cache_dir = Path(config.root) / "frames" if config.options.get("cache", True) else None
    augment = recipe.augment if config.augment else None
    log.info("%s: %d train / %d test recordings from %s (%s)", recipe.title, len(train),
             len(test), source.root, source.tag)
    return make_splits(
        EventFrames(source, train, spec, cache_dir), EventFrames(source, test, spec, cache_dir),
        config, augment, None,
        identity={"dataset": recipe.name,
                  "files": files_digest(source.root, [p for p, _ in source.samples]),
            "frames": spec.key(), "sensor": spec.sensor, "seed": config.seed, **extra},
        notes={"source": f"{source.tag} {source.root}", "frames": spec.key(),
               "input_shape": (recipe.sensor[2], *spec.size),
               "cache": str(cache_dir / spec.dataset / spec.key()) if cache_dir else None,
               **extra},
    )


def _source(config: DataConfig, mirror: Callable[[Path], src.FileSource],
            tonic_source: Callable[[Path, bool], src.TonicSource]) -> src.EventSource:
    if config.mirror is not None:
        return mirror(Path(config.mirror))
    return tonic_source(Path(config.root), config.download)


@register_dataset(DatasetInfo(
    name="cifar10-dvs", kind="events", input_shape=(2, 48, 48), num_classes=10, default_T=10,
    default_model="vggsnn", model_options={"input_size": 48},
    description="CIFAR10-DVS via tonic (AEDAT 4), 48x48 frames as TET's code, TET's index split "
                "or a seeded per-class 9:1 or 7:3 split"))
def build_cifar10dvs(config: DataConfig) -> DataSplits:
    check_options(CIFAR10DVS.name, config.options, _OPTIONS + ("split",))
    src.require_aedat()
    source = _source(config, src.cifar10dvs_mirror, src.cifar10dvs_tonic)
    convention = config.options.get("split", DEFAULT_SPLIT)
    if convention in INDEX_SPLITS:
        train, test = split_by_file_index(source.samples, *INDEX_SPLITS[convention])
        return _build(CIFAR10DVS, config, source, train, test, {"split": convention})
    split_file = prepare_split(source.samples, Path(config.root), config.seed, convention)
    train, test = load_split(split_file, source.samples)
    return _build(CIFAR10DVS, config, source, train, test,
                  {"split": convention, "split_file": split_file.name})


@register_dataset(DatasetInfo(
    name="dvs-gesture", kind="events", input_shape=(2, 32, 32), num_classes=11, default_T=16,
    default_model="vggsnn", model_options={"input_size": 32},
    description="IBM DVS-Gesture via tonic, 11 classes, T=16 frames downsampled to 32x32"))
def build_dvs_gesture(config: DataConfig) -> DataSplits:
    check_options(DVS_GESTURE.name, config.options, _OPTIONS)
    source = _source(config, src.gesture_mirror, src.gesture_tonic)
    train = src.split_by_folder(source.samples, src.GESTURE_FOLDERS[0])
    test = src.split_by_folder(source.samples, src.GESTURE_FOLDERS[1])
    return _build(DVS_GESTURE, config, source, train, test, {})


@register_dataset(DatasetInfo(
    name="nmnist", kind="events", input_shape=(2, 34, 34), num_classes=10, default_T=10,
    default_model="convnet", model_options={"input_size": 34},
    description="N-MNIST via tonic, or a (partial) mirror of Train/<digit>/*.bin, Test/..."))
def build_nmnist(config: DataConfig) -> DataSplits:
    check_options(NMNIST.name, config.options, _OPTIONS)
    source = _source(config, src.nmnist_mirror, src.nmnist_tonic)
    train = src.split_by_folder(source.samples, src.NMNIST_FOLDERS[0])
    test = src.split_by_folder(source.samples, src.NMNIST_FOLDERS[1])
    return _build(NMNIST, config, source, train, test, {})

"""Where event samples come from: tonic's dataset classes over a full download (fetched and
unpacked safely here), or tonic's own file readers over a local mirror, which may be a partial
copy (tonic's classes refuse one: they count files and then try to download).

A mirror has the layout of tonic's unpacked folder, so ``mirror: data/NMNIST`` works for a copy
that tonic once downloaded:

- CIFAR10-DVS: ``<class>/*.aedat4`` (AEDAT 4, read with the ``aedat`` package), 10 class folders
- DVS-Gesture: ``ibmGestureTrain/<userNN_lighting>/<label>.npy`` and ``ibmGestureTest/...``
- N-MNIST: ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin`` (40-bit events)
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tonic
from numpy.lib.recfunctions import unstructured_to_structured
from tonic.io import read_aedat4, read_mnist_file

from mpdsnn.data.archive import safe_extract
from mpdsnn.data.fetch import fetch_archive
from mpdsnn.data.frames import EventSource
from mpdsnn.data.splits import relative_paths
from mpdsnn.errors import UserError

log = logging.getLogger(__name__)

Samples = list[tuple[str, int]]
CIFAR10DVS_CLASSES = tuple(tonic.datasets.CIFAR10DVS.classes)  # label order
GESTURE_FOLDERS = ("ibmGestureTrain", "ibmGestureTest")
NMNIST_FOLDERS = ("Train", "Test")


class TonicSource(EventSource):
    """Samples of tonic dataset objects, read through their own ``__getitem__``."""

    def __init__(self, root: Path, tonic_datasets: Sequence[tonic.Dataset]) -> None:
        self.datasets = list(tonic_datasets)
        self.index: dict[str, tuple[int, int]] = {}
        samples: Samples = []
        for d, ds in enumerate(self.datasets):
            for i, (relpath, label) in enumerate(zip(relative_paths(ds.data, root), ds.targets)):
                self.index[relpath] = (d, i)
                samples.append((relpath, int(label)))
        super().__init__(root, samples, "tonic")

    def _read(self, relpath: str) -> np.ndarray:
        d, i = self.index[relpath]
        events, _ = self.datasets[d][i]
        return events


class FileSource(EventSource):
    """Samples of a mirror folder, each read by ``reader(path)`` (a module-level function, so
    the source pickles into DataLoader workers)."""

    def __init__(self, root: Path, samples: Samples, reader: Callable[[Path], np.ndarray]) -> None:
        super().__init__(root, samples, "mirror")
        self.reader = reader

    def _read(self, relpath: str) -> np.ndarray:
        return self.reader(self.root / relpath)


# ---------------------------------------------------------------- readers (tonic's formats)

def require_aedat() -> None:
    """tonic 1.7 reads CIFAR10-DVS's AEDAT 4 files with ``aedat`` but does not install it."""
    if importlib.util.find_spec("aedat") is None:
        raise UserError("CIFAR10-DVS files are AEDAT 4, which tonic reads with the `aedat` "
                        "package that tonic does not install: pip install aedat")


def read_cifar10dvs_file(path: Path) -> np.ndarray:
    """One AEDAT 4 recording -> events with tonic's CIFAR10DVS fields (t, x, y, p)."""
    events = read_aedat4(str(path))
    events.dtype.names = tonic.datasets.CIFAR10DVS.ordering  # as tonic's class renames 'on'
    return events


def read_gesture_file(path: Path) -> np.ndarray:
    """One DVS-Gesture ``.npy`` (columns x, y, p, t in ms) -> events with t in us, as tonic."""
    events = np.load(path)
    if events.ndim != 2 or events.shape[1] != 4:
        raise UserError(f"{path}: expected an array of shape [events, 4] (x, y, p, t), "
                        f"got {events.shape}")
    events[:, 3] *= 1000
    return unstructured_to_structured(events, tonic.datasets.DVSGesture.dtype)


def read_nmnist_file(path: Path) -> np.ndarray:
    """One N-MNIST ``.bin`` (5 bytes per event) -> events with tonic's NMNIST fields."""
    size = path.stat().st_size
    if size % 5:
        raise UserError(f"N-MNIST file {path} has {size} bytes, not a multiple of 5 "
                        f"(40-bit events): it is truncated or not N-MNIST")
    return read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)


# ---------------------------------------------------------------- tonic downloads

def _hint(url: str, archive: Path, layout: str) -> str:
    return (f"Without network access, fetch {url} elsewhere and place it as {archive} (it is "
            f"unpacked next to it), or set `mirror:` to a folder with {layout}")


def _ensure_unpacked(cls: type, loc: Path, url: str, filename: str, md5: str,
                     unpacked: Sequence[Path], layout: str, download: bool) -> None:
    """Make tonic's folder complete before its class is built, so that tonic never downloads
    (it would without a timeout and unpack without a path filter). tonic requires the archive
    itself to stay next to the unpacked files."""
    archive = loc / filename
    done = all(p.exists() for p in unpacked)
    if done and archive.is_file():
        return
    if done:
        raise UserError(f"{cls.__name__}: found the unpacked files in {loc} but not {archive}, "
                        f"which tonic requires next to them (else it downloads again). Put the "
                        f"archive back, or set `mirror: {loc}` to read the files directly")
    fetch_archive(url, archive, md5, loc, what=f"{cls.__name__} ({filename})",
                  hint=_hint(url, archive, layout), allow_download=download)


def cifar10dvs_tonic(root: Path, download: bool) -> TonicSource:
    cls = tonic.datasets.CIFAR10DVS
    loc = root / cls.__name__
    _ensure_unpacked(cls, loc, cls.url, cls.filename, cls.file_md5,
                     [loc / c for c in CIFAR10DVS_CLASSES], "<class>/*.aedat4 folders", download)
    for inner in cls.data_filename:  # the archive holds one zip per class
        if (loc / inner).is_file() and not (loc / inner.removesuffix(".zip")).is_dir():
            safe_extract(loc / inner, loc)
    return TonicSource(loc, [cls(str(root))])


def gesture_tonic(root: Path, download: bool) -> TonicSource:
    cls = tonic.datasets.DVSGesture
    loc = root / cls.__name__
    for url, filename, md5, folder in ((cls.train_url, cls.train_filename, cls.train_md5,
                                        GESTURE_FOLDERS[0]),
                                       (cls.test_url, cls.test_filename, cls.test_md5,
                                        GESTURE_FOLDERS[1])):
        _ensure_unpacked(cls, loc, url, filename, md5, [loc / folder],
                         "ibmGestureTrain/ and ibmGestureTest/ folders", download)
    return TonicSource(loc, [cls(str(root), train=True), cls(str(root), train=False)])


def nmnist_tonic(root: Path, download: bool) -> TonicSource:
    cls = tonic.datasets.NMNIST
    loc = root / cls.__name__
    for url, filename, md5, folder in ((cls.train_url, cls.train_filename, cls.train_md5,
                                        cls.train_folder),
                                       (cls.test_url, cls.test_filename, cls.test_md5,
                                        cls.test_folder)):
        _ensure_unpacked(cls, loc, url, filename, md5, [loc / folder],
                         "Train/<digit>/*.bin and Test/<digit>/*.bin", download)
    return TonicSource(loc, [cls(str(root), train=True), cls(str(root), train=False)])


# ---------------------------------------------------------------- mirrors

def _folders(path: Path, what: str) -> list[str]:
    if not path.is_dir():
        raise UserError(f"{what}: {path} is not a folder")
    return sorted(p.name for p in path.iterdir() if p.is_dir())


def _files(folder: Path, suffix: str, root: Path) -> list[str]:
    return sorted(relative_paths([p for p in folder.iterdir()
                                  if p.name.endswith(suffix) and p.is_file()], root))


def cifar10dvs_mirror(mirror: Path) -> FileSource:
    what = f"CIFAR10-DVS mirror {mirror}"
    found = _folders(mirror, what)
    missing = [c for c in CIFAR10DVS_CLASSES if c not in found]
    if missing:
        raise UserError(f"{what} lacks class folder(s) {', '.join(missing)}: expected "
                        f"<class>/*.aedat4 for {', '.join(CIFAR10DVS_CLASSES)}")
    samples: Samples = []
    for label, name in enumerate(CIFAR10DVS_CLASSES):
        files = _files(mirror / name, ".aedat4", mirror)
        if not files:
            raise UserError(f"{what}: {mirror / name} has no .aedat4 file")
        samples += [(f, label) for f in files]
    return FileSource(mirror, samples, read_cifar10dvs_file)


def gesture_mirror(mirror: Path) -> FileSource:
    what = f"DVS-Gesture mirror {mirror}"
    found = _folders(mirror, what)
    missing = [f for f in GESTURE_FOLDERS if f not in found]
    if missing:
        raise UserError(f"{what} lacks {', '.join(missing)}: expected "
                        f"ibmGestureTrain/<userNN_lighting>/<label>.npy and ibmGestureTest/...")
    samples: Samples = []
    n_classes = len(tonic.datasets.DVSGesture.classes)
    for split in GESTURE_FOLDERS:
        for recording in _folders(mirror / split, what):
            for relpath in _files(mirror / split / recording, ".npy", mirror):
                stem = Path(relpath).stem
                if not stem.isdigit() or int(stem) >= n_classes:
                    raise UserError(f"{what}: {relpath} is not named <label>.npy with a label "
                                    f"in 0..{n_classes - 1}")
                samples.append((relpath, int(stem)))
    _require_both_splits(samples, GESTURE_FOLDERS, what)
    return FileSource(mirror, samples, read_gesture_file)


def nmnist_mirror(mirror: Path) -> FileSource:
    """Reads the original N-MNIST layout, complete or partial (a few files per digit)."""
    what = f"N-MNIST mirror {mirror}"
    found = _folders(mirror, what)
    missing = [f for f in NMNIST_FOLDERS if f not in found]
    if missing:
        raise UserError(f"{what} lacks {', '.join(missing)}: expected Train/<digit>/*.bin and "
                        f"Test/<digit>/*.bin (the layout of N-MNIST's Train.zip and Test.zip)")
    samples: Samples = []
    for split in NMNIST_FOLDERS:
        digits = _folders(mirror / split, what)
        odd = [d for d in digits if d not in {str(k) for k in range(10)}]
        if odd:
            raise UserError(f"{what}: {mirror / split} has folder(s) {', '.join(odd)}; "
                            f"expected digit folders 0..9")
        absent = sorted({str(k) for k in range(10)} - set(digits))
        if absent:
            log.warning("%s: %s has no folder for digit(s) %s", what, split, ", ".join(absent))
        for digit in digits:
            samples += [(f, int(digit)) for f in _files(mirror / split / digit, ".bin", mirror)]
    _require_both_splits(samples, NMNIST_FOLDERS, what)
    return FileSource(mirror, samples, read_nmnist_file)


def _require_both_splits(samples: Samples, folders: Sequence[str], what: str) -> None:
    for folder in folders:
        if not any(relpath.startswith(folder + "/") for relpath, _ in samples):
            raise UserError(f"{what}: no sample file under {folder}/")


def split_by_folder(samples: Samples, folder: str) -> Samples:
    return [s for s in samples if s[0].startswith(folder + "/")]

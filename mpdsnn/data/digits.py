"""Dataset ``digits``: scikit-learn's 1,797 handwritten 8x8 digits, the embedded default.

Why: it ships inside the scikit-learn wheel, so a run needs no network, yet it is real data with
real difficulty. It has no official split, so we make one: stratified 70/10/20 train/val/test
with ``DataConfig.seed``, recorded in ``DataSplits.notes`` (sizes and a hash of the index lists)
and in the fingerprint. ``digits-dvs`` reuses exactly this split.

Samples: ``x`` ``[1, S, S]`` float32, ``S`` = ``options["size"]`` (8, or 16 by bilinear
upsampling), pixels scaled 0..16 -> 0..1 then standardised with the train split's mean and std;
``y`` int. With ``DataConfig.augment`` the train set shifts each image by up to ``S // 8``
pixels (edge pixels replicated): cheap, label-preserving.

``size=16`` changes the input shape: ``input_shape(options)`` gives it, and ``DataSplits.notes``
carries the resolved ``input_shape`` and ``model_options`` (``DatasetInfo`` holds the default).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import Dataset

from mpdsnn.data._resize import resize_bilinear
from mpdsnn.data.registry import DataConfig, DatasetInfo, DataSplits, register_dataset
from mpdsnn.data.splits import check_options
from mpdsnn.errors import UserError

NUM_DIGITS = 1797
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
VALID_SIZES = (8, 16)

INFO = DatasetInfo(
    embedded=True,
    name="digits",
    kind="static",
    input_shape=(1, 8, 8),  # (1, 16, 16) with options size=16: see input_shape()
    num_classes=10,
    default_T=4,
    default_model="convnet",
    description="scikit-learn's 1,797 handwritten 8x8 digits (no download); seeded stratified "
                "70/10/20 split; options: size (8 or 16)",
    model_options={"input_size": 8},
)


@dataclass(frozen=True)
class DigitsSplit:
    """Sorted indices into :func:`raw_digits`, one array per split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def digest(self) -> str:
        """sha256 of the three index lists: two runs saw the same split iff these match."""
        h = hashlib.sha256()
        for part in (self.train, self.val, self.test):
            h.update(np.asarray(part, dtype=np.int64).tobytes())
            h.update(b"|")
        return h.hexdigest()


@functools.lru_cache(maxsize=1)
def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """``images`` ``[1797, 8, 8]`` float64 in 0..16 and ``labels`` ``[1797]`` int64 (read-only)."""
    from sklearn.datasets import load_digits  # lazy: sklearn costs ~1 s to import

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def digits_split(seed: int) -> DigitsSplit:
    """The seeded, stratified 70/10/20 split (1257/180/360 digits)."""
    from sklearn.model_selection import train_test_split

    _, labels = raw_digits()
    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=SPLIT_FRACTIONS["test"], stratify=labels,
                                  random_state=seed)
    val_share = SPLIT_FRACTIONS["val"] / (1.0 - SPLIT_FRACTIONS["test"])
    train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest],
                                  random_state=seed)
    return DigitsSplit(np.sort(train), np.sort(val), np.sort(test))


def apply_subsets(split: DigitsSplit, config: DataConfig) -> DigitsSplit:
    """Seeded random subsets: ``train_subset`` limits train, ``test_subset`` limits val and test.

    A subset larger than its split keeps the whole split."""
    rng = np.random.default_rng(config.seed)

    def take(part: np.ndarray, k: int | None, what: str) -> np.ndarray:
        if k is None:
            return part
        if k <= 0:
            raise UserError(f"{what} must be a positive number of samples, got {k}")
        return part if k >= len(part) else np.sort(rng.choice(part, size=k, replace=False))

    return DigitsSplit(take(split.train, config.train_subset, "train_subset"),
                       take(split.val, config.test_subset, "test_subset"),
                       take(split.test, config.test_subset, "test_subset"))


def image_size(options: dict[str, Any]) -> int:
    """The validated ``size`` option (8 or 16; integer strings from a CLI are accepted)."""
    size = check_options("digits", options, {"size": 8})["size"]
    if isinstance(size, str) and size.strip().isdigit():
        size = int(size)
    if isinstance(size, bool) or size not in VALID_SIZES:
        raise UserError(f"digits option size must be one of {', '.join(map(str, VALID_SIZES))} "
                        f"(pixels per side), got {size!r}")
    return int(size)


def input_shape(options: dict[str, Any]) -> tuple[int, int, int]:
    """``(1, S, S)``: the real input shape of ``digits`` under these options."""
    s = image_size(options)
    return (1, s, s)


def fingerprint(*parts: bytes | str) -> str:
    """Short sha256 over the given parts (16 hex digits)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def split_notes(split: DigitsSplit, seed: int) -> dict[str, Any]:
    return {"seed": seed, "fractions": dict(SPLIT_FRACTIONS), "sizes": split.sizes(),
            "indices_sha256": split.digest()}


class ImageSet(Dataset):
    """Static images ``[N, 1, S, S]`` float32 with int labels; ``shift`` > 0 randomly translates
    each sample by up to ``shift`` pixels (edges replicated), drawn from torch's global RNG."""

    def __init__(self, images: Tensor, labels: Tensor, shift: int = 0) -> None:
        self.images, self.labels, self.shift = images, labels, shift

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self.images[i]
        if self.shift:
            s, size = self.shift, x.shape[-1]
            padded = F.pad(x[None], (s, s, s, s), mode="replicate")[0]
            dy, dx = torch.randint(0, 2 * s + 1, (2,)).tolist()
            x = padded[:, dy:dy + size, dx:dx + size]
        return x, int(self.labels[i])


@register_dataset(INFO)
def build_digits(config: DataConfig) -> DataSplits:
    size = image_size(config.options)
    images, labels = raw_digits()
    full = digits_split(config.seed)
    split = apply_subsets(full, config)
    x = images / 16.0
    if size != 8:
        x = resize_bilinear(x, size)
    mean, std = float(x[full.train].mean()), float(x[full.train].std())
    x = torch.from_numpy(((x - mean) / std).astype(np.float32))[:, None]
    y = torch.tensor(labels)
    shift = size // 8 if config.augment else 0

    def subset(idx: np.ndarray, shift: int = 0) -> ImageSet:
        t = torch.from_numpy(idx)
        return ImageSet(x[t].clone(), y[t].clone(), shift)

    options = {"size": size}
    return DataSplits(
        train=subset(split.train, shift),
        val=subset(split.val),
        test=subset(split.test),
        fingerprint=fingerprint(images.astype(np.uint8).tobytes(), labels.tobytes(), split.digest(),
                                json.dumps(options, sort_keys=True)),
        notes={"source": "sklearn.datasets.load_digits", "split": split_notes(split, config.seed),
               "normalise": {"mean": mean, "std": std}, "options": options,
               "input_shape": list(input_shape(options)), "model_options": {"input_size": size}},
    )

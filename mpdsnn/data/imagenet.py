"""ImageNet-1k (ILSVRC 2012) from a local ImageFolder copy: ``train/<wnid>/*``, ``val/<wnid>/*``.

ImageNet cannot be downloaded without an account, so ``mirror`` is required (the usual layout
after sorting the validation images into class folders). Samples are ``(x, label)`` with ``x``
``[3, 224, 224]`` float, normalised with the ImageNet mean and std. Training augmentation (the
standard one of SEW ResNet and most SNN ImageNet work, when ``DataConfig.augment``):
RandomResizedCrop(224) and a horizontal flip; evaluation: Resize(256), CenterCrop(224).
Options: ``val_size`` (a seeded holdout of the training files); ``expect_classes`` (1000: a copy
with another number of class folders is refused, so a partial copy never trains silently).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from mpdsnn.data.registry import DataConfig, DatasetInfo, DataSplits, register_dataset
from mpdsnn.data.splits import check_options, files_digest, make_splits, relative_paths
from mpdsnn.errors import UserError

if TYPE_CHECKING:  # torchvision costs ~2 s to import: only this builder pays for it
    from torchvision import datasets, transforms

log = logging.getLogger(__name__)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SPLITS = ("train", "val")
OPTIONS = ("val_size", "expect_classes")


def train_transform(augment: bool) -> transforms.Compose:
    from torchvision import transforms

    if not augment:
        return eval_transform()
    return transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                               transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def eval_transform() -> transforms.Compose:
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                               transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def load_rgb(path: str) -> Image.Image:
    """ImageFolder loader naming the file that cannot be read (a truncated copy, a stray file)."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise UserError(f"cannot read image {path}: {exc}. Replace or delete the file") from None


def _folders(mirror: Path, expect: int) -> tuple[datasets.ImageFolder, datasets.ImageFolder]:
    from torchvision import datasets

    if not mirror.is_dir():
        raise UserError(f"ImageNet mirror {mirror} is not a folder; set `mirror:` to an "
                        "ImageFolder copy with train/<wnid>/ and val/<wnid>/")
    absent = [s for s in SPLITS if not (mirror / s).is_dir()]
    if absent:
        raise UserError(f"ImageNet mirror {mirror} lacks {', '.join(absent)}/: expected "
                        "train/<wnid>/ and val/<wnid>/ (validation images sorted into class folders)")
    classes = {s: sorted(p.name for p in (mirror / s).iterdir() if p.is_dir()) for s in SPLITS}
    if classes["train"] != classes["val"]:
        raise UserError(f"ImageNet mirror {mirror}: train/ and val/ hold different class folders "
                        f"({len(classes['train'])} and {len(classes['val'])})")
    if len(classes["train"]) != expect:
        raise UserError(f"ImageNet mirror {mirror} has {len(classes['train'])} class folders, "
                        f"expected {expect}; complete the copy (or set dataset_options "
                        "{expect_classes: N} for a deliberate subset)")
    try:
        return tuple(datasets.ImageFolder(str(mirror / s), loader=load_rgb) for s in SPLITS)
    except FileNotFoundError as exc:  # a class folder without any image file
        raise UserError(f"ImageNet mirror {mirror}: {exc}") from None


@register_dataset(DatasetInfo(
    name="imagenet", kind="static", input_shape=(3, 224, 224), num_classes=1000, default_T=4,
    default_model="resnet18",
    description="ImageNet-1k from an ImageFolder mirror (train/, val/), standard augmentation"))
def build_imagenet(config: DataConfig) -> DataSplits:
    check_options("imagenet", config.options, OPTIONS)
    if config.mirror is None:
        raise UserError("ImageNet needs a local copy: set `mirror:` to a folder with "
                        "train/<wnid>/ and val/<wnid>/ (it cannot be downloaded without an account)")
    mirror = Path(config.mirror)
    train, test = _folders(mirror, int(config.options.get("expect_classes", 1000)))
    files = files_digest(mirror, relative_paths([p for p, _ in train.samples + test.samples], mirror))
    log.info("ImageNet: %d train / %d val images from %s", len(train), len(test), mirror)
    return make_splits(
        train, test, config, train_transform(config.augment), eval_transform(),
        identity={"dataset": "imagenet", "files": "files:" + files, "seed": config.seed},
        notes={"source": f"mirror {mirror}", "classes": train.classes},
    )

"""CIFAR-10 and CIFAR-100: torchvision's classes over the official archives, or a local
ImageFolder mirror (``train/<class>/*``, ``test/<class>/*``) for offline machines.

Samples are ``(x, label)`` with ``x`` ``[3, 32, 32]`` float, normalised per channel. Training
augmentation (SPEC section 6, when ``DataConfig.augment``): RandomCrop(32, padding 4), horizontal
flip, AutoAugment (CIFAR-10 policy, for both datasets as in the paper's code), ToTensor, Normalize.
Options: ``val_size`` (count or fraction held out of the training files, seeded).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from mpdsnn.data.fetch import fetch_archive
from mpdsnn.data.registry import DataConfig, DatasetInfo, DataSplits, register_dataset
from mpdsnn.data.splits import check_options, files_digest, make_splits, relative_paths
from mpdsnn.errors import UserError

if TYPE_CHECKING:  # torchvision costs ~2 s to import: only the CIFAR builders pay for it
    from torchvision import datasets, transforms

log = logging.getLogger(__name__)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
# CIFAR-100 fine label names, in label order (which is alphabetical, as ImageFolder sorts).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)
OPTIONS = ("val_size",)


@dataclass(frozen=True)
class _Spec:
    name: str
    title: str
    tv_name: str
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def tv_class(self) -> type[datasets.CIFAR10]:
        from torchvision import datasets

        return getattr(datasets, self.tv_name)


CIFAR10 = _Spec("cifar10", "CIFAR-10", "CIFAR10", CIFAR10_CLASSES,
                (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
CIFAR100 = _Spec("cifar100", "CIFAR-100", "CIFAR100", CIFAR100_CLASSES,
                 (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))


def train_transform(spec: _Spec, augment: bool) -> transforms.Compose:
    """PIL image -> ``[3, 32, 32]``; the paper's augmentation when ``augment``."""
    from torchvision import transforms

    if not augment:
        return eval_transform(spec)
    return transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.AutoAugment(transforms.AutoAugmentPolicy.CIFAR10),
        transforms.ToTensor(),
        transforms.Normalize(spec.mean, spec.std),
    ])


def eval_transform(spec: _Spec) -> transforms.Compose:
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std)])


# ---------------------------------------------------------------- torchvision (official files)

def _file_checks(cls: type[datasets.CIFAR10]) -> list[tuple[str, str]]:
    """(file name, md5) of every file torchvision verifies, read from the class at call time."""
    return [(name, md5) for name, md5 in cls.train_list + cls.test_list] + \
        [(cls.meta["filename"], cls.meta["md5"])]


def _where_to_put(spec: _Spec, root: Path) -> str:
    cls = spec.tv_class
    return (f"Without network access, fetch {cls.url} elsewhere and place {cls.filename} in "
            f"{root} (it is unpacked into {root / cls.base_folder}), or unpack it there yourself, "
            f"or set `mirror:` to an ImageFolder copy with train/<class>/ and test/<class>/ folders")


def _official(spec: _Spec, config: DataConfig) -> tuple[datasets.CIFAR10, datasets.CIFAR10, str]:
    """Verify (md5 of each batch file), download if allowed, then read with torchvision."""
    from torchvision.datasets.utils import check_integrity

    cls, root = spec.tv_class, Path(config.root)
    folder = root / cls.base_folder
    checks = _file_checks(cls)
    missing = [name for name, _ in checks if not (folder / name).is_file()]
    if missing:
        fetch_archive(cls.url, root / cls.filename, cls.tgz_md5, root,
                      what=f"{spec.title} ({cls.filename})", hint=_where_to_put(spec, root),
                      allow_download=config.download)
        missing = [name for name, _ in checks if not (folder / name).is_file()]
        if missing:
            raise UserError(f"{spec.title}: {root / cls.filename} did not contain "
                            f"{', '.join(missing)} under {cls.base_folder}/. "
                            f"{_where_to_put(spec, root)}")
    for name, md5 in checks:
        if not check_integrity(str(folder / name), md5):
            raise UserError(f"{spec.title} file {folder / name} is corrupt (its md5 is not "
                            f"torchvision's {md5}). Delete {folder} to unpack or download it "
                            f"again. {_where_to_put(spec, root)}")
    train = cls(str(root), train=True, download=False)
    test = cls(str(root), train=False, download=False)
    if tuple(train.classes) != spec.classes:
        raise UserError(f"{folder}: class names {train.classes[:5]}... are not {spec.title}'s")
    return train, test, "md5:" + ",".join(md5 for _, md5 in checks)


# ---------------------------------------------------------------- ImageFolder mirror

def load_rgb_image(path: str) -> Image.Image:
    """ImageFolder loader naming the file that cannot be read (a truncated copy, a stray file)."""
    try:
        with open(path, "rb") as f:
            image = Image.open(f)
            image = image.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise UserError(f"cannot read image {path}: {exc}. Replace or delete the file") from None
    if image.size != (32, 32):
        raise UserError(f"image {path} is {image.size[0]}x{image.size[1]}; CIFAR images are 32x32")
    return image


def _mirror(spec: _Spec, mirror: Path) -> tuple[datasets.ImageFolder, datasets.ImageFolder, str]:
    from torchvision import datasets

    if not mirror.is_dir():
        raise UserError(f"{spec.title} mirror {mirror} is not a folder")
    absent = [s for s in ("train", "test") if not (mirror / s).is_dir()]
    if absent:
        raise UserError(f"{spec.title} mirror {mirror} lacks the split folder(s) "
                        f"{', '.join(absent)}: expected train/<class>/ and test/<class>/")
    splits = []
    for split in ("train", "test"):
        found = sorted(p.name for p in (mirror / split).iterdir() if p.is_dir())
        lacking = [c for c in spec.classes if c not in found]
        extra = [c for c in found if c not in spec.classes]
        if lacking or extra:
            raise UserError(
                f"{spec.title} mirror {mirror / split} has {len(found)} class folders, "
                f"expected {len(spec.classes)}"
                + (f"; missing: {', '.join(lacking[:10])}{' ...' if len(lacking) > 10 else ''}"
                   if lacking else "")
                + (f"; unexpected: {', '.join(extra[:10])}" if extra else ""))
        try:
            splits.append(datasets.ImageFolder(str(mirror / split), loader=load_rgb_image))
        except FileNotFoundError as exc:  # a class folder without any image file
            raise UserError(f"{spec.title} mirror {mirror / split}: {exc}") from None
    train, test = splits
    digest = files_digest(mirror, relative_paths([p for p, _ in train.samples + test.samples], mirror))
    return train, test, "files:" + digest


def _build(spec: _Spec, config: DataConfig) -> DataSplits:
    check_options(spec.name, config.options, OPTIONS)
    if config.mirror is not None:
        train, test, files = _mirror(spec, Path(config.mirror))
        source = f"mirror {config.mirror}"
    else:
        train, test, files = _official(spec, config)
        source = f"torchvision {spec.tv_class.__name__} in {config.root}"
    log.info("%s: %d train / %d test images from %s", spec.title, len(train), len(test), source)
    return make_splits(
        train, test, config, train_transform(spec, config.augment), eval_transform(spec),
        identity={"dataset": spec.name, "files": files, "seed": config.seed},
        notes={"source": source, "classes": list(spec.classes)},
    )


@register_dataset(DatasetInfo(
    name="cifar10", kind="static", input_shape=(3, 32, 32), num_classes=10, default_T=2,
    default_model="resnet19",
    description="CIFAR-10 (torchvision download or ImageFolder mirror), paper augmentation"))
def build_cifar10(config: DataConfig) -> DataSplits:
    return _build(CIFAR10, config)


@register_dataset(DatasetInfo(
    name="cifar100", kind="static", input_shape=(3, 32, 32), num_classes=100, default_T=2,
    default_model="resnet19",
    description="CIFAR-100 (torchvision download or ImageFolder mirror), paper augmentation"))
def build_cifar100(config: DataConfig) -> DataSplits:
    return _build(CIFAR100, config)

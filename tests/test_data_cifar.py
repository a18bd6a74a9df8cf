"""CIFAR-10/100 end to end through torchvision's real classes on files in the real formats."""

import shutil
import tarfile
import time

import pytest
import torch
from data_formats import (
    cifar_image,
    md5_of,
    patch_cifar_md5s,
    refused_url,
    serve_directory,
    write_cifar10,
    write_cifar100,
    write_image_folder,
)
from torchvision import datasets

from mpdsnn.data import cifar  # noqa: F401 - registers cifar10, cifar100
from mpdsnn.data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES
from mpdsnn.data.registry import DataConfig, load_dataset
from mpdsnn.errors import UserError

MEAN10, STD10 = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def _normalised(pixel, mean, std):
    return torch.tensor([(int(v) / 255 - m) / s for v, m, s in zip(pixel, mean, std)],
                        dtype=torch.float32)


def test_cifar10_reads_official_batches_through_torchvision(tmp_path, monkeypatch):
    patch_cifar_md5s(monkeypatch, datasets.CIFAR10, write_cifar10(tmp_path, per_batch=4, n_test=6))
    splits = load_dataset("cifar10", DataConfig(root=tmp_path, augment=False, download=False))
    assert (len(splits.train), len(splits.test), splits.val) == (20, 6, None)
    x, y = splits.train[7]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 7
    assert torch.allclose(x[:, 0, 0], _normalised(cifar_image(7)[0, 0], MEAN10, STD10), atol=1e-5)
    x, y = splits.test[2]
    assert y == 1002 % 10
    assert torch.allclose(x[:, 0, 0], _normalised(cifar_image(1002)[0, 0], MEAN10, STD10), atol=1e-5)
    assert splits.notes["classes"] == list(CIFAR10_CLASSES)


def test_cifar_augmentation_is_the_papers_recipe(tmp_path, monkeypatch):
    patch_cifar_md5s(monkeypatch, datasets.CIFAR10, write_cifar10(tmp_path))
    splits = load_dataset("cifar10", DataConfig(root=tmp_path, download=False))
    names = [type(t).__name__ for t in splits.train.transform.transforms]
    assert names == ["RandomCrop", "RandomHorizontalFlip", "AutoAugment", "ToTensor", "Normalize"]
    assert splits.train.transform.transforms[0].padding == 4
    assert splits.train.transform.transforms[2].policy.name == "CIFAR10"
    assert [type(t).__name__ for t in splits.test.transform.transforms] == ["ToTensor", "Normalize"]
    assert splits.train[0][0].shape == (3, 32, 32)


def test_cifar100_fine_labels_and_its_normalisation(tmp_path, monkeypatch):
    patch_cifar_md5s(monkeypatch, datasets.CIFAR100, write_cifar100(tmp_path, 20, 10))
    splits = load_dataset("cifar100", DataConfig(root=tmp_path, augment=False, download=False))
    assert (len(splits.train), len(splits.test)) == (20, 10)
    x, y = splits.train[3]
    assert y == 21  # fine label (3 * 7) % 100, not the coarse one
    mean, std = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
    assert torch.allclose(x[:, 0, 0], _normalised(cifar_image(3)[0, 0], mean, std), atol=1e-5)


def test_subsets_and_val_holdout_are_seeded_and_fingerprinted(tmp_path, monkeypatch):
    patch_cifar_md5s(monkeypatch, datasets.CIFAR10, write_cifar10(tmp_path, per_batch=8))
    cfg = dict(root=tmp_path, download=False)
    a = load_dataset("cifar10", DataConfig(**cfg, train_subset=10, test_subset=3,
                                           options={"val_size": 0.25}))
    b = load_dataset("cifar10", DataConfig(**cfg, train_subset=10, test_subset=3,
                                           options={"val_size": 0.25}))
    c = load_dataset("cifar10", DataConfig(**cfg, seed=1, train_subset=10, test_subset=3,
                                           options={"val_size": 0.25}))
    assert (len(a.train), len(a.val), len(a.test)) == (10, 10, 3)
    assert a.train.indices == b.train.indices and a.fingerprint == b.fingerprint
    assert set(a.train.indices).isdisjoint(a.val.indices)
    # the holdout comes from the training files but is evaluated without augmentation
    assert [type(t).__name__ for t in a.val.transform.transforms] == ["ToTensor", "Normalize"]
    assert a.val.base is a.train.base
    assert c.train.indices != a.train.indices and c.fingerprint != a.fingerprint
    full = load_dataset("cifar10", DataConfig(**cfg))
    assert len(full.fingerprint) == 16 and full.fingerprint != a.fingerprint
    with pytest.raises(UserError, match="unknown option.*'val_szie'"):
        load_dataset("cifar10", DataConfig(**cfg, options={"val_szie": 3}))
    with pytest.raises(UserError, match="val_size must be"):
        load_dataset("cifar10", DataConfig(**cfg, options={"val_size": 40}))


def test_corrupt_batch_file_is_named(tmp_path, monkeypatch):
    patch_cifar_md5s(monkeypatch, datasets.CIFAR10, write_cifar10(tmp_path))
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff")
    with pytest.raises(UserError, match=r"file .*data_batch_3 is corrupt"):
        load_dataset("cifar10", DataConfig(root=tmp_path, download=False))


def test_missing_files_without_download_say_where_to_put_them(tmp_path):
    with pytest.raises(UserError) as err:
        load_dataset("cifar10", DataConfig(root=tmp_path, download=False))
    msg = str(err.value)
    assert "download is off" in msg and datasets.CIFAR10.url in msg
    assert f"place cifar-10-python.tar.gz in {tmp_path}" in msg and "mirror" in msg


def test_no_network_download_error_is_clear_and_fast(tmp_path, monkeypatch):
    url = refused_url("cifar-100-python.tar.gz")
    monkeypatch.setattr(datasets.CIFAR100, "url", url)
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        load_dataset("cifar100", DataConfig(root=tmp_path, download=True))
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert f"could not download CIFAR-100 (cifar-100-python.tar.gz) from {url}" in msg
    assert f"place cifar-100-python.tar.gz in {tmp_path}" in msg


def test_download_verifies_and_unpacks_the_archive(tmp_path, monkeypatch):
    """The real download path: HTTP from a loopback server, md5 of the archive, safe unpack,
    then torchvision reads the unpacked batches."""
    md5s = write_cifar10(tmp_path / "src")
    with tarfile.open(tmp_path / "srv.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    (tmp_path / "www").mkdir()
    shutil.move(tmp_path / "srv.tar.gz", tmp_path / "www" / "cifar-10-python.tar.gz")
    patch_cifar_md5s(monkeypatch, datasets.CIFAR10, md5s)
    monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", md5_of(tmp_path / "www" / "cifar-10-python.tar.gz"))
    with serve_directory(tmp_path / "www") as base:
        monkeypatch.setattr(datasets.CIFAR10, "url", f"{base}/cifar-10-python.tar.gz")
        splits = load_dataset("cifar10", DataConfig(root=tmp_path / "data", augment=False))
    assert (tmp_path / "data" / "cifar-10-python.tar.gz").is_file()
    assert (len(splits.train), len(splits.test)) == (20, 6)


# ---------------------------------------------------------------- ImageFolder mirror

def test_image_folder_mirror_loads_png_and_jpeg(tmp_path):
    write_image_folder(tmp_path / "m", CIFAR10_CLASSES, per_class=2)
    splits = load_dataset("cifar10", DataConfig(root=tmp_path / "d", mirror=tmp_path / "m",
                                                augment=False))
    assert (len(splits.train), len(splits.test)) == (20, 20)
    x, y = splits.train[4]  # class 2 ("bird"), file 0000.png, lossless
    assert y == 2
    assert torch.allclose(x[:, 0, 0], _normalised(cifar_image(20)[0, 0], MEAN10, STD10), atol=1e-5)
    x, y = splits.test[5]  # class 2, 0001.jpg: lossy, so only close
    assert y == 2 and x.shape == (3, 32, 32)
    assert not (tmp_path / "d").exists()  # a mirror is read, never written to root


def test_mirror_with_missing_split_or_wrong_classes_is_named(tmp_path):
    write_image_folder(tmp_path / "m", CIFAR10_CLASSES, per_class=1, splits=("train",))
    with pytest.raises(UserError, match="lacks the split folder.*test"):
        load_dataset("cifar10", DataConfig(mirror=tmp_path / "m"))
    write_image_folder(tmp_path / "m", CIFAR10_CLASSES[:9], per_class=1, splits=("test",))
    with pytest.raises(UserError, match=r"test has 9 class folders, expected 10; missing: truck"):
        load_dataset("cifar10", DataConfig(mirror=tmp_path / "m"))
    with pytest.raises(UserError, match="has 10 class folders, expected 100; missing: apple"):
        load_dataset("cifar100", DataConfig(mirror=tmp_path / "m"))
    assert len(CIFAR100_CLASSES) == len(set(CIFAR100_CLASSES)) == 100
    assert list(CIFAR100_CLASSES) == sorted(CIFAR100_CLASSES)


def test_unreadable_jpeg_is_named(tmp_path):
    write_image_folder(tmp_path / "m", CIFAR10_CLASSES, per_class=2)
    bad = tmp_path / "m" / "test" / "cat" / "0001.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated copy
    splits = load_dataset("cifar10", DataConfig(mirror=tmp_path / "m", augment=False))
    with pytest.raises(UserError, match=f"cannot read image {bad}"):
        splits.test[7]

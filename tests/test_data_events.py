"""CIFAR10-DVS, DVS-Gesture and N-MNIST end to end through tonic's real classes and readers, on
files written in their real formats (AEDAT 4, DVS-Gesture .npy, N-MNIST 40-bit .bin)."""

import json
import sys
import time
import zipfile

import numpy as np
import pytest
import tonic
import torch
from data_formats import (
    encode_nmnist,
    md5_of,
    random_events,
    refused_url,
    serve_directory,
    write_aedat4,
    write_cifar10dvs,
    write_gesture,
    write_nmnist,
)

from mpdsnn.data import events  # noqa: F401 - registers cifar10-dvs, dvs-gesture, nmnist
from mpdsnn.data.event_sources import CIFAR10DVS_CLASSES
from mpdsnn.data.events import prepare_split
from mpdsnn.data.registry import DataConfig, load_dataset
from mpdsnn.errors import UserError


def _item(splits, relpath):
    """The sample of ``splits`` (train or test) stored at ``relpath``."""
    for subset in (splits.train, splits.test):
        for i, j in enumerate(subset.indices):
            if subset.base.samples[j][0] == relpath:
                return subset[i]
    raise AssertionError(f"{relpath} is in no split")


# ---------------------------------------------------------------- CIFAR10-DVS

@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory):
    """tonic's unpacked CIFAR10-DVS folder: 100 AEDAT 4 files per class (tonic's class needs
    1,000 in all), numbered 850..949, and the archive tonic insists on finding next to them."""
    root = tmp_path_factory.mktemp("dvs")
    write_cifar10dvs(root / "CIFAR10DVS", per_class=100, events=40, first=850)
    (root / "CIFAR10DVS" / "CIFAR10DVS.zip").write_bytes(b"placeholder: tonic checks presence")
    return root


def test_cifar10dvs_through_tonic_class_with_tets_split_by_default(dvs_root):
    splits = load_dataset("cifar10-dvs", DataConfig(root=dvs_root, T=4, augment=False))
    assert (len(splits.train), len(splits.test)) == (500, 500) and splits.notes["split"] == "tet"
    numbers = {int(p.rsplit("_", 1)[1].split(".")[0]) for p, _ in splits.test.base.samples}
    assert numbers == set(range(900, 950))  # TET's test files: 900..999 of each class
    assert all(p.startswith(CIFAR10DVS_CLASSES[y] + "/") for p, y in splits.test.base.samples)
    with pytest.raises(UserError, match="has 0 train / 1000 test files: use a seeded split"):
        load_dataset("cifar10-dvs", DataConfig(root=dvs_root, options={"split": "tet-7:3"}))


def test_cifar10dvs_through_tonic_class_with_seeded_9to1_split(dvs_root):
    splits = load_dataset("cifar10-dvs", DataConfig(root=dvs_root, T=4, augment=False,
                                                    options={"split": "9:1"}))
    assert (len(splits.train), len(splits.test)) == (900, 100)
    x, y = splits.train[0]
    assert x.shape == (4, 2, 48, 48) and x.dtype == torch.float32 and y == 0
    split_file = dvs_root / "splits" / splits.notes["split_file"]
    index = json.loads(split_file.read_text())
    assert index["convention"] == "9:1" and (index["n_train"], index["n_test"]) == (900, 100)
    per_class = [sum(p.startswith(c + "/") for p in index["test"]) for c in CIFAR10DVS_CLASSES]
    assert per_class == [10] * 10
    again = load_dataset("cifar10-dvs", DataConfig(root=dvs_root, T=4, augment=False,
                                                   options={"split": "9:1"}))
    assert again.fingerprint == splits.fingerprint
    tet = load_dataset("cifar10-dvs", DataConfig(root=dvs_root, T=4, options={"split": "7:3"}))
    assert (len(tet.train), len(tet.test)) == (700, 300) and tet.fingerprint != splits.fingerprint
    with pytest.raises(UserError, match="unknown split convention '8:2'.*7:3, 9:1, tet, tet-7:3"):
        load_dataset("cifar10-dvs", DataConfig(root=dvs_root, options={"split": "8:2"}))


def test_cifar10dvs_frames_at_sensor_size_mark_tets_pixels(dvs_root):
    """At 128x128 (no resize) a frame is TET's: 1 where a pixel fired at all, rows = event x."""
    splits = load_dataset("cifar10-dvs", DataConfig(root=dvs_root, T=4, augment=False,
                                                    options={"size": 128, "cache": False}))
    x, y = splits.test[0]
    relpath = splits.test.base.samples[splits.test.indices[0]][0]
    ev = tonic.io.read_aedat4(str(dvs_root / "CIFAR10DVS" / relpath))
    assert x.shape == (4, 2, 128, 128) and len(ev) == 40
    expected = np.zeros((4, 2, 128, 128), dtype=np.float32)
    for t in range(4):  # 4 bins of 10 events; channel 1 = ON polarity
        part = ev[10 * t:10 * (t + 1)]
        expected[t, part["on"].astype(int), part["x"], part["y"]] = 1
    assert np.array_equal(x.numpy(), expected)


def test_split_is_sorted_by_path_and_seeded(tmp_path):
    samples = [(f"c{k % 2}/f{k:03d}.aedat4", k % 2) for k in range(40)]
    a = json.loads(prepare_split(samples[::-1], tmp_path, seed=3).read_text())
    b = json.loads(prepare_split(samples, tmp_path / "b", seed=3).read_text())
    c = json.loads(prepare_split(samples, tmp_path / "c", seed=4).read_text())
    assert a["test"] == b["test"] and a["test"] != c["test"]
    assert len(a["test"]) == 4 and sorted(a["train"] + a["test"]) == sorted(p for p, _ in samples)


def test_frame_cache_is_keyed_by_every_preprocessing_parameter(tmp_path):
    mirror = tmp_path / "mirror"
    write_cifar10dvs(mirror, per_class=2, events=60, first=899)
    root = tmp_path / "root"
    t4 = load_dataset("cifar10-dvs", DataConfig(root=root, mirror=mirror, T=4, augment=False))
    x4, _ = t4.train[0]
    cached = list((root / "frames" / "cifar10-dvs").glob("v2-T4-count-48x48-tet/mirror-*/*/*.npy"))
    assert len(cached) == 1 and np.array_equal(np.load(cached[0]), x4.numpy())
    np.save(cached[0], np.full((4, 2, 48, 48), 7.0, dtype=np.float32))  # tamper: proves reuse
    assert float(t4.train[0][0].mean()) == 7.0
    t5 = load_dataset("cifar10-dvs", DataConfig(root=root, mirror=mirror, T=5, augment=False))
    assert t5.train[0][0].shape == (5, 2, 48, 48)  # a new T never reads the T=4 frames
    timed = load_dataset("cifar10-dvs", DataConfig(root=root, mirror=mirror, T=4, augment=False,
                                                   options={"binning": "time"}))
    assert float(timed.train[0][0].mean()) != 7.0
    keys = sorted(p.name for p in (root / "frames" / "cifar10-dvs").iterdir())
    assert keys == ["v2-T4-count-48x48-tet", "v2-T4-time-48x48-tet", "v2-T5-count-48x48-tet"]
    assert len({t4.fingerprint, t5.fingerprint, timed.fingerprint}) == 3


def test_cifar10dvs_train_augmentation_flips_and_rolls(tmp_path):
    write_cifar10dvs(tmp_path / "m", per_class=2, events=60, first=899)
    plain = load_dataset("cifar10-dvs", DataConfig(root=tmp_path, mirror=tmp_path / "m", T=2,
                                                   augment=False, options={"size": 128}))
    aug = load_dataset("cifar10-dvs", DataConfig(root=tmp_path, mirror=tmp_path / "m", T=2,
                                                 options={"size": 128}))
    assert aug.train.transform.flip and aug.train.transform.max_roll == 5
    assert aug.test.transform is None
    x = plain.train[0][0]
    torch.manual_seed(0)
    seen = {tuple(aug.train[0][0].flatten().tolist()) for _ in range(20)}
    assert len(seen) > 5
    for _ in range(20):  # every augmented sample is a flipped and/or rolled copy of the frames
        z = aug.train[0][0]
        assert z.sum() == x.sum()
        assert any(torch.equal(torch.roll(v, (dy, dx), (-2, -1)), z)
                   for v in (x, torch.flip(x, (-1,)))
                   for dy in range(-5, 6) for dx in range(-5, 6))


def test_cifar10dvs_mirror_partial_copy_and_its_errors(tmp_path, monkeypatch):
    mirror = tmp_path / "m"
    files = write_cifar10dvs(mirror, per_class=3, events=40, first=899)
    splits = load_dataset("cifar10-dvs", DataConfig(root=tmp_path / "r", mirror=mirror, T=2))
    assert (len(splits.train), len(splits.test)) == (10, 20)  # 899 | 900, 901
    files[4].write_bytes(files[4].read_bytes()[:30])  # truncated AEDAT 4
    broken = load_dataset("cifar10-dvs", DataConfig(root=tmp_path / "r", mirror=mirror, T=2,
                                                    options={"cache": False}))
    with pytest.raises(UserError, match=f"cannot read event file {files[4]}"):
        _item(broken, files[4].relative_to(mirror).as_posix())
    for path in (mirror / "truck").iterdir():
        path.unlink()
    (mirror / "truck").rmdir()
    with pytest.raises(UserError, match="lacks class folder.*truck"):
        load_dataset("cifar10-dvs", DataConfig(root=tmp_path / "r", mirror=mirror))
    monkeypatch.setitem(sys.modules, "aedat", None)
    with pytest.raises(UserError, match="pip install aedat"):
        load_dataset("cifar10-dvs", DataConfig(root=tmp_path / "r", mirror=mirror))


def test_cifar10dvs_no_network_and_missing_archive_errors(tmp_path, monkeypatch, dvs_root):
    url = refused_url("38023437")
    monkeypatch.setattr(tonic.datasets.CIFAR10DVS, "url", url)
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        load_dataset("cifar10-dvs", DataConfig(root=tmp_path))
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert f"could not download CIFAR10DVS (CIFAR10DVS.zip) from {url}" in msg
    assert f"place it as {tmp_path / 'CIFAR10DVS' / 'CIFAR10DVS.zip'}" in msg and "mirror" in msg
    (tmp_path / "CIFAR10DVS").mkdir(exist_ok=True)
    for name in CIFAR10DVS_CLASSES:
        (tmp_path / "CIFAR10DVS" / name).mkdir()
    with pytest.raises(UserError, match="found the unpacked files .* but not .*CIFAR10DVS.zip"):
        load_dataset("cifar10-dvs", DataConfig(root=tmp_path))


def test_cifar10dvs_download_unpacks_nested_class_zips(tmp_path, monkeypatch):
    """tonic's archive holds one zip per class: fetched over HTTP, md5-checked, unpacked."""
    src = tmp_path / "src"
    write_cifar10dvs(src, per_class=100, events=20, first=900)
    www = tmp_path / "www"
    www.mkdir()
    with zipfile.ZipFile(www / "CIFAR10DVS.zip", "w") as outer:
        for name in CIFAR10DVS_CLASSES:
            with zipfile.ZipFile(tmp_path / f"{name}.zip", "w") as inner:
                for f in sorted((src / name).iterdir()):
                    inner.write(f, f"{name}/{f.name}")
            outer.write(tmp_path / f"{name}.zip", f"{name}.zip")
    monkeypatch.setattr(tonic.datasets.CIFAR10DVS, "file_md5", md5_of(www / "CIFAR10DVS.zip"))
    with serve_directory(www) as base:
        monkeypatch.setattr(tonic.datasets.CIFAR10DVS, "url", f"{base}/CIFAR10DVS.zip")
        splits = load_dataset("cifar10-dvs", DataConfig(root=tmp_path / "data", T=2,
                                                        options={"split": "9:1"}))
    assert (len(splits.train), len(splits.test)) == (900, 100)
    assert splits.notes["source"].startswith("tonic ")
    assert splits.train[0][0].shape == (2, 2, 48, 48)


# ---------------------------------------------------------------- DVS-Gesture

def _gesture_tree(folder, train_users, test_users):
    write_gesture(folder, train_users, "ibmGestureTrain")
    write_gesture(folder, test_users, "ibmGestureTest")


def test_dvs_gesture_through_tonic_class(tmp_path):
    loc = tmp_path / "DVSGesture"
    _gesture_tree(loc, range(1, 11), range(11, 21))  # 110 + 110 (tonic needs 100 each)
    for name in ("ibmGestureTrain.tar.gz", "ibmGestureTest.tar.gz"):
        (loc / name).write_bytes(b"placeholder")
    splits = load_dataset("dvs-gesture", DataConfig(root=tmp_path, T=8, augment=False))
    assert (len(splits.train), len(splits.test)) == (110, 110)
    x, y = splits.train[3]  # sorted by path: 0, 1, 10, 2, ...
    assert x.shape == (8, 2, 32, 32) and y == 2
    assert splits.train.base.samples[3][0] == "ibmGestureTrain/user01_fluorescent/2.npy"
    full = load_dataset("dvs-gesture", DataConfig(root=tmp_path, T=8, augment=False,
                                                  options={"size": 128, "cache": False}))
    assert float(full.train[3][0].sum()) == 64  # every event of the file, 64 / 8 per bin
    assert torch.allclose(x.sum(), torch.tensor(64.0) / 16)  # 4x4 area average
    aug = load_dataset("dvs-gesture", DataConfig(root=tmp_path, T=8))
    assert not aug.train.transform.flip  # left/right hand waves are different classes


def test_dvs_gesture_mirror_and_corrupt_file(tmp_path, monkeypatch):
    _gesture_tree(tmp_path / "m", [1, 2], [3])
    splits = load_dataset("dvs-gesture", DataConfig(root=tmp_path / "r", mirror=tmp_path / "m",
                                                    T=4, augment=False))
    assert (len(splits.train), len(splits.test)) == (22, 11)
    bad = tmp_path / "m" / "ibmGestureTest" / "user03_fluorescent" / "0.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UserError, match=f"cannot read event file {bad}"):
        splits.test[0]
    (tmp_path / "m" / "ibmGestureTrain" / "user01_fluorescent" / "12.npy").write_bytes(b"")
    with pytest.raises(UserError, match="12.npy is not named <label>.npy"):
        load_dataset("dvs-gesture", DataConfig(root=tmp_path / "r", mirror=tmp_path / "m"))
    url = refused_url("38022171")
    monkeypatch.setattr(tonic.datasets.DVSGesture, "train_url", url)
    with pytest.raises(UserError, match=f"could not download DVSGesture .*from {url}"):
        load_dataset("dvs-gesture", DataConfig(root=tmp_path / "empty"))


# ---------------------------------------------------------------- N-MNIST

def test_nmnist_through_tonic_class_with_full_layout(tmp_path):
    loc = tmp_path / "NMNIST"
    write_nmnist(loc, {"Train": 1000, "Test": 1000}, events=30)  # tonic needs 10,000 per split
    for name in ("train.zip", "test.zip"):
        (loc / name).write_bytes(b"placeholder")
    splits = load_dataset("nmnist", DataConfig(root=tmp_path, T=3, augment=False,
                                               train_subset=50, test_subset=20))
    assert splits.notes["source"] == f"tonic {loc}"
    assert (splits.notes["n_train"], splits.notes["n_test"]) == (50, 20)
    assert len(splits.train.base) == len(splits.test.base) == 10000
    x, y = splits.test[0]
    assert x.shape == (3, 2, 34, 34) and float(x.sum()) == 30
    assert y == int(splits.test.base.samples[splits.test.indices[0]][0].split("/")[1])
    assert splits.train.transform is None  # no augmentation for digits


def test_nmnist_mirror_reads_a_partial_copy_exactly(tmp_path):
    mirror = tmp_path / "nmnist-small"
    write_nmnist(mirror, {"Train": 3, "Test": 1}, events=30)
    x = [18, 0, 33, 5, 5, 5]
    y = [16, 33, 0, 5, 5, 5]
    t = [893, 2000, 8_388_607, 9000, 9001, 9002]  # 23-bit maximum included
    p = [1, 0, 1, 0, 1, 1]
    (mirror / "Train" / "5" / "00001.bin").write_bytes(encode_nmnist(x, y, t, p))
    splits = load_dataset("nmnist", DataConfig(root=tmp_path / "r", mirror=mirror, T=2,
                                               augment=False))
    assert (len(splits.train), len(splits.test)) == (30, 10)
    source = splits.train.base.source
    ev = source.read("Train/5/00001.bin")
    assert ev["x"].tolist() == x and ev["y"].tolist() == y
    assert ev["t"].tolist() == t and ev["p"].tolist() == p
    frames, label = splits.train[15]  # Train/5/00001.bin in path order
    assert label == 5 and frames.shape == (2, 2, 34, 34)
    assert frames[0, 1, 16, 18] == 1 and frames.sum() == 6


def test_nmnist_errors_name_the_problem(tmp_path, monkeypatch):
    mirror = tmp_path / "m"
    write_nmnist(mirror, {"Train": 2}, events=10)
    with pytest.raises(UserError, match="lacks Test"):
        load_dataset("nmnist", DataConfig(mirror=mirror))
    write_nmnist(mirror, {"Test": 1}, events=10)
    bad = mirror / "Train" / "3" / "00002.bin"
    bad.write_bytes(bad.read_bytes()[:-2])
    splits = load_dataset("nmnist", DataConfig(root=tmp_path / "r", mirror=mirror, T=2))
    with pytest.raises(UserError, match=f"{bad} has 48 bytes, not a multiple of 5"):
        splits.train[7]
    with pytest.raises(UserError, match="download is off"):
        load_dataset("nmnist", DataConfig(root=tmp_path / "e", download=False))
    url = refused_url("file_downloaded")
    monkeypatch.setattr(tonic.datasets.NMNIST, "train_url", url)
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        load_dataset("nmnist", DataConfig(root=tmp_path / "e"))
    assert time.monotonic() - start < 5
    assert f"could not download NMNIST (train.zip) from {url}" in str(err.value)
    assert "Train/<digit>/*.bin" in str(err.value)


def test_time_binning_uses_equal_durations(tmp_path):
    mirror = tmp_path / "m"
    write_nmnist(mirror, {"Train": 1, "Test": 1}, events=10)
    # 8 events in the first tenth of the recording, 2 at its end
    t = [0, 1, 2, 3, 4, 5, 6, 7, 95, 100]
    (mirror / "Train" / "0" / "00001.bin").write_bytes(encode_nmnist([1] * 10, [1] * 10, t, [1] * 10))
    count = load_dataset("nmnist", DataConfig(root=tmp_path, mirror=mirror, T=2, augment=False))
    time_ = load_dataset("nmnist", DataConfig(root=tmp_path, mirror=mirror, T=2, augment=False,
                                              options={"binning": "time"}))
    assert count.train[0][0].sum(dim=(1, 2, 3)).tolist() == [5, 5]
    per_bin = time_.train[0][0].sum(dim=(1, 2, 3)).tolist()
    assert per_bin[0] == 8 and per_bin[1] >= 1
    assert random_events(3, 34, 0)["t"].tolist() == [1, 11, 21]
    with pytest.raises(UserError, match="unknown binning 'events'"):
        load_dataset("nmnist", DataConfig(root=tmp_path, mirror=mirror, options={"binning": "events"}))


def test_write_aedat4_round_trips_through_aedat(tmp_path):
    ev = random_events(25, 128, seed=5)
    write_aedat4(tmp_path / "r.aedat4", ev, packets=3)
    back = tonic.io.read_aedat4(str(tmp_path / "r.aedat4"))
    assert back["t"].tolist() == ev["t"].tolist() and back["x"].tolist() == ev["x"].tolist()
    assert back["y"].tolist() == ev["y"].tolist() and back["on"].tolist() == ev["p"].astype(bool).tolist()

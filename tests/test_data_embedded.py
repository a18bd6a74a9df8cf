"""The embedded datasets: ``digits`` (static) and ``digits-dvs`` (emulated events)."""

from pathlib import Path

import numpy as np
import pytest
import torch

import mpdsnn.data.digits_dvs as digits_dvs
from mpdsnn.data import DataConfig, dataset_info, list_datasets, load_dataset
from mpdsnn.data.digits import NUM_DIGITS, digits_split, input_shape, raw_digits
from mpdsnn.errors import UserError

SMALL = {"train_subset": 40, "test_subset": 20}  # keeps emulation to 80 digits (~0.3 s)


def dvs(tmp_path: Path, T: int = 4, **options) -> object:
    return load_dataset("digits-dvs", DataConfig(root=tmp_path, T=T, options=options, **SMALL))


# ---------- registry ----------

def test_both_datasets_are_registered_with_their_info():
    assert {"digits", "digits-dvs"} <= set(list_datasets())
    static, events = dataset_info("digits"), dataset_info("digits-dvs")
    assert (static.kind, static.input_shape, static.num_classes) == ("static", (1, 8, 8), 10)
    assert static.default_T == 4 and events.default_T == 8
    assert (events.kind, events.input_shape, events.num_classes) == ("events", (2, 34, 34), 10)
    assert static.model_options == {"input_size": 8} and events.model_options == {"input_size": 34}


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UserError, match=r"unknown dataset 'digitz'; did you mean digits or digits-dvs\? valid datasets: .*digits, digits-dvs"):
        load_dataset("digitz", DataConfig())


# ---------- digits split ----------

def test_split_sizes_disjoint_and_complete():
    s = digits_split(0)
    assert s.sizes() == {"train": 1257, "val": 180, "test": 360}
    everything = np.concatenate([s.train, s.val, s.test])
    assert len(everything) == NUM_DIGITS and len(np.unique(everything)) == NUM_DIGITS


def test_split_is_stratified():
    _, labels = raw_digits()
    s = digits_split(3)
    overall = np.bincount(labels, minlength=10) / len(labels)
    for part in (s.train, s.val, s.test):
        share = np.bincount(labels[part], minlength=10) / len(part)
        assert np.abs(share - overall).max() < 1.5 / len(part) + 1e-9  # within one sample or so


def test_split_depends_only_on_seed():
    a, b, c = digits_split(0), digits_split(0), digits_split(1)
    assert a.digest() == b.digest() and np.array_equal(a.test, b.test)
    assert a.digest() != c.digest() and not np.array_equal(a.test, c.test)


# ---------- digits samples ----------

def test_sample_shapes_and_dtype():
    splits = load_dataset("digits", DataConfig(augment=False))
    x, y = splits.train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1257, 180, 360)
    assert splits.notes["split"]["sizes"] == {"train": 1257, "val": 180, "test": 360}
    assert splits.notes["split"]["indices_sha256"] == digits_split(0).digest()


def test_size_16_upsamples_and_reports_its_shape():
    splits = load_dataset("digits", DataConfig(options={"size": 16}))
    assert splits.train[0][0].shape == splits.test[0][0].shape == (1, 16, 16)
    assert input_shape({"size": 16}) == (1, 16, 16) and input_shape({}) == (1, 8, 8)
    assert splits.notes["input_shape"] == [1, 16, 16]
    assert splits.notes["model_options"] == {"input_size": 16}


@pytest.mark.parametrize("size", [8, 16])
def test_train_set_is_standardised(size):
    splits = load_dataset("digits", DataConfig(augment=False, options={"size": size}))
    train = torch.stack([splits.train[i][0] for i in range(len(splits.train))])
    assert abs(train.mean().item()) < 1e-4 and abs(train.std().item() - 1) < 1e-3
    test = torch.stack([splits.test[i][0] for i in range(len(splits.test))])
    assert abs(test.mean().item()) < 0.1  # same statistics applied, not re-fitted on test


def test_labels_and_pixels_are_the_sklearn_digits():
    images, labels = raw_digits()
    splits = load_dataset("digits", DataConfig(augment=False))
    idx = digits_split(0).test
    xs = torch.stack([splits.test[i][0] for i in range(5)])[:, 0].numpy()
    mean, std = splits.notes["normalise"]["mean"], splits.notes["normalise"]["std"]
    assert np.allclose(xs * std + mean, images[idx[:5]] / 16, atol=1e-5)
    assert [splits.test[i][1] for i in range(len(idx))] == labels[idx].tolist()


def test_augmentation_shifts_train_only():
    torch.manual_seed(0)
    aug = load_dataset("digits", DataConfig(augment=True))
    plain = load_dataset("digits", DataConfig(augment=False))
    changed = sum(not torch.equal(aug.train[i][0], plain.train[i][0]) for i in range(50))
    assert 25 < changed < 50  # 8 of 9 shifts move the image
    assert all(torch.equal(aug.test[i][0], plain.test[i][0]) for i in range(20))


def test_subsets_are_seeded():
    a = load_dataset("digits", DataConfig(train_subset=100, test_subset=30))
    b = load_dataset("digits", DataConfig(train_subset=100, test_subset=30))
    assert (len(a.train), len(a.val), len(a.test)) == (100, 30, 30)
    assert a.fingerprint == b.fingerprint
    reseeded = load_dataset("digits", DataConfig(train_subset=100, test_subset=30, seed=1))
    assert a.fingerprint != reseeded.fingerprint
    assert a.fingerprint != load_dataset("digits", DataConfig()).fingerprint


@pytest.mark.parametrize("options, message", [
    ({"size": 12}, "digits option size must be one of 8, 16 .pixels per side., got 12"),
    ({"size": "big"}, "got 'big'"),
    ({"colour": True}, r"unknown option\(s\) 'colour' for dataset 'digits'; valid options: size"),
])
def test_bad_digits_options_are_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        load_dataset("digits", DataConfig(options=options))


def test_bad_subset_is_a_user_error():
    with pytest.raises(UserError, match="train_subset must be a positive"):
        load_dataset("digits", DataConfig(train_subset=0))


# ---------- digits-dvs ----------

@pytest.mark.parametrize("T", [4, 8])
def test_dvs_frames_shape(tmp_path, T):
    splits = dvs(tmp_path, T=T)
    x, y = splits.train[0]
    assert x.shape == (T, 2, 34, 34) and x.dtype == torch.float32 and isinstance(y, int)
    assert splits.notes["T"] == T and splits.notes["input_shape"] == [2, 34, 34]


def test_dvs_frames_count_the_events(tmp_path):
    """ToFrame counts events. Time bins span floor((t_last - t_first) / T) us each, so events at or
    after t_first + T * that width (the last one at least) fall outside, as with real recordings;
    event bins keep (n // T) * T events."""
    for T in (4, 8):
        timed = dvs(tmp_path, T=T, disk_cache=False)
        for i in range(5):
            rec, frames = timed.test.recording(i), timed.test[i][0]
            t = rec["t"]
            end = t[0] + T * ((t[-1] - t[0]) // T)
            assert frames.sum().item() == np.count_nonzero(t < end) >= len(rec) - 20
            on = frames[:, 1].sum().item()
            assert on == np.count_nonzero(rec["p"] & (t < end))
        counted = dvs(tmp_path, T=T, framing="events")
        rec, frames = counted.test.recording(0), counted.test[0][0]
        assert frames.sum().item() == (len(rec) // T) * T
        assert frames.sum(dim=(1, 2, 3)).tolist() == [len(rec) // T] * T


def test_dvs_uses_the_digits_split_and_labels(tmp_path):
    config = DataConfig(root=tmp_path, augment=False, **SMALL)
    static, events = load_dataset("digits", config), load_dataset("digits-dvs", config)
    assert static.notes["split"] == events.notes["split"]
    for a, b in ((static.train, events.train), (static.val, events.val), (static.test, events.test)):
        assert len(a) == len(b)
        assert [a[i][1] for i in range(len(a))] == [b[i][1] for i in range(len(b))]


def test_dvs_fingerprint_tracks_T_framing_and_emulator(tmp_path):
    base = dvs(tmp_path).fingerprint
    assert dvs(tmp_path).fingerprint == base
    assert dvs(tmp_path, T=8).fingerprint != base
    assert dvs(tmp_path, framing="events").fingerprint != base
    assert dvs(tmp_path, threshold=0.3).fingerprint != base
    assert dvs(tmp_path, seed=1).fingerprint != base


def test_dvs_roll_augmentation_keeps_event_counts(tmp_path):
    torch.manual_seed(0)
    aug = load_dataset("digits-dvs", DataConfig(root=tmp_path, augment=True, **SMALL))
    plain = load_dataset("digits-dvs", DataConfig(root=tmp_path, augment=False, **SMALL))
    moved = 0
    for i in range(10):
        a, b = aug.train[i][0], plain.train[i][0]
        assert a.sum() == b.sum()
        moved += not torch.equal(a, b)
    assert moved >= 5


def test_dvs_disk_cache_is_keyed_by_emulator_parameters(tmp_path):
    digits_dvs._MEMORY.clear()
    first = dvs(tmp_path, disk_cache=True)
    files = sorted((tmp_path / "digits-dvs").glob("events-*.npz"))
    assert first.notes["events_source"] == "generated" and len(files) == 1
    digits_dvs._MEMORY.clear()  # as a new process would start
    again = dvs(tmp_path, disk_cache=True)
    assert again.notes["events_source"] == "disk"
    assert np.array_equal(again.test.recording(2), first.test.recording(2))
    # T is not part of the events: the cached events are reused and framed anew
    digits_dvs._MEMORY.clear()
    eight = dvs(tmp_path, T=8, disk_cache=True)
    assert eight.notes["events_source"] == "disk" and eight.test[0][0].shape[0] == 8
    # a different emulator parameter never reads the old file
    digits_dvs._MEMORY.clear()
    other = dvs(tmp_path, disk_cache=True, threshold=0.3)
    assert other.notes["events_source"] == "generated"
    assert len(list((tmp_path / "digits-dvs").glob("events-*.npz"))) == 2
    assert len(other.test.recording(0)) < len(first.test.recording(0))


def test_dvs_cache_file_with_foreign_content_is_regenerated(tmp_path):
    digits_dvs._MEMORY.clear()
    first = dvs(tmp_path, disk_cache=True)
    (path,) = (tmp_path / "digits-dvs").glob("events-*.npz")
    with np.load(path) as f:
        events, offsets = f["events"], f["offsets"]
    for content in (lambda: np.savez(path, key="another-key", events=events[:10], offsets=offsets),
                    lambda: path.write_bytes(b"not an npz file")):
        content()
        digits_dvs._MEMORY.clear()
        again = dvs(tmp_path, disk_cache=True)
        assert again.notes["events_source"] == "generated"
        assert np.array_equal(again.test.recording(0), first.test.recording(0))


def test_memory_cache_is_bounded(tmp_path):
    digits_dvs._MEMORY.clear()
    for threshold in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45):
        load_dataset("digits-dvs", DataConfig(root=tmp_path, train_subset=2, test_subset=2,
                                              options={"threshold": threshold}))
    assert len(digits_dvs._MEMORY) == digits_dvs._MEMORY_ENTRIES


@pytest.mark.parametrize("options, message", [
    ({"framing": "frames"}, "framing must be one of time, events, got 'frames'"),
    ({"threshold": "high"}, "option threshold must be like 0.2, got 'high'"),
    ({"image_size": 40}, "does not fit the 34x34 sensor"),
    ({"sensor_size": (64, 64)}, r"unknown option\(s\) 'sensor_size' for dataset 'digits-dvs'; valid "
                                "options: amplitude_px, disk_cache, dt_ms"),
    ({"disk_cache": "yes"}, "disk_cache must be true or false"),
])
def test_bad_dvs_options_are_user_errors(tmp_path, options, message):
    with pytest.raises(UserError, match=message):
        dvs(tmp_path, **options)

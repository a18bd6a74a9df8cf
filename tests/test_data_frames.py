"""Frames as published: CIFAR10-DVS against an independent re-implementation of TET's transform
(written here from its code with numpy, torchvision and PIL), impulse tests of every resize, and
TET's split by file index."""

import numpy as np
import pytest
import torch
from data_formats import random_events
from torchvision import transforms

from mpdsnn.data.frames import FrameSpec, area_resize, to_frames
from mpdsnn.data.splits import split_by_file_index
from mpdsnn.data.tet_frames import tet_frames
from mpdsnn.errors import UserError

SENSOR = (128, 128, 2)


def tet_reference(events: np.ndarray, T: int) -> torch.Tensor:
    """TET's frames, step by step as its code does them (temporal_efficient_training
    preprocess/dvscifar_dataloader.py L70-83, data_loaders.py L70-72 and L86)."""
    frames = np.zeros((T, 2, 128, 128))
    n = len(events) // T
    for i in range(T):
        e = events[i * n:(i + 1) * n]
        frames[i, e["p"], e["x"], e["y"]] += 1  # fancy-index +=: repeats add 1 once
    for i in range(T):
        peak = np.max(frames[i])
        if peak > 0:  # TET divides unconditionally (NaN on an empty frame); not in these streams
            frames[i] = frames[i] / peak
    data = torch.Tensor(frames)
    to_pil, resize = transforms.ToPILImage(), transforms.Resize((48, 48))
    to_tensor = transforms.ToTensor()
    return torch.stack([to_tensor(resize(to_pil(data[t]))) for t in range(T)])


@pytest.mark.parametrize("n,T,seed", [(40_000, 10, 0), (12_345, 10, 1), (3_001, 4, 2),
                                      (200_000, 10, 3), (997, 7, 4)])
def test_cifar10dvs_frames_equal_tets_transform_exactly(n, T, seed):
    events = random_events(n, 128, seed)
    # a bright blob as well: many events on few pixels, so presence and counts differ
    blob = np.random.default_rng(seed).integers(60, 68, size=(n // 2, 2))
    events["x"][: n // 2], events["y"][: n // 2] = blob[:, 0], blob[:, 1]
    ours = to_frames(events, FrameSpec("cifar10-dvs", T, "count", (48, 48), SENSOR, "tet"))
    reference = tet_reference(events, T)
    assert ours.dtype == torch.float32 and ours.shape == (T, 2, 48, 48)
    assert torch.equal(ours, reference)
    assert set(np.unique(ours.numpy() * 255).round(3)) <= set(range(256))
    assert ours[:, 0].sum() > 0 and ours[:, 1].sum() > 0


STEP = 16  # impulses 16 input pixels apart: their 48x48 footprints (3 pixels wide) never meet


def _impulses(channel: int, with_on: bool = False) -> np.ndarray:
    """Counts ``[256, 2, 128, 128]``: frame ``j`` holds one event at every pixel
    ``(j // 16 + 16 a, j % 16 + 16 b)``, so the 256 frames give every pixel its impulse."""
    counts = np.zeros((STEP * STEP, 2, 128, 128), dtype=np.float32)
    for j in range(STEP * STEP):
        counts[j, channel, j // STEP::STEP, j % STEP::STEP] = 1
        if with_on:
            counts[j, 1, j // STEP::STEP, j % STEP::STEP] = 1
    return counts


def _mass_per_impulse(frames: torch.Tensor, channel: int) -> torch.Tensor:
    """``[128, 128]``: the mass that each pixel's impulse leaves in its 5x5 output window."""
    size = frames.shape[-1]
    mass = torch.zeros(128, 128)
    for j in range(STEP * STEP):
        for y in range(j // STEP, 128, STEP):
            for x in range(j % STEP, 128, STEP):
                r, c = int((y + 0.5) * size / 128), int((x + 0.5) * size / 128)
                mass[y, x] = frames[j, channel, max(r - 2, 0):r + 3, max(c - 2, 0):c + 3].sum()
    return mass


def test_tet_resize_keeps_an_on_event_at_every_pixel_and_gates_off_by_on():
    on = tet_frames(_impulses(1), (48, 48)).transpose(-1, -2)  # TET's rows are event x
    assert _mass_per_impulse(on, 1).min() > 0  # every pixel reaches the 48x48 frame
    assert on[:, 1].sum() * 255 > 0 and on[:, 0].sum() == 0
    # channel 0 is the luminance of an "LA" image, premultiplied by channel 1 (alpha) when
    # Pillow resizes: an OFF event alone vanishes, beside an ON event it stays (TET's behaviour)
    assert tet_frames(_impulses(0), (48, 48)).abs().sum() == 0
    both = tet_frames(_impulses(0, with_on=True), (48, 48)).transpose(-1, -2)
    assert _mass_per_impulse(both, 0).min() > 0


@pytest.mark.parametrize("size", [48, 32, 64])
def test_area_resize_keeps_every_event(size):
    out = area_resize(torch.from_numpy(_impulses(0)), (size, size))
    mass = _mass_per_impulse(out, 0)
    assert mass.min() > 0
    if 128 % size == 0:  # whole blocks: each event's mass is kept exactly
        assert torch.allclose(mass * (128 / size) ** 2, torch.ones(128, 128))


def test_counts_frames_at_another_size_keep_the_total():
    events = random_events(5_000, 128, seed=9)
    frames = to_frames(events, FrameSpec("dvs-gesture", 5, "count", (32, 32), SENSOR, "counts"))
    assert frames.shape == (5, 2, 32, 32)
    assert frames.sum().item() * 16 == pytest.approx(5_000)


def _tet_names(numbers):
    return [(f"cat/cifar10_cat_{k}.aedat4", 3) for k in numbers]


def test_split_by_file_index_takes_tets_numbers_not_path_order():
    # path order puts 1000-style numbers out of place (cifar10_cat_10 < cifar10_cat_9)
    samples = _tet_names([0, 9, 10, 899, 900, 901, 999])
    train, test = split_by_file_index(samples, 900, 1000)
    assert sorted(int(p.split("_")[-1].split(".")[0]) for p, _ in train) == [0, 9, 10, 899]
    assert sorted(int(p.split("_")[-1].split(".")[0]) for p, _ in test) == [900, 901, 999]
    train73, test73 = split_by_file_index(samples, 700, 1000)
    assert len(train73) == 3 and len(test73) == 4


def test_split_by_file_index_errors_name_the_file_and_the_fix():
    with pytest.raises(UserError, match=r"cifar10_cat_1000\.aedat4: file number 1000 is outside"):
        split_by_file_index(_tet_names([1, 1000]), 900, 1000)
    with pytest.raises(UserError, match=r"cat/odd\.aedat4: a split by file index needs"):
        split_by_file_index([("cat/odd.aedat4", 3)], 900, 1000)
    with pytest.raises(UserError, match=r"has 3 train / 0 test files: use a seeded split"):
        split_by_file_index(_tet_names([0, 1, 2]), 900, 1000)

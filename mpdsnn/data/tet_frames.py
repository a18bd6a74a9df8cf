"""CIFAR10-DVS frames as TET (Deng et al., ICLR 2022) and MPD-AGL build them, re-implemented.

Sources, read at brain-intelligence-lab/temporal_efficient_training commit 8217492 and
Stay-Sane/MPD-AGL commit 61abbf3 (the DS-ATGO paper follows TET's preprocessing):

1. Slicing: ``preprocess/dvscifar_dataloader.py`` L76-78 cuts a recording of N events into 10
   slices of ``N // 10`` consecutive events (the remainder is dropped); here T slices, tonic's
   ``ToFrame(n_event_bins=T)`` (the same cuts; ``binning: time`` takes equal durations instead).
2. Integration: L80 ``frames[i, p, x, y] += 1`` with numpy fancy indexing, which adds 1 ONCE per
   distinct index however often it repeats: a frame marks which pixels fired, not how often.
3. Normalisation: L82-83 divide each frame by its maximum, so frames hold 0 and 1. (An empty frame
   is 0/0 = NaN there; it is all zeros here.)
4. Resize, per frame: ``data_loaders.py`` (``DVSCifar10``) L70-72 and L86, and MPD-AGL's
   ``data_loader/loader.py`` L63-65 and L77: ``ToTensor(Resize((48, 48))(ToPILImage()(frame)))``.
   ToPILImage turns a float tensor into uint8 by ``x * 255`` truncated (1.0 -> 255), and a
   2-channel image into mode "LA": channel 0 is luminance, channel 1 is ALPHA. Resize uses
   Pillow's antialiased bilinear filter, and Pillow resizes an "LA" image with premultiplied
   alpha (``Image.resize`` converts to "La" and back; Pillow PR 1912, issue 4516): channel 0
   survives only near pixels where channel 1 fired. ToTensor divides by 255.

Layout: TET's frames are ``[p, x, y]`` (rows = event x), and its training flip (``torch.flip``
on the last axis) flips event y; we keep that layout so that frames and augmentation match theirs.
Channels: TET's ``dat2mat.m`` writes polarity as +1 (ON) / -1 (OFF), which as a numpy index sends
both to channel 1; the preprocessing script as published does not run (full-width commas, an
undefined ``r``, float indices), so we read its intent as channel = tonic's polarity (OFF 0, ON 1).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def presence_frames(counts: np.ndarray) -> np.ndarray:
    """Event counts ``[T, 2, H, W]`` -> uint8 images of TET's normalised frames (0 or 255).

    Steps 2 and 3 above: a pixel that fired at all is 1 after division by the frame's maximum,
    and ToPILImage makes it ``int(1.0 * 255) = 255``."""
    return np.where(counts > 0, np.uint8(255), np.uint8(0))


def resize_la(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One uint8 frame ``[2, H, W]`` resized as an "LA" image to ``size`` (H, W), back to
    ``[2, h, w]`` float32 in [0, 1] (step 4 above; Pillow premultiplies the alpha channel 1)."""
    la = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)))  # uint8 HxWx2 -> "LA"
    resized = la.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)


def tet_frames(counts: np.ndarray, size: tuple[int, int]) -> Tensor:
    """Counts ``[T, 2, H, W]`` (H = event y, W = event x, tonic's layout) -> TET's frames
    ``[T, 2, size[0], size[1]]`` in TET's layout (rows = event x), values k / 255."""
    images = presence_frames(counts).transpose(0, 1, 3, 2)  # [T, p, y, x] -> [T, p, x, y]
    return torch.from_numpy(np.stack([resize_la(frame, size) for frame in images]))

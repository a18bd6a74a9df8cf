"""A third-party dataset for mpdsnn in one module: the example of docs/adding-a-dataset.md.

``blobs``: 1,500 seeded 8x8 one-channel images of a Gaussian blob whose position is the class
(4 classes, one per quadrant), split 1,000 / 250 / 250. Registered on import; mpdsnn finds it
through the ``mpdsnn.datasets`` entry-point group."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch.utils.data import TensorDataset

from mpdsnn.data import DataConfig, DatasetInfo, DataSplits, register_dataset

INFO = DatasetInfo(name="blobs", kind="static", input_shape=(1, 8, 8), num_classes=4, default_T=2,
                   default_model="convnet", description="seeded 8x8 Gaussian blobs, 4 quadrants",
                   embedded=True)
CENTRES = [(2, 2), (2, 5), (5, 2), (5, 5)]


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    yy, xx = np.mgrid[0:8, 0:8]
    centres = np.array(CENTRES)[labels] + rng.normal(0, 0.6, (n, 2))
    images = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 2.0)
    images += rng.normal(0, 0.1, images.shape)
    return torch.tensor(images[:, None], dtype=torch.float32), torch.tensor(labels)


@register_dataset(INFO)
def build(config: DataConfig) -> DataSplits:
    x, y = _images(1500, config.seed)
    fingerprint = hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16]
    return DataSplits(train=TensorDataset(x[:1000], y[:1000]), val=TensorDataset(x[1000:1250], y[1000:1250]),
                      test=TensorDataset(x[1250:], y[1250:]), fingerprint=fingerprint)

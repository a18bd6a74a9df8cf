"""Losses on per-timestep outputs ``[T, N, classes]``. Prediction is always the mean over T."""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


class Loss(Protocol):
    def __call__(self, outputs: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor: ...


def mean_output_ce(outputs: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy on the mean output over T (DS-ATGO, STBP-tdBN, MPD-AGL)."""
    return F.cross_entropy(outputs.float().mean(0), targets, label_smoothing=label_smoothing)


def tet_loss(outputs: Tensor, targets: Tensor, label_smoothing: float = 0.0,
             lam: float = 1e-3, phi: float = 1.0) -> Tensor:
    """TET (Deng et al. 2022): ``(1-lam) mean_t CE(O(t), y) + lam mean_t MSE(O(t), phi)``."""
    outputs = outputs.float()
    T = outputs.shape[0]
    ce = F.cross_entropy(outputs.flatten(0, 1), targets.repeat(T), label_smoothing=label_smoothing)
    mse = F.mse_loss(outputs, torch.full_like(outputs, phi))
    return (1 - lam) * ce + lam * mse


def predict(outputs: Tensor) -> Tensor:
    """Class prediction: argmax of the mean output over T."""
    return outputs.mean(0).argmax(-1)

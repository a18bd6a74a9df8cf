"""Membrane decay: how much potential survives a timestep and how the input is scaled.

A decay module returns ``(tau, input_scale)`` for ``U(t) = tau * U(t-1) * (1 - S(t-1)) +
input_scale * I(t)``. DS-ATGO's neurons use ``input_scale = 1``; Fang et al.'s PLIF scales the input
by ``1/tau_m`` as well, which is why both are here and not one formula with a flag.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FixedDecay(nn.Module):
    """A constant multiplicative decay (STBP-tdBN's LIF; DS-ATGO's fixed-tau variant)."""

    def __init__(self, tau: float = 0.2) -> None:
        super().__init__()
        if not 0.0 <= tau < 1.0:
            raise ValueError(f"decay tau must lie in [0, 1), got {tau}")
        self.register_buffer("tau", torch.tensor(float(tau)))

    def forward(self) -> tuple[Tensor, float]:
        return self.tau, 1.0


class LearnableDecay(nn.Module):
    """PLIF-style decay as in DS-ATGO: ``tau = sigmoid(w)``, one scalar per layer."""

    def __init__(self, init_tau: float = 0.2) -> None:
        super().__init__()
        if not 0.0 < init_tau < 1.0:
            raise ValueError(f"initial tau must lie in (0, 1), got {init_tau}")
        self.w = nn.Parameter(torch.tensor(math.log(init_tau / (1.0 - init_tau))))

    def forward(self) -> tuple[Tensor, float]:
        return torch.sigmoid(self.w), 1.0


class FangPLIFDecay(nn.Module):
    """Fang et al. (ICCV 2021): ``H = V + (X - V) / tau_m`` with ``1/tau_m = sigmoid(a)``.

    Rewritten in this package's convention: decay ``1 - sigmoid(a)``, input scale ``sigmoid(a)``.
    """

    def __init__(self, init_tau_m: float = 2.0) -> None:
        super().__init__()
        if init_tau_m <= 1.0:
            raise ValueError(f"PLIF's initial tau_m must exceed 1, got {init_tau_m}")
        self.a = nn.Parameter(torch.tensor(-math.log(init_tau_m - 1.0)))

    def forward(self) -> tuple[Tensor, Tensor]:
        k = torch.sigmoid(self.a)
        return 1.0 - k, k

"""Surrogate modules: which spike function a layer uses and the width of its gradient window.

One instance per spiking layer (never shared), because DS-ATGO's and MPD-AGL's widths follow
that layer's own statistics. ``width(...)`` is also what the gradient-available probe reads.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from mpdsnn.neuron.surrogate import (
    atan_spike,
    rectangular_spike,
    sigmoid_spike,
    strict_rectangular_spike,
    triangle_spike,
)
from mpdsnn.neuron.threshold import ThresholdStep


def tgo_width(x: Tensor | float, vth: float = 1.0, k0: float = 1.0) -> Tensor | float:
    """DS-ATGO's width rule: ``k0 (1 - tanh(Vth - x))`` below Vth, ``k0 (1 + tanh(x - Vth))``
    above it. Both branches are the same function, ``k0 (1 + tanh(x - Vth))``, in (0, 2k0).
    On a tensor or a Python float (a threshold decided on the host)."""
    tanh = torch.tanh if isinstance(x, Tensor) else math.tanh
    return k0 * (1 + tanh(x - vth))


class Surrogate(nn.Module):
    """Base: ``spike(v, width)`` forward is always ``H(v)``; subclasses choose the backward."""

    def width(self, t: int, step: ThresholdStep, tau: Tensor | float) -> Tensor:
        raise NotImplementedError

    def spike(self, v: Tensor, width: Tensor) -> Tensor:
        return rectangular_spike(v, width)


class FixedWidth(Surrogate):
    """Rectangular surrogate of fixed width ``k`` centred on the threshold in use."""

    def __init__(self, k: float = 1.0) -> None:
        super().__init__()
        if k <= 0:
            raise ValueError(f"surrogate width must be positive, got {k}")
        self.register_buffer("k", torch.tensor(float(k)))

    def width(self, t: int, step: ThresholdStep, tau: Tensor | float) -> Tensor:
        return self.k


class TGOWidth(Surrogate):
    """DS-ATGO's backward stage (TGO): the width follows the layer's MPD threshold.

    ``rule="paper"`` feeds ``theta_l(t)`` to :func:`tgo_width` (the paper's equation);
    ``rule="code"`` feeds ``std(U(t))`` (the official code). They agree only when mean(U) = 0.
    Where no statistic exists (eval mode with the running threshold, or no AT), it falls back
    to the firing threshold.
    """

    def __init__(self, rule: Literal["paper", "code"] = "paper", vth: float = 1.0, k0: float = 1.0):
        super().__init__()
        if rule not in ("paper", "code"):
            raise ValueError(f"TGO rule must be 'paper' or 'code', got {rule!r}")
        self.rule, self.vth, self.k0 = rule, vth, k0

    def width(self, t: int, step: ThresholdStep, tau: Tensor | float) -> Tensor:
        if self.rule == "code" and step.std is not None:
            x = step.std
        else:
            x = step.stat if step.stat is not None else step.fire
        return tgo_width(x.detach() if isinstance(x, Tensor) else x, self.vth, self.k0)

    def extra_repr(self) -> str:
        return f"rule={self.rule!r}, vth={self.vth}, k0={self.k0}"


class MPDAGLWidth(Surrogate):
    """MPD-AGL: ``w = 2 gbar Vth`` at t = 1 and ``2 sqrt(1 + tau^2) gbar Vth`` after, where
    ``gbar`` is the mean weight of the layer's BN (detached). Guard: ``gbar`` is clamped to at
    least ``min_gbar`` so the window never vanishes or turns negative."""

    def __init__(self, bn: nn.Module, vth: float = 0.5, min_gbar: float = 1e-2) -> None:
        super().__init__()
        self._bn = (bn,)  # a reference, not a submodule: the model owns the BN's parameters
        self.vth, self.min_gbar = vth, min_gbar

    def width(self, t: int, step: ThresholdStep, tau: Tensor | float) -> Tensor:
        gbar = self._bn[0].weight.detach().mean().clamp_min(self.min_gbar)
        w = 2 * gbar * self.vth
        if t > 0:
            tau_t = torch.as_tensor(tau, dtype=gbar.dtype, device=gbar.device).detach()
            w = w * torch.sqrt(1 + tau_t**2)
        return w


class SmoothSurrogate(Surrogate):
    """Sigmoid or arctan surrogate for users' own methods (and Fang et al.'s PLIF).

    The probes' gradient window for a smooth surrogate uses width 1, the vanilla convention.
    """

    def __init__(self, kind: Literal["sigmoid", "atan"] = "sigmoid", alpha: float = 4.0) -> None:
        super().__init__()
        if kind not in ("sigmoid", "atan"):
            raise ValueError(f"smooth surrogate must be 'sigmoid' or 'atan', got {kind!r}")
        self.kind, self.alpha = kind, alpha
        self.register_buffer("k", torch.tensor(1.0))

    def width(self, t: int, step: ThresholdStep, tau: Tensor | float) -> Tensor:
        return self.k

    def spike(self, v: Tensor, width: Tensor) -> Tensor:
        if self.kind == "sigmoid":
            return sigmoid_spike(v, self.alpha)
        return atan_spike(v, self.alpha)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, alpha={self.alpha}"


class StrictFixedWidth(FixedWidth):
    """:class:`FixedWidth` firing on ``U > theta`` instead of ``U >= theta`` (LTMD's
    ``torch.gt``). Overriding ``spike`` keeps it off the fused backend, which fires on ``>=``."""

    def spike(self, v: Tensor, width: Tensor) -> Tensor:
        return strict_rectangular_spike(v, width)


class TriangleSurrogate(Surrogate):
    """TET's surrogate: fires on ``U > theta``, triangle gradient of half-width ``gamma``.

    ``width`` reports the support ``2 gamma``: the probes count a neuron as gradient-available
    where ``|U - theta| <= width / 2``, exactly where the triangle is non-zero (up to its edge)."""

    def __init__(self, gamma: float = 1.0) -> None:
        super().__init__()
        if gamma <= 0:
            raise ValueError(f"triangle half-width gamma must be positive, got {gamma}")
        self.gamma = float(gamma)
        self.register_buffer("k", torch.tensor(2.0 * gamma))

    def width(self, t: int, step: ThresholdStep, tau: Tensor | float) -> Tensor:
        return self.k

    def spike(self, v: Tensor, width: Tensor) -> Tensor:
        return triangle_spike(v, self.gamma)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"

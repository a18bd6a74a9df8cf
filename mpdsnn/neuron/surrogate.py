"""Surrogate spike functions: a Heaviside forward with a hand-written backward.

Every function takes ``v = U - theta``. Writing the spike on the difference means a learnable
threshold (LTMD) receives minus the gradient of U from autograd for free, and a detached
threshold (DS-ATGO's AT) receives nothing. The functions are stateless: anything that varies per
layer and timestep (the TGO width) is passed in, so no mutable surrogate is ever shared.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class RectangularSpike(torch.autograd.Function):
    """``S = H(v)``; backward ``dS/dv = (1/k) * 1[|v| <= k/2]`` (SPEC section 3)."""

    @staticmethod
    def forward(ctx, v: Tensor, width: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(v, width)
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        v, width = ctx.saved_tensors
        window = (v.abs() <= width / 2).to(grad.dtype)
        return grad * window / width.to(grad.dtype), None


class SigmoidSpike(torch.autograd.Function):
    """``S = H(v)``; backward is the derivative of ``sigmoid(alpha * v)`` (PLIF's surrogate)."""

    @staticmethod
    def forward(ctx, v: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.alpha = alpha
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (v,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * v)
        return grad * ctx.alpha * sg * (1 - sg), None


class ATanSpike(torch.autograd.Function):
    """``S = H(v)``; backward is the derivative of ``atan(pi/2 * alpha * v) / pi + 1/2``."""

    @staticmethod
    def forward(ctx, v: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.alpha = alpha
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (v,) = ctx.saved_tensors
        a = ctx.alpha
        return grad * (a / 2) / (1 + (math.pi / 2 * a * v) ** 2), None


class TriangleSpike(torch.autograd.Function):
    """``S = 1[v > 0]`` (strict, as TET's ``ZIF``); backward ``(1/gamma^2) max(gamma - |v|, 0)``:
    a triangle of half-width ``gamma`` and area 1 (TET ``models/layers.py`` lines 69-84)."""

    @staticmethod
    def forward(ctx, v: Tensor, gamma: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.gamma = gamma
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (v,) = ctx.saved_tensors
        g = ctx.gamma
        return grad * (g - v.abs()).clamp_min(0) / (g * g), None


class StrictRectangularSpike(torch.autograd.Function):
    """``S = 1[v > 0]`` (LTMD's ``torch.gt``); backward the rectangular window of width ``k``."""

    @staticmethod
    def forward(ctx, v: Tensor, width: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(v, width)
        return (v > 0).to(v.dtype)

    backward = RectangularSpike.backward


def rectangular_spike(v: Tensor, width: Tensor) -> Tensor:
    return RectangularSpike.apply(v, width)


def sigmoid_spike(v: Tensor, alpha: float = 4.0) -> Tensor:
    return SigmoidSpike.apply(v, alpha)


def atan_spike(v: Tensor, alpha: float = 2.0) -> Tensor:
    return ATanSpike.apply(v, alpha)


def triangle_spike(v: Tensor, gamma: float = 1.0) -> Tensor:
    return TriangleSpike.apply(v, gamma)


def strict_rectangular_spike(v: Tensor, width: Tensor) -> Tensor:
    return StrictRectangularSpike.apply(v, width)

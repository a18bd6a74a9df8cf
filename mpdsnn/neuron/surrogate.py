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


def rectangular_spike(v: Tensor, width: Tensor) -> Tensor:
    return RectangularSpike.apply(v, width)


def sigmoid_spike(v: Tensor, alpha: float = 4.0) -> Tensor:
    return SigmoidSpike.apply(v, alpha)


def atan_spike(v: Tensor, alpha: float = 2.0) -> Tensor:
    return ATanSpike.apply(v, alpha)

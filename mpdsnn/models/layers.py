"""Building blocks shared by all spiking models: time-distributed layers, time-shared BN, and the
conv-BN-spike unit. Tensors are time-first, ``[T, N, ...]``."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from mpdsnn.neuron.factory import LayerContext, NeuronFactory


class TimeDistributed(nn.Module):
    """Applies a stateless module to every timestep at once by folding T into the batch."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, x.shape[:2])


class TemporalBatchNorm(nn.Module):
    """BN with one set of statistics per channel over batch x time x space (tdBN-like).

    ``scale`` multiplies the normalised input before the affine (threshold-dependent BN's
    ``alpha * Vth``); with ``scale = 1`` it is plain BN over the folded batch.
    """

    def __init__(self, channels: int, spatial_dims: int = 2, scale: float = 1.0) -> None:
        super().__init__()
        bn_cls = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[spatial_dims]
        self.bn = bn_cls(channels)
        self.scale = float(scale)

    @property
    def weight(self) -> Tensor:
        return self.bn.weight

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn(x.flatten(0, 1))
        if self.scale != 1.0:
            # w * (scale * xhat) + b == scale * (w * xhat + b) - (scale - 1) * b
            y = self.scale * y - (self.scale - 1.0) * self.bn.bias.view(1, -1, *[1] * (y.dim() - 2))
        return y.unflatten(0, x.shape[:2])

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def spiking_unit(layer: nn.Module, channels: int, method: NeuronFactory, T: int,
                 spatial_dims: int = 2) -> nn.Sequential:
    """``LIF(BN(layer(x)))`` with the method's BN flavour and neuron."""
    norm = TemporalBatchNorm(channels, spatial_dims, method.norm_scale)
    return nn.Sequential(TimeDistributed(layer), norm, method.neuron(LayerContext(T=T, norm=norm)))


def conv_unit(c_in: int, c_out: int, method: NeuronFactory, T: int, kernel: int = 3,
              stride: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False)
    return spiking_unit(conv, c_out, method, T)


def linear_unit(f_in: int, f_out: int, method: NeuronFactory, T: int) -> nn.Sequential:
    return spiking_unit(nn.Linear(f_in, f_out, bias=False), f_out, method, T, spatial_dims=1)


INITS = ("default", "kaiming-fan-out")


def init_weights(model: nn.Module, init: str) -> None:
    """``"default"``: PyTorch's own initialisation. ``"kaiming-fan-out"``: every conv weight
    ``kaiming_normal_(mode="fan_out", nonlinearity="relu")`` and conv biases zero, as DS-ATGO's and
    MPD-AGL's ``ResNet19._initialize_weights`` and TET's ``VGGSNN``. Behind BN this sets the
    effective early learning rate, so it is part of a method's recipe."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


ModelBuilder = Callable[..., nn.Module]

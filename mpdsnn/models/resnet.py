"""SEW ("ADD") spiking ResNets: ResNet-19 for CIFAR (SPEC section 5) and ResNet-18 for ImageNet.

Block: ``out = LIF(BN(conv(LIF(BN(conv(x)))))) + identity``; the identity is a
``conv1x1 + BN + LIF`` downsample where shape changes. Input ``[T, N, C, H, W]``, output
``[T, N, classes]`` (per-timestep logits; predict on their mean).
"""

from __future__ import annotations

from torch import Tensor, nn

from mpdsnn.neuron.factory import NeuronFactory
from mpdsnn.models.layers import TimeDistributed, conv_unit, init_weights, linear_unit


class SEWBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, method: NeuronFactory, T: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_unit(c_in, c_out, method, T, stride=stride),
                                  conv_unit(c_out, c_out, method, T))
        self.downsample = (conv_unit(c_in, c_out, method, T, kernel=1, stride=stride)
                           if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.downsample(x)


def _stage(c_in: int, c_out: int, blocks: int, stride: int, method: NeuronFactory, T: int) -> nn.Sequential:
    layers = [SEWBlock(c_in, c_out, stride, method, T)]
    layers += [SEWBlock(c_out, c_out, 1, method, T) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet19(nn.Module):
    """Stem 128, stages 3x128, 3x256 (s2), 2x512 (s2), FC 512->256 + BN1d + LIF, FC -> classes.

    20 spiking layers. ``width`` scales every channel count (1.0 = the published net; a
    reduced width is for CPU runs and tests).
    """

    def __init__(self, method: NeuronFactory, T: int, num_classes: int = 10, in_channels: int = 3,
                 width: float = 1.0, init: str = "default") -> None:
        super().__init__()
        c1, c2, c3, hidden = (max(1, round(c * width)) for c in (128, 256, 512, 256))
        self.stem = conv_unit(in_channels, c1, method, T)
        self.stages = nn.Sequential(_stage(c1, c1, 3, 1, method, T), _stage(c1, c2, 3, 2, method, T),
                                    _stage(c2, c3, 2, 2, method, T))
        self.pool = TimeDistributed(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        self.fc1 = linear_unit(c3, hidden, method, T)
        self.head = TimeDistributed(nn.Linear(hidden, num_classes, bias=False))
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc1(self.pool(self.stages(self.stem(x)))))


class ResNet18(nn.Module):
    """SEW ResNet-18 for 224x224 input: 7x7/2 stem + max-pool, stages 2x(64,128,256,512)."""

    def __init__(self, method: NeuronFactory, T: int, num_classes: int = 1000, in_channels: int = 3,
                 width: float = 1.0, init: str = "default") -> None:
        super().__init__()
        c = [max(1, round(v * width)) for v in (64, 128, 256, 512)]
        self.stem = nn.Sequential(conv_unit(in_channels, c[0], method, T, kernel=7, stride=2),
                                  TimeDistributed(nn.MaxPool2d(3, 2, 1)))
        self.stages = nn.Sequential(_stage(c[0], c[0], 2, 1, method, T), _stage(c[0], c[1], 2, 2, method, T),
                                    _stage(c[1], c[2], 2, 2, method, T), _stage(c[2], c[3], 2, 2, method, T))
        self.pool = TimeDistributed(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        self.head = TimeDistributed(nn.Linear(c[3], num_classes, bias=False))  # SPEC 1: bias-free
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.stages(self.stem(x))))

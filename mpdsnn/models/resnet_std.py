"""The standard spiking ResNet-19 of TET and tdBN, as released with TET
(brain-intelligence-lab/temporal_efficient_training, ``models/resnet_models.py``).

Unlike the SEW net of DS-ATGO (:mod:`mpdsnn.models.resnet`), the spike comes after the add and the
downsample is ``conv1x1 + BN`` without a spike (lines 44-57, 117-121); the stem is a 64-channel
``conv3x3 + BN + LIF`` (lines 68, 79-82); the head is ``FC(512, 256, bias) + LIF`` then
``FC(256, classes, bias)`` with no BN (lines 90-93, 145-147). 18 spiking layers.

``sum_alpha`` scales the two BNs whose outputs are summed (branch and downsample), tdBN's
``alpha = 1/sqrt(2)`` on summed branches; TET's own ``tdBatchNorm`` is plain BN (1.0).
"""

from __future__ import annotations

from torch import Tensor, nn

from mpdsnn.models.layers import TemporalBatchNorm, TimeDistributed, conv_unit, init_weights
from mpdsnn.neuron.factory import LayerContext, NeuronFactory


class StandardBlock(nn.Module):
    """``LIF(BN(conv(LIF(BN(conv(x))))) + downsample(x))``; downsample = ``BN(conv1x1(x))``."""

    def __init__(self, c_in: int, c_out: int, stride: int, method: NeuronFactory, T: int,
                 sum_alpha: float) -> None:
        super().__init__()
        self.first = conv_unit(c_in, c_out, method, T, stride=stride)
        norm = TemporalBatchNorm(c_out, scale=method.norm_scale * sum_alpha)
        self.second = nn.Sequential(TimeDistributed(nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)), norm)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                TimeDistributed(nn.Conv2d(c_in, c_out, 1, stride, bias=False)),
                TemporalBatchNorm(c_out, scale=method.norm_scale * sum_alpha))
        self.spike = method.neuron(LayerContext(T=T, norm=norm))

    def forward(self, x: Tensor) -> Tensor:
        return self.spike(self.second(self.first(x)) + self.downsample(x))


class ResNet19Std(nn.Module):
    """Stem 64, stages 3x128, 3x256 (s2), 2x512 (s2), FC 512->256 (bias) + LIF, FC -> classes
    (bias). ``width`` scales every channel count (1.0 = the published net)."""

    def __init__(self, method: NeuronFactory, T: int, num_classes: int = 10, in_channels: int = 3,
                 width: float = 1.0, sum_alpha: float = 1.0, init: str = "default") -> None:
        super().__init__()
        if sum_alpha <= 0:
            raise ValueError(f"sum_alpha must be positive, got {sum_alpha}")
        c0, c1, c2, c3, hidden = (max(1, round(c * width)) for c in (64, 128, 256, 512, 256))
        self.stem = conv_unit(in_channels, c0, method, T)
        blocks, c_in = [], c0
        for c_out, n, stride in ((c1, 3, 1), (c2, 3, 2), (c3, 2, 2)):
            for i in range(n):
                blocks.append(StandardBlock(c_in, c_out, stride if i == 0 else 1, method, T, sum_alpha))
                c_in = c_out
        self.stages = nn.Sequential(*blocks)
        self.pool = TimeDistributed(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        self.fc1 = nn.Sequential(TimeDistributed(nn.Linear(c3, hidden)),
                                 method.neuron(LayerContext(T=T)))
        self.head = TimeDistributed(nn.Linear(hidden, num_classes))
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc1(self.pool(self.stages(self.stem(x)))))

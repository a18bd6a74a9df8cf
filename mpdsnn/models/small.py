"""A small spiking CNN for the embedded datasets and CPU runs (8x8 / 16x16 digits, 34x34 events).

conv(w) -> conv(2w) -> pool -> conv(2w) -> conv(4w) -> pool -> adaptive pool 2x2 ->
FC(128, no bias) + BN1d + LIF -> FC(classes, no bias). Five spiking layers: deep enough to see
the per-layer MPD effects the paper is about, small enough to train in seconds on a CPU.
Inputs larger than 24 pixels are first strided by 2 in the first conv.
"""

from __future__ import annotations

from torch import Tensor, nn

from mpdsnn.neuron.factory import NeuronFactory
from mpdsnn.models.layers import TimeDistributed, conv_unit, init_weights, linear_unit


class SmallConvNet(nn.Module):
    def __init__(self, method: NeuronFactory, T: int, num_classes: int = 10, in_channels: int = 1,
                 width: int = 16, hidden: int = 128, input_size: int = 8,
                 init: str = "default") -> None:
        super().__init__()
        first_stride = 2 if input_size > 24 else 1
        w = width
        self.features = nn.Sequential(
            conv_unit(in_channels, w, method, T, stride=first_stride),
            conv_unit(w, 2 * w, method, T),
            TimeDistributed(nn.AvgPool2d(2)),
            conv_unit(2 * w, 2 * w, method, T),
            conv_unit(2 * w, 4 * w, method, T),
            TimeDistributed(nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())),
        )
        self.fc1 = linear_unit(4 * w * 4, hidden, method, T)
        self.head = TimeDistributed(nn.Linear(hidden, num_classes, bias=False))
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc1(self.features(x)))

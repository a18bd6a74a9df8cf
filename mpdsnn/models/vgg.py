"""VGGSNN for CIFAR10-DVS (TET's architecture): input ``[T, N, 2, 48, 48]`` -> ``[T, N, 10]``.

conv 64, 128, pool, 256, 256, pool, 512, 512, pool, 512, 512, pool (conv3x3 + BN + LIF, average
pools), then Linear(512 * 3 * 3 -> classes, with bias). 8 spiking layers.
"""

from __future__ import annotations

from torch import Tensor, nn

from mpdsnn.neuron.factory import NeuronFactory
from mpdsnn.models.layers import TimeDistributed, conv_unit, init_weights


class VGGSNN(nn.Module):
    def __init__(self, method: NeuronFactory, T: int, num_classes: int = 10, in_channels: int = 2,
                 width: float = 1.0, input_size: int = 48, init: str = "default") -> None:
        super().__init__()
        plan: list[int | str] = [64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"]
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in plan:
            if item == "P":
                layers.append(TimeDistributed(nn.AvgPool2d(2)))
            else:
                c_out = max(1, round(int(item) * width))
                layers.append(conv_unit(c_in, c_out, method, T))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        side = input_size // 16
        self.head = TimeDistributed(nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, num_classes)))
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

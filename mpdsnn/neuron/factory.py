"""What a model needs from a method: a neuron factory. Models depend on this small protocol,
not on the method registry, so a model can be built from any object that makes spiking layers
(a registered :class:`mpdsnn.methods.Method`, or a hand-written factory in a notebook)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import nn


@dataclass(frozen=True)
class LayerContext:
    """What a model tells the neuron factory about the spiking layer it is building.

    ``T``: timesteps the model runs. ``norm``: the BN module feeding this layer (MPD-AGL reads
    its weight); None for layers without one.
    """

    T: int
    norm: nn.Module | None = None


class NeuronFactory(Protocol):
    """``neuron(ctx)`` builds one spiking layer; ``norm_scale`` is alpha * Vth of
    threshold-dependent BN (1.0 = plain time-shared BN)."""

    @property
    def norm_scale(self) -> float: ...

    def neuron(self, ctx: LayerContext) -> nn.Module: ...

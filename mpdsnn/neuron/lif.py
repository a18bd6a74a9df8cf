"""The multi-step LIF neuron every method is built from.

``U(t) = tau * U(t-1) * (1 - S(t-1)) + s_in * I(t)``, ``S(t) = H(U(t) - theta(t))``, hard reset
through the charge equation. By default the reset is not detached, so gradients flow through the
reset path (DS-ATGO, MPD-AGL, TET, LTMD); ``detach_reset=True`` uses ``1 - S(t-1)`` as a constant
in backward, as Fang et al.'s PLIF runs (spikingjelly's ``detach_reset``).
Time-first tensors: input and output are ``[T, N, ...]``.

Usage::

    node = LIFNode(LearnableDecay(0.2), AdaptiveThreshold(T=4), TGOWidth())
    spikes = node(currents)            # currents: [4, N, C, H, W] -> spikes of the same shape
    with record_traces(model): model(x) # node.trace now holds U(t), theta(t), k(t), S(t)
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor, nn

from mpdsnn.neuron.fused import can_fuse, fused_lif
from mpdsnn.neuron.threshold import ThresholdStep
from mpdsnn.neuron.width import Surrogate


@dataclass
class NeuronTrace:
    """What one forward of one layer did, for analysis. ``u`` and ``spikes``: ``[T, N, ...]``
    (detached); ``theta`` and ``width``: ``[T]``; ``stat``: the MPD threshold, or None."""

    u: Tensor
    spikes: Tensor
    theta: Tensor
    width: Tensor
    stat: Tensor | None
    tau: float


class LIFNode(nn.Module):
    """Composes a decay, a threshold policy and a surrogate; owns no dataset or loss logic."""

    def __init__(self, decay: nn.Module, threshold: nn.Module, surrogate: Surrogate,
                 detach_reset: bool = False) -> None:
        super().__init__()
        self.decay, self.threshold, self.surrogate = decay, threshold, surrogate
        self.detach_reset = detach_reset
        self.recording = False  # set by record_traces(); costs nothing when False
        self.trace: NeuronTrace | None = None
        self.backend = "reference"  # or "fused"/"compiled" where eligible (fuse_neurons)

    def extra_repr(self) -> str:
        return "detach_reset=True" if self.detach_reset else ""

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            # Under autocast the BN output is half precision; thresholds, spikes and the AT
            # statistics need fp32 (bf16 resolves ~2^-8 near theta). Spikes are exact in any dtype.
            return self.forward(x.float()).to(x.dtype)
        # The fused backward follows the non-detached reset path, so a detached reset stays here.
        if (self.backend in ("fused", "compiled") and not self.recording and not self.detach_reset
                and can_fuse(self)):
            return fused_lif(self, x)
        tau, in_scale = self.decay()
        u = torch.zeros_like(x[0])
        s = torch.zeros_like(x[0])
        spikes: list[Tensor] = []
        steps: list[tuple[Tensor, ThresholdStep, Tensor]] = []
        for t in range(x.shape[0]):
            keep = 1 - (s.detach() if self.detach_reset else s)
            u = tau * u * keep + in_scale * x[t]
            step: ThresholdStep = self.threshold(u, t, tau)
            width = self.surrogate.width(t, step, tau)
            s = self.surrogate.spike(u - step.fire, width)
            spikes.append(s)
            if self.recording:
                steps.append((u.detach(), step, width.detach()))
        out = torch.stack(spikes)
        if self.recording:
            self.trace = _make_trace(steps, out.detach(), tau)
        return out


def _make_trace(steps: list[tuple[Tensor, ThresholdStep, Tensor]], spikes: Tensor,
                tau: Tensor | float) -> NeuronTrace:
    stats = [s.stat for _, s, _ in steps]
    return NeuronTrace(
        u=torch.stack([u for u, _, _ in steps]),
        spikes=spikes,
        theta=torch.stack([s.fire.detach().float() for _, s, _ in steps]),
        width=torch.stack([w.float() for _, _, w in steps]),
        stat=None if any(s is None for s in stats) else torch.stack([s.detach().float() for s in stats]),
        tau=float(torch.as_tensor(tau).detach()),
    )


def spiking_layers(model: nn.Module) -> list[tuple[str, LIFNode]]:
    """The model's spiking layers in forward-definition order, with their qualified names."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LIFNode)]


@contextmanager
def record_traces(model: nn.Module) -> Iterator[list[tuple[str, LIFNode]]]:
    """Within the block, every LIF layer keeps a :class:`NeuronTrace` of its last forward."""
    layers = spiking_layers(model)
    for _, node in layers:
        node.recording, node.trace = True, None
    try:
        yield layers
    finally:
        for _, node in layers:
            node.recording = False  # traces stay readable after the block (run_probes frees them)


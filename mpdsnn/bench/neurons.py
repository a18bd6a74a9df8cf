"""Neuron-level candidates: one spiking layer, forward + backward over ``[T, N, C, H, W]``.

Ours (fixed LIF = the ``fixed`` method's neuron, and DS-ATGO's neuron, each on the reference,
fused and compiled backends) against the two libraries the field uses, configured as the same
neuron:
``U(t) = 0.2 U(t-1) (1 - S(t-1)) + I(t)``, ``S = H(U - 1)``, hard reset to 0, reset not detached.

- SpikingJelly 2.0.0: ``LIFNode(tau=1.25, decay_input=False, v_reset=0.0, step_mode="m")``
  (its decay is ``1 - 1/tau``) with ``surrogate.Rect(alpha=1)``, the rectangular window of
  width 1. On CPU every SpikingJelly surrogate runs its Torch autograd loop.
- snnTorch 1.0.0: ``Leaky(beta=0.2, threshold=1, reset_mechanism="zero")`` stepped over T; its
  default ATan surrogate (snnTorch has no rectangular one) and, by design, a detached reset.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from mpdsnn.methods import LayerContext, create_method
from mpdsnn.neuron.fused import fuse_neurons

log = logging.getLogger(__name__)

DECAY, VTH = 0.2, 1.0
FIXED_FUSED = "mpdsnn fixed (fused)"  # the row every neuron-level ratio is taken against


@dataclass
class NeuronCandidate:
    """``forward(x)`` maps ``[T, N, ...]`` currents to spikes; ``module`` holds its state."""

    name: str
    forward: Callable[[Tensor], Tensor]
    module: nn.Module
    setup_s: float = 0.0  # one-off cost before the first call (compilation)


BACKENDS = ("reference", "fused", "compiled")


def ours(method: str, backend: str, T: int, example: Tensor | None = None) -> NeuronCandidate:
    """Our ``method``'s neuron on ``backend``; for ``compiled`` with an ``example`` input,
    ``setup_s`` is its first forward + backward (compilation, or loading it from the cache)."""
    node = create_method(method).neuron(LayerContext(T=T))
    fuse_neurons(node, backend)
    setup_s = 0.0
    if backend == "compiled" and example is not None:
        node.to(example.device)
        x = example.detach().requires_grad_()
        t0 = time.perf_counter()
        node(x).sum().backward()
        setup_s = time.perf_counter() - t0
    return NeuronCandidate(f"mpdsnn {method} ({backend})", node, node, setup_s=setup_s)


def spikingjelly_lif() -> nn.Module:
    """SpikingJelly's multi-step LIF configured as our fixed LIF (see the module docstring)."""
    from spikingjelly.activation_based import neuron, surrogate

    return neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, v_threshold=VTH,
                          v_reset=0.0, surrogate_function=surrogate.Rect(alpha=1.0),
                          detach_reset=False, step_mode="m")


def spikingjelly_forward(node: nn.Module, x: Tensor) -> Tensor:
    from spikingjelly.activation_based import functional

    functional.reset_net(node)  # membrane state lives in the module between calls
    return node(x)


def snntorch_leaky() -> nn.Module:
    import snntorch

    return snntorch.Leaky(beta=DECAY, threshold=VTH, reset_mechanism="zero")


def snntorch_forward(node: nn.Module, x: Tensor) -> Tensor:
    mem = node.reset_mem()
    spikes = []
    for t in range(x.shape[0]):
        spk, mem = node(x[t], mem)
        spikes.append(spk)
    return torch.stack(spikes)


def candidates(T: int, with_libraries: bool = True,
               example: Tensor | None = None) -> list[NeuronCandidate]:
    """Our six neurons (fixed and DS-ATGO on each backend), and the libraries if installed."""
    out = [ours(m, b, T, example) for m in ("fixed", "ds-atgo") for b in BACKENDS]
    if with_libraries:
        out += _library_candidates()
    return out


def _library_candidates() -> list[NeuronCandidate]:
    found = []
    try:
        sj = spikingjelly_lif()
        found.append(NeuronCandidate("spikingjelly LIFNode (torch)",
                                     lambda x, n=sj: spikingjelly_forward(n, x), sj))
    except ImportError:
        log.warning("spikingjelly is not installed: its neuron is left out of the benchmark")
    try:
        leaky = snntorch_leaky()
        found.append(NeuronCandidate("snntorch Leaky (loop)",
                                     lambda x, n=leaky: snntorch_forward(n, x), leaky))
    except ImportError:
        log.warning("snntorch is not installed: its neuron is left out of the benchmark")
    return found


def compiled(method: str, T: int, example: Tensor) -> NeuronCandidate:
    """Our reference neuron under ``torch.compile``; ``setup_s`` is the first call's compile."""
    node = ours(method, "reference", T).module.to(example.device)
    fn = torch.compile(node)
    x = example.detach().requires_grad_()
    t0 = time.perf_counter()
    fn(x).sum().backward()
    return NeuronCandidate(f"mpdsnn {method} (reference + torch.compile)", fn, node,
                           setup_s=time.perf_counter() - t0)

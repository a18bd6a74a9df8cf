"""Neuron-level candidates: one spiking layer, forward + backward over ``[T, N, C, H, W]``.

Ours (fixed LIF = the ``fixed`` method's neuron, and DS-ATGO's neuron, each on the reference,
fused and compiled backends) against the two libraries the field uses, configured as the same
neuron:
``U(t) = 0.2 U(t-1) (1 - S(t-1)) + I(t)``, ``S = H(U - 1)``, hard reset to 0, reset not detached.

- SpikingJelly 2.0.0: ``LIFNode(tau=1.25, decay_input=False, v_reset=0.0, step_mode="m")``
  (its decay is ``1 - 1/tau``) with ``surrogate.Rect(alpha=1)``, the rectangular window of
  width 1. On CPU every SpikingJelly surrogate runs its Torch autograd loop (measured: Rect,
  PiecewiseQuadratic and ATan within 7 % of each other). On CUDA its fused kernels (native CUDA
  or Triton, which replaced the CuPy backend of 0.0.0.0.x) take only the surrogates of
  ``spikingjelly._ops.surrogate`` (Sigmoid, ATan, PiecewiseQuadratic, ...), not Rect: a Rect
  ``LIFNode`` runs the Torch loop there too. So on CUDA the bench adds SpikingJelly's kernel row,
  the same neuron with ``PiecewiseQuadratic(alpha=1)`` (the triangle of width 2: same forward,
  another window); which kernel SpikingJelly selected ("cuda" or "triton") is logged and
  recorded with the machine (``bench.json``).
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


def spikingjelly_lif(kernel_surrogate: bool = False) -> nn.Module:
    """SpikingJelly's multi-step LIF configured as our fixed LIF (see the module docstring);
    ``kernel_surrogate``: the triangle surrogate its CUDA kernels accept, instead of Rect."""
    from spikingjelly.activation_based import neuron, surrogate

    spike = surrogate.PiecewiseQuadratic(alpha=1.0) if kernel_surrogate else surrogate.Rect(alpha=1.0)
    return neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, v_threshold=VTH,
                          v_reset=0.0, surrogate_function=spike, detach_reset=False,
                          step_mode="m")


def spikingjelly_kernel_name(device: torch.device) -> str:
    """The implementation SpikingJelly selects for its LIF on ``device`` ("cuda", "triton", or
    "torch-reference" on CPU), as it reports it."""
    from spikingjelly.activation_based.functional.neuron import neuron_implementation

    return str(neuron_implementation("lif", device)["implementation"])


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
        device = example.device if example is not None else torch.device("cpu")
        out += _library_candidates(device)
    return out


SPIKINGJELLY = "spikingjelly LIFNode (torch)"
SPIKINGJELLY_KERNEL = "spikingjelly LIFNode (CUDA kernel, triangle)"


def _library_candidates(device: torch.device) -> list[NeuronCandidate]:
    found = []
    try:
        sj = spikingjelly_lif()
        found.append(NeuronCandidate(SPIKINGJELLY, lambda x, n=sj: spikingjelly_forward(n, x), sj))
    except ImportError:
        log.warning("spikingjelly is not installed: its neuron is left out of the benchmark")
    else:
        if device.type == "cuda":
            found += _spikingjelly_kernel(device)
    try:
        leaky = snntorch_leaky()
        found.append(NeuronCandidate("snntorch Leaky (loop)",
                                     lambda x, n=leaky: snntorch_forward(n, x), leaky))
    except ImportError:
        log.warning("snntorch is not installed: its neuron is left out of the benchmark")
    return found


def _spikingjelly_kernel(device: torch.device) -> list[NeuronCandidate]:
    """SpikingJelly's fused CUDA LIF (see the module docstring), or nothing, with the reason,
    when it has no implementation for this device."""
    try:
        kernel = spikingjelly_kernel_name(device)
    except (RuntimeError, ValueError) as exc:
        log.warning("SpikingJelly has no CUDA LIF kernel here, its row is left out: %s", exc)
        return []
    log.info("SpikingJelly's LIF on %s: the %s implementation", device, kernel)
    sj = spikingjelly_lif(kernel_surrogate=True)
    return [NeuronCandidate(SPIKINGJELLY_KERNEL, lambda x, n=sj: spikingjelly_forward(n, x), sj)]


def compiled(method: str, T: int, example: Tensor) -> NeuronCandidate:
    """Our reference neuron under ``torch.compile``; ``setup_s`` is the first call's compile."""
    node = ours(method, "reference", T).module.to(example.device)
    fn = torch.compile(node)
    x = example.detach().requires_grad_()
    t0 = time.perf_counter()
    fn(x).sum().backward()
    return NeuronCandidate(f"mpdsnn {method} (reference + torch.compile)", fn, node,
                           setup_s=time.perf_counter() - t0)

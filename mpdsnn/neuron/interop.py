"""Our neurons inside SpikingJelly (and snnTorch) networks, where most researchers' models live.

SpikingJelly (``activation_based``, 2.x) drives a neuron through three conventions, which
:class:`SpikingJellyNode` follows so it can stand wherever a ``neuron.LIFNode`` stands:

- ``step_mode``: ``"m"`` takes a whole sequence ``[T, N, ...]`` per call (our LIFNode as is);
  ``"s"`` takes one timestep ``[N, ...]`` per call and keeps ``U`` and ``S`` until reset.
  ``functional.set_step_mode(net, ...)`` sets it on every layer.
- ``reset()``: ``functional.reset_net(net)`` calls it on every module that has one, between
  batches; our state (potential, last spikes, timestep) is cleared there. ``detach()``
  (``functional.detach_net``) keeps the state but cuts the graph to earlier steps.
- A layer is an ``nn.Module`` child of the network: :func:`swap_spikingjelly_neurons` replaces
  every SpikingJelly ``LIFNode`` (or any classes given) in place.

snnTorch's hidden-state neurons (``snn.Leaky(init_hidden=True)``) are single-step layers called
once per timestep, so the same node replaces them (``kinds=(snn.Leaky,)``); ``reset_states(net)``
stands in for ``snntorch.utils.reset(net)``, which knows snnTorch's own classes only.

The dynamics are ours, not SpikingJelly's LIF: ``U(t) = tau U(t-1) (1 - S(t-1)) + I(t)``, hard
reset through the charge, the method's threshold (AT for DS-ATGO) and surrogate (TGO), and the
same probes (``record_traces`` finds the wrapped nodes). Usage::

    from spikingjelly.activation_based import functional, layer, neuron
    net = nn.Sequential(layer.Conv2d(1, 8, 3), layer.BatchNorm2d(8), neuron.LIFNode(), ...)
    functional.set_step_mode(net, "m")
    swap_spikingjelly_neurons(net, create_method("ds-atgo"), T=4)
    out = net(x_seq)             # x_seq: [4, N, 1, H, W]
    functional.reset_net(net)    # after every batch, as with SpikingJelly's own neurons
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
from torch import Tensor, nn

from mpdsnn.errors import UserError
from mpdsnn.neuron.factory import LayerContext, NeuronFactory
from mpdsnn.neuron.fused import fuse_neurons
from mpdsnn.neuron.lif import LIFNode
from mpdsnn.neuron.threshold import ThresholdStep

log = logging.getLogger(__name__)

STEP_MODES = ("s", "m")


class SpikingJellyNode(nn.Module):
    """One of our spiking layers behind SpikingJelly's neuron protocol (module docstring).

    ``node``: the layer a method builds (``method.neuron(LayerContext(T=T))``); ``T``: the
    timesteps per sample, which single-step mode counts so a missing ``reset_net`` is an error
    instead of a silently growing sequence.
    """

    def __init__(self, node: LIFNode, T: int, step_mode: str = "s") -> None:
        super().__init__()
        if T <= 0:
            raise ValueError(f"T must be a positive number of timesteps, got {T}")
        self.node, self.T = node, T
        self.step_mode = step_mode
        self.reset()

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        if value not in STEP_MODES:
            raise ValueError(f"step_mode must be 's' (single-step) or 'm' (multi-step), got {value!r}")
        self._step_mode = value

    def reset(self) -> None:
        """Forget the last sequence: what ``functional.reset_net`` calls between batches."""
        self._u: Tensor | None = None
        self._s: Tensor | None = None
        self._t = 0

    def detach(self) -> None:
        """Cut the graph to earlier timesteps, keeping the state: what ``functional.detach_net``
        calls for truncated backpropagation through time."""
        if self._u is not None and self._s is not None:
            self._u, self._s = self._u.detach(), self._s.detach()

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "m":
            return self.node(x)
        return self._single_step(x)

    def _single_step(self, x: Tensor) -> Tensor:
        """One timestep of :meth:`LIFNode.forward` (mpdsnn/neuron/lif.py, its loop body), with
        ``U`` and ``S`` kept on the module so gradients flow back through earlier calls."""
        if x.dtype in (torch.float16, torch.bfloat16):
            return self._single_step(x.float()).to(x.dtype)
        if self._t >= self.T:
            raise UserError(f"this spiking layer runs T={self.T} timesteps per sample and got step "
                            f"{self._t + 1}; after each batch call functional.reset_net(net) "
                            "(SpikingJelly) or mpdsnn.neuron.reset_states(net), or build the "
                            "layers with the T you run")
        tau, in_scale = self.node.decay()
        u_prev = torch.zeros_like(x) if self._u is None else self._u
        s_prev = torch.zeros_like(x) if self._s is None else self._s
        u = tau * u_prev * (1 - s_prev) + in_scale * x
        step: ThresholdStep = self.node.threshold(u, self._t, tau)
        width = self.node.surrogate.width(self._t, step, tau)
        s = self.node.surrogate.spike(u - step.fire, width)
        self._u, self._s, self._t = u, s, self._t + 1
        return s

    def extra_repr(self) -> str:
        return f"T={self.T}, step_mode={self.step_mode!r}"


def _spikingjelly_lif() -> tuple[type, ...]:
    try:
        from spikingjelly.activation_based import neuron
    except ImportError:
        raise UserError("spikingjelly is not installed; `pip install spikingjelly`, or pass the "
                        "classes to replace with kinds=(...)") from None
    return (neuron.LIFNode,)


def swap_spikingjelly_neurons(net: nn.Module, method: NeuronFactory, T: int,
                              kinds: Sequence[type] | None = None, backend: str = "fused") -> list[str]:
    """Replace, in place, every module of ``net`` that is one of ``kinds`` (default:
    SpikingJelly's ``neuron.LIFNode``) by a :class:`SpikingJellyNode` of ``method``'s neuron,
    keeping each one's ``step_mode``. Returns the qualified names replaced.

    ``method``: anything with ``neuron(ctx)`` (a :func:`mpdsnn.methods.create_method` result).
    Each layer gets the BatchNorm defined just before it as ``ctx.norm`` (MPD-AGL's width reads
    it); a method's ``norm_scale`` (threshold-dependent BN) is not applied to SpikingJelly's BN.
    ``backend``: "fused" (one autograd node over T, equal to the reference) or "reference".
    """
    kinds = tuple(kinds) if kinds is not None else _spikingjelly_lif()
    if getattr(method, "norm_scale", 1.0) != 1.0:
        log.warning("this method scales BN by %g; the network's own BN layers are left unscaled",
                    method.norm_scale)
    found: list[tuple[str, nn.Module, nn.Module | None]] = []
    last_norm: nn.Module | None = None
    for name, module in net.named_modules():  # definition order: a layer's BN comes before it
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            last_norm = module
        elif isinstance(module, kinds):
            if not name:
                raise UserError("the network is itself a neuron; wrap one instead: "
                                "SpikingJellyNode(method.neuron(LayerContext(T=T)), T)")
            found.append((name, module, last_norm))
    replaced: list[str] = []
    for name, old, norm in found:
        node = method.neuron(LayerContext(T=T, norm=norm))
        fuse_neurons(node, backend)
        parent, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent), attr, SpikingJellyNode(node, T, getattr(old, "step_mode", "s")))
        replaced.append(name)
    if not replaced:
        raise UserError(f"no {', '.join(k.__name__ for k in kinds)} in this network; nothing to "
                        "swap (pass the neuron classes it uses with kinds=(...))")
    _forget_reset_cache(net)
    return replaced


def _forget_reset_cache(net: nn.Module) -> None:
    """SpikingJelly 2 caches, per network, the modules ``reset_net`` resets: after a swap that
    list would still name the old neurons, and ours would never be reset."""
    try:
        from spikingjelly.activation_based.functional import invalidate_reset_cache
    except ImportError:  # not installed, or a SpikingJelly without the cache
        return
    invalidate_reset_cache(net)


def reset_states(net: nn.Module) -> None:
    """Reset every :class:`SpikingJellyNode` of ``net`` (for loops without SpikingJelly's
    ``functional.reset_net``, e.g. snnTorch's)."""
    for module in net.modules():
        if isinstance(module, SpikingJellyNode):
            module.reset()

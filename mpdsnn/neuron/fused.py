"""A lean multi-step LIF for the rectangular-surrogate family: one autograd node over all T.

The reference :class:`~mpdsnn.neuron.lif.LIFNode` builds about ten autograd nodes per timestep and
keeps their operands (``U``, ``1 - S``, ``tau * U``, ``U - theta``, ...) alive until backward.
:class:`FusedLIF` runs the same recurrence without autograd and saves only the pre-fire
potentials ``U`` (``[T, N, ...]``); spikes and surrogate windows are recomputed from ``U >= theta``
in a hand-written BPTT that follows the reference's graph term by term, reset path included:

``dL/dS(t) = g_S(t) - tau * U(t) * dL/dU(t+1)``,
``dL/dU(t) = dL/dS(t) * 1[|U - theta| <= k/2] / k + tau * (1 - S(t)) * dL/dU(t+1)``,
``dL/dI(t) = s_in * dL/dU(t)``, ``dL/dtau = sum_t sum(dL/dU(t+1) * U(t) * (1 - S(t)))``.

Forward values are bitwise those of the reference: the charge uses the same operations in the same
order, and the threshold policy and width rule are the layer's own modules called per timestep
(so AT's statistics and its ``running`` update are the reference's).

The ``compiled`` backend (:mod:`mpdsnn.neuron.compiled`) runs these loops with each step's
elementwise work compiled into one kernel; this module dispatches to it.

Usage::

    fuse_neurons(model)         # every eligible LIFNode now runs FusedLIF; probes still work
    fuse_neurons(model, "compiled")  # the same loops as compiled kernels
    fused_lif(node, currents)   # or call it directly: [T, N, ...] -> spikes [T, N, ...]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from mpdsnn.errors import UserError
from mpdsnn.neuron import compiled
from mpdsnn.neuron.compiled import StepFn
from mpdsnn.neuron.threshold import (
    AdaptiveThreshold,
    EstimatedThreshold,
    FixedThreshold,
    HostAdaptiveThreshold,
    LearnableThreshold,
    ThresholdStep,
)
from mpdsnn.neuron.width import FixedWidth, Surrogate, TGOWidth

BACKENDS = ("reference", "fused", "compiled")

# Policies whose threshold is detached from the graph (computed per step without autograd) and the
# one whose threshold carries a gradient but does not depend on U or t (computed once, with grad).
_DETACHED_POLICIES = (FixedThreshold, AdaptiveThreshold, EstimatedThreshold)
_STATIC_GRAD_POLICIES = (LearnableThreshold,)


def can_fuse(node: nn.Module) -> bool:
    """True when ``node``'s threshold policy and surrogate are ones :class:`FusedLIF` reproduces
    exactly: a rectangular spike (the surrogate does not override ``spike``) and a known policy
    class. Any decay module works (its ``tau`` and input scale enter as autograd inputs)."""
    surrogate, policy = getattr(node, "surrogate", None), getattr(node, "threshold", None)
    return (isinstance(surrogate, Surrogate) and type(surrogate).spike is Surrogate.spike
            and type(policy) in _DETACHED_POLICIES + _STATIC_GRAD_POLICIES)


def fused_lif(node: nn.Module, x: Tensor) -> Tensor:
    """Run ``node`` (an eligible LIFNode) on currents ``x`` ``[T, N, ...]``; returns spikes.
    With ``node.backend == "compiled"`` the loops run as compiled kernels (:mod:`.compiled`)."""
    tau, in_scale = node.decay()
    tau_d = tau.detach() if isinstance(tau, Tensor) else tau
    fire_in: Tensor | None = None
    if type(node.threshold) in _STATIC_GRAD_POLICIES:
        fire_in = node.threshold(x[0], 0, tau).fire  # depends on its parameter only

    def step(u: Tensor, t: int, sums: list[float] | None = None) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            if fire_in is not None:
                policy = ThresholdStep(fire=fire_in.detach())
            else:
                policy = node.threshold(u, t, tau_d)
            return policy.fire, node.surrogate.width(t, policy, tau_d)

    if node.backend == "compiled" and compiled.available():
        if _host_decides(node, x):
            return _compiled_host_at(node, x, tau, in_scale, tau_d)
        return compiled.compiled_lif(x, tau, in_scale, fire_in, step)
    needs_grad = torch.is_grad_enabled() and any(
        isinstance(a, Tensor) and a.requires_grad for a in (x, tau, in_scale, fire_in))
    if not needs_grad:
        return _forward(x, tau, in_scale, step)[0]
    return FusedLIF.apply(x, tau, in_scale, fire_in, step)


def _host_decides(node: nn.Module, x: Tensor) -> bool:
    """AT with a width rule that reads only its statistics (TGO or fixed), on CPU: the compiled
    charge kernels sum ``U`` and :class:`HostAdaptiveThreshold` decides in floats. On CUDA the
    policy keeps its own single-pass reduction, which needs no host sync."""
    return (HostAdaptiveThreshold.applies(node.threshold, x)
            and type(node.surrogate) in (TGOWidth, FixedWidth))


def _compiled_host_at(node: nn.Module, x: Tensor, tau: Tensor | float, in_scale: Tensor | float,
                      tau_d: Tensor | float) -> Tensor:
    host = HostAdaptiveThreshold(node.threshold)
    T = x.shape[0]
    values = _StepValues(2 * T, x.dtype)  # thresholds, then widths

    def step(u: Tensor, t: int, sums: list[float] | None) -> tuple[Tensor, Tensor]:
        assert sums is not None  # the kernels summed U(t)
        policy = host(t, *sums, u)
        width = node.surrogate.width(t, policy, tau_d)
        return values.put(t, policy.fire), values.put(T + t, width)

    spikes = compiled.compiled_lif(x, tau, in_scale, None, step, with_sums=True)
    host.finish()
    return spikes


class _StepValues:
    """Per-step thresholds and widths decided as Python floats, handed to the kernels as 0-d
    tensors: views of one CPU buffer per forward, written through its numpy array. Why: a
    tensor built per value (``torch.tensor``) is a tensor creation each, 30-120 us right after
    a kernel has streamed the layer through the caches (docs/bench.md); a numpy store is not.
    Rounded to the buffer's dtype as ``torch.tensor(value, dtype=...)`` rounds."""

    def __init__(self, n: int, dtype: torch.dtype) -> None:
        buffer = torch.empty(n, dtype=dtype)
        self.slots, self.array = buffer.unbind(0), buffer.numpy()

    def put(self, i: int, value: Tensor | float) -> Tensor:
        if isinstance(value, Tensor):  # a rule's own tensor (e.g. FixedWidth's k)
            return value
        self.array[i] = value
        return self.slots[i]


def fuse_neurons(model: nn.Module, backend: str = "fused") -> list[str]:
    """Set every LIFNode of ``model`` to ``backend`` (:data:`BACKENDS`); returns the names of the
    layers that stay on the reference because :func:`can_fuse` rejects them (e.g. sigmoid
    surrogates)."""
    from mpdsnn.neuron.lif import spiking_layers  # lif.py imports this module

    if backend not in BACKENDS:
        raise UserError(f"unknown neuron backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if backend == "compiled":
        compiled.use_project_cache()  # compiled code goes to the project's build/inductor
    skipped = []
    for name, node in spiking_layers(model):
        node.backend = backend
        if backend != "reference" and not can_fuse(node):
            skipped.append(name)
    return skipped


def _forward(x: Tensor, tau: Tensor | float, in_scale: Tensor | float,
             step: StepFn) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
    """The recurrence without autograd: spikes, pre-fire potentials ``U`` (both ``[T, N, ...]``)
    and per-step threshold and width (0-d). Same operations as the reference, so same bits.

    Masks are written by comparisons straight into float tensors (``out=``): on CPU that is as
    fast as a multiply, while making a bool tensor and converting it costs about four.
    """
    with torch.no_grad():
        u_all, spikes = torch.empty_like(x), torch.empty_like(x)
        keep = torch.empty_like(x[0])  # 1 - S(t-1)
        fires, widths = [], []
        for t in range(x.shape[0]):
            u = u_all[t]
            drive = x[t] if _is_one(in_scale) else in_scale * x[t]
            if t == 0:
                u.copy_(drive)
            else:  # tau * U(t-1) * (1 - S(t-1)) + s_in * I(t); (1 - S) is 0 or 1, so exact
                torch.mul(u_all[t - 1], tau, out=u).mul_(keep).add_(drive)
            fire, width = step(u, t, None)
            torch.ge(u, fire, out=spikes[t])  # == (U - theta >= 0): exact for finite floats
            torch.lt(u, fire, out=keep)
            fires.append(fire)
            widths.append(width)
    return spikes, u_all, fires, widths


class FusedLIF(torch.autograd.Function):
    """Forward: :func:`_forward`. Backward: BPTT over the saved ``U`` (see the module docstring)."""

    @staticmethod
    def forward(ctx, x: Tensor, tau: Tensor | float, in_scale: Tensor | float,  # type: ignore[override]
                fire_in: Tensor | None, step: StepFn) -> Tensor:
        spikes, u_all, fires, widths = _forward(x, tau, in_scale, step)
        ctx.fires, ctx.widths = fires, widths
        ctx.tau, ctx.in_scale = tau, in_scale
        needs_x = isinstance(in_scale, Tensor) and ctx.needs_input_grad[2]
        ctx.save_for_backward(u_all, x if needs_x else None)
        return spikes

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        u_all, x = ctx.saved_tensors
        tau, in_scale = ctx.tau, ctx.in_scale
        want_x, want_tau, want_scale, want_fire = ctx.needs_input_grad[:4]
        grad_u_all = torch.empty_like(u_all, dtype=grad_s.dtype)  # dL/dU(t), scaled at the end
        # Per-step scratch, allocated once: fresh memory costs page faults on every first touch.
        v, keep = torch.empty_like(u_all[0]), torch.empty_like(grad_u_all[0])
        decayed, grad_spike = torch.empty_like(keep), torch.empty_like(keep)
        kept_carry = torch.empty_like(keep) if want_tau else None
        acc: dict[str, list[Tensor]] = {"tau": [], "scale": [], "fire": []}
        for t in range(u_all.shape[0] - 1, -1, -1):
            u, fire, width = u_all[t], ctx.fires[t], ctx.widths[t]
            grad_u = grad_u_all[t]
            torch.le(torch.sub(u, fire, out=v).abs_(), width / 2, out=grad_u)  # surrogate window
            if t == u_all.shape[0] - 1:
                grad_u.mul_(grad_s[t])
            else:  # U(t+1) = tau * U(t) * (1 - S(t)) + s_in * I(t); carry = dL/dU(t+1)
                carry = grad_u_all[t + 1]
                torch.lt(u, fire, out=keep)  # 1 - S(t)
                torch.mul(carry, tau, out=decayed)
                grad_u.mul_(torch.addcmul(grad_s[t], decayed, u, value=-1, out=grad_spike))  # reset
                if want_tau:
                    torch.mul(carry, keep, out=kept_carry)
                    acc["tau"].append(_dot(kept_carry, u))
            grad_u.div_(width.to(grad_s.dtype))  # rectangular surrogate: 1[|v| <= k/2] / k
            if want_fire:
                acc["fire"].append(-grad_u.sum())
            if t < u_all.shape[0] - 1:
                grad_u.addcmul_(decayed, keep)
            if want_scale:
                acc["scale"].append(_dot(grad_u, x[t]))
        grad_x = grad_u_all if _is_one(in_scale) else grad_u_all.mul_(in_scale)
        return (grad_x if want_x else None, _total(acc["tau"], tau, want_tau),
                _total(acc["scale"], in_scale, want_scale), _total(acc["fire"], ctx.fires[0], want_fire),
                None)


def _dense_1d(t: Tensor) -> Tensor | None:
    """A 1-D view of ``t`` in its memory order when its elements fill their span of storage
    without gaps (contiguous or channels-last slices), else None."""
    if t.is_contiguous():
        return t.view(-1)
    dims = sorted((s, n) for s, n in zip(t.stride(), t.shape) if n > 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return None
        expected *= size
    return t.as_strided((t.numel(),), (1,))


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """sum(a * b) without copying: ``flatten()`` of a channels-last slice is a copy (40 a step
    on ResNet-19); two dense tensors of the same strides pair element for element in memory."""
    if a.stride() == b.stride():
        flat_a, flat_b = _dense_1d(a), _dense_1d(b)
        if flat_a is not None and flat_b is not None:
            return torch.vdot(flat_a, flat_b)
    return torch.vdot(a.reshape(-1), b.reshape(-1))


def _is_one(value: Tensor | float) -> bool:
    return isinstance(value, float) and value == 1.0


def _total(parts: list[Tensor], like: Tensor | float, wanted: bool) -> Tensor | None:
    """A parameter's gradient summed over steps; zero (not None, as in the reference) when no
    step contributed, e.g. ``tau`` at T = 1."""
    if not wanted or not isinstance(like, Tensor):
        return None
    if not parts:
        return torch.zeros_like(like)
    return torch.stack(parts).sum().to(like.dtype).reshape(like.shape)

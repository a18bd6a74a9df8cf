"""Threshold policies: what potential a neuron fires at, per timestep.

A policy sees the pre-fire potential ``U(t)`` of the whole layer and returns a
:class:`ThresholdStep`: the threshold to fire at and the MPD statistics it computed, which width
rules (TGO) and probes read. Thresholds that change are buffers or parameters, never floats, so
they follow ``.to(device)`` and live in the ``state_dict``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass
class ThresholdStep:
    """What a policy decided at one timestep.

    ``fire``: threshold the neuron fires at (0-d). ``stat``: the MPD threshold
    ``fc * (mean + std)`` (or its estimate) when the policy computes one. ``std``: the layer's
    potential std when computed from data (the official code's TGO rule reads it). Python floats
    where :class:`HostAdaptiveThreshold` decided.
    """

    fire: Tensor | float
    stat: Tensor | float | None = None
    std: Tensor | float | None = None


class FixedThreshold(nn.Module):
    def __init__(self, vth: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("vth", torch.tensor(float(vth)))

    def forward(self, u: Tensor, t: int, tau: Tensor | float) -> ThresholdStep:
        return ThresholdStep(fire=self.vth)


# Above this ratio of the mean square to the variance (1 + mean^2 / var) the one-pass variance
# loses more than ~1e-6 of relative precision to cancellation; the centred pass takes over.
_MAX_CANCELLATION = 4.0


def mpd_statistics(u: Tensor, sync: bool = False) -> tuple[Tensor, Tensor]:
    """Mean and unbiased std of all elements of ``u``, detached.

    ``sync=True`` under torch.distributed all-reduces (count, sum, sum of squares) so every rank
    gets the statistics of the global batch, exactly what one process would compute on it.
    """
    u = u.detach()
    if sync and dist.is_available() and dist.is_initialized():
        return _global_statistics(u)
    if u.numel() < 2:
        return u.mean(), torch.zeros((), dtype=u.dtype, device=u.device)
    x = u.reshape(-1) if u.dtype in (torch.float32, torch.float64) else u.float().reshape(-1)
    if x.device.type != "cpu" or torch.compiler.is_compiling():
        # One Welford reduction on CUDA and under inductor: a single pass, no host sync.
        std, mean = torch.std_mean(x)
        return mean.to(u.dtype), std.to(u.dtype)
    mean, var = _one_pass_moments(x)
    return mean.to(u.dtype), var.sqrt().to(u.dtype)


def _one_pass_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased variance of a flat CPU tensor from its sum and sum of squares.

    Two read-only vectorised reductions (``sum``, BLAS ``dot``), about 0.3 ms per million values
    against 1.3 ms for ``mean()`` + ``std()`` and 10 ms for ``torch.std_mean`` (a scalar Welford
    loop on CPU; docs/bench.md).
    """
    total, squares = x.sum(), torch.dot(x, x)
    mean = total / x.numel()
    var = variance_from_sums(total.item(), squares.item(), x, mean)
    return mean, torch.tensor(var, dtype=x.dtype)


def variance_from_sums(total: float, squares: float, x: Tensor, mean: Tensor | float) -> float:
    """Unbiased variance of the elements of ``x`` (``n >= 2``, mean ``mean``) from their sum and
    sum of squares.

    ``var = (S2 - S1^2 / n) / (n - 1)`` in Python floats: IEEE doubles, the same bits as 0-d
    float64 tensors without the ~2 us each tensor op costs (a DS-ATGO layer runs this once per
    timestep). It cancels when the mean dominates the spread; then (``S2 > 4 n var``, rare for
    membrane potentials) the sum of squares is taken again around the mean.
    """
    n = x.numel()
    var = max((squares - total * total / n) / (n - 1), 0.0)
    if squares > _MAX_CANCELLATION * n * var:
        centred = (x - mean).reshape(-1)
        var = torch.dot(centred, centred).item() / (n - 1)
    return var


def _global_statistics(u: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased std of ``u`` over all ranks (``u`` detached).

    Each rank's (count, mean, sum of squared deviations) from one local pass, gathered by one
    collective and combined exactly (Chan et al.'s pairwise update) in float64. Nothing waits for
    the GPU (no host-to-device copy, no ``.item()``) and U is never copied to float64.
    """
    var, mean = (s.double() for s in torch.var_mean(u.float(), correction=0))
    local = torch.stack([mean.new_full((), u.numel()), mean, var * u.numel()])
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    n, means, m2 = torch.stack(parts).unbind(1)
    total = n.sum()
    mean_all = (n * means).sum() / total
    m2_all = (m2 + n * (means - mean_all) ** 2).sum()
    std = (m2_all / (total - 1).clamp_min(1)).sqrt()
    return mean_all.to(u.dtype), std.to(u.dtype)


class AdaptiveThreshold(nn.Module):
    """DS-ATGO's forward stage (AT): ``theta_l(t) = fc * (mean(U(t)) + std(U(t)))``, detached.

    Training uses the current batch and updates ``running[t] = (1-m) running[t] + m theta``.
    Eval uses ``running`` (``eval_source="running"``) or the batch's own statistics
    (``"batch"``, the paper's "no moving average" ablation).

    ``fire_adaptive=False`` gives the TGO-only ablation: statistics are computed for the width
    rule while the neuron keeps firing at ``vth``.

    Guard (SPEC leaves it open): ``theta`` is clamped to at least ``min_theta``. A layer whose
    potentials are all non-positive would otherwise get ``theta <= 0`` and fire everywhere, which
    feeds the next layer a constant and collapses training.
    """

    def __init__(
        self,
        T: int,
        fc: float = 1.0,
        momentum: float = 0.1,
        vth: float = 1.0,
        min_theta: float = 0.05,
        fire_adaptive: bool = True,
        eval_source: Literal["running", "batch"] = "running",
    ) -> None:
        super().__init__()
        if T <= 0:
            raise ValueError(f"T must be positive, got {T}")
        if eval_source not in ("running", "batch"):
            raise ValueError(f"eval_source must be 'running' or 'batch', got {eval_source!r}")
        if min_theta <= 0:
            raise ValueError(f"min_theta must be positive, got {min_theta}")
        self.fc, self.momentum, self.min_theta = fc, momentum, min_theta
        self.fire_adaptive, self.eval_source = fire_adaptive, eval_source
        self.register_buffer("vth", torch.tensor(float(vth)))
        self.register_buffer("running", torch.full((T,), float(vth)))
        self.sync = False  # set by the engine under DDP: statistics over the global batch

    def forward(self, u: Tensor, t: int, tau: Tensor | float) -> ThresholdStep:
        self._check_timestep(t)
        # Sync only in training: in eval every rank sees the whole batch, and summing identical
        # copies would cost a collective and count each sample once per rank.
        mean, std = mpd_statistics(u, self.sync and self.training)
        if self.training or self.eval_source == "batch":
            stat = self.statistic(mean, std)
            if self.training:
                with torch.no_grad():
                    self.running[t].lerp_(stat.to(self.running.dtype), self.momentum)
        else:
            stat = self.running[t].to(u.dtype)
        return ThresholdStep(fire=stat if self.fire_adaptive else self.vth, stat=stat, std=std)

    def statistic(self, mean: Tensor | float, std: Tensor | float) -> Tensor | float:
        """``fc * (mean + std)`` floored at ``min_theta`` (NaN stays NaN), on tensors or on
        Python floats (:class:`HostAdaptiveThreshold`)."""
        stat = self.fc * (mean + std)
        if isinstance(stat, Tensor):
            return stat.clamp_min(self.min_theta)
        return max(stat, self.min_theta)  # max(nan, m) is nan, as clamp_min

    def _check_timestep(self, t: int) -> None:
        if t >= self.running.numel():
            raise ValueError(
                f"this adaptive threshold was built for T={self.running.numel()} timesteps but "
                f"received timestep {t + 1}; build the model with the T you train with"
            )

    def extra_repr(self) -> str:
        return (f"T={self.running.numel()}, fc={self.fc}, momentum={self.momentum}, "
                f"fire_adaptive={self.fire_adaptive}, eval_source={self.eval_source!r}")


class HostAdaptiveThreshold:
    """One forward call of an :class:`AdaptiveThreshold` decided in Python floats, from each
    timestep's sum and sum of squares of ``U`` (the compiled backend's charge kernel returns them).

    Why: on CPU each timestep's Python work runs right after a kernel that streamed the layer
    through the caches, where the first call of each distinct tensor operation costs 20-100 us
    (docs/bench.md); AT's ten or so 0-d tensor operations per step cost DS-ATGO's neuron a fifth
    of the fixed LIF's time, the same arithmetic on floats a few microseconds. The formula is the
    policy's own (:meth:`AdaptiveThreshold.statistic`), in float64: a float32 layer's threshold
    is rounded once where the reference rounds each operation, so it may differ in the last bit.
    The running thresholds are updated once, by :meth:`finish`, after the last timestep.
    """

    def __init__(self, policy: AdaptiveThreshold) -> None:
        self.policy = policy
        self.from_batch = policy.training or policy.eval_source == "batch"
        self.running = None if self.from_batch else policy.running.tolist()
        self.vth = None if policy.fire_adaptive else policy.vth.item()  # fires at Vth only then
        # Each trained step's statistic, stored through numpy: finish() is then one lerp_
        # (a tensor built from a list of floats costs a tensor creation, docs/bench.md).
        self.stats = torch.empty_like(policy.running) if policy.training else None
        self._written = None if self.stats is None else self.stats.numpy()
        self.trained = 0  # timesteps whose statistic awaits the running update

    @staticmethod
    def applies(policy: nn.Module, u: Tensor) -> bool:
        """True for an AT policy on CPU potentials of at least two elements per step whose
        statistics need no collective (DDP's synchronised statistics take the tensor path)."""
        if type(policy) is not AdaptiveThreshold or u.device.type != "cpu" or u.numel() < 2 * len(u):
            return False
        return not (policy.sync and policy.training and dist.is_available()
                    and dist.is_initialized())

    def __call__(self, t: int, total: float, squares: float, u: Tensor) -> ThresholdStep:
        """Step ``t``'s decision from ``sum(U(t))``, ``sum(U(t)^2)`` and ``U(t)`` (flat), which
        is read again only when the mean dominates the spread (see :func:`variance_from_sums`)."""
        self.policy._check_timestep(t)
        mean = total / u.numel()
        std = math.sqrt(variance_from_sums(total, squares, u, mean))
        stat = self.policy.statistic(mean, std) if self.from_batch else self.running[t]
        if self._written is not None:
            self._written[t], self.trained = stat, t + 1
        return ThresholdStep(fire=stat if self.vth is None else self.vth, stat=stat, std=std)

    def finish(self) -> None:
        """``running[t] = (1 - m) running[t] + m theta(t)`` for the timesteps trained."""
        if self.stats is None or not self.trained:
            return
        running, stats = self.policy.running, self.stats
        if self.trained < len(running):
            running, stats = running[:self.trained], stats[:self.trained]
        with torch.no_grad():
            running.lerp_(stats, self.policy.momentum)
        self.trained = 0


class EstimatedThreshold(nn.Module):
    """The "estimated" AT ablation: ``theta = fc * sqrt(1 + tau^2) * Vth``, no data needed."""

    def __init__(self, fc: float = 1.0, vth: float = 1.0, min_theta: float = 0.05,
                 fire_adaptive: bool = True) -> None:
        super().__init__()
        self.fc, self.min_theta, self.fire_adaptive = fc, min_theta, fire_adaptive
        self.register_buffer("vth", torch.tensor(float(vth)))

    def forward(self, u: Tensor, t: int, tau: Tensor | float) -> ThresholdStep:
        tau_t = torch.as_tensor(tau, dtype=u.dtype, device=u.device).detach()
        stat = (self.fc * torch.sqrt(1 + tau_t**2) * self.vth).clamp_min(self.min_theta)
        return ThresholdStep(fire=stat if self.fire_adaptive else self.vth, stat=stat)


class LearnableThreshold(nn.Module):
    """LTMD-style threshold ``Vth = tanh(w)`` per layer, trained through the surrogate.

    The gradient reaching ``w`` is minus the surrogate gradient of U (the spike is written on
    ``U - Vth``). Guard: the forward value is floored at ``min_theta`` (straight-through, so the
    gradient is not cut and the threshold can recover).
    """

    def __init__(self, init_vth: float = 0.5, min_theta: float = 0.05) -> None:
        super().__init__()
        if not 0.0 < init_vth < 1.0:
            raise ValueError(f"tanh-parametrised threshold must start in (0, 1), got {init_vth}")
        self.min_theta = min_theta
        self.w = nn.Parameter(torch.tensor(math.atanh(init_vth)))

    def forward(self, u: Tensor, t: int, tau: Tensor | float) -> ThresholdStep:
        v = torch.tanh(self.w)
        # Straight-through floor: the forward never goes below min_theta, but the gradient still
        # reaches w, so a threshold pushed under the floor can climb back.
        return ThresholdStep(fire=v + (v.clamp_min(self.min_theta) - v).detach())

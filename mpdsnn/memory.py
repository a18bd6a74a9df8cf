"""Will this run fit in memory? An estimate before training, so that a run too big for the
machine is refused in seconds with the figure and the fix, instead of swapping for minutes and
being killed (``--T 1000`` on digits grew to 20 GB RSS with no output).

A spiking network keeps every layer's activations for every timestep until the backward pass,
so memory grows as activations x T x batch. The estimate measures instead of guessing: a
throw-away copy of the model runs forward on 2 samples at 1 and 2 timesteps while
``torch.autograd.graph.saved_tensors_hooks`` adds up the bytes autograd keeps for backward
(parameters excluded). That gives bytes per sample and timestep plus bytes per sample, which
scale to the run's T and batch, times ``OVERHEAD`` for what backward and the allocator add on
top (measured: digits, T = 200, batch 64 peaks at 1.7x the saved bytes).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from mpdsnn.errors import UserError

OVERHEAD = 2.0  # peak / saved activations: gradients of activations, allocator slack
_PROBE_BATCH = 2  # BatchNorm refuses one value per channel in training mode
_GiB = 2**30
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class Estimate:
    """Bytes one sample costs: ``per_timestep`` for each timestep plus ``fixed`` once."""

    per_timestep: float
    fixed: float

    def total(self, T: int, batch_size: int) -> float:
        return OVERHEAD * batch_size * (self.fixed + self.per_timestep * T)


def available_bytes(device: torch.device) -> int:
    """What the device can still hand out: free GPU memory, or the OS's MemAvailable. On Linux
    it is read from /proc/meminfo, as psutil does, so that training needs no psutil (offline GPU
    images lack it; only mlflow and dvc bring it); psutil answers elsewhere."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if MEMINFO.is_file():
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the kernel writes kB
    import psutil

    return int(psutil.virtual_memory().available)


def _time_first(sample: Tensor, steps: int) -> Tensor:
    """A probe input ``[steps, 2, ...]``: images are repeated over time, frames cut to ``steps``."""
    batch = sample.unsqueeze(0).expand(_PROBE_BATCH, *sample.shape)
    if sample.dim() == 3:  # [C, H, W] image, direct encoding
        return batch.unsqueeze(0).expand(steps, *batch.shape).contiguous()
    return batch[:, :steps].transpose(0, 1).contiguous()  # [N, T, ...] event frames


def _saved_bytes(model: nn.Module, x: Tensor) -> int:
    """Bytes autograd saves for backward in one forward pass (each storage counted once)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(storages.values())


def estimate(model: nn.Module, sample: Tensor, T: int, device: torch.device) -> Estimate:
    """Measure on a copy of ``model``, so the real one's BatchNorm and threshold statistics and
    the RNG streams stay untouched (same seed, same numbers)."""
    probe = copy.deepcopy(model).train()
    sample = sample.to(device)
    steps = (1, 2) if T >= 2 else (1,)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            sizes = [_saved_bytes(probe, _time_first(sample, s)) / _PROBE_BATCH for s in steps]
        except (RuntimeError, ValueError) as exc:  # the first forward pass of this model at all
            problem = " ".join(str(exc).split())
            raise UserError(f"the model cannot run on inputs of shape {tuple(sample.shape)} "
                            f"({problem}); choose a model or model_options (input_size, width) "
                            "that fit the dataset, see `mpdsnn list`") from None
    del probe
    if len(sizes) == 1:
        return Estimate(per_timestep=sizes[0], fixed=0.0)
    per_timestep = max(sizes[1] - sizes[0], 0.0)
    return Estimate(per_timestep=per_timestep, fixed=max(sizes[0] - per_timestep, 0.0))


def check_memory(model: nn.Module, sample: Tensor, T: int, batch_size: int,
                 device: torch.device) -> int:
    """Raise :class:`UserError` when ``model`` cannot run on ``sample`` at all, or when training
    it at ``T`` timesteps on batches of ``batch_size`` (the largest batch that runs with
    gradients or probes in one process) needs more memory than ``device`` has free; else return
    the estimate in bytes.

    ``sample`` is one unbatched input as the dataset gives it (``[C, H, W]`` or frames
    ``[T, C, H, W]``). Call it inside the run's autocast context: bf16 activations count half.
    """
    per_sample = estimate(model, sample, T, device)
    need = per_sample.total(T, batch_size)
    free = available_bytes(device)
    if need <= free:
        return int(need)
    fits_batch = int(free // per_sample.total(T, 1))
    fits_T = int((free / (OVERHEAD * batch_size) - per_sample.fixed) // max(per_sample.per_timestep, 1.0))
    fixes = []
    if fits_batch >= 1:
        fixes.append(f"a batch of at most {fits_batch} (batch_size, probe_samples)")
    if fits_T >= 1:
        fixes.append(f"T of at most {fits_T}")
    fixes.append("a machine with more memory")
    raise UserError(
        f"this run needs about {need / _GiB:.1f} GiB of {device.type} memory (activations: "
        f"{per_sample.per_timestep * OVERHEAD / 2**10:.0f} KiB per sample and timestep x T={T} x "
        f"batch {batch_size}) but only {free / _GiB:.1f} GiB is free; use "
        + " or ".join(fixes))

"""Multi-process training under ``torchrun``: who this process is, the model wrapping, and the
few things every process must agree on.

Rules the engine follows so that N processes behave like one process on the global batch:

* every rank calls the same collectives in the same order (a rank that skips one hangs the rest);
* only rank 0 writes files and talks to MLflow;
* a :class:`UserError` on rank 0 (a finished run folder, a missing dataset) reaches every rank
  (:func:`main_first`), so all exit with the same message instead of waiting in a collective;
* with ``sync_thresholds`` the AT statistics *and* the BatchNorm statistics are those of the
  global batch (:func:`wrap_model`): BN feeds every spiking layer, so syncing the threshold
  alone makes only the first spiking layer match a single process.

Usage::

    d = Distributed.from_env()                     # RANK / WORLD_SIZE / LOCAL_RANK from torchrun
    model = wrap_model(model, device, sync_thresholds=True)   # DDP + synced AT and BN
    batches = GlobalBatchSampler(len(data), batch_size, seed, d.rank, d.world_size)
    loss = loss * batches.loss_scale(i, local_n)   # before backward: DDP averages over ranks

Any world size: each global batch is split as evenly as it goes (sizes differ by at most one)
and the loss is rescaled so that DDP's mean over ranks is the mean over the global batch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Sampler

from mpdsnn.errors import UserError
from mpdsnn.neuron import AdaptiveThreshold

R = TypeVar("R")
log = logging.getLogger(__name__)

# What `torch.distributed`'s env:// rendezvous reads; torchrun sets them all.
RENDEZVOUS_VARS = ("RANK", "MASTER_ADDR", "MASTER_PORT")
# How long the processes of a job may take to find each other (PyTorch waits 30 min, silently).
JOIN_TIMEOUT_S = float(os.environ.get("MPDSNN_JOIN_TIMEOUT_S", "60"))


def _env_int(name: str, default: str) -> int:
    text = os.environ.get(name, default)
    try:
        return int(text)
    except ValueError:
        raise UserError(f"environment variable {name}={text!r} is not an integer; fix or unset it") from None


@dataclass
class Distributed:
    """This process's place in the job; ``world_size == 1`` is an ordinary single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Distributed":
        """Read torchrun's variables. WORLD_SIZE > 1 without the others (a leftover ``export``)
        is refused: it would fail with a KeyError or wait 30 minutes for partners."""
        world = _env_int("WORLD_SIZE", "1")
        if world <= 1:
            return cls()
        # A caller that already joined a process group (its own init_method) needs no rendezvous.
        missing = [] if dist.is_available() and dist.is_initialized() else \
            [name for name in RENDEZVOUS_VARS if not os.environ.get(name)]
        if missing:
            raise UserError(f"WORLD_SIZE={world} is set but {', '.join(missing)} "
                            f"{'is' if len(missing) == 1 else 'are'} not: start the processes with "
                            "torchrun, or unset WORLD_SIZE for a single-process run")
        rank = _env_int("RANK", "0")
        if not 0 <= rank < world:
            raise UserError(f"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world}); start the "
                            "processes with torchrun, or unset WORLD_SIZE and RANK")
        return cls(rank=rank, world_size=world, local_rank=_env_int("LOCAL_RANK", "0"))


def init_process_group(backend: str, join_timeout_s: float | None = None) -> None:
    """``dist.init_process_group(backend)`` for ``from_env``'s job, except that the processes
    must find each other within ``join_timeout_s`` (default JOIN_TIMEOUT_S, env
    MPDSNN_JOIN_TIMEOUT_S) or every one of them stops with a :class:`UserError`, instead of
    PyTorch's silent 30-minute wait. Collectives keep PyTorch's own timeout (rank 0 may spend
    minutes downloading while the others wait). Under torchrun the agents have already met:
    its store is used as PyTorch would."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        dist.init_process_group(backend)
        return
    me = Distributed.from_env()
    host, port = os.environ["MASTER_ADDR"], _env_int("MASTER_PORT", "0")
    timeout = JOIN_TIMEOUT_S if join_timeout_s is None else join_timeout_s
    log.info("rank %d of %d: waiting up to %g s for the others at %s:%d",
             me.rank, me.world_size, timeout, host, port)
    try:
        store = dist.TCPStore(host, port, me.world_size, is_master=me.rank == 0,
                              timeout=timedelta(seconds=timeout), wait_for_workers=True)
    except (RuntimeError, OSError) as exc:  # DistStoreError / DistNetworkError are RuntimeErrors
        raise UserError(
            f"rank {me.rank}: the {me.world_size} processes did not meet at {host}:{port} within "
            f"{timeout:g} s ({type(exc).__name__}); start all of them (torchrun does), raise "
            "MPDSNN_JOIN_TIMEOUT_S, or unset WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT for "
            "a single-process run") from None
    store.set_timeout(timedelta(minutes=30))  # PyTorch's default for everything after the meeting
    dist.init_process_group(backend, store=store, rank=me.rank, world_size=me.world_size)


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def main_first(fn: Callable[[], R], others: bool = True) -> R | None:
    """Run ``fn`` on rank 0, then (``others=True``) on the other ranks.

    Downloads and caches are then written by one process, and a :class:`UserError` raised on
    rank 0 is re-raised on every rank with the same message. Single process: just ``fn()``.
    """
    if not active():
        return fn()
    result: R | None = None
    error: list[str | None] = [None]
    if dist.get_rank() == 0:
        try:
            result = fn()
        except UserError as exc:
            error[0] = str(exc)
    dist.broadcast_object_list(error, src=0)
    if error[0] is not None:
        raise UserError(error[0])
    if dist.get_rank() != 0 and others:
        result = fn()
    return result


class GlobalBatchSampler(Sampler[list[int]]):
    """The batches one process would train on, each split across the ranks.

    Every epoch draws one permutation (``torch.randperm`` seeded with ``seed * 100_003 + epoch``:
    every rank draws the same), cuts it into global batches of ``batch_size`` and gives rank r
    the slice ``[m r / W, m (r + 1) / W)`` of each batch of m samples. So any world size W
    trains on the global batches of a single process (batch 100 on 8 GPUs: 13 or 12 a rank),
    the per-rank sizes differ by at most one, and every rank runs the same number of steps.
    Rule for the last, partial batch: it is dropped when it holds fewer samples than there are
    ranks (at most W - 1 samples an epoch), so no rank ever gets an empty batch.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        if batch_size < world_size:
            raise UserError(f"batch_size {batch_size} is the global batch and must be at least the "
                            f"number of processes ({world_size}); raise it or use fewer processes")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_sizes(self) -> list[int]:
        """The number of samples in each global batch of an epoch (the same on every rank)."""
        full, rest = divmod(self.size, self.batch_size)
        return [self.batch_size] * full + ([rest] if rest >= self.world_size else [])

    def loss_scale(self, step: int, local_n: int) -> float:
        """Factor for this rank's mean loss at ``step`` so that DDP's average of the gradients
        over ranks is the gradient of the mean loss over the global batch."""
        return local_n * self.world_size / self.global_sizes()[step]

    def __len__(self) -> int:
        return len(self.global_sizes())

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        r, w = self.rank, self.world_size
        for start, m in zip(range(0, self.size, self.batch_size), self.global_sizes()):
            yield order[start + m * r // w:start + m * (r + 1) // w]


def check_same_everywhere(name: str, value: int, device: torch.device, fix: str) -> None:
    """Raise the same :class:`UserError` on every rank unless all ranks hold the same ``value``."""
    if not active():
        return
    t = torch.tensor([value, -value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    low, high = -int(t[1]), int(t[0])
    if low != high:
        raise UserError(f"the processes disagree on {name} (from {low} to {high}); {fix}")


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the gradients over ranks (the gradient of the global
    loss, which every rank's statistics share)."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Any) -> Tensor:
        ctx.group = group
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch for CPU processes (gloo).

    PyTorch's SyncBatchNorm is GPU-only: its forward refuses CPU tensors ("expected input tensor
    to be on GPU") and DDP refuses to wrap it on CPU. This computes the global per-channel sum
    and sum of squares (float64) with one autograd-aware all-reduce and normalises with them,
    so the output, the running statistics and the gradients are those of BN over the global
    batch. Outside training or a process group it is plain BN. Input ``[N, C, ...]``.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input [N, C, ...], got {x.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and active()):
            return super().forward(x)
        self._check_input_dim(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        local = torch.cat([x.sum(dims, dtype=torch.float64), (x * x).sum(dims, dtype=torch.float64),
                           torch.full((1,), x.numel() // c, dtype=torch.float64)])
        total = _AllReduceSum.apply(local, dist.group.WORLD)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (self.momentum if self.momentum is not None
                          else 1.0 / float(self.num_batches_tracked))
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
                self.running_var.lerp_((var * n / (n - 1)).to(self.running_var.dtype), factor)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """Replace every BatchNorm{1,2,3}d in ``module`` (nested ones too) by a GlobalBatchNorm
        sharing its parameters and buffers; returns the converted module."""
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
                module, (cls, nn.SyncBatchNorm)):
            new = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats)
            if module.affine:
                new.weight, new.bias = module.weight, module.bias
            if module.track_running_stats:
                new.running_mean, new.running_var = module.running_mean, module.running_var
                new.num_batches_tracked = module.num_batches_tracked
            new.train(module.training)
            return new
        for name, child in module.named_children():
            module.add_module(name, cls.convert(child))
        return module


def wrap_model(model: nn.Module, device: torch.device, sync_thresholds: bool) -> nn.Module:
    """Wrap ``model`` (already on ``device``) in DistributedDataParallel.

    ``sync_thresholds=True``: every AdaptiveThreshold computes its MPD statistics over the
    global batch and every BatchNorm computes its statistics over the global batch
    (:class:`torch.nn.SyncBatchNorm` on GPUs, :class:`GlobalBatchNorm` on CPU), so each rank's
    thresholds equal those one process would compute on the whole batch. ``False``: per-rank
    statistics (no extra communication; the thresholds then depend on the number of processes).
    """
    for m in model.modules():
        if isinstance(m, AdaptiveThreshold):
            m.sync = sync_thresholds
    if sync_thresholds:
        model = (GlobalBatchNorm.convert(model) if device.type == "cpu"
                 else nn.SyncBatchNorm.convert_sync_batchnorm(model))
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)

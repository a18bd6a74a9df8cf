"""Model-level candidates: one SGD training step (forward, loss, backward, update).

The same network, initialised once per method, is copied for each backend, so the reference,
fused and compiled neurons start from identical parameters and do identical work.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from mpdsnn.methods import Method, create_method
from mpdsnn.models import create_model
from mpdsnn.neuron.fused import fuse_neurons


@dataclass(frozen=True)
class ModelWorkload:
    """A network and batch: input ``[T, batch, in_channels, size, size]``."""

    model: str
    T: int
    batch: int
    size: int
    in_channels: int
    options: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 10

    @property
    def label(self) -> str:
        opts = "".join(f" {k}={v}" for k, v in self.options.items())
        return f"{self.model}{opts} b{self.batch} {self.size}x{self.size}"


@dataclass
class TrainStep:
    """``step()`` runs one training step; ``forward_loss()`` only the forward and the loss
    (for counting saved activations); ``model`` owns the parameters to exclude from that count."""

    name: str
    method: str
    step: Callable[[], None]
    forward_loss: Callable[[], Tensor]
    model: nn.Module
    setup_s: float = 0.0  # the first step (for compiled: compilation or loading from the cache)


AMP = False
"""Model rows train as the paper pipelines do: fp32 (``amp: false``), cuDNN autotuning on
(``deterministic: false``); set True to time the bf16 fast profile."""


def train_steps(work: ModelWorkload, method_name: str, device: torch.device,
                backends: tuple[str, ...] = ("reference", "fused", "compiled")) -> list[TrainStep]:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the pipelines' deterministic: false
    method = create_method(method_name)
    base = create_model(work.model, method, T=work.T, num_classes=work.num_classes,
                        in_channels=work.in_channels, **work.options).to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(work.T, work.batch, work.in_channels, work.size, work.size, generator=gen)
    y = torch.randint(0, work.num_classes, (work.batch,), generator=gen)
    x, y = x.to(device), y.to(device)
    steps = []
    for backend in backends:
        model = copy.deepcopy(base).train()
        fuse_neurons(model, backend)
        steps.append(_train_step(method_name, backend, model, method, x, y))
    return steps


def _train_step(method_name: str, backend: str, model: nn.Module, method: Method, x: Tensor,
                y: Tensor) -> TrainStep:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def forward_loss() -> Tensor:
        # as training runs it (mpdsnn.train): bf16 autocast on CUDA when asked, the neuron in fp32
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16,
                            enabled=AMP and x.device.type == "cuda"):
            return method.loss(model(x), y)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        forward_loss().backward()
        opt.step()

    setup_s = 0.0
    if backend == "compiled":
        t0 = time.perf_counter()
        step()
        setup_s = time.perf_counter() - t0
    return TrainStep(f"{method_name} ({backend})", method_name, step, forward_loss, model, setup_s)

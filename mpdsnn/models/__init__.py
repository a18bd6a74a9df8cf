"""Model registry: ``create_model(name, method=..., T=..., num_classes=..., in_channels=...)``.

Every model takes ``[T, N, C, H, W]`` and returns per-timestep logits ``[T, N, classes]``, and
knows the method only through ``method.neuron`` and ``method.norm_scale``.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from mpdsnn.errors import UserError, did_you_mean, unknown_name
from mpdsnn.neuron.factory import NeuronFactory
from mpdsnn.models.layers import ModelBuilder
from mpdsnn.models.resnet import ResNet18, ResNet19
from mpdsnn.models.resnet_std import ResNet19Std
from mpdsnn.models.small import SmallConvNet
from mpdsnn.models.vgg import VGGSNN

_MODELS: dict[str, ModelBuilder] = {
    "resnet19": ResNet19,
    "resnet19-std": ResNet19Std,
    "resnet18": ResNet18,
    "vggsnn": VGGSNN,
    "convnet": SmallConvNet,
}


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, method: NeuronFactory, T: int, num_classes: int, in_channels: int,
                 **options: Any) -> nn.Module:
    if name not in _MODELS:
        raise unknown_name("model", name, list(_MODELS))
    if T <= 0:
        raise UserError(f"T must be a positive number of timesteps, got {T}")
    builder = _MODELS[name]
    try:
        inspect.signature(builder).bind(method, T, num_classes=num_classes, in_channels=in_channels, **options)
    except TypeError as exc:
        valid = [p for p in inspect.signature(builder).parameters if p not in ("method", "T")]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UserError(f"unknown option(s) {', '.join(unknown)} for model {name!r}; "
                            f"{did_you_mean(unknown, valid)}valid options: {', '.join(valid)}") from None
        raise UserError(f"bad option for model {name!r}: {exc}") from None
    try:
        return builder(method, T, num_classes=num_classes, in_channels=in_channels, **options)
    except ValueError as exc:
        raise UserError(f"bad option for model {name!r}: {exc}") from None


__all__ = ["create_model", "list_models", "ResNet18", "ResNet19", "ResNet19Std", "SmallConvNet", "VGGSNN"]

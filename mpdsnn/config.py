"""The training configuration: one typed record, every default with its reason.

Precedence: defaults < YAML file < command-line flags. Unknown keys and ill-typed values are
:class:`UserError` s that name the key and the fix; nothing is silently ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mpdsnn.data.registry import DataConfig
from mpdsnn.errors import UserError


@dataclass
class TrainConfig:
    method: str = "ds-atgo"
    method_options: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_root: str = "data"  # cache and download folder
    mirror: str | None = None  # a local copy of the dataset (offline clusters)
    download: bool = True
    model: str | None = None  # None: the dataset's default model
    model_options: dict[str, Any] = field(default_factory=dict)
    T: int | None = None  # None: the dataset's default number of timesteps
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "sgd"  # the paper's recipe: SGD, momentum 0.9
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine over all epochs, as the official recipe
    label_smoothing: float = 0.0  # official code 0.1; the paper says only "cross-entropy"
    grad_clip: float | None = None
    seed: int = 0
    split_seed: int = 0  # data splits and the probe batch stay fixed across training seeds
    deterministic: bool = True  # same seed, same numbers on CPU
    device: str = "auto"  # auto = cuda when available
    amp: bool = True  # bf16 autocast, CUDA only
    tf32: bool = False  # TF32 matmuls and cuDNN convolutions (CUDA); off: fp32 as the paper's rows
    channels_last: bool = False  # CUDA convs can be faster in NHWC
    neuron_backend: str = "fused"  # one autograd node over T; equal to "reference" (tested)
    num_workers: int = 0
    augment: bool = True
    train_subset: int | None = None
    test_subset: int | None = None
    limit_batches: int | None = None  # smoke runs: stop each epoch after this many batches
    probe_every: int = 0  # 0: probe only after the last epoch
    probe_samples: int = 256  # size of the fixed probe batch (first test samples)
    checkpoint_dir: str | None = None  # None: <out>/checkpoint
    tracking: bool = True  # MLflow; training never depends on it succeeding
    tracking_uri: str | None = None
    experiment: str = "mpdsnn"
    run_name: str | None = None
    sync_thresholds: bool = True  # DDP: AT statistics over the global batch

    def validate(self) -> "TrainConfig":
        _check_types(self)
        positive_ints = ("epochs", "batch_size", "probe_samples")
        for name in positive_ints:
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("T", "train_subset", "test_subset", "limit_batches"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"{name} must be a positive integer (or null), got {value}")
        if self.lr <= 0:
            raise UserError(f"lr must be positive, got {self.lr}")
        for name in ("weight_decay", "momentum", "label_smoothing", "probe_every", "num_workers"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.label_smoothing >= 1:
            raise UserError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        _check_choice("optimizer", self.optimizer, ("sgd", "adamw"))
        _check_choice("schedule", self.schedule, ("cosine", "constant"))
        _check_choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda"))
        _check_choice("neuron_backend", self.neuron_backend, ("fused", "reference"))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def data_config(self, T: int, augment: bool | None = None) -> DataConfig:
        """What the dataset registry needs. Splits use ``split_seed``, not the training seed, so
        the spread over seeds measures training variance, not a mix with split variance."""
        return DataConfig(root=Path(self.data_root), T=T, seed=self.split_seed,
                          mirror=Path(self.mirror) if self.mirror else None, download=self.download,
                          augment=self.augment if augment is None else augment,
                          train_subset=self.train_subset, test_subset=self.test_subset,
                          options=dict(self.dataset_options))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _accepts(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is Any:
        return True
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _check_types(config: TrainConfig) -> None:
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not _accepts(hints[f.name], value):
            words = " or ".join(_TYPE_WORDS.get(a, "null" if a is type(None) else "a mapping")
                                for a in (typing.get_args(hints[f.name]) or (hints[f.name],)))
            raise UserError(f"{f.name} must be {words}; got {value!r} ({type(value).__name__})")
        if isinstance(value, int) and not isinstance(value, bool) and hints[f.name] is float:
            setattr(config, f.name, float(value))


def merge(base: dict[str, Any], override: dict[str, Any], source: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(override) - known)
    if unknown:
        raise UserError(
            f"unknown config key(s) {', '.join(unknown)} in {source}; valid keys: {', '.join(sorted(known))}"
        )
    return {**base, **override}


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    return data


def build_config(yaml_file: Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults < YAML file < overrides (the CLI's flags)."""
    values: dict[str, Any] = {}
    if yaml_file is not None:
        values = merge(values, read_yaml(yaml_file), str(yaml_file))
    values = merge(values, overrides or {}, "command-line flags")
    return TrainConfig(**values).validate()


def config_from_params(params_file: Path, dataset: str, method: str, seed: int,
                       extra: dict[str, Any] | None = None) -> TrainConfig:
    """The DVC pipelines' config: ``train`` (shared recipe) < ``datasets.<dataset>`` <
    ``method_options.<method>`` < ``extra``. Each section is validated with its file named."""
    params = read_yaml(params_file)
    source = f"{params_file}"
    values: dict[str, Any] = {}
    values = merge(values, params.get("train") or {}, f"{source} (train)")
    datasets = params.get("datasets") or {}
    if dataset not in datasets:
        raise UserError(f"{source} has no datasets.{dataset} section; add it or pick one of "
                        f"{', '.join(sorted(datasets)) or '(none)'}")
    values = merge(values, datasets[dataset] or {}, f"{source} (datasets.{dataset})")
    options = (params.get("method_options") or {}).get(method) or {}
    if not isinstance(options, dict):
        raise UserError(f"{source}: method_options.{method} must be a mapping of option: value")
    values = merge(values, {"dataset": dataset, "method": method, "seed": seed,
                            "method_options": options}, "the stage's matrix values")
    values = merge(values, extra or {}, "command-line flags")
    return TrainConfig(**values).validate()

"""The training configuration: one typed record, every default with its reason.

Precedence: defaults < YAML file < command-line flags. Unknown keys and ill-typed values are
:class:`UserError` s that name the key and the fix; nothing is silently ignored.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mpdsnn.data.registry import DataConfig
from mpdsnn.errors import UserError, check_choice, did_you_mean
from mpdsnn.recipes import Resolved, resolve_layers


# Above this, per-timestep threshold buffers (T floats per layer) are allocated while the model is
# built, before mpdsnn.memory can estimate anything; every real run is far below it.
MAX_T = 100_000


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
        _check_finite(self)
        _check_model_options(self)
        positive_ints = ("epochs", "batch_size", "probe_samples")
        for name in positive_ints:
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("T", "train_subset", "test_subset", "limit_batches"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"{name} must be a positive integer (or null), got {value}")
        if self.T is not None and self.T > MAX_T:
            raise UserError(f"T {self.T} is above {MAX_T}: the model alone would allocate "
                            "per-timestep buffers in every layer before the memory check can run; "
                            "use a smaller T")
        if self.T == 1 and self.batch_size == 1:
            raise UserError("T 1 with batch_size 1 gives BatchNorm one value per channel, which "
                            "cannot train; use batch_size 2 or more (or T 2 or more)")
        if self.lr <= 0:
            raise UserError(f"lr must be positive, got {self.lr}")
        for name in ("weight_decay", "momentum", "label_smoothing", "probe_every", "num_workers"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.label_smoothing >= 1:
            raise UserError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        check_choice("optimizer", self.optimizer, ("sgd", "adamw"))
        check_choice("schedule", self.schedule, ("cosine", "constant"))
        check_choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda"))
        check_choice("neuron_backend", self.neuron_backend, ("fused", "reference", "compiled"))
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


def _check_finite(config: TrainConfig) -> None:
    """NaN passes every ``<= 0`` test and inf trains to NaN: a run with either "finishes" at chance
    accuracy and enters reports, so both are refused wherever a number can appear."""
    def walk(value: Any, where: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{where} must be a finite number, got {value}; give a real value")
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, where)

    for f in dataclasses.fields(config):
        walk(getattr(config, f.name), f.name)


def _check_model_options(config: TrainConfig) -> None:
    """A model option takes its default's kind: a choice (a string, e.g. ``init``) stays a
    string; a size (width, hidden, input_size) is a positive number, an integer where the
    model's default is one. Checked here so that a bad one is a line naming it, not a traceback
    from deep inside a layer."""
    from mpdsnn.data import dataset_info
    from mpdsnn.models import _MODELS

    name = config.model or dataset_info(config.dataset).default_model
    builder = _MODELS.get(name)
    defaults = {p.name: p.default for p in inspect.signature(builder).parameters.values()} if builder else {}
    for key, value in config.model_options.items():
        if isinstance(defaults.get(key), str):
            if not isinstance(value, str):
                raise UserError(f"model option {key} of model {name!r} must be a name such as "
                                f"{defaults[key]!r}, got {value!r}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f"model option {key} must be a positive number (a size), got {value!r}")
        if isinstance(defaults.get(key), int) and not isinstance(value, int):
            raise UserError(f"model option {key} of model {name!r} must be a positive integer, "
                            f"got {value!r}")


# What DVC pastes into shell commands (stage names, paths): letters, digits, '.', '_', '-' only,
# so a name can neither break out of its quotes nor start an option.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(kind: str, name: Any, source: str) -> None:
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise UserError(f"{source}: {kind} {name!r} is not a safe name; use letters, digits, "
                        "'.', '_' and '-' only (names go into the pipeline's shell commands)")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a mapping of key: value, got {value!r}; "
                        "see params.yaml of the default pipeline for the layout")
    return value


def check_params_layout(params: dict[str, Any], source: str) -> None:
    """A DVC params.yaml's shape, checked before any of it is used: ``train``, ``datasets.*`` and
    ``method_options.*`` are mappings, and every name DVC interpolates into a stage command
    (``pipeline``, ``methods``, ``datasets_run``, dataset and method names, option keys) is a
    SAFE_NAME. The pipelines' first stage (``prepare``) runs this, so a bad name stops
    ``dvc repro`` before any train command is run."""
    _mapping(params.get("train"), f"{source}: train")
    for section, kind in (("datasets", "dataset"), ("method_options", "method")):
        for name, block in _mapping(params.get(section), f"{source}: {section}").items():
            check_name(kind, name, source)
            for key in _mapping(block, f"{source}: {section}.{name}"):
                if not isinstance(key, str) or not _SAFE_KEY.fullmatch(key):
                    raise UserError(f"{source}: key {key!r} in {section}.{name} is not a valid "
                                    "option name; use letters, digits and '_'")
    if "pipeline" in params:
        check_name("pipeline", params["pipeline"], source)
    for section, kind in (("methods", "method"), ("datasets_run", "dataset")):
        names = params.get(section)
        if names is None:
            continue
        if not isinstance(names, list):
            raise UserError(f"{source}: {section} must be a list of names, got {names!r}")
        for name in names:
            check_name(kind, name, source)
    seeds = params.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise UserError(f"{source}: seeds must be a list of integers, got {seeds!r}")


def merge(base: dict[str, Any], override: dict[str, Any], source: str) -> dict[str, Any]:
    if not isinstance(override, dict):
        raise UserError(f"{source} must be a mapping of config keys to values, got {override!r}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(override) - known)
    if unknown:
        raise UserError(
            f"unknown config key(s) {', '.join(unknown)} in {source}; {did_you_mean(unknown, known)}"
            f"valid keys: {', '.join(sorted(known))}"
        )
    return {**base, **override}


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where it is."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(str(getattr(exc, "problem", None) or exc).split()) + where


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"config file {path} is a folder; pass the YAML file inside it") from None
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not text (binary content); pass a YAML file") from None
    except OSError as exc:
        raise UserError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
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
    """The DVC pipelines' config: ``train`` (shared recipe) < ``datasets.<dataset>`` < the
    method's recipe card (when ``recipe_cards: paper``) < ``method_options.<method>.recipe`` <
    ``extra``; builder options from ``method_options.<method>``. Sections are validated with
    their file named (mpdsnn.recipes)."""
    return resolve_params(params_file, dataset, method, seed, extra)[0]


def resolve_params(params_file: Path, dataset: str, method: str, seed: int,
                   extra: dict[str, Any] | None = None) -> tuple[TrainConfig, Resolved]:
    """:func:`config_from_params` and, for ``mpdsnn recipe``, the source of every value."""
    from mpdsnn.data import dataset_info  # the dataset registry imports its datasets lazily
    from mpdsnn.methods import method_card

    params = read_yaml(params_file)
    source = f"{params_file}"
    check_params_layout(params, source)
    resolved, options = resolve_layers(params, source, dataset, method, method_card(method),
                                       dataset_info(dataset).default_model)
    merge({}, resolved.values, f"{source} (train, datasets.{dataset}, card, "
                               f"method_options.{method}.recipe)")
    for key, value in {"dataset": dataset, "method": method, "seed": seed,
                       "method_options": options}.items():
        resolved.set(key, value, "the stage's matrix values" if key != "method_options"
                     else f"{source}: method_options.{method}")
    for option in options:
        resolved.sources[f"method_options.{option}"] = f"{source}: method_options.{method}.{option}"
    merge({}, extra or {}, "command-line flags")
    for key, value in (extra or {}).items():
        resolved.set(key, value, "command-line flags")
    return TrainConfig(**resolved.values).validate(), resolved


def describe_recipe(params_file: Path, dataset: str, method: str, seed: int = 0) -> str:
    """``mpdsnn recipe``: the resolved recipe as YAML, every value's source beside it."""
    from mpdsnn.methods import method_card, method_options
    from mpdsnn.recipes import card_mode, recipe_yaml

    config, resolved = resolve_params(params_file, dataset, method, seed)
    values = config.to_dict()
    defaults = method_options(method)
    values["method_options"] = {**defaults, **config.method_options}
    cards_on = card_mode(read_yaml(params_file), str(params_file)) == "paper"
    return recipe_yaml(values, resolved.sources, defaults, method_card(method), cards_on)

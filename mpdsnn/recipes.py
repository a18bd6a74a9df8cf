"""Recipe cards: how each method's authors trained it, value by value, each value with its source.

A card sits next to its method's builder (``register_method(name, card=...)``) and holds only
what differs from a pipeline's shared recipe. Paper pipelines (``recipe_cards: paper`` in their
``params.yaml``) resolve every training value in four layers, later wins::

    shared (train:) < dataset (datasets.<d>:) < method card < override (method_options.<m>.recipe:)

then the stage's matrix values and command-line flags. :func:`resolve_layers` returns each value
with the layer and citation it came from, which ``mpdsnn recipe`` prints; pipelines without
``recipe_cards`` (the embedded and CPU ones) skip the card layer, so their recipes are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from mpdsnn.errors import UserError

CARD_MODES = ("paper", "none")
OVERRIDE_KEY = "recipe"  # method_options.<method>.recipe: {TrainConfig key: value}


@dataclass(frozen=True)
class Cited:
    """One value of a card and where it comes from: ``file:line`` of the official code, a paper
    section, or ``not stated: <decision and why>``."""

    value: Any
    source: str


@dataclass(frozen=True)
class RecipeCard:
    """``train``: TrainConfig keys on every dataset; ``datasets``: TrainConfig keys for one
    dataset; ``models``: the dataset's model -> the authors' architecture; ``model_options``:
    per model name (``"*"``: any model); ``neuron``: what the builder's defaults encode (Vth,
    decay, surrogate, firing rule, reset), held to the builder by tests; ``incomplete``: where
    the sources read were incomplete."""

    train: Mapping[str, Cited] = field(default_factory=dict)
    datasets: Mapping[str, Mapping[str, Cited]] = field(default_factory=dict)
    models: Mapping[str, Cited] = field(default_factory=dict)
    model_options: Mapping[str, Mapping[str, Cited]] = field(default_factory=dict)
    neuron: Mapping[str, Cited] = field(default_factory=dict)
    incomplete: tuple[str, ...] = ()


@dataclass
class Resolved:
    """A resolved recipe: ``values`` for :class:`~mpdsnn.config.TrainConfig`, ``sources`` the
    layer of each (``model_options.<k>`` and ``method_options.<k>`` for nested keys)."""

    values: dict[str, Any]
    sources: dict[str, str]

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source


def card_mode(params: Mapping[str, Any], source: str) -> str:
    mode = params.get("recipe_cards", "none")
    if mode not in CARD_MODES:
        raise UserError(f"{source}: recipe_cards must be one of {', '.join(CARD_MODES)}; got {mode!r}")
    return mode


def split_override(options: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``method_options.<m>`` -> (builder options, recipe override)."""
    options = dict(options)
    override = options.pop(OVERRIDE_KEY, None) or {}
    if not isinstance(override, dict):
        raise UserError(f"{source}: {OVERRIDE_KEY} must be a mapping of TrainConfig key: value")
    return options, override


def apply_card(resolved: Resolved, card: RecipeCard, dataset: str, default_model: str,
               method: str) -> None:
    """The card layer: the card's train values, its dataset values, its architecture and its
    model options, each tagged ``card <method>: <citation>``."""
    tag = f"card {method}"
    for key, cited in {**card.train, **card.datasets.get(dataset, {})}.items():
        resolved.set(key, cited.value, f"{tag}: {cited.source}")
    model = resolved.values.get("model") or default_model
    if model in card.models:
        cited = card.models[model]
        model = cited.value
        resolved.set("model", model, f"{tag}: {cited.source}")
    options = dict(resolved.values.get("model_options") or {})
    for key, cited in {**card.model_options.get("*", {}), **card.model_options.get(model, {})}.items():
        options[key] = cited.value
        resolved.sources[f"model_options.{key}"] = f"{tag}: {cited.source}"
    resolved.values["model_options"] = options


def resolve_layers(params: Mapping[str, Any], source: str, dataset: str, method: str,
                   card: RecipeCard | None, default_model: str) -> tuple[Resolved, dict[str, Any]]:
    """Shared < dataset < card < override, as values with sources; also the builder options of
    ``method_options.<method>`` (without its ``recipe`` override)."""
    resolved = Resolved({}, {})
    for key, value in (params.get("train") or {}).items():
        resolved.set(key, value, f"{source}: train.{key}")
    datasets = params.get("datasets") or {}
    if dataset not in datasets:
        raise UserError(f"{source} has no datasets.{dataset} section; add it or pick one of "
                        f"{', '.join(sorted(datasets)) or '(none)'}")
    for key, value in (datasets[dataset] or {}).items():
        resolved.set(key, value, f"{source}: datasets.{dataset}.{key}")
        if key == "model_options" and isinstance(value, dict):
            for option in value:
                resolved.sources[f"model_options.{option}"] = f"{source}: datasets.{dataset}.model_options"
    if card_mode(params, source) == "paper" and card is not None:
        apply_card(resolved, card, dataset, default_model, method)
    options = (params.get("method_options") or {}).get(method) or {}
    if not isinstance(options, dict):
        raise UserError(f"{source}: method_options.{method} must be a mapping of option: value")
    options, override = split_override(options, f"{source}: method_options.{method}")
    for key, value in override.items():
        if key == "model_options" and isinstance(value, dict):
            merged = {**(resolved.values.get("model_options") or {}), **value}
            resolved.set(key, merged, resolved.sources.get(key, ""))
            for option in value:
                resolved.sources[f"model_options.{option}"] = (
                    f"{source}: method_options.{method}.{OVERRIDE_KEY}.model_options")
            continue
        resolved.set(key, value, f"{source}: method_options.{method}.{OVERRIDE_KEY}.{key}")
    return resolved, options


def _flow(value: Any) -> str:
    """One YAML value on one line (flow style)."""
    return yaml.safe_dump([value], default_flow_style=True, width=1 << 20).strip()[1:-1]


def recipe_yaml(config: Mapping[str, Any], sources: Mapping[str, str],
                method_defaults: Mapping[str, Any], card: RecipeCard | None,
                cards_on: bool) -> str:
    """The resolved recipe as YAML, each value's source as a comment beside it. Loading the
    text with ``yaml.safe_load`` gives the values (and ``neuron``: the card's neuron facts)."""
    lines = [f"# resolved: shared < dataset < {'method card' if cards_on else '(cards off)'} "
             "< params override < flags"]
    nested = {"model_options", "method_options", "dataset_options"}
    for key, value in config.items():
        if key in nested and isinstance(value, dict):
            lines.append(f"{key}:" + (" {}" if not value else ""))
            for sub, subvalue in value.items():
                where = sources.get(f"{key}.{sub}", sources.get(key, "default"))
                if key == "method_options" and f"{key}.{sub}" not in sources:
                    cited = card.neuron.get(sub) if card else None
                    where = (f"builder default; card: {cited.source}" if cited
                             else "builder default")
                lines.append(f"  {sub}: {_flow(subvalue)}  # {where}")
            continue
        lines.append(f"{key}: {_flow(value)}  # {sources.get(key, 'TrainConfig default')}")
    if card is not None:
        facts = {k: c for k, c in card.neuron.items() if k not in method_defaults}
        if facts:
            lines.append("neuron:  # fixed by the builder (not options); tests hold it to the card")
            lines += [f"  {k}: {_flow(c.value)}  # {c.source}" for k, c in facts.items()]
        if card.incomplete:
            lines.append("incomplete_sources:")
            lines += [f"  - {_flow(note)}" for note in card.incomplete]
    return "\n".join(lines) + "\n"

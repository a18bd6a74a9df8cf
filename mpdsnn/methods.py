"""The method registry: a method is how spiking layers are built plus which loss trains them.

Register with a decorator on a builder whose keyword arguments are the method's options::

    @register_method("my-method")
    def my_method(vth: float = 1.0) -> Method:
        return Method(neuron=lambda layer: LIFNode(FixedDecay(), FixedThreshold(vth), FixedWidth()))

``create_method("my-method", vth=0.5)`` builds it; an unknown name or option is a
:class:`UserError` that lists the valid ones. Other packages add methods through the entry-point
group ``mpdsnn.methods`` (the ``baselines`` package of this repository does exactly that).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from torch import nn

from mpdsnn.errors import UserError, check_choice, did_you_mean, unknown_name
from mpdsnn.losses import Loss, mean_output_ce
from mpdsnn.neuron import (
    AdaptiveThreshold,
    EstimatedThreshold,
    FixedDecay,
    FixedThreshold,
    FixedWidth,
    LearnableDecay,
    LIFNode,
    TGOWidth,
)
from mpdsnn.neuron.factory import LayerContext
from mpdsnn.recipes import Cited, RecipeCard

ENTRY_POINT_GROUP = "mpdsnn.methods"


@dataclass(frozen=True)
class Method:
    """``neuron(ctx)`` builds one spiking layer; ``loss`` trains on ``[T, N, classes]``;
    ``norm_scale`` is alpha * Vth of threshold-dependent BN (1.0 = plain time-shared BN)."""

    neuron: Callable[[LayerContext], nn.Module]
    loss: Loss = mean_output_ce
    norm_scale: float = 1.0
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)


_BUILDERS: dict[str, Callable[..., Method]] = {}
_CARDS: dict[str, RecipeCard] = {}
_entry_points_loaded = False


def register_method(name: str, card: RecipeCard | None = None
                    ) -> Callable[[Callable[..., Method]], Callable[..., Method]]:
    """``card``: how the method's authors trained it (mpdsnn.recipes); paper pipelines apply it."""
    if "@" in name or name != name.strip():
        raise ValueError(f"method names must not contain '@' or spaces: {name!r}")

    def decorator(builder: Callable[..., Method]) -> Callable[..., Method]:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"method {name!r} is registered twice")
        _BUILDERS[name] = builder
        if card is not None:
            _CARDS[name] = card
        return builder

    return decorator


def method_card(name: str) -> RecipeCard | None:
    """The method's recipe card, or None when it has none (then the shared recipe applies)."""
    _get_builder(name)
    return _CARDS.get(name)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()  # importing the module runs its @register_method


def list_methods() -> list[str]:
    _load_entry_points()
    return sorted(_BUILDERS)


def method_options(name: str) -> dict[str, Any]:
    """The options a method accepts, with their defaults."""
    builder = _get_builder(name)
    return {p.name: p.default for p in inspect.signature(builder).parameters.values()}


def _get_builder(name: str) -> Callable[..., Method]:
    _load_entry_points()
    if name not in _BUILDERS:
        raise unknown_name("method", name, list(_BUILDERS))
    return _BUILDERS[name]


def create_method(name: str, **options: Any) -> Method:
    builder = _get_builder(name)
    valid = method_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UserError(
            f"unknown option(s) {', '.join(unknown)} for method {name!r}; "
            f"{did_you_mean(unknown, valid)}valid options: {', '.join(valid) or 'none'}"
        )
    for key, value in options.items():
        _check_option_type(name, key, value, valid[key])
    try:
        method = builder(**options)
        method.neuron(LayerContext(T=1))  # build one layer now: bad values fail here, not mid-model
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad option for method {name!r} ({', '.join(f'{k}={v!r}' for k, v in options.items())}): "
                        f"{exc}; see `mpdsnn list` and the method's docstring") from None
    resolved = {**valid, **options}
    return Method(neuron=method.neuron, loss=method.loss, norm_scale=method.norm_scale,
                  name=name, options=resolved)


def _check_option_type(method: str, key: str, value: Any, default: Any) -> None:
    """Options take the type of their default (a number where the default is a number)."""
    if isinstance(default, bool):
        ok, words = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok, words = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, words = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        raise UserError(f"option {key} of method {method!r} must be {words}; got {value!r}")


# --- DS-ATGO and its ablations ---------------------------------------------------------------

_DSATGO = "jqjiang1999/DS-ATGO@333ad21"
DS_ATGO_CARD = RecipeCard(
    train={"label_smoothing": Cited(0.1, f"{_DSATGO} base_config.py:20 (loss 'LabelSmooth'), "
                                         "functional.py:15-27 (epsilon 0.1)")},
    model_options={
        "resnet19": {"init": Cited("kaiming-fan-out", f"{_DSATGO} network_model/ResNet19.py:116-121")},
        "resnet18": {"init": Cited("kaiming-fan-out", "not stated (the DS-ATGO code has no ImageNet "
                                   "model); decision: as its ResNet19.py:116-121")},
        "vggsnn": {"init": Cited("default", "not stated (the DS-ATGO code has no DVS model); "
                                 "decision: as its predecessor MPD-AGL's models/VGGSNN.py, which "
                                 "keeps PyTorch's initialisation")},
    },
    neuron={
        "tau": Cited(0.2, f"{_DSATGO} network_model/layers.py:64 (PLIF init_a 5.0: sigmoid(-log 4))"),
        "learnable_decay": Cited(True, f"{_DSATGO} network_model/layers.py:64, neuron.py:56-65"),
        "fc": Cited(1.0, f"{_DSATGO} neuron.py:26"),
        "momentum": Cited(0.1, f"{_DSATGO} neuron.py:28 (0.9 old + 0.1 new)"),
        "tgo_rule": Cited("paper", f"the paper's equation; {_DSATGO} surrogate.py:36-40 feeds "
                                   "std(U) instead (tgo_rule: code)"),
        "firing": Cited(">=", f"{_DSATGO} surrogate.py:7-8"),
        "reset": Cited("hard, not detached", f"{_DSATGO} neuron.py:34"),
        "surrogate": Cited("rectangular, width from TGO", f"{_DSATGO} surrogate.py:11-43 "
                           "(window |v| < w/2; ours <=, which differs only on a set of measure 0)"),
        "bn": Cited("tdBN, weight init alpha*Vth = 1", f"{_DSATGO} network_model/layers.py:25-30"),
    },
    incomplete=("The DS-ATGO repository holds the CIFAR code only (data_loader/loader.py:11-17): "
                "the CIFAR10-DVS and DVS-Gesture recipes are the paper's (SPEC section 6); its "
                "ImageNet recipe was not available here (pipelines/imagenet/params.yaml says so).",),
)


def _ablation_card(drop: tuple[str, ...], **facts: Cited) -> RecipeCard:
    """An ablation trains as DS-ATGO; only the neuron facts it does not use differ."""
    neuron = {k: v for k, v in DS_ATGO_CARD.neuron.items() if k not in drop}
    return dataclasses.replace(DS_ATGO_CARD, neuron={**neuron, **facts})


_WIDTH_1 = Cited("rectangular, fixed width 1", "the paper's ablation study: TGO off")
AT_CARD = _ablation_card(("tgo_rule",), surrogate=_WIDTH_1)
TGO_CARD = _ablation_card((), firing_threshold=Cited("fixed Vth 1 (MPD statistics feed the width only)",
                                              "the paper's ablation study: AT off"))
VANILLA_CARD = _ablation_card(("fc", "momentum", "tgo_rule"), surrogate=_WIDTH_1,
                              firing_threshold=Cited("fixed Vth 1", f"{_DSATGO} neuron.py:9 (threshold=1.0)"))

def _decay(learnable_decay: bool, tau: float) -> nn.Module:
    return LearnableDecay(tau) if learnable_decay else FixedDecay(tau)


def _mpd_method(adaptive_firing: bool, tgo: bool, fc: float, momentum: float, tgo_rule: str,
                threshold: str, eval_source: str, learnable_decay: bool, tau: float,
                min_theta: float) -> Method:
    """The DS-ATGO family: MPD threshold firing (AT) and/or MPD-driven width (TGO)."""
    check_choice("threshold", threshold, ("mpd", "estimated"))
    check_choice("tgo_rule", tgo_rule, ("paper", "code"))
    check_choice("eval_source", eval_source, ("running", "batch"))
    if fc <= 0:
        raise UserError(f"fc must be positive, got {fc}")
    if not 0 < momentum <= 1:
        raise UserError(f"momentum must lie in (0, 1], got {momentum}")

    def neuron(layer: LayerContext) -> nn.Module:
        if threshold == "estimated":
            policy: nn.Module = EstimatedThreshold(fc=fc, min_theta=min_theta,
                                                   fire_adaptive=adaptive_firing)
        else:
            policy = AdaptiveThreshold(layer.T, fc=fc, momentum=momentum, min_theta=min_theta,
                                       fire_adaptive=adaptive_firing, eval_source=eval_source)
        surrogate = TGOWidth(rule=tgo_rule) if tgo else FixedWidth(1.0)
        return LIFNode(_decay(learnable_decay, tau), policy, surrogate)

    return Method(neuron=neuron)


@register_method("ds-atgo", card=DS_ATGO_CARD)
def ds_atgo(fc: float = 1.0, momentum: float = 0.1, tgo_rule: str = "paper",
            threshold: str = "mpd", eval_source: str = "running", learnable_decay: bool = True,
            tau: float = 0.2, min_theta: float = 0.05) -> Method:
    """DS-ATGO (AAAI 2026): adaptive MPD threshold (AT) + threshold-driven width (TGO).

    ``threshold="estimated"`` and ``eval_source="batch"`` are the paper's AT ablations;
    ``tgo_rule="code"`` is the official code's width rule (std instead of theta)."""
    return _mpd_method(True, True, fc, momentum, tgo_rule, threshold, eval_source,
                       learnable_decay, tau, min_theta)


@register_method("at", card=AT_CARD)
def at_only(fc: float = 1.0, momentum: float = 0.1, threshold: str = "mpd",
            eval_source: str = "running", learnable_decay: bool = True, tau: float = 0.2,
            min_theta: float = 0.05) -> Method:
    """Ablation: AT only (adaptive threshold, fixed width k = 1 centred on it)."""
    return _mpd_method(True, False, fc, momentum, "paper", threshold, eval_source,
                       learnable_decay, tau, min_theta)


@register_method("tgo", card=TGO_CARD)
def tgo_only(fc: float = 1.0, momentum: float = 0.1, tgo_rule: str = "paper",
             threshold: str = "mpd", learnable_decay: bool = True, tau: float = 0.2,
             min_theta: float = 0.05) -> Method:
    """Ablation: TGO only (MPD threshold feeds the width rule; firing stays at Vth = 1)."""
    return _mpd_method(False, True, fc, momentum, tgo_rule, threshold, "running",
                       learnable_decay, tau, min_theta)


@register_method("vanilla", card=VANILLA_CARD)
def vanilla(learnable_decay: bool = True, tau: float = 0.2) -> Method:
    """The paper's Vanilla-SNN: DS-ATGO's PLIF neuron, fixed Vth = 1, fixed width k = 1."""
    return Method(neuron=lambda layer: LIFNode(_decay(learnable_decay, tau), FixedThreshold(1.0),
                                               FixedWidth(1.0)))


def method_summary(name: str) -> str:
    """First line of the method builder's docstring (for ``mpdsnn list``)."""
    doc = (_get_builder(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""

"""Is a published-vs-reproduced row a reproduction? Only when the runs' dataset, architecture, T
and recipe are the paper's: the recipe the paper pipeline (``pipelines/<dataset>/params.yaml``)
resolves for the method with its card. Otherwise the row is a reference, and says what differs
(e.g. ``amp=True``: trained in bf16, the fast profile). Values a pipeline had to choose because
the paper does not give them (its ``recipe_not_published:`` list) also make a row a reference."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
RECIPE_KEYS = ("model", "T", "epochs", "batch_size", "optimizer", "lr", "weight_decay",
               "label_smoothing", "model_options", "amp")


def base_method(method: str) -> str:
    """``"ds-atgo (tgo_rule=code)"`` -> ``"ds-atgo"``."""
    return method.split(" (", 1)[0]


def _amp(runs: pd.DataFrame) -> pd.Series:
    """Whether each run trained under bf16 autocast (its config's ``amp``)."""
    if "config.amp" in runs.columns:
        return runs["config.amp"].fillna(False).astype(bool)
    if "path" in runs.columns:
        return runs["path"].map(lambda path: bool(_config(path).get("amp")))
    return pd.Series(False, index=runs.index)


def with_variants(runs: pd.DataFrame, entries: Iterable[Any]) -> tuple[pd.DataFrame, list[Any]]:
    """Runs with non-default options, or trained in bf16, become methods of their own,
    ``"<method> (<variant>, bf16)"``, each compared with its method's published entries (the rule
    that produced a published number may be a variant: DS-ATGO's 96.91 came from
    ``tgo_rule=code``), so fp32 and bf16 seeds are never averaged together."""
    entries = list(entries)
    variant = runs["variant"].fillna("") if "variant" in runs.columns else pd.Series("", index=runs.index)
    tags = variant.where(~_amp(runs), variant.str.cat(["bf16"] * len(runs), sep=", ").str.lstrip(", "))
    named = runs["method"].where(tags == "", runs["method"] + " (" + tags + ")")
    runs = runs.assign(method=named)
    extra = [dataclasses.replace(e, method=m) for e in entries
             for m in sorted(set(named)) if m != e.method and base_method(m) == e.method
             and ((runs["method"] == m) & (runs["dataset"] == e.dataset)).any()]
    return runs, entries + extra


def paper_recipe(dataset: str, method: str) -> tuple[dict[str, Any], list[str]] | None:
    """The paper pipeline's resolved recipe for ``method`` and the keys of it the paper does not
    state (None without a paper pipeline)."""
    from mpdsnn.config import read_yaml, resolve_params

    params = PIPELINES / dataset / "params.yaml"
    if not params.is_file():
        return None
    config, resolved = resolve_params(params, dataset, method, 0)
    unstated = [k for k in read_yaml(params).get("recipe_not_published") or []
                if not resolved.sources.get(k, "").startswith("card ")]  # the method's own code
    return {k: getattr(config, k) for k in RECIPE_KEYS}, unstated


def _config(path: str) -> dict[str, Any]:
    config_file = Path(path) / "config.yaml"
    return (yaml.safe_load(config_file.read_text()) or {}) if config_file.is_file() else {}


def _run_recipe(path: str, model: str, T: int) -> dict[str, Any]:
    config = _config(path)
    return {**{k: config.get(k) for k in RECIPE_KEYS}, "model": model, "T": T}


def row_label(method: str, dataset: str, model: str, T: int, runs: pd.DataFrame) -> str:
    """``"reproduction"`` or ``"reference (differs: key=run value (paper value), ...)"``."""
    found = paper_recipe(dataset, base_method(method))
    if found is None:
        return f"reference (differs: no paper pipeline for {dataset})"
    paper, unstated = found
    differs = [f"model={model} ({paper['model']})"] if model != paper["model"] else []
    differs += [f"T={T} ({paper['T']})"] if T != paper["T"] else []
    if "path" in runs.columns:
        for path, run_model, run_T in zip(runs["path"], runs["model"], runs["T"]):
            run = _run_recipe(path, run_model, int(run_T))
            differs += [f"{k}={run[k]} ({paper[k]})" for k in RECIPE_KEYS
                        if run[k] is not None and run[k] != paper[k]]
    differs = list(dict.fromkeys(differs))
    why = ([f"differs: {', '.join(differs)}"] if differs else []) + (
        [f"not published: {', '.join(unstated)}"] if unstated else [])
    return "reproduction" if not why else f"reference ({'; '.join(why)})"


def label_rows(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per published entry and recipe) with a ``label`` column."""
    labels = []
    for r in table.itertuples(index=False):
        match = runs[(runs["method"] == r.method) & (runs["dataset"] == r.dataset)
                     & (runs["model"] == r.model) & (runs["T"] == r.T)]
        if "recipe" in match.columns and getattr(r, "recipe", ""):
            match = match[match["recipe"] == r.recipe]
        elif "epochs" in match.columns and not pd.isna(r.epochs):
            match = match[match["epochs"] == r.epochs]
        labels.append("not run" if match.empty else row_label(r.method, r.dataset, r.model, r.T, match))
    return table.assign(label=labels)

"""Which runs may be pooled: only runs of one recipe fingerprint (resolved config minus seed,
plus the code hash), so width, batch size, label smoothing, subsets or code version never mix
silently. Every run left out is named, with the reason.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

import pandas as pd

from mpdsnn.errors import UserError


_STAND_IN_KEYS = ("method", "variant", "dataset", "model", "T", "epochs")


def with_recipe(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a ``recipe`` column. :func:`mpdsnn.runfolder.reader.read_runs` always gives
    one (the fingerprint each run recorded, or for older runs the reader's own); a table built by
    hand without it counts each method, variant, dataset, model, T and length as one recipe."""
    if "recipe" in runs.columns:
        return runs
    keys = [c for c in _STAND_IN_KEYS if c in runs.columns]
    texts = ["|".join(map(str, row)) for row in runs[keys].itertuples(index=False)]
    return runs.assign(recipe=[hashlib.sha256(t.encode()).hexdigest()[:12] for t in texts])


def run_name(row: pd.Series) -> str:
    """The name a reader can find: ``run`` when present, else the folder."""
    name = row.get("run")
    return str(name) if isinstance(name, str) and name else str(row.get("path", "?"))


def short(recipe: str) -> str:
    return str(recipe)[:8]


@dataclass
class Arm:
    """The runs of one method pooled in a comparison: one recipe, indexed by seed."""

    method: str
    recipe: str
    runs: pd.DataFrame


@dataclass
class Pool:
    """Comparable runs of one setting: for each method, the runs of one recipe."""

    setting: tuple
    arms: dict[str, Arm]
    split_label: str = ""  # names the recipes when a setting had to be split
    notes: list[str] = field(default_factory=list)


def require_unique_seeds(runs: pd.DataFrame, keys: list[str]) -> None:
    """Two runs of one recipe and seed would count one seed twice: refuse, naming both. (Tables
    from :func:`mpdsnn.runfolder.reader.read_runs` never hold such pairs: the reader's one
    duplicate rule keeps the newest run and names the others; this guards tables built by hand.)"""
    dup = runs[runs.duplicated([*keys, "recipe", "seed"], keep=False)]
    if dup.empty:
        return
    first = dup.iloc[0]
    same = dup[(dup[[*keys, "recipe", "seed"]] == first[[*keys, "recipe", "seed"]]).all(axis=1)]
    names = "; ".join(run_name(r) for _, r in same.iterrows())
    raise UserError(f"{len(same)} runs of {first['method']} on {first['dataset']} with seed "
                    f"{first['seed']} and the same recipe ({names}); pass only one of them "
                    "(read_runs keeps the newest and names the others)")


def recipe_mismatches(runs: pd.DataFrame, method: str, label: str) -> list[str]:
    """One line per run of ``method`` naming its recipe, when the method has several."""
    recipes = runs["recipe"].unique()
    if len(recipes) < 2:
        return []
    lines = [f"{method} in {label} has {len(recipes)} recipes, never pooled:"]
    for recipe, part in runs.groupby("recipe", sort=True):
        names = ", ".join(run_name(r) for _, r in part.sort_values("seed").iterrows())
        lines.append(f"  recipe {short(recipe)}: {names}")
    return lines


def pools(runs: pd.DataFrame, setting: list[str], label) -> list[Pool]:
    """Split runs into pools: per ``setting`` value, one pool per combination of the methods'
    recipes (one pool when each method has one recipe). ``label(setting_values)`` names a
    setting in the notes."""
    runs = with_recipe(runs)
    require_unique_seeds(runs, setting)
    out: list[Pool] = []
    for values, part in runs.groupby(setting, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        notes: list[str] = []
        per_method: dict[str, list[tuple[str, pd.DataFrame]]] = {}
        for method, mruns in part.groupby("method", sort=False):
            notes += recipe_mismatches(mruns, str(method), label(values))
            per_method[str(method)] = [(str(r), g.set_index("seed").sort_index())
                                       for r, g in mruns.groupby("recipe", sort=True)]
        combos = list(itertools.product(*per_method.values()))
        for combo in combos:
            arms = {m: Arm(m, r, g) for m, (r, g) in zip(per_method, combo)}
            split = ""
            if len(combos) > 1:
                split = ", ".join(f"{m} recipe {short(a.recipe)}" for m, a in arms.items()
                                  if len(per_method[m]) > 1)
            out.append(Pool(values, arms, split, list(notes)))
    return out

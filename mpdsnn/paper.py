"""What the paper fixes for every table, figure and verdict: the method order, the ablation
ladder and the firing rate an MPD threshold of mean + std aims at. One definition each, shared by
reports and verdicts (torch-free, so analysis never imports the training side)."""

from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

ABLATION_LADDER = ("vanilla", "at", "tgo", "ds-atgo")
"""The paper's ablation, weakest to strongest: vanilla < AT < TGO < AT + TGO (Table 3)."""
METHOD_ORDER = ("ds-atgo", "at", "tgo", "vanilla")
"""Report order: DS-ATGO and its ablations first (the paper's order), then the rest A-Z."""
TARGET_RATE = 100.0 * 0.5 * math.erfc(1.0 / math.sqrt(2.0))
"""1 - Phi(1) = 15.87 %: the firing rate of a Gaussian potential at the threshold mean + std."""


def order_methods(methods: Iterable[str]) -> list[str]:
    """Unique methods in report order: ds-atgo, at, tgo, vanilla, then the rest alphabetically."""
    present = set(methods)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def method_rank(methods: pd.Series) -> pd.Series:
    """Sort key for a column of method names (for ``DataFrame.sort_values(key=...)``)."""
    order = {m: i for i, m in enumerate(order_methods(methods))}
    return methods.map(order)


DOWNSAMPLE = "downsample"
"""Spiking layers whose name holds this are the shortcut's neurons: SEW ResNet-19 has 20 spiking
layers, the paper's per-layer figures show 18 (without these)."""


def is_downsample(names: pd.Series) -> pd.Series:
    return names.astype(str).str.contains(DOWNSAMPLE)


def paper_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Probe rows of the paper's layer set: downsample neurons left out of every average."""
    if "layer_name" not in table.columns:
        return table
    return table[~is_downsample(table["layer_name"])]

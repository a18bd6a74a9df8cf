"""The comparison table: one row per setting and method, mean +- std over seeds.

Grouped by pipeline, dataset, model, T and method (pipeline only separates runs that would
otherwise be merged, e.g. a CPU-sized and a paper-scale CIFAR-10). Std is the sample std
(ddof = 1) over seeds; with one seed it is undefined and shown as "-". Unfinished runs never
enter (rows with ``finished`` False are dropped; :func:`mpdsnn.report.collect.load_tables`
warns about them).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from mpdsnn.paper import method_rank
from mpdsnn.runfolder.reader import SETTING

ACCURACIES = {  # metric -> column title; shown as mean +- std
    "best_test_acc": "best test acc (%)",
    "last_test_acc": "last-epoch test acc (%)",
    "val_selected_test_acc": "val-selected test acc (%)",
}
MEANS = {  # metric -> (column title, display scale, format); shown as a mean only
    "mean_firing_rate": ("firing rate (%)", 100.0, "{:.2f}"),
    "energy_uj_per_sample": ("energy (uJ/sample)", 1.0, "{:.4g}"),
}
ENERGY_NOTE = (
    "Energy is not in the paper: the common 45 nm convention E = 4.6 pJ x MACs of the encoding "
    "layer + 0.9 pJ x synaptic operations, per test sample."
)


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Numeric table: setting, ``method``, ``n`` (finished seeds), ``<metric>_mean`` and
    ``<metric>_std`` for every accuracy, ``<metric>_mean`` for firing rate and energy.
    Rows in report order (setting, then ds-atgo, at, tgo, vanilla, the rest alphabetically)."""
    runs = runs[runs["finished"]] if "finished" in runs else runs
    keys = [*SETTING, "method"]
    frame = runs.copy()
    for metric in [*ACCURACIES, *MEANS]:
        if metric not in frame:
            frame[metric] = float("nan")
        frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    grouped = frame.groupby(keys, sort=False)
    table = grouped.size().rename("n").to_frame()
    for metric in ACCURACIES:
        table[f"{metric}_mean"] = grouped[metric].mean()
        table[f"{metric}_std"] = grouped[metric].std(ddof=1)
    for metric in MEANS:
        table[f"{metric}_mean"] = grouped[metric].mean()
    table = table.reset_index()
    return table.sort_values(
        keys, key=lambda c: method_rank(c) if c.name == "method" else c
    ).reset_index(drop=True)


def _num(value: float, fmt: str = "{:.2f}") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def display_table(table: pd.DataFrame, pm: str = "±") -> pd.DataFrame:
    """Strings for people: accuracies as ``mean ± std`` (std "-" when n = 1, "-" alone when
    the metric is missing), firing rate in percent. ``pipeline`` is shown only when it varies."""
    keep = [c for c in SETTING if c != "pipeline" or table[c].nunique() > 1]
    out = table[[*keep, "method", "n"]].astype(str)
    for metric, title in ACCURACIES.items():
        means, stds = table[f"{metric}_mean"], table[f"{metric}_std"]
        out[title] = [
            "-" if math.isnan(m) else f"{_num(m)} {pm} {_num(s)}" for m, s in zip(means, stds)
        ]
    for metric, (title, scale, fmt) in MEANS.items():
        out[title] = [_num(v * scale, fmt) for v in table[f"{metric}_mean"]]
    return out


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table: columns holding words left-aligned, numbers right."""
    cells = frame.astype(str).map(lambda s: s.replace("|", r"\|"))
    left = {c for c in frame.columns if cells[c].str.match(r"[A-Za-z_]").any()}
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join(":---" if c in left else "---:" for c in frame.columns) + " |"
    rows = ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def to_latex(frame: pd.DataFrame, caption: str | None = None) -> str:
    """A booktabs LaTeX tabular (pandas Styler, needs jinja2); ``±`` becomes ``$\\pm$``."""
    styler = frame.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    align = "".join("l" if c in (*SETTING, "method") else "r" for c in frame.columns)
    latex = styler.to_latex(hrules=True, column_format=align, caption=caption)
    return latex.replace("±", r"$\pm$")


def write_tables(table: pd.DataFrame, out_dir: Path, stem: str = "comparison") -> dict[str, Path]:
    """Write ``<stem>.csv`` (numeric, empty cells for undefined std), ``<stem>.md`` and
    ``<stem>.tex`` under ``out_dir``; return their paths by format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shown = display_table(table)
    paths = {"csv": out_dir / f"{stem}.csv", "md": out_dir / f"{stem}.md", "tex": out_dir / f"{stem}.tex"}
    table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(to_markdown(shown) + f"\n{ENERGY_NOTE}\n")
    paths["tex"].write_text(to_latex(shown))
    return paths


def summary(table: pd.DataFrame) -> dict[str, float]:
    """Flat metrics for DVC's top-level ``metrics:``: ``"<dataset>/<method>/<metric>_mean"``
    (and ``_std``, ``/n``). Pipeline, model and ``T<T>`` join the prefix, after the dataset,
    only when they vary within a dataset, so the usual one-setting-per-dataset keys stay short.
    Undefined values (std with n = 1) are left out: JSON has no NaN."""
    by_dataset = table.groupby("dataset")
    extra = [c for c in ("pipeline", "model", "T") if by_dataset[c].nunique().max() > 1]
    flat: dict[str, float] = {}
    for row in table.to_dict("records"):
        parts = [row["dataset"], *(f"T{row[c]}" if c == "T" else str(row[c]) for c in extra)]
        prefix = "/".join([*parts, row["method"]])
        flat[f"{prefix}/n"] = int(row["n"])
        for col in table.columns:
            if col.endswith(("_mean", "_std")) and not pd.isna(row[col]):
                flat[f"{prefix}/{col}"] = round(float(row[col]), 6)
    return flat

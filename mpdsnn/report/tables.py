"""The comparison table: one row per setting, method and recipe, mean +- std over seeds, and
which methods are statistically indistinguishable from the best: a table that does not rank
noise.

Grouped by pipeline, dataset, model, T, method and recipe fingerprint (pipeline only separates
runs that would otherwise be merged, e.g. a CPU-sized and a paper-scale CIFAR-10; runs of two
recipes are never pooled). Std is the sample std (ddof = 1) over seeds; with one seed it is
undefined and shown as "-". Unfinished runs never enter (rows with ``finished`` False are
dropped; :func:`mpdsnn.runfolder.reader.read_runs` warns about them).

Per setting, the method with the highest mean best test accuracy is the best; every other is
compared with it by a paired t-test over the seeds both have (two-sided, Holm-corrected over
the setting's comparisons, 5 %): "~ best" when the difference is not significant. Seeds
reproduce bit for bit only on one hardware model (float kernels differ across CPUs and GPUs),
so each row names its hardware (``device_name``) and a row that mixes hardware is marked.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from scipy import stats

from mpdsnn.paper import method_rank
from mpdsnn.runfolder.reader import SETTING
from mpdsnn.verdicts.pooling import short, with_recipe
from mpdsnn.verdicts.stats import holm, no_spread, sign_test

RANKED = "best_test_acc"  # the accuracy the "vs best" marks compare
FAMILY_ALPHA = 0.05  # Holm over each setting's comparisons with its best

ACCURACIES = {  # metric -> column title; shown as mean +- std
    "best_test_acc": "best test acc (%)",
    "last_test_acc": "last-epoch test acc (%)",
    "val_selected_test_acc": "val-selected test acc (%)",
}
MEANS = {  # metric -> (column title, display scale, format); shown as a mean only
    "mean_firing_rate": ("firing rate (%)", 100.0, "{:.2f}"),
    "energy_uj_per_sample": ("energy (uJ/sample)", 1.0, "{:.4g}"),
}
VS_BEST_NOTE = (
    "vs best: per setting, each method against the highest mean best test accuracy, paired by "
    "seed (two-sided t-test, Holm over the setting, 5 %); '~ best' = not distinguishable from "
    "it, so the order among those rows is noise."
)
ENERGY_NOTE = (
    "Energy is not in the paper: the common 45 nm convention E = 4.6 pJ x MACs of the encoding "
    "layer + 0.9 pJ x synaptic operations, per test sample."
)


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Numeric table: setting, ``method``, ``recipe``, ``n`` (finished seeds), ``hardware``
    (device names with run counts), ``mixed_hardware``, ``<metric>_mean`` and ``<metric>_std``
    for every accuracy, ``<metric>_mean`` for firing rate and energy, and the comparison with
    the setting's best: ``vs_best`` ("best", "~ best", "below best" or "cannot tell"),
    ``pairs_vs_best`` (seeds paired) and ``p_vs_best`` (Holm-adjusted).
    Rows in report order (setting, then ds-atgo, at, tgo, vanilla, the rest alphabetically)."""
    runs = runs[runs["finished"]] if "finished" in runs else runs
    frame = with_recipe(runs.copy())
    if "device_name" not in frame:
        frame["device_name"] = "not recorded"
    frame["device_name"] = frame["device_name"].astype(object).where(
        frame["device_name"].notna(), "not recorded").astype(str)
    frame["device_name"] = hardware_labels(frame)
    for metric in [*ACCURACIES, *MEANS]:
        if metric not in frame:
            frame[metric] = float("nan")
        frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    keys = [*SETTING, "method", "recipe"]
    grouped = frame.groupby(keys, sort=False)
    table = grouped.size().rename("n").to_frame()
    table["hardware"] = grouped["device_name"].agg(_hardware)
    table["mixed_hardware"] = grouped["device_name"].nunique() > 1
    for metric in ACCURACIES:
        table[f"{metric}_mean"] = grouped[metric].mean()
        table[f"{metric}_std"] = grouped[metric].std(ddof=1)
    for metric in MEANS:
        table[f"{metric}_mean"] = grouped[metric].mean()
    table = table.reset_index()
    table = _versus_best(table, frame)
    return table.sort_values(
        keys, key=lambda c: method_rank(c) if c.name == "method" else c
    ).reset_index(drop=True)


def hardware_labels(frame: pd.DataFrame) -> pd.Series:
    """Device name with the precision it trained in, e.g. ``NVIDIA H200 [bf16 autocast; TF32
    off]``: the same seed gives other numbers under each. CPUs have no TF32; runs recorded
    before env.json held the precision keep the bare name."""
    def label(row: pd.Series) -> str:
        amp = row.get("autocast_dtype")
        if not isinstance(amp, str):
            return row["device_name"]
        parts = ["fp32" if amp == "none" else f"{amp.replace('bfloat16', 'bf16')} autocast"]
        if row["device_name"] != "cpu":
            tf32 = {(True, True): "TF32 on", (False, True): "TF32 in cuDNN only",
                    (True, False): "TF32 in matmul only"}
            on = tuple(pd.api.types.is_bool(v) and bool(v)
                       for v in (row.get("tf32_matmul"), row.get("tf32_cudnn")))
            parts.append(tf32.get(on, "TF32 off"))
        return f"{row['device_name']} [{'; '.join(parts)}]"
    if frame.empty:
        return frame["device_name"]
    return frame.apply(label, axis=1).astype(str)


def _hardware(names: pd.Series) -> str:
    counts = names.value_counts()
    return ", ".join(f"{name} ({count})" for name, count in sorted(counts.items()))


def _paired_p(best: pd.Series, other: pd.Series) -> tuple[int, float]:
    """Seeds both have and the two-sided paired t-test p (scipy) of their difference."""
    both = pd.concat([best.rename("a"), other.rename("b")], axis=1, join="inner").dropna()
    diff = both["a"] - both["b"]
    if len(diff) < 2:
        return len(diff), math.nan
    if no_spread(diff):  # t undefined (discrete accuracies tie): exact sign test
        return len(diff), sign_test(diff)
    return len(diff), float(stats.ttest_rel(both["a"], both["b"]).pvalue)


def _versus_best(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Mark, per setting, the rows indistinguishable from the best mean (paired by seed,
    Holm-corrected over the setting)."""
    table = table.assign(vs_best="", pairs_vs_best=float("nan"), p_vs_best=float("nan"))
    mean = f"{RANKED}_mean"
    for _, rows in table.groupby(SETTING, sort=False):
        ranked = rows[rows[mean].notna()]
        if ranked.empty:
            table.loc[rows.index, "vs_best"] = "cannot tell"
            continue
        best = ranked[mean].idxmax()
        seeds = {i: _seed_values(runs, table.loc[i]) for i in rows.index}
        table.loc[best, "vs_best"] = "best"
        others = [i for i in rows.index if i != best]
        tested = {i: _paired_p(seeds[best], seeds[i]) for i in others}
        adjusted = holm([p for _, p in tested.values()], FAMILY_ALPHA)
        for i, (pairs, _), p in zip(tested, tested.values(), adjusted):
            table.loc[i, "pairs_vs_best"] = pairs
            table.loc[i, "p_vs_best"] = p
            table.loc[i, "vs_best"] = ("cannot tell" if not math.isfinite(p) else
                                       "below best" if p < FAMILY_ALPHA else "~ best")
    return table


def _seed_values(runs: pd.DataFrame, row: pd.Series) -> pd.Series:
    keys = [*SETTING, "method", "recipe"]
    match = (runs[keys] == row[keys]).all(axis=1)
    return runs[match].set_index("seed")[RANKED]


def hardware_warnings(table: pd.DataFrame) -> list[str]:
    """One line per row whose seeds ran on several hardware models, and per setting whose
    methods ran on different ones (orderings may then flip between machines)."""
    lines = [f"{' / '.join(str(r[c]) for c in SETTING if r[c] != '')} / {r['method']}: runs "
             f"on several hardware models ({r['hardware']}); seeds reproduce only on one"
             for _, r in table[table["mixed_hardware"]].iterrows()]
    for values, rows in table.groupby(SETTING, sort=False):
        devices = {d for h in rows["hardware"] for d in _device_names(h)}
        if len(devices) > 1 and not rows["mixed_hardware"].any():
            lines.append(f"{' / '.join(str(v) for v in values if v != '')}: methods ran on "
                         f"different hardware ({', '.join(sorted(devices))}); compare with care")
    return lines


def _device_names(hardware: str) -> list[str]:
    return [part.rsplit(" (", 1)[0] for part in hardware.split(", ")]


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
    out["vs best (paired, Holm)"] = [
        mark if not math.isfinite(p) else f"{mark} (p={p:.2g}, {int(k)} seeds)"
        for mark, p, k in zip(table["vs_best"], table["p_vs_best"], table["pairs_vs_best"])]
    out["hardware"] = [("MIXED: " if mixed else "") + hw
                       for hw, mixed in zip(table["hardware"], table["mixed_hardware"])]
    if table.groupby([*SETTING, "method"])["recipe"].nunique().max() > 1:
        out.insert(out.columns.get_loc("n"), "recipe", table["recipe"].map(short))
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
    warnings = "".join(f"\nWarning: {line}\n" for line in hardware_warnings(table))
    paths["md"].write_text(to_markdown(shown) + f"\n{VS_BEST_NOTE}\n{warnings}\n{ENERGY_NOTE}\n")
    paths["tex"].write_text(to_latex(shown))
    return paths


def summary(table: pd.DataFrame) -> dict[str, float]:
    """Flat metrics for DVC's top-level ``metrics:``: ``"<dataset>/<method>/<metric>_mean"``
    (and ``_std``, ``/n``). Pipeline, model and ``T<T>`` join the prefix, after the dataset,
    only when they vary within a dataset, so the usual one-setting-per-dataset keys stay short;
    the recipe (short fingerprint) joins after the method only when one method has several.
    Undefined values (std with n = 1) are left out: JSON has no NaN."""
    by_dataset = table.groupby("dataset")
    extra = [c for c in ("pipeline", "model", "T") if by_dataset[c].nunique().max() > 1]
    split = "recipe" in table and table.groupby([*SETTING, "method"])["recipe"].nunique().max() > 1
    flat: dict[str, float] = {}
    for row in table.to_dict("records"):
        parts = [row["dataset"], *(f"T{row[c]}" if c == "T" else str(row[c]) for c in extra)]
        prefix = "/".join([*parts, row["method"], *([short(row["recipe"])] if split else [])])
        flat[f"{prefix}/n"] = int(row["n"])
        for col in table.columns:
            if col.endswith(("_mean", "_std")) and not pd.isna(row[col]):
                flat[f"{prefix}/{col}"] = round(float(row[col]), 6)
    return flat

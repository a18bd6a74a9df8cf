"""Markdown for people: the verdicts beside their Holm-adjusted ones, the power of each check
and the seeds it would need (``--plan``), and the running-vs-batch-statistics companion of C5.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from mpdsnn.verdicts._table import fmt, fmt_interval, markdown_table
from mpdsnn.verdicts.claims import CLAIMS, EQUIVALENCE_MARGIN, MIN_SEEDS, ClaimResult
from mpdsnn.verdicts.stats import ALPHA, POWER, STATS_BACKEND

BATCH_KEY = "test_acc_batch_thresholds"
BATCH_SIZES = (1, 16)


def batch_metric_key(batch_size: int | None) -> str:
    """metrics.json key of the test accuracy with each test batch's own threshold statistics:
    ``test_acc_batch_thresholds`` at the run's test batch size, ``..._bs<k>`` at size k."""
    return BATCH_KEY if batch_size is None else f"{BATCH_KEY}_bs{batch_size}"


def _p(p: float | None) -> str:
    return "-" if p is None or not math.isfinite(p) else f"{p:.3g}"


def claims_markdown(results: Sequence[ClaimResult], notes: Sequence[str] = ()) -> str:
    """Verdict tables, one per pool: raw and Holm-adjusted verdicts, power, seeds needed."""
    out = ["## Claims checked on these runs\n"]
    if not results:
        out.append("No runs of ds-atgo, vanilla, at or tgo: no claim to check.\n")
        return "\n".join(out)
    headers = ["claim", "verdict", "p", "Holm p", "Holm verdict", "effect", "unit",
               "95% interval", "n", "detectable", "seeds for paper effect", "detail"]
    for group in dict.fromkeys(r.group for r in results):
        rows = [[r.claim, f"**{r.verdict}**", _p(r.p_value), _p(r.adjusted_p),
                 r.adjusted_verdict, fmt(r.effect, sign=True), r.unit,
                 fmt_interval(r.ci_low, r.ci_high), r.n, fmt(r.detectable),
                 _needed(r), r.detail]
                for r in results if r.group == group]
        out.append(f"### {group}\n\n{markdown_table(headers, rows)}")
    c5 = _c5_per_dataset(results)
    if c5:
        out.append(c5)
    if notes:
        out.append("Pooling:\n\n" + "\n".join(f"- {n.strip()}" for n in notes) + "\n")
    out.append("Claims:\n\n" + "\n".join(f"- {c}: {t}" for c, t in CLAIMS.items()) + "\n")
    out.append(
        f"Each verdict is a one-sided t-test at {ALPHA:g} (so PASS means the 95 % interval lies "
        f"on the paper's side) and needs >= {MIN_SEEDS} seeds (pairs). Holm's rule over the "
        f"{sum(r.p_value is not None for r in results)} tested claims of this report gives the "
        "adjusted verdict. 'detectable' is the smallest true effect the test finds with "
        f"{POWER:.0%} power at its n and observed seed spread; 'seeds for paper effect' the "
        f"seeds it would need for the paper's effect (its source in the JSON). C5's secondary "
        f"detail tests equivalence within +-{EQUIVALENCE_MARGIN:g} point (TOST). "
        f"Statistics: {STATS_BACKEND}.\n")
    return "\n".join(out)


def _c5_per_dataset(results: Sequence[ClaimResult]) -> str:
    """The paper's Fig. 7 also says the running buffer helps more on CIFAR10-DVS than on
    CIFAR-10: the measured gain per dataset, side by side."""
    c5 = [r for r in results if r.claim == "C5" and r.effect is not None]
    if not c5:
        return ""
    parts = [f"{r.dataset} {fmt(r.effect, sign=True)} {fmt_interval(r.ci_low, r.ci_high)} "
             f"(n={r.n}, {r.verdict})" for r in c5]
    gains = {r.dataset: r for r in c5}
    order = ""
    if {"cifar10", "cifar10-dvs"} <= set(gains):
        dvs, cifar = gains["cifar10-dvs"], gains["cifar10"]
        order = (" The paper's order (CIFAR10-DVS > CIFAR-10) "
                 + ("holds in the means." if dvs.effect > cifar.effect else
                    "does not hold in the means."))
    return ("C5 per dataset, running - batch statistics (points): " + "; ".join(parts)
            + "." + order + "\n")


def _needed(r: ClaimResult) -> str:
    if r.target is None:
        return f"n/a ({r.target_source})" if r.target_source else "n/a (no paper effect)"
    if r.seeds_needed is None:
        return f"n/a for {fmt(r.target, sign=True)} (no seed spread measured yet)"
    return f"{r.seeds_needed} for {fmt(r.target, sign=True)}"


def plan_markdown(results: Sequence[ClaimResult], seeds: Sequence[int]) -> str:
    """The seeds each claim would need for the paper's effect, and the params change that adds
    them. ``seeds``: the seeds the runs already have."""
    needing = [r for r in results if r.seeds_needed is not None]
    lines = ["## Seeds needed for the paper's effects\n"]
    if not needing:
        lines.append("No claim has a paper effect and a measured seed spread yet: run at least "
                     "2 seeds of each compared method first.\n")
        return "\n".join(lines)
    rows = [[r.group, r.claim, fmt(r.target, sign=True), r.target_source, r.n,
             fmt(r.detectable), r.seeds_needed] for r in needing]
    lines.append(markdown_table(["setting", "claim", "paper effect", "source", "seeds now",
                                 "detectable now", "seeds needed"], rows))
    most = max(r.seeds_needed for r in needing)
    have = sorted(set(int(s) for s in seeds))
    if most <= len(have):
        lines.append(f"\nThe runs already have {len(have)} seeds: enough for every effect.\n")
        return "\n".join(lines)
    start = max(have) + 1 if have else 0
    new = have + list(range(start, start + most - len(have)))
    listed = "[" + ", ".join(map(str, new)) + "]"
    lines.append(f"\nTo reach {most} seeds, in the pipeline that wrote these runs: set "
                 f"`seeds: {listed}` in its params.yaml and `dvc repro`, or "
                 f"`dvc exp run -S 'seeds={listed}'`. Existing seeds are kept (DVC reuses "
                 "their outputs).\n")
    if most > 30:
        lines.append(f"{most} seeds is a lot: the seed spread of these runs is large against the "
                     "paper's effect; a longer or paper-scale recipe usually spreads less.\n")
    return "\n".join(lines)


def batch_statistics_markdown(runs: pd.DataFrame) -> str:
    """C5's companion: per setting and method with adaptive thresholds, test accuracy with the
    running buffer (``last_test_acc``; it does not depend on the test batch size) against each
    test batch's own statistics at test batch sizes 1, 16 and the run's default."""
    keys = [batch_metric_key(b) for b in BATCH_SIZES] + [BATCH_KEY]
    present = [k for k in keys if k in runs.columns]
    if not present or runs[present].isna().all().all():
        return ("## Running thresholds vs batch statistics\n\nNo run reports "
                f"{BATCH_KEY}: nothing to compare.\n")
    have = runs[runs[present].notna().any(axis=1)]
    rows = []
    setting = [c for c in ("dataset", "model", "T", "epochs", "method") if c in have.columns]
    for values, part in have.groupby(setting, sort=True):
        row = [*values, len(part), _mean_sd(part["last_test_acc"])]
        for key in keys:
            if key not in part or part[key].isna().all():
                row.append("not recorded")
            else:
                diff = (part["last_test_acc"] - part[key]).dropna()
                row.append(f"{_mean_sd(part[key])} (running {fmt(diff.mean(), sign=True)})")
        rows.append(row)
    headers = [*setting, "n", "running buffer", *(f"batch stats, test batch {b}"
                                                  for b in BATCH_SIZES), "batch stats, default"]
    missing = [k for k in keys if k not in present]
    note = (f" Not recorded by these runs: {', '.join(missing)} (written at run end by a "
            "trainer that evaluates at those batch sizes)." if missing else "")
    return ("## Running thresholds vs batch statistics\n\n" + markdown_table(headers, rows)
            + "\nTest accuracy (%) mean +- std over seeds; in brackets running - batch, mean "
              "over seeds. A test batch's own statistics get noisier as the batch shrinks "
              f"(one sample at size 1); the running buffer does not depend on it.{note}\n")


def _mean_sd(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    sd = values.std(ddof=1) if len(values) > 1 else math.nan
    return f"{fmt(values.mean())} +- {fmt(sd)}"

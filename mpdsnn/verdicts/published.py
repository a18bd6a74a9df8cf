"""Published numbers next to reproduced ones, judged: for each published entry and recipe of
its matching runs, "consistent", "below", "above" or "cannot tell", with the test and the reason.

The test uses the published mean, std and seed count where known:
- std and seed count known: Welch's t-test of reproduced - published (two-sided, 5 %);
- std known, seed count unknown: Welch with the published seed count taken as 2, the fewest a
  std needs (the widest published uncertainty: it can only make "below"/"above" and
  "consistent" harder to reach);
- std unknown (a single number): the published number taken as exact (one-sample t-test).
A significant difference gives "below" or "above". Otherwise "consistent" needs a two
one-sided test (TOST, each side at 2.5 %) to show the difference within +-``MARGIN`` points;
else "cannot tell". ``MARGIN`` = 0.5 point is below the smallest gain the paper claims for
DS-ATGO (+0.73 over MPD-AGL on CIFAR-10), so a "consistent" reproduction cannot hide a
difference as large as the paper's own improvement.

The accuracy compared follows the entry's model-selection rule: ``best-test`` entries are
compared with each run's ``best_test_acc``, ``last-epoch`` entries with ``last_test_acc``, and
entries whose rule is unstated with ``best_test_acc`` (the common practice of the official
codes checked; the ``compared`` column says so). Runs pool only within one recipe fingerprint.
"""

from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

from mpdsnn.errors import UserError
from mpdsnn.verdicts._table import fmt, fmt_interval, markdown_table
from mpdsnn.verdicts.match import label_rows, with_variants
from mpdsnn.verdicts.pooling import require_unique_seeds, short, with_recipe
from mpdsnn.verdicts.published_data import PUBLISHED, PublishedResult
from mpdsnn.verdicts.stats import ALPHA, STATS_BACKEND, t_interval, welch_from_stats

MARGIN = 0.5  # points; see the module docstring
ASSUMED_SEEDS = 2  # published seed count when unknown; see the module docstring
RUN_COLUMNS = ("method", "dataset", "model", "T", "best_test_acc", "last_test_acc")
RESULT_COLUMNS = ("method", "dataset", "model", "T", "published", "published_std",
                  "published_n", "selection", "compared", "epochs", "recipe", "n",
                  "reproduced_mean", "reproduced_std", "ci_low", "ci_high", "difference",
                  "test", "p_value", "p_equivalent", "detectable", "verdict", "reason",
                  "source", "basis")

_METRIC = {"best-test": "best_test_acc", "last-epoch": "last_test_acc",
           "unstated": "best_test_acc"}
_COMPARED = {"best-test": "best-test", "last-epoch": "last-epoch",
             "unstated": "best-test (default; rule unstated)"}


def published_results(dataset: str | None = None) -> list[PublishedResult]:
    """The registry, optionally for one dataset."""
    return [e for e in PUBLISHED if dataset is None or e.dataset == dataset]


def _check_columns(runs: pd.DataFrame) -> None:
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise UserError(f"the runs table lacks column(s) {', '.join(missing)}; build it with "
                        "mpdsnn.runfolder.reader.read_runs(RUN_FOLDERS).finished")


def judge(values: list[float], entry: PublishedResult) -> dict:
    """The test, its p-values, the verdict and its reason for reproduced ``values``."""
    iv = t_interval(values)
    out = {"n": iv.n, "reproduced_mean": iv.mean, "reproduced_std": iv.sd, "ci_low": iv.low,
           "ci_high": iv.high, "difference": iv.mean - entry.accuracy, "test": "-",
           "p_value": math.nan, "p_equivalent": math.nan, "detectable": math.nan}
    if iv.n < 2:
        return {**out, "verdict": "cannot tell",
                "reason": "1 reproduced seed: no spread to test with; run >= 2 seeds"}
    if entry.std is None:
        sd2, n2 = None, None
        out["test"] = "one-sample t (published std unknown: number taken as exact)"
    elif entry.n_seeds is None:
        sd2, n2 = entry.std, ASSUMED_SEEDS
        out["test"] = f"Welch (published seed count unknown: taken as {ASSUMED_SEEDS})"
    else:
        sd2, n2 = entry.std, entry.n_seeds
        out["test"] = f"Welch (published std {entry.std:g} over {entry.n_seeds} seeds)"
    w = welch_from_stats(iv.mean, iv.sd, iv.n, entry.accuracy, sd2, n2, MARGIN)
    out.update(p_value=w.p_two_sided, p_equivalent=w.p_equivalent, detectable=w.detectable)
    if w.p_two_sided < 2 * ALPHA:
        verdict = "below" if w.difference < 0 else "above"
        reason = f"difference {w.difference:+.2f}, p = {w.p_two_sided:.3g} < {2 * ALPHA:g}"
    elif w.p_equivalent < ALPHA:
        verdict = "consistent"
        reason = f"within +-{MARGIN:g} (TOST p = {w.p_equivalent:.3g})"
    else:
        verdict = "cannot tell"
        reason = (f"no significant difference (p = {w.p_two_sided:.2g}) but not shown within "
                  f"+-{MARGIN:g} (TOST p = {w.p_equivalent:.2g}); this comparison detects "
                  f"only differences >= {w.detectable:.2f}")
    return {**out, "verdict": verdict, "reason": reason}


def _base(entry: PublishedResult) -> dict:
    return {"method": entry.method, "dataset": entry.dataset, "model": entry.model,
            "T": entry.T, "published": entry.accuracy, "published_std": entry.std,
            "published_n": entry.n_seeds, "selection": entry.selection,
            "compared": _COMPARED[entry.selection], "source": entry.source,
            "basis": entry.basis}


def compare_published(runs: pd.DataFrame,
                      entries: Iterable[PublishedResult] = PUBLISHED) -> pd.DataFrame:
    """One row per published entry and recipe of its matching runs (columns
    :data:`RESULT_COLUMNS`).

    ``runs`` needs the columns of :data:`RUN_COLUMNS`; runs with non-default options (a
    ``variant`` column) or trained in bf16 form rows of their own, ``method (variant, bf16)``,
    and every row is labelled reproduction or reference (mpdsnn.verdicts.match); runs pool only
    when their ``recipe`` matches (a stand-in is derived when the column is absent). Entries
    without a matching run give one row with ``verdict == "not run"``."""
    _check_columns(runs)
    runs, entries = with_variants(runs, entries)
    runs = with_recipe(runs)
    require_unique_seeds(runs, ["method", "dataset", "model", "T"])
    rows = []
    for entry in entries:
        match = runs[(runs["method"] == entry.method) & (runs["dataset"] == entry.dataset)
                     & (runs["model"] == entry.model) & (runs["T"] == entry.T)]
        metric = _METRIC[entry.selection]
        match = match[match[metric].notna()]
        if match.empty:
            rows.append({**_base(entry), "epochs": math.nan, "recipe": "", "n": 0,
                         "test": "-", "verdict": "not run",
                         "reason": "no matching run"})
            continue
        for recipe, group in match.groupby("recipe", sort=True):
            epochs = (float(group["epochs"].iloc[0]) if "epochs" in group.columns
                      and group["epochs"].nunique() == 1 else math.nan)
            rows.append({**_base(entry), "epochs": epochs, "recipe": str(recipe),
                         **judge(group[metric].tolist(), entry)})
    return label_rows(pd.DataFrame(rows, columns=list(RESULT_COLUMNS)), runs)


def published_markdown(table: pd.DataFrame) -> str:
    """A Markdown rendering of :func:`compare_published`, sources as numbered notes."""
    not_run = table[table["verdict"] == "not run"] if not table.empty else table
    table = table[table["verdict"] != "not run"] if not table.empty else table
    skipped = ""
    if len(not_run):
        settings = sorted({f"{r.dataset}/{r.model}/T={r.T}" for r in not_run.itertuples()})
        skipped = (f"{len(not_run)} published entries have no run here ({', '.join(settings)}); "
                   "`mpdsnn.verdicts.PUBLISHED` lists them.\n")
    if table.empty:
        return ("## Published vs reproduced\n\nNo published result matches these runs' dataset, "
                f"model and T: nothing to compare. {skipped}")
    sources: dict[str, int] = {}
    rows = []
    for r in table.itertuples(index=False):
        note = sources.setdefault(f"{r.source}. Selection: {r.selection} ({r.basis}).",
                                  len(sources) + 1)
        published = fmt(r.published) + (f" +- {fmt(r.published_std)}"
                                         if r.published_std is not None
                                         and not pd.isna(r.published_std) else "")
        seeds = ("unknown" if r.published_n is None or pd.isna(r.published_n)
                 else str(int(r.published_n)))
        if r.n:
            reproduced = f"{fmt(r.reproduced_mean)} +- {fmt(r.reproduced_std)} ({r.n})"
            epochs = fmt(r.epochs, 0)
        else:
            reproduced, epochs = "not run", "-"
        rows.append([r.method, r.dataset, r.model, r.T, published, seeds, r.compared, epochs,
                     short(r.recipe) if r.recipe else "-", reproduced,
                     fmt(r.difference, sign=True), fmt_interval(r.ci_low, r.ci_high, sign=False),
                     f"**{r.verdict}**", r.reason, r.test, r.label, f"[{note}]"])
    headers = ["method", "dataset", "model", "T", "published", "published seeds",
               "accuracy compared", "epochs", "recipe", "reproduced mean +- std (n)",
               "difference", "95% t-interval", "verdict", "reason", "test", "row", "source"]
    notes = "\n".join(f"[{i}] {text}" for text, i in sources.items())
    return ("## Published vs reproduced\n\n" + markdown_table(headers, rows)
            + f"\nDifference = reproduced - published (points). Verdict: Welch's t-test "
              f"(two-sided, 5 %) for below/above; else 'consistent' when a TOST shows the "
              f"difference within +-{MARGIN:g} point (below the paper's smallest claimed gain, "
              f"+0.73), else 'cannot tell'. An unknown published seed count is taken as "
              f"{ASSUMED_SEEDS}; an unknown published std treats the number as exact. "
              f"{STATS_BACKEND}.\n\n{skipped}\n{notes}\n")

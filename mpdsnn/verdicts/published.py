"""Published numbers next to reproduced ones: for each published entry, the matching runs'
mean +- std over seeds, its 95 % t-interval, and whether the published number lies inside.

The accuracy compared follows the entry's model-selection rule: ``best-test`` entries are
compared with each run's ``best_test_acc``, ``last-epoch`` entries with ``last_test_acc``, and
entries whose rule is unstated with ``best_test_acc`` (the common practice of the official
codes checked; the ``compared`` column says so).
"""

from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

from mpdsnn.errors import UserError
from mpdsnn.verdicts._table import fmt, fmt_interval, markdown_table
from mpdsnn.verdicts.match import label_rows, with_variants
from mpdsnn.verdicts.published_data import PUBLISHED, PublishedResult
from mpdsnn.verdicts.stats import STATS_BACKEND, t_interval

RUN_COLUMNS = ("method", "dataset", "model", "T", "best_test_acc", "last_test_acc")
RESULT_COLUMNS = ("method", "dataset", "model", "T", "published", "published_std",
                  "published_n", "selection", "compared", "epochs", "n", "reproduced_mean",
                  "reproduced_std", "ci_low", "ci_high", "difference", "inside", "source",
                  "basis")

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


def _row(entry: PublishedResult, epochs: float, values: list[float]) -> dict:
    base = {"method": entry.method, "dataset": entry.dataset, "model": entry.model,
            "T": entry.T, "published": entry.accuracy, "published_std": entry.std,
            "published_n": entry.n_seeds, "selection": entry.selection,
            "compared": _COMPARED[entry.selection], "source": entry.source,
            "basis": entry.basis}
    if not values:
        return {**base, "epochs": math.nan, "n": 0, "reproduced_mean": math.nan,
                "reproduced_std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "difference": math.nan, "inside": "not run"}
    iv = t_interval(values)
    inside = ("yes" if iv.low <= entry.accuracy <= iv.high else "no") if iv.defined else "n/a"
    return {**base, "epochs": epochs, "n": iv.n, "reproduced_mean": iv.mean,
            "reproduced_std": iv.sd, "ci_low": iv.low, "ci_high": iv.high,
            "difference": iv.mean - entry.accuracy, "inside": inside}


def compare_published(runs: pd.DataFrame,
                      entries: Iterable[PublishedResult] = PUBLISHED) -> pd.DataFrame:
    """One row per published entry and training length (``epochs``) of its matching runs.

    ``runs`` needs the columns of :data:`RUN_COLUMNS` (``read_runs(...).finished`` gives them); with a
    ``variant`` column runs with non-default options form rows of their own (``method (variant)``,
    mpdsnn.verdicts.match), and with an
    ``epochs`` column runs of different lengths are kept apart. Entries without a matching
    run give one row with ``inside == "not run"``; ``n < 2`` gives ``"n/a"``.
    """
    _check_columns(runs)
    runs, entries = with_variants(runs, entries)
    rows = []
    for entry in entries:
        match = runs[(runs["method"] == entry.method) & (runs["dataset"] == entry.dataset)
                     & (runs["model"] == entry.model) & (runs["T"] == entry.T)]
        metric = _METRIC[entry.selection]
        values = match[metric].dropna()
        if values.empty:
            rows.append(_row(entry, math.nan, []))
            continue
        if "epochs" in match.columns:
            for epochs, group in match.groupby("epochs", sort=True):
                rows.append(_row(entry, float(epochs), group[metric].dropna().tolist()))
        else:
            rows.append(_row(entry, math.nan, values.tolist()))
    return label_rows(pd.DataFrame(rows, columns=list(RESULT_COLUMNS)), runs)


def published_markdown(table: pd.DataFrame) -> str:
    """A Markdown rendering of :func:`compare_published`, sources as numbered notes."""
    sources: dict[str, int] = {}
    rows = []
    for r in table.itertuples(index=False):
        note = sources.setdefault(f"{r.source}. Selection: {r.selection} ({r.basis}).",
                                  len(sources) + 1)
        published = fmt(r.published) + (f" +- {fmt(r.published_std)}"
                                         if r.published_std is not None
                                         and not pd.isna(r.published_std) else "")
        if r.n:
            reproduced = f"{fmt(r.reproduced_mean)} +- {fmt(r.reproduced_std)} ({r.n})"
            epochs = fmt(r.epochs, 0)
        else:
            reproduced, epochs = "not run", "-"
        rows.append([r.method, r.dataset, r.model, r.T, published, r.compared, epochs,
                     reproduced, fmt(r.difference, sign=True),
                     fmt_interval(r.ci_low, r.ci_high, sign=False), r.inside, r.label, f"[{note}]"])
    headers = ["method", "dataset", "model", "T", "published", "accuracy compared", "epochs",
               "reproduced mean +- std (n)", "difference", "95% t-interval", "published inside",
               "row", "source"]
    notes = "\n".join(f"[{i}] {text}" for text, i in sources.items())
    return ("## Published vs reproduced\n\n" + markdown_table(headers, rows)
            + f"\nDifference = reproduced - published (points). The interval is the 95 % "
              f"t-interval of the reproduced mean over seeds ({STATS_BACKEND}); n < 2 gives "
              f"n/a.\n\n{notes}\n")

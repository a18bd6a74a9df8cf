"""``mpdsnn claims``: the verdicts, the published comparison and, with ``--plan``, the seeds
each claim would need, printed as Markdown from run folders."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from mpdsnn.errors import UserError
from mpdsnn.verdicts.claims import ACCURACY_COLUMNS, ACCURACY_LABELS, claims_report, probe_tables
from mpdsnn.verdicts.published import compare_published, published_markdown
from mpdsnn.verdicts.render import batch_statistics_markdown, claims_markdown, plan_markdown
from mpdsnn.verdicts.stats import STATS_BACKEND


def _json_ready(table: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else
                 v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")]


def main(argv: Sequence[str] | None = None) -> int:
    """``mpdsnn claims RUNS... [--dataset D] [--accuracy best|last|val] [--plan] [--json OUT]``.

    Returns 0 whatever the verdicts (they are information), 2 on unusable input."""
    parser = argparse.ArgumentParser(
        prog="mpdsnn claims",
        description="Check the paper's claims (C1-C5) on run folders and compare with "
                    "published numbers.")
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or folders above them")
    parser.add_argument("--dataset", help="only this dataset")
    parser.add_argument("--accuracy", choices=sorted(ACCURACY_COLUMNS), default="best",
                        help="test accuracy compared by C3/C4 (default: best)")
    parser.add_argument("--plan", action="store_true",
                        help="also print the seeds each claim needs for the paper's effect "
                             "and the params change that adds them")
    parser.add_argument("--json", type=Path, dest="json_out", help="also write results here")
    args = parser.parse_args(argv)
    try:
        from mpdsnn.verdicts.runs import load_runs  # adapter until the run-folder package lands

        runs = load_runs(args.runs)
        report = claims_report(runs, *probe_tables(runs), dataset=args.dataset,
                               accuracy=args.accuracy)
        datasets = {args.dataset} if args.dataset else set(runs["dataset"])
        shown = runs[runs["dataset"].isin(datasets)]
        published = compare_published(runs)
        published = published[published["dataset"].isin(datasets)].reset_index(drop=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(claims_markdown(report.results, report.notes))
    if args.plan:
        print(plan_markdown(report.results, shown["seed"].tolist()))
    print(batch_statistics_markdown(shown))
    print(published_markdown(published))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "stats_backend": STATS_BACKEND,
            "accuracy": ACCURACY_LABELS[args.accuracy],
            "claims": [r.to_dict() for r in report.results],
            "pooling": report.notes,
            "published": _json_ready(published),
        }, indent=2))
    return 0

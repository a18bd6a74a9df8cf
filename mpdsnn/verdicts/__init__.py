"""Verdicts, not just numbers: the paper's claims checked on a runs table (PASS / FAIL /
INCONCLUSIVE with p-values, Holm-adjusted verdicts, effect sizes, intervals and power), and
published numbers judged against reproduced ones.

The functions take DataFrames (runs, probe tables); ``check_claims`` and ``mpdsnn claims``
read run folders through :mod:`mpdsnn.runfolder.reader` (docs/run-folder.md). Nothing retrains.
"""

from mpdsnn.verdicts.claims import (
    CLAIMS,
    ClaimResult,
    ClaimsReport,
    check_claims,
    claims_from_runs,
    claims_report,
)
from mpdsnn.verdicts.published import compare_published, published_markdown, published_results
from mpdsnn.verdicts.published_data import PUBLISHED, PublishedResult
from mpdsnn.verdicts.render import (
    batch_metric_key,
    batch_statistics_markdown,
    claims_markdown,
    plan_markdown,
)

__all__ = [
    "CLAIMS",
    "PUBLISHED",
    "ClaimResult",
    "ClaimsReport",
    "PublishedResult",
    "batch_metric_key",
    "batch_statistics_markdown",
    "check_claims",
    "claims_from_runs",
    "claims_markdown",
    "claims_report",
    "compare_published",
    "plan_markdown",
    "published_markdown",
    "published_results",
]

"""Verdicts, not just numbers: the paper's claims checked on run folders (PASS / FAIL /
INCONCLUSIVE with effect sizes and intervals), and published numbers next to reproduced ones.

Everything here reads run folders (docs/run-folder.md) only; nothing retrains.
"""

from mpdsnn.verdicts.claims import (
    CLAIMS,
    ClaimResult,
    check_claims,
    claims_from_runs,
    claims_markdown,
    main,
)
from mpdsnn.verdicts.published import compare_published, published_markdown, published_results
from mpdsnn.verdicts.published_data import PUBLISHED, PublishedResult


__all__ = [
    "CLAIMS",
    "PUBLISHED",
    "ClaimResult",
    "PublishedResult",
    "check_claims",
    "claims_from_runs",
    "claims_markdown",
    "compare_published",

    "main",
    "published_markdown",
    "published_results",
]

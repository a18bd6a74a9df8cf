"""Markdown tables and number formatting shared by the verdict renderers (no tabulate needed)."""

from __future__ import annotations

import math
from typing import Any, Sequence


def fmt(value: Any, digits: int = 2, sign: bool = False) -> str:
    """A number with fixed decimals ("-" for None/NaN); other values as text."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return "-"
        return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return str(value)


def fmt_interval(low: float | None, high: float | None, digits: int = 2,
                 sign: bool = True) -> str:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "-"
    return f"[{fmt(low, digits, sign)}, {fmt(high, digits, sign)}]"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; pipes inside cells are escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, headers)) + " |",
             "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"

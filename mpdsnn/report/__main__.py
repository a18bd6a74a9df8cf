"""``python -m mpdsnn.report RUNS... --out reports``: the report stage as a command."""

from __future__ import annotations

import argparse
import logging
import sys

from mpdsnn.errors import UserError
from mpdsnn.report.page import build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpdsnn.report", description=__doc__)
    parser.add_argument("roots", nargs="+", help="folders holding run folders (e.g. runs/)")
    parser.add_argument("--out", default="reports", help="output folder (default: reports)")
    parser.add_argument("--html-plots", action="store_true",
                        help="also write plots/accuracy_curves.html, interactive and self-contained "
                             "(about 1 MB); the PNG is always written")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = build_report(args.roots, args.out, html_plots=args.html_plots)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The report stage as a command.

    python -m mpdsnn.report build RUNS... [--out reports] [--html-plots]
    python -m mpdsnn.report render-vega SPEC.json OUT_DIR   # e.g. `dvc plots diff --show-vega` output
    python -m mpdsnn.report dvc-templates .dvc/plots        # by_method.json + offline.html for `dvc plots`
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from mpdsnn.errors import UserError
from mpdsnn.report import vega
from mpdsnn.report.page import build_report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mpdsnn.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="tables, figures and the page from run folders")
    build.add_argument("roots", nargs="+", help="folders holding run folders (e.g. runs/)")
    build.add_argument("--out", default="reports", help="output folder (default: reports)")
    build.add_argument("--html-plots", action="store_true",
                       help="also write plots/accuracy_curves.html, interactive and self-contained "
                            "(about 1 MB); the PNG is always written")
    render = sub.add_parser("render-vega", help="render a Vega-Lite JSON spec to PNG and HTML offline")
    render.add_argument("spec", type=Path)
    render.add_argument("out_dir", type=Path)
    templates = sub.add_parser("dvc-templates", help="write by_method.json and offline.html for `dvc plots`")
    templates.add_argument("folder", type=Path, help="e.g. .dvc/plots")
    return parser


def _render(spec_path: Path, out_dir: Path) -> list[Path]:
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read a Vega-Lite spec from {spec_path} ({err}); pass a JSON file, "
                        "e.g. from `dvc plots diff --targets NAME --show-vega > spec.json`")
    return list(vega.render(spec, out_dir, stem=spec_path.stem, html=True).values())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "build":
            written = [build_report(args.roots, args.out, html_plots=args.html_plots).readme]
        elif args.command == "render-vega":
            written = _render(args.spec, args.out_dir)
        else:
            written = list(vega.write_dvc_templates(args.folder).values())
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

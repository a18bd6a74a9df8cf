"""``python -m mpdsnn.report``: kept for old scripts; every form is a ``mpdsnn`` command.

    python -m mpdsnn.report build RUNS... [--out DIR]  ->  mpdsnn report RUNS... [--out DIR]
    python -m mpdsnn.report render-vega SPEC OUT_DIR  ->  mpdsnn plots render-vega SPEC OUT_DIR
    python -m mpdsnn.report dvc-templates FOLDER      ->  mpdsnn plots dvc-templates FOLDER
"""

from __future__ import annotations

import sys

from mpdsnn.cli import main


def translate(argv: list[str]) -> list[str]:
    if argv and argv[0] == "build":
        return ["report", *argv[1:]]
    if argv and argv[0] in ("render-vega", "dvc-templates"):
        return ["plots", *argv]
    return ["report", *argv]


if __name__ == "__main__":
    sys.exit(main(translate(sys.argv[1:])))

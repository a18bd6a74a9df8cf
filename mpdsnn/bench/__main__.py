"""``python -m mpdsnn.bench ARGS``: the same as ``mpdsnn bench ARGS`` (one command line)."""

import sys

from mpdsnn.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))

"""``python -m mpdsnn ARGS``: the same as ``mpdsnn ARGS``, for environments where the console
script is not on PATH (a bare GPU image with the package on PYTHONPATH)."""

import sys

from mpdsnn.cli import main

sys.exit(main())

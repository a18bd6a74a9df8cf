"""``python -m mpdsnn.bench``: the same as ``mpdsnn bench``."""

import logging
import sys

from mpdsnn.bench import main

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
sys.exit(main())

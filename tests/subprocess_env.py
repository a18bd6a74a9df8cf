"""The environment of a test that runs ``dvc``, ``git`` or ``mpdsnn`` as subprocesses, as a user
would: this interpreter's bin first on PATH (so ``dvc`` and ``mpdsnn`` are this venv's), one
thread, no DVC analytics, a git identity, and no MLFLOW_TRACKING_URI leaking in from outside."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               DVC_NO_ANALYTICS="1", OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org")
    return env

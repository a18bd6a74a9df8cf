"""A copy of this checkout's package and default pipeline in a temporary project, for tests that
run the real ``dvc repro`` on it (tests/test_dvc_injection.py, tests/test_pipeline_e2e.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def copy_default_pipeline(root: Path, methods: list[str]) -> dict:
    """Copy ``mpdsnn``, ``baselines`` and ``dvc.yaml`` into ``root``; return the default
    params cut to ``methods`` on digits with seed 0, for the caller to adjust and write."""
    for name in ("mpdsnn", "baselines"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(methods=methods, datasets_run=["digits"], seeds=[0])
    return params


def write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

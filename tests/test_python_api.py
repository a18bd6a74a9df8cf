"""docs/python-api.md is executed as written: every ``>>>`` line runs (real training on the
embedded digits, in an empty working folder) and every expected output is checked."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import matplotlib
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


@pytest.mark.slow
def test_the_python_api_walkthrough_runs_as_written(tmp_path, monkeypatch):
    pytest.importorskip("spikingjelly")
    matplotlib.use("Agg")  # seaborn draws through pyplot; no display in CI
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(DOC), module_relative=False, encoding="utf-8",
                              optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} example(s) of {DOC.name} failed (printed above)"
    assert result.attempted >= 50  # the whole walkthrough ran, not a truncated page
    metrics = json.loads((tmp_path / "runs/ds-atgo/seed0/metrics.json").read_text())
    assert {"activation_sparsity", "synaptic_operations", "footprint_bytes"} <= set(metrics)
    assert (tmp_path / "figures/firing_rate_by_timestep.png").stat().st_size > 10_000

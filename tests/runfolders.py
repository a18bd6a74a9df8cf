"""Run folders for tests, written by the real writer (:class:`mpdsnn.runfolder.RunWriter`), so
fixtures can never drift from what training writes. The scenario modules (synthetic_runs,
verdict_runs) choose the numbers; this module alone writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mpdsnn.methods import method_options
from mpdsnn.runfolder.writer import RunWriter, recipe_record

ENV = {"git_commit": "0" * 40, "git_dirty": False, "python": "3.12.3",
       "packages": {"torch": "2.14.1", "numpy": "2.4.6", "mpdsnn": "0.1.0"},
       "platform": "Linux-6.8-x86_64", "processor": "test CPU", "device_name": "cpu",
       "data_fingerprint": "test", "started_at": "2026-01-01T00:00:00"}


def write_run_folder(path: Path, config: dict[str, Any], history: pd.DataFrame,
                     metrics: dict[str, Any] | None, env: dict[str, Any] | None = None,
                     layers: pd.DataFrame | None = None, timesteps: pd.DataFrame | None = None,
                     hist: tuple[np.ndarray, np.ndarray, list[str]] | None = None) -> Path:
    """One run folder; ``metrics=None`` leaves it unfinished (as a crash would)."""
    writer = RunWriter(path)
    writer.start(config, {**ENV, **(env or {})}, recipe_record(config, method_options(config["method"])))
    if metrics is None:
        return path
    writer.write_history(history.to_dict("records"))
    if layers is not None and timesteps is not None and hist is not None:
        writer.write_probes(layers, timesteps, *hist)
    writer.finish(metrics)
    return path

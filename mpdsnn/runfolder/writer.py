"""``RunWriter``: the one writer of run folders (docs/run-folder.md), used by training.

Files appear in the contract's order: ``config.yaml``, ``env.json`` and ``recipe.json`` first
(the folder becomes a run), the tables and the model at the end, ``metrics.json`` last and
atomically (the run becomes finished). A crash in between leaves an unfinished run that readers
list but never aggregate.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mpdsnn.runfolder import layout
from mpdsnn.runfolder.fingerprint import code_hash, recipe_fingerprint, variant_options
from mpdsnn.runfolder.io import atomic_write_bytes, write_json, write_text, write_yaml


def recipe_record(config: dict[str, Any], method_defaults: dict[str, Any]) -> dict[str, Any]:
    """What ``recipe.json`` holds: the variant (method options that differ from the registered
    defaults), the training-code hash and the recipe fingerprint."""
    code = code_hash()
    return {"variant": variant_options(config.get("method_options") or {}, method_defaults),
            "code": code, "fingerprint": recipe_fingerprint(config, code)}


class RunWriter:
    """Writes one run folder; knows the file names so the trainer does not."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / name

    def start(self, config: dict[str, Any], env: dict[str, Any], recipe: dict[str, Any]) -> None:
        write_yaml(self.path(layout.CONFIG), config)
        write_json(self.path(layout.ENV), env)
        write_json(self.path(layout.RECIPE), recipe)

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        frame = pd.DataFrame(rows, columns=list(layout.HISTORY_COLUMNS))
        write_text(self.path(layout.HISTORY), frame.to_csv(index=False))

    def write_probes(self, layers: pd.DataFrame, timesteps: pd.DataFrame, hist_counts: np.ndarray,
                     hist_edges: np.ndarray, layer_names: list[str]) -> None:
        """All probed epochs' tables and the last probe's MPD histograms."""
        write_text(self.path(layout.LAYERS), layers.to_csv(index=False))
        write_text(self.path(layout.TIMESTEPS), timesteps.to_csv(index=False))
        atomic_write_bytes(self.path(layout.MPD_HIST), lambda f: np.savez_compressed(
            f, counts=hist_counts, edges=hist_edges, layer_names=np.array(layer_names)))

    def write_model(self, payload: dict[str, Any]) -> None:
        """``model.pt``: the weights with the config and code hash that made them, so
        ``mpdsnn evaluate`` can refuse weights that are not this run's."""
        atomic_write_bytes(self.path(layout.MODEL), lambda f: torch.save(payload, f))

    def finish(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Write ``metrics.json`` last: from here on the run counts as finished."""
        final = {**metrics, "status": layout.FINISHED,
                 "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_json(self.path(layout.METRICS), final)
        return final

    def files(self) -> list[Path]:
        """The run's own files that exist now (what is logged as artifacts): never checkpoints,
        locks, or anything outside the folder."""
        return [self.path(name) for name in layout.RUN_FILES if self.path(name).is_file()]

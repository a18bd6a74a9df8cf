"""The names of a run folder's files: the one place that knows them (docs/run-folder.md).

Training writes these through :class:`mpdsnn.runfolder.RunWriter`; reports, verdicts and
``mpdsnn evaluate`` read them through :mod:`mpdsnn.runfolder.reader`. Nothing else spells a
file name, so the contract changes in one place.
"""

from __future__ import annotations

CONFIG = "config.yaml"
"""The resolved training config (the first file written: its presence makes a folder a run)."""
ENV = "env.json"
"""Provenance: git commit, packages, machine, data fingerprint."""
RECIPE = "recipe.json"
"""What the run is a seed of: its variant (non-default method options), the training-code
hash, and the recipe fingerprint (config minus seed, plus the code hash)."""
HISTORY = "history.csv"
METRICS = "metrics.json"
"""Written last, atomically: ``status: finished`` marks a complete run."""
MODEL = "model.pt"
PROBES = "probes"
LAYERS = f"{PROBES}/layers.csv"
TIMESTEPS = f"{PROBES}/timesteps.csv"
MPD_HIST = f"{PROBES}/mpd_hist.npz"

RUN_FILES = (CONFIG, ENV, RECIPE, HISTORY, METRICS, MODEL, LAYERS, TIMESTEPS, MPD_HIST)
"""Every file a run folder may hold: what is logged as artifacts, and what `--out` may
already contain when a run is resumed. Checkpoints and locks are never among them."""

CHECKPOINT_DIR = "checkpoint"
"""Default resume-checkpoint folder inside the run folder (pipelines put it elsewhere)."""
CHECKPOINT = "last.pt"

FINISHED = "finished"

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc", "test_loss", "test_acc",
                   "seconds", "train_samples_per_s")
LAYER_COLUMNS = ("epoch", "layer", "layer_name", "neurons", "firing_rate", "grad_available",
                 "sops", "theta_mean", "width_mean")
TIMESTEP_COLUMNS = ("epoch", "layer", "layer_name", "t", "firing_rate", "grad_available",
                    "theta", "theta_train", "width", "u_mean", "u_std")
RUN_KEYS = ("dataset", "model", "T", "method", "seed")
"""What every run must name (in metrics.json or config.yaml)."""

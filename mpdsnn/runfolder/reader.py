"""Read run folders into tables, once: the only input of reports, verdicts and evaluation.

One definition of a run: a folder holding ``config.yaml`` (the first file training writes).
- **finished**: its ``metrics.json`` says ``status: finished``; only these enter aggregates.
- **unfinished**: no ``metrics.json`` yet, or another status; listed, never aggregated, so a
  crash cannot silently vanish from a report.
- everything else is **skipped, with the reason named**: a folder with results but no
  ``config.yaml`` (not written by mpdsnn), a run folder inside another run folder (runs never
  nest), a file that breaks the contract (docs/run-folder.md), and a duplicate: two finished
  runs of the same recipe and seed, of which the newest is used.

Every table carries the run keys ``run`` (folder relative to its root), ``pipeline``,
``dataset``, ``model``, ``T``, ``method`` and ``seed``; the runs table adds ``variant``
(non-default method options, as training recorded them), ``recipe`` (fingerprint: runs pool
only when it matches), ``code``, ``device_name`` and ``processor``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from mpdsnn.errors import UserError
from mpdsnn.paper import method_rank
from mpdsnn.runfolder import layout
from mpdsnn.runfolder.fingerprint import recipe_fingerprint, variant_label
from mpdsnn.runfolder.io import read_json, read_yaml

log = logging.getLogger(__name__)

SETTING = ["pipeline", "dataset", "model", "T"]
"""What makes numbers comparable: runs differing only in method and seed."""
KEYS = ["run", *SETTING, "method", "seed"]
DUPLICATE_KEY = ["dataset", "model", "T", "method", "variant", "recipe", "seed"]
PRECISION_COLUMNS = ["autocast_dtype", "tf32_matmul", "tf32_cudnn"]
"""What decides a run's numbers besides hardware (env.json since issue 16)."""
ENV_COLUMNS = ["python", "platform", "processor", "device_name", *PRECISION_COLUMNS, "world_size",
               "git_commit", "git_dirty", "data_fingerprint"]
REQUIRED_METRICS = ("epochs", "best_test_acc", "last_test_acc")
"""What a finished run's metrics.json must hold for any table or verdict."""
REQUIRED_COLUMNS = {
    layout.HISTORY: ("epoch", "test_acc"),
    layout.LAYERS: ("epoch", "layer", "layer_name", "firing_rate", "grad_available"),
    layout.TIMESTEPS: ("epoch", "layer", "t", "firing_rate"),
}


class ContractError(Exception):
    """A run's file breaks docs/run-folder.md; the message names the file and the problem."""


@dataclass(frozen=True)
class Skipped:
    """A folder that looks like a run but is not used, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class RunTables:
    """Everything a report or a verdict reads, loaded once. ``runs`` lists every run found
    (finished or not); the other tables hold finished runs only."""

    runs: pd.DataFrame
    history: pd.DataFrame
    layers: pd.DataFrame
    timesteps: pd.DataFrame
    mpd_hist: pd.DataFrame
    machines: pd.DataFrame
    packages: pd.DataFrame
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def finished(self) -> pd.DataFrame:
        return self.runs[self.runs["finished"]].reset_index(drop=True)

    @property
    def unfinished(self) -> pd.DataFrame:
        return self.runs[~self.runs["finished"]].reset_index(drop=True)

    @property
    def last_layers(self) -> pd.DataFrame:
        """``probes/layers.csv`` rows of each run's last probed epoch."""
        return _last_epoch(self.layers)

    @property
    def last_timesteps(self) -> pd.DataFrame:
        """``probes/timesteps.csv`` rows of each run's last probed epoch."""
        return _last_epoch(self.timesteps)

    def skipped_markdown(self) -> str:
        """The runs not used and why, for a report section ("" when none)."""
        lines = [f"- `{s.path}`: {s.reason}" for s in self.skipped]
        unfinished = [f"- `{r.run}`: unfinished ({r.status}); listed, not aggregated"
                      for r in self.unfinished.itertuples()]
        return "\n".join(lines + unfinished)


def _last_epoch(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table
    last = table.groupby("run")["epoch"].transform("max")
    return table[table["epoch"] == last].reset_index(drop=True)


# ----- finding runs -------------------------------------------------------------------------

def find_runs(roots: Iterable[str | Path]) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """``(root, run folder)`` pairs under the roots, sorted, and the folders skipped on the way
    (nested runs, results without a config). A root may itself be a run folder."""
    found: list[tuple[Path, Path]] = []
    skipped: list[Skipped] = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise UserError(f"run root {str(root)!r} is not a directory; pass the folder "
                            "training wrote (runs/ in the pipelines, or the --out of `mpdsnn train`)")
        for here, dirs, files in os.walk(root):
            here_path = Path(here)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if layout.CONFIG in files:
                found.append((root, here_path))
                skipped += _nested_runs(here_path)
                dirs.clear()
            elif layout.METRICS in files:
                skipped.append(Skipped(here_path, f"{layout.METRICS} without {layout.CONFIG}: "
                                                  "not a run folder written by mpdsnn"))
    return sorted(found, key=lambda p: (str(p[0]), str(p[1]))), skipped


def _nested_runs(run_dir: Path) -> list[Skipped]:
    nested = []
    for here, dirs, files in os.walk(run_dir):
        dirs[:] = sorted(dirs)
        if Path(here) != run_dir and (layout.CONFIG in files or layout.METRICS in files):
            nested.append(Skipped(Path(here), f"inside the run folder {run_dir}: runs never "
                                              "nest; move it out to use it"))
            dirs.clear()
    return nested


# ----- one run --------------------------------------------------------------------------------

def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; lists become JSON text, so every cell is a scalar."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def _read(path: Path, reader) -> dict[str, Any]:
    try:
        return reader(path)
    except UserError as err:
        raise ContractError(str(err)) from None


def _int(value: Any, key: str, source: Path) -> int:
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        return int(float(value))
    except (TypeError, ValueError):
        raise ContractError(f"{source}: {key} is {value!r}, not an integer") from None


def _recipe(run_dir: Path, config: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """recipe.json as training wrote it; for runs that predate it, a fingerprint of the config
    and the git commit, and the method options taken as the registered defaults."""
    path = run_dir / layout.RECIPE
    if path.exists():
        recorded = _read(path, read_json)
        variant = recorded.get("variant") or {}
        if not isinstance(variant, dict):
            raise ContractError(f"{path}: variant must be a mapping of method options")
        return {"variant": variant_label(variant), "recipe": str(recorded.get("fingerprint", "")),
                "code": str(recorded.get("code", ""))}
    code = f"git:{env.get('git_commit', 'unknown')}"
    return {"variant": "", "recipe": recipe_fingerprint(config, code), "code": code}


def read_run(root: Path, run_dir: Path, prefix_root: bool = False) -> dict[str, Any]:
    """One row of the runs table; a ContractError names the file that breaks the contract."""
    config = _read(run_dir / layout.CONFIG, read_yaml)
    metrics_path = run_dir / layout.METRICS
    metrics = _read(metrics_path, read_json) if metrics_path.exists() else {"status": "no metrics.json"}
    env_path = run_dir / layout.ENV
    env = _read(env_path, read_json) if env_path.exists() else {}
    rel = run_dir.relative_to(root)
    parts = rel.parts
    pipeline = config.get("pipeline") or ("/".join(parts[:-3]) if len(parts) >= 4 else "")
    name = rel.as_posix() if parts else run_dir.resolve().name  # a root that is itself a run
    run = f"{root.name}/{name}" if prefix_root and parts else name
    row: dict[str, Any] = {"run": run, "pipeline": str(pipeline)}
    for key in layout.RUN_KEYS:
        value = metrics.get(key, config.get(key))
        if value is None:
            raise ContractError(f"{run_dir} names no {key!r} in {layout.METRICS} or {layout.CONFIG}")
        row[key] = value
    source = metrics_path if "T" in metrics else run_dir / layout.CONFIG
    row["T"], row["seed"] = _int(row["T"], "T", source), _int(row["seed"], "seed", source)
    row["dataset"], row["model"], row["method"] = map(str, (row["dataset"], row["model"], row["method"]))
    row["status"] = str(metrics.get("status", "missing status"))
    row["finished"] = row["status"] == layout.FINISHED
    missing = [k for k in REQUIRED_METRICS if row["finished"] and metrics.get(k) is None]
    if missing:
        raise ContractError(f"{metrics_path} lacks {', '.join(missing)}")
    # a NaN accuracy would count in a table's n but not in its mean: such a run is broken
    not_finite = [k for k in REQUIRED_METRICS if row["finished"] and not _finite(metrics[k])]
    if not_finite:
        raise ContractError(f"{metrics_path}: {', '.join(not_finite)} is not a finite number")
    row.update(_recipe(run_dir, config, env))
    row.update({k: env.get(k) for k in ("device_name", "processor", *PRECISION_COLUMNS)})
    skip = set(row) | {"pipeline"}
    row.update({k: v for k, v in _flatten(metrics).items() if k not in skip})
    row.update(_flatten(config, "config."))
    row["path"] = str(run_dir.resolve())
    row["_env"] = env
    row["_mtime"] = metrics_path.stat().st_mtime if metrics_path.exists() else 0.0
    return row


def _finite(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def _csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise ContractError(f"{path} is not a readable CSV ({type(err).__name__})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ContractError(f"{path} lacks the column(s) {', '.join(missing)}")
    return frame


def _hist(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            counts, edges, names = npz["counts"], npz["edges"], npz["layer_names"]
    except (OSError, ValueError, KeyError) as err:
        raise ContractError(f"{path} is not a readable histogram file ({type(err).__name__})") from None
    if counts.ndim != 3 or edges.shape != (counts.shape[2] + 1,) or len(names) != counts.shape[0]:
        raise ContractError(f"{path}: expected counts [layers, T, bins], edges [bins + 1] and "
                            f"layer_names [layers]; found {counts.shape}, {edges.shape}, {names.shape}")
    layers, steps, bins = counts.shape
    layer, t, b = np.meshgrid(np.arange(layers), np.arange(steps), np.arange(bins), indexing="ij")
    return pd.DataFrame({
        "layer": layer.ravel(),
        "layer_name": np.asarray(names).astype(str)[layer.ravel()],
        "t": t.ravel() + 1,
        "left": edges[:-1][b.ravel()],
        "right": edges[1:][b.ravel()],
        "count": counts.ravel(),
    })


def _run_files(run_dir: Path) -> dict[str, pd.DataFrame | None]:
    """Every table file of one finished run, checked against the contract."""
    return {
        "history": _csv(run_dir / layout.HISTORY, REQUIRED_COLUMNS[layout.HISTORY]),
        "layers": _csv(run_dir / layout.LAYERS, REQUIRED_COLUMNS[layout.LAYERS]),
        "timesteps": _csv(run_dir / layout.TIMESTEPS, REQUIRED_COLUMNS[layout.TIMESTEPS]),
        "mpd_hist": _hist(run_dir / layout.MPD_HIST),
    }


# ----- all runs -------------------------------------------------------------------------------

def _drop_duplicates(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Of finished runs with the same recipe and seed, keep the newest; name the others."""
    kept: dict[tuple, dict[str, Any]] = {}
    skipped: list[Skipped] = []
    for row in sorted(rows, key=lambda r: (-r["_mtime"], r["path"])):
        if not row["finished"]:
            continue
        key = tuple(row[k] for k in DUPLICATE_KEY)
        if key in kept:
            skipped.append(Skipped(Path(row["path"]), f"duplicate of {kept[key]['path']} (same "
                                   "recipe and seed); the newest finished run is used"))
        else:
            kept[key] = row
    dropped = {str(s.path) for s in skipped}
    return [r for r in rows if r["path"] not in dropped], skipped


def _with_keys(frame: pd.DataFrame, row: dict[str, Any]) -> pd.DataFrame:
    keys = pd.DataFrame({k: [row[k]] * len(frame) for k in KEYS})
    return pd.concat([keys, frame.reset_index(drop=True)], axis=1)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def read_runs(roots: Iterable[str | Path]) -> RunTables:
    """Every run under ``roots`` and all their tables, read once; skipped folders named."""
    roots = [Path(r) for r in roots]
    if not roots:
        raise UserError("no run roots given; pass at least one folder of run folders (e.g. runs/)")
    pairs, skipped = find_runs(roots)
    rows, tables = [], {}
    for root, run_dir in pairs:
        try:
            row = read_run(root, run_dir, prefix_root=len(roots) > 1)
            if row["finished"]:
                tables[row["path"]] = _run_files(run_dir)
        except ContractError as err:
            skipped.append(Skipped(run_dir, f"breaks the run-folder contract: {err}"))
            continue
        rows.append(row)
    rows, duplicates = _drop_duplicates(rows)
    skipped += duplicates
    for item in skipped:
        log.warning("skipped %s", item)
    if not rows:
        reasons = "; ".join(map(str, skipped[:3]))
        raise UserError(f"no run folders ({layout.CONFIG} + {layout.METRICS}) under "
                        f"{', '.join(map(str, roots))}{': ' + reasons if reasons else ''}; train "
                        "first (`mpdsnn train` or `dvc repro`) or point at the folder it wrote")
    unfinished = [f"{r['run']} ({r['status']})" for r in rows if not r["finished"]]
    if unfinished:
        log.warning("%d unfinished run(s) listed but excluded from aggregates: %s",
                    len(unfinished), ", ".join(unfinished))
    history, layers, timesteps, hists, machines, packages = [], [], [], [], [], []
    for row in rows:
        env = row.pop("_env")
        row.pop("_mtime")
        machines.append({"run": row["run"], **{k: env.get(k) for k in ENV_COLUMNS}})
        packages += [{"run": row["run"], "package": p, "version": str(v)}
                     for p, v in (env.get("packages") or {}).items()]
        files = tables.get(row["path"])
        if files is None:
            continue
        for name, target in (("history", history), ("layers", layers),
                             ("timesteps", timesteps), ("mpd_hist", hists)):
            if files[name] is not None:
                target.append(_with_keys(files[name], row))
    runs = pd.DataFrame(rows)
    for column in ("val_selected_test_acc", "test_acc_batch_thresholds", "epochs"):
        if column not in runs.columns:
            runs[column] = np.nan
    runs = runs.sort_values(
        ["pipeline", "dataset", "model", "T", "method", "seed", "run"],
        key=lambda col: method_rank(col) if col.name == "method" else col,
    ).reset_index(drop=True)
    return RunTables(
        runs=runs,
        history=_concat(history, KEYS),
        layers=_concat(layers, KEYS),
        timesteps=_concat(timesteps, KEYS),
        mpd_hist=_concat(hists, [*KEYS, "layer", "layer_name", "t", "left", "right", "count"]),
        machines=pd.DataFrame(machines, columns=["run", *ENV_COLUMNS]),
        packages=pd.DataFrame(packages, columns=["run", "package", "version"]),
        skipped=skipped,
    )

"""Find run folders and load them into long pandas tables: the only input of every report.

A run folder (docs/run-folder.md) is a directory holding ``metrics.json`` and ``config.yaml``;
one that holds ``config.yaml`` and ``env.json`` but no ``metrics.json`` is a run that started and
never finished: it is listed too, so a crash cannot silently vanish from a report. Only runs whose
``metrics.json`` says ``status: finished`` enter aggregates.

Every table carries the run keys ``run`` (folder relative to its root), ``pipeline``, ``dataset``,
``model``, ``T``, ``method`` and ``seed``, so any of them can be grouped or merged on.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import yaml

from mpdsnn.errors import UserError

log = logging.getLogger(__name__)

SETTING = ["pipeline", "dataset", "model", "T"]
"""What makes numbers comparable: runs differing only in method and seed."""
KEYS = ["run", *SETTING, "method", "seed"]
METHOD_ORDER = ["ds-atgo", "at", "tgo", "vanilla"]
"""DS-ATGO and its ablations first (the paper's order), then every other method alphabetically."""
ABLATION = METHOD_ORDER


def order_methods(methods: Iterable[str]) -> list[str]:
    """Unique methods in report order: ds-atgo, at, tgo, vanilla, then the rest alphabetically."""
    present = set(methods)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def method_rank(methods: pd.Series) -> pd.Series:
    """Sort key for a column of method names (for ``DataFrame.sort_values(key=...)``)."""
    order = {m: i for i, m in enumerate(order_methods(methods))}
    return methods.map(order)


def find_run_dirs(roots: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """``(root, run_dir)`` for every run folder under the roots, sorted. Probe subfolders are
    not searched (a run folder never contains another run)."""
    found: list[tuple[Path, Path]] = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise UserError(
                f"run root {str(root)!r} is not a directory; pass the folder training wrote "
                "(runs/ in the pipelines, or the --out of `mpdsnn train`)"
            )
        for here, dirs, files in os.walk(root):
            names = set(files)
            if "config.yaml" in names and ({"metrics.json", "env.json"} & names):
                found.append((root, Path(here)))
                dirs.clear()
            else:
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found, key=lambda pair: (str(pair[0]), str(pair[1])))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}); rerun that training or delete the folder")
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML ({err}); rerun that training or delete the folder")
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping, found {type(data).__name__}")
    return data


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


def _run_row(root: Path, run_dir: Path, prefix_root: bool) -> dict[str, Any]:
    config = _read_yaml(run_dir / "config.yaml")
    metrics_path = run_dir / "metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.exists() else {"status": "no metrics.json"}
    rel = run_dir.relative_to(root)
    parts = rel.parts
    pipeline = config.get("pipeline") or ("/".join(parts[:-3]) if len(parts) >= 4 else "")
    name = rel.as_posix() if parts else run_dir.resolve().name  # a root that is itself a run
    run = f"{root.name}/{name}" if prefix_root and parts else name
    row: dict[str, Any] = {"run": run, "pipeline": str(pipeline)}
    for key in ("dataset", "model", "T", "method", "seed"):
        value = metrics.get(key, config.get(key))
        if value is None:
            raise UserError(
                f"run {run_dir} names no {key!r} in metrics.json or config.yaml; the run-folder "
                "contract (docs/run-folder.md) requires it"
            )
        row[key] = value
    row["T"], row["seed"] = int(row["T"]), int(row["seed"])
    row["dataset"], row["model"], row["method"] = map(str, (row["dataset"], row["model"], row["method"]))
    row["status"] = str(metrics.get("status", "missing status"))
    row["finished"] = row["status"] == "finished"
    skip = set(row) | {"pipeline"}
    row.update({k: v for k, v in _flatten(metrics).items() if k not in skip})
    row.update(_flatten(config, "config."))
    row["path"] = str(run_dir.resolve())
    return row


def load_runs(roots: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run folder (finished or not): run keys, ``status``, ``finished``, every
    metric of metrics.json, the config as ``config.<key>`` columns, and ``path``."""
    roots = [Path(r) for r in roots]
    if not roots:
        raise UserError("no run roots given; pass at least one folder of run folders (e.g. runs/)")
    pairs = find_run_dirs(roots)
    if not pairs:
        raise UserError(
            f"no run folders (metrics.json + config.yaml) under {', '.join(map(str, roots))}; "
            "train first (`mpdsnn train` or `dvc repro`) or point at the folder it wrote"
        )
    table = pd.DataFrame([_run_row(root, d, prefix_root=len(roots) > 1) for root, d in pairs])
    table = table.sort_values(
        ["pipeline", "dataset", "model", "T", "method", "seed", "run"],
        key=lambda col: method_rank(col) if col.name == "method" else col,
    ).reset_index(drop=True)
    return table


def finished_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that enter aggregates. Logs a warning naming every excluded run, and one for
    duplicated keys (the same setting, method and seed twice would count twice)."""
    done = runs[runs["finished"]]
    skipped = runs[~runs["finished"]]
    if len(skipped):
        names = ", ".join(f"{r.run} ({r.status})" for r in skipped.itertuples())
        log.warning("%d unfinished run(s) listed but excluded from aggregates: %s", len(skipped), names)
    dup = done[done.duplicated(KEYS[1:], keep=False)]
    if len(dup):
        log.warning("runs with identical keys are all counted: %s", ", ".join(dup["run"]))
    return done.reset_index(drop=True)


def _load_csvs(runs: pd.DataFrame, relpath: str) -> pd.DataFrame:
    """Concatenate ``<run>/<relpath>`` of every run that has it, run keys first."""
    frames = []
    for row in runs.itertuples(index=False):
        path = Path(row.path) / relpath
        if not path.exists():
            log.debug("%s has no %s", row.run, relpath)
            continue
        frame = pd.read_csv(path)
        keys = pd.DataFrame({k: [getattr(row, k)] * len(frame) for k in KEYS})
        frames.append(pd.concat([keys, frame], axis=1))
    if not frames:
        return pd.DataFrame(columns=KEYS)
    return pd.concat(frames, ignore_index=True)


def load_history(runs: pd.DataFrame) -> pd.DataFrame:
    """history.csv of each run, one row per run and epoch."""
    return _load_csvs(runs, "history.csv")


def load_layers(runs: pd.DataFrame) -> pd.DataFrame:
    """probes/layers.csv of each run, one row per run, probed epoch and spiking layer."""
    return _load_csvs(runs, "probes/layers.csv")


def load_timesteps(runs: pd.DataFrame) -> pd.DataFrame:
    """probes/timesteps.csv of each run, one row per run, probed epoch, layer and timestep."""
    return _load_csvs(runs, "probes/timesteps.csv")


def load_mpd_hist(runs: pd.DataFrame) -> pd.DataFrame:
    """probes/mpd_hist.npz of each run as a long table: one row per run, layer, timestep ``t``
    (1-based) and bin, with ``left``, ``right`` (bin edges) and ``count``."""
    frames = []
    for row in runs.itertuples(index=False):
        path = Path(row.path) / "probes" / "mpd_hist.npz"
        if not path.exists():
            continue
        with np.load(path, allow_pickle=False) as npz:
            counts, edges, names = npz["counts"], npz["edges"], npz["layer_names"]
        if counts.ndim != 3 or edges.shape != (counts.shape[2] + 1,) or len(names) != counts.shape[0]:
            raise UserError(
                f"{path}: expected counts [layers, T, bins], edges [bins + 1] and layer_names "
                f"[layers]; found {counts.shape}, {edges.shape}, {names.shape}"
            )
        layers, steps, bins = counts.shape
        layer, t, b = np.meshgrid(np.arange(layers), np.arange(steps), np.arange(bins), indexing="ij")
        frame = pd.DataFrame({
            "layer": layer.ravel(),
            "layer_name": np.asarray(names).astype(str)[layer.ravel()],
            "t": t.ravel() + 1,
            "left": edges[:-1][b.ravel()],
            "right": edges[1:][b.ravel()],
            "count": counts.ravel(),
        })
        for k in reversed(KEYS):
            frame.insert(0, k, getattr(row, k))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*KEYS, "layer", "layer_name", "t", "left", "right", "count"])
    return pd.concat(frames, ignore_index=True)


def load_env(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """env.json of each run: ``(machines, packages)``. ``machines`` has one row per run
    (python, platform, device_name, git_commit, git_dirty, data_fingerprint); ``packages`` one
    row per run and package (``package``, ``version``)."""
    machines, packages = [], []
    for row in runs.itertuples(index=False):
        path = Path(row.path) / "env.json"
        if not path.exists():
            continue
        env = _read_json(path)
        machines.append({"run": row.run, **{k: env.get(k) for k in (
            "python", "platform", "device_name", "git_commit", "git_dirty", "data_fingerprint")}})
        packages += [{"run": row.run, "package": p, "version": str(v)}
                     for p, v in (env.get("packages") or {}).items()]
    return (pd.DataFrame(machines, columns=["run", "python", "platform", "device_name", "git_commit",
                                            "git_dirty", "data_fingerprint"]),
            pd.DataFrame(packages, columns=["run", "package", "version"]))


@dataclass
class RunTables:
    """Everything a report reads. ``runs`` lists every run found; the other tables hold the
    finished runs only (unfinished ones are excluded from aggregates)."""

    runs: pd.DataFrame
    history: pd.DataFrame
    layers: pd.DataFrame
    timesteps: pd.DataFrame
    mpd_hist: pd.DataFrame
    machines: pd.DataFrame
    packages: pd.DataFrame

    @property
    def finished(self) -> pd.DataFrame:
        return self.runs[self.runs["finished"]].reset_index(drop=True)


def load_tables(roots: Iterable[str | Path]) -> RunTables:
    """Load every table of the run folders under ``roots`` (warns once about unfinished runs)."""
    runs = load_runs(roots)
    done = finished_runs(runs)
    machines, packages = load_env(runs)
    return RunTables(
        runs=runs,
        history=load_history(done),
        layers=load_layers(done),
        timesteps=load_timesteps(done),
        mpd_hist=load_mpd_hist(done),
        machines=machines,
        packages=packages,
    )

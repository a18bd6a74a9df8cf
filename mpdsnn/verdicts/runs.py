"""Read run folders (docs/run-folder.md) into one table: one row per finished run.

Verdicts are functions of these folders only: nothing here retrains or reads MLflow.

Columns of :func:`load_runs`: ``path``, ``method``, ``variant`` ("" when the run used the
method's registered defaults, else ``"key=value,..."`` of the options that differ), ``dataset``,
``model``, ``T``, ``epochs``, ``seed``, ``best_test_acc``, ``last_test_acc``,
``val_selected_test_acc``, ``test_acc_batch_thresholds`` (accuracies in percent, NaN when a run
does not report one).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from mpdsnn.errors import UserError

log = logging.getLogger(__name__)

REQUIRED_METRICS = ("method", "dataset", "model", "seed", "T", "epochs", "best_test_acc",
                    "last_test_acc")
OPTIONAL_METRICS = ("val_selected_test_acc", "test_acc_batch_thresholds")
COLUMNS = ("path", "method", "variant", "dataset", "model", "T", "epochs", "seed",
           *REQUIRED_METRICS[-2:], *OPTIONAL_METRICS)


def find_run_dirs(roots: Iterable[str | Path]) -> list[Path]:
    """Every folder holding a ``metrics.json`` at or below each root, sorted, without repeats."""
    found: dict[Path, None] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"{root}: no such folder; pass run folders written by `mpdsnn train` "
                            "or a folder above them (e.g. runs/<pipeline>/)")
        dirs = sorted(p.parent.resolve() for p in root.rglob("metrics.json"))
        if not dirs:
            raise UserError(f"no runs under {root}: no metrics.json found at or below it; pass "
                            "run folders written by `mpdsnn train` or a folder above them "
                            "(e.g. runs/<pipeline>/)")
        found.update(dict.fromkeys(dirs))
    return list(found)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); rerun or remove that run") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object (docs/run-folder.md)")
    return data


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _method_options(run_dir: Path) -> dict[str, Any]:
    config = run_dir / "config.yaml"
    if not config.is_file():
        log.warning("%s has no config.yaml: assuming the method's default options", run_dir)
        return {}
    data = yaml.safe_load(config.read_text()) or {}
    return dict(data.get("method_options") or {})


def variant_of(method: str, options: dict[str, Any]) -> str:
    """"" when ``options`` are the registered defaults of ``method``, else the differing ones.

    A method this installation does not register cannot be judged and counts as default."""
    from mpdsnn.methods import method_options  # imports torch: only when runs are read

    try:
        defaults = method_options(method)
    except UserError:
        return ""
    differ = {k: v for k, v in options.items() if k not in defaults or defaults[k] != v}
    return ",".join(f"{k}={differ[k]}" for k in sorted(differ))


def load_runs(roots: Iterable[str | Path]) -> pd.DataFrame:
    """The finished runs under ``roots`` as a table (columns in the module docstring)."""
    roots = list(roots)
    rows = []
    for run_dir in find_run_dirs(roots):
        metrics = _read_json(run_dir / "metrics.json")
        status = metrics.get("status")
        if status != "finished":
            log.warning("skipping %s: status %r, not 'finished'", run_dir, status)
            continue
        missing = [k for k in REQUIRED_METRICS if metrics.get(k) is None]
        if missing:
            raise UserError(f"{run_dir / 'metrics.json'} lacks {', '.join(missing)} "
                            "(see docs/run-folder.md); rerun that run with this mpdsnn")
        method = str(metrics["method"])
        rows.append({
            "path": str(run_dir),
            "method": method,
            "variant": variant_of(method, _method_options(run_dir)),
            "dataset": str(metrics["dataset"]),
            "model": str(metrics["model"]),
            "T": int(metrics["T"]),
            "epochs": int(metrics["epochs"]),
            "seed": int(metrics["seed"]),
            "best_test_acc": _float(metrics["best_test_acc"]),
            "last_test_acc": _float(metrics["last_test_acc"]),
            **{k: _float(metrics.get(k)) for k in OPTIONAL_METRICS},
        })
    if not rows:
        raise UserError(f"no finished runs under {', '.join(map(str, roots))}: every "
                        "metrics.json found has a status other than 'finished'")
    return pd.DataFrame(rows, columns=list(COLUMNS))


def require_unique_seeds(runs: pd.DataFrame) -> None:
    """Two runs of one setting and seed would count one seed twice: refuse, naming both."""
    key = [c for c in ("method", "variant", "dataset", "model", "T", "epochs", "seed")
           if c in runs.columns]
    if "seed" not in key:
        return
    dup = runs[runs.duplicated(key, keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        same = dup[(dup[key] == first[key]).all(axis=1)]
        where = "; ".join(same["path"]) if "path" in same.columns else f"{len(same)} rows"
        raise UserError(f"{len(same)} runs of {first['method']} on {first['dataset']} with seed "
                        f"{first['seed']} and the same model, T and epochs ({where}); pass only "
                        "one of them (e.g. a narrower folder)")


def _last_probe(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if table.empty:
        return None
    return table[table["epoch"] == table["epoch"].max()].reset_index(drop=True)


def last_layer_probe(run_dir: str | Path) -> pd.DataFrame | None:
    """``probes/layers.csv`` rows of the last probed epoch, or None without probes."""
    return _last_probe(Path(run_dir) / "probes" / "layers.csv")


def last_timestep_probe(run_dir: str | Path) -> pd.DataFrame | None:
    """``probes/timesteps.csv`` rows of the last probed epoch, or None without probes."""
    return _last_probe(Path(run_dir) / "probes" / "timesteps.csv")

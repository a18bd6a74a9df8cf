"""Pipeline level: where one real DVC train stage spends its wall time.

The stage is the default pipeline's first train stage (root ``dvc.yaml``'s train command on the
root ``params.yaml``: its first dataset, method and seed), run as DVC runs it, in a fresh process
in a temporary folder, MLflow tracking on to a temporary SQLite store. The trainer's
:class:`mpdsnn.phases.PhaseClock` (``metrics.json``) gives the in-process phases; what the
process did before the clock started (interpreter, imports, config) and after its record
(metrics and artifacts to MLflow, exit) is timed from here against the clock's timestamps.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

import mpdsnn
from mpdsnn.errors import UserError
from mpdsnn.phases import BETWEEN_EPOCHS, PHASES, STARTUP, TEARDOWN
from mpdsnn.runfolder import layout
from mpdsnn.runfolder.io import read_json, read_yaml

OTHER, WALL = "other", "wall"
SPLIT = (*PHASES, OTHER, WALL)
"""The rows of a stage's split: the six phases, the remainder, and the wall time they add up to."""


@dataclass(frozen=True)
class StageRun:
    """One timed stage: ``seconds`` (phase -> seconds, :data:`SPLIT`) and ``details``: what
    was run, and the parts timed from outside (``before_clock_s``: interpreter, imports and
    config, in start-up; ``after_record_s``: final MLflow logging and exit, in teardown)."""

    label: str
    T: int
    seconds: dict[str, float]
    details: dict[str, Any]


def split_phases(recorded: Mapping[str, Any], spawned_at: float, exited_at: float) -> dict[str, float]:
    """The stage's wall time (spawn to exit, ``time.time()``) split into :data:`SPLIT`.

    Start-up adds the time before the trainer's clock started; teardown the time after its
    record. ``other`` is what remains: the trainer's bookkeeping between epochs (checkpoint,
    epoch log) and the disagreement of the two clocks, so the rows add up to ``wall`` exactly.
    """
    inside = recorded["phase_seconds"]
    clock = recorded["phase_clock"]
    split = {phase: float(inside.get(phase, 0.0)) for phase in PHASES}
    split[STARTUP] += clock["started_at"] - spawned_at
    split[TEARDOWN] += exited_at - clock["recorded_at"]
    wall = exited_at - spawned_at
    split[OTHER] = wall - sum(split.values())
    split[WALL] = wall
    return split


def run_stage(epochs: int | None, device: str) -> StageRun:
    """Run the default pipeline's first train stage (``epochs``: None keeps params.yaml's) on
    ``device`` and split its wall time."""
    repo = Path(mpdsnn.__file__).resolve().parent.parent  # the checkout this package runs from
    params_path, dvc_path = repo / "params.yaml", repo / "dvc.yaml"
    if not params_path.is_file() or not dvc_path.is_file():
        raise UserError(f"the pipeline bench level runs the default pipeline's train stage and "
                        f"needs {params_path} and {dvc_path}; run it from a checkout of mpdsnn")
    params = read_yaml(params_path, "restore it from git")
    dataset, method, seed = params["datasets_run"][0], params["methods"][0], params["seeds"][0]
    stage = read_yaml(dvc_path, "run `mpdsnn pipeline render`")["stages"]["train"]["cmd"]
    values = {"item.dataset": dataset, "item.method": method, "item.seed": seed,
              "pipeline": params.get("pipeline", "default")}
    env_vars, argv = _command(stage, values)
    argv += ["--device", device] + (["--epochs", str(epochs)] if epochs is not None else [])
    with tempfile.TemporaryDirectory(prefix="mpdsnn-bench-stage-") as tmp:
        folder = Path(tmp)
        shutil.copy(params_path, folder / "params.yaml")
        uri = "sqlite:///" + (folder / "mlflow.db").as_posix()
        env = {**os.environ, **env_vars, "MLFLOW_TRACKING_URI": uri,
               "OMP_NUM_THREADS": str(torch.get_num_threads()),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
        store_s = _create_store(folder, env, params.get("train", {}).get("experiment", "mpdsnn"))
        with open(folder / "stage.log", "wb") as log:
            spawned_at = time.time()
            done = subprocess.run(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
            exited_at = time.time()
        if done.returncode != 0:
            raise UserError(f"the benchmarked train stage failed (exit {done.returncode}): "
                            f"{_last_line(folder / 'stage.log')}; run `{shlex.join(argv)}` by hand")
        run_dir = folder / argv[argv.index("--out") + 1]
        recorded = read_json(run_dir / layout.METRICS)
    seconds = split_phases(recorded, spawned_at, exited_at)
    trained = int(recorded["epochs"])
    plural = "s" if trained != 1 else ""
    label = f"{env_vars.get('MPDSNN_DVC_STAGE', 'train')} ({trained} epoch{plural}, {device})"
    details = {"stage": env_vars.get("MPDSNN_DVC_STAGE"), "command": shlex.join(argv),
               "epochs": trained, "device": device,
               "before_clock_s": recorded["phase_clock"]["started_at"] - spawned_at,
               "after_record_s": exited_at - recorded["phase_clock"]["recorded_at"],
               "between_epochs_s": recorded["phase_seconds"].get(BETWEEN_EPOCHS, 0.0),
               "store_created_s": store_s}
    return StageRun(label, int(recorded["T"]), seconds, details)


def _command(template: str, values: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """dvc.yaml's command with the stage's values: its leading ``NAME=value`` words as an
    environment, the rest as argv with ``mpdsnn`` run by this interpreter."""
    def value(match: re.Match) -> str:
        if match.group(1) not in values:
            raise UserError(f"dvc.yaml's train command uses ${{{match.group(1)}}}, which the "
                            "bench does not know; update mpdsnn/bench/stage.py")
        return str(values[match.group(1)])

    words = shlex.split(re.sub(r"\$\{([^}]+)\}", value, template))
    env = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, text = words.pop(0).partition("=")
        env[name] = text
    if not words or words[0] != "mpdsnn":
        raise UserError(f"dvc.yaml's train command does not run `mpdsnn` ({template!r}); "
                        "update mpdsnn/bench/stage.py")
    return env, [sys.executable, "-m", "mpdsnn.cli", *words[1:]]


def _create_store(folder: Path, env: dict[str, str], experiment: str) -> float:
    """Create the SQLite store and the stage's experiment first, untimed: a pipeline's stages
    share one store, so only its first stage ever pays for MLflow's table migrations."""
    code = ("import sys; from mpdsnn.tracking import open_tracker; "
            "open_tracker('bench store', sys.argv[1], {}).finish('FINISHED')")
    t0 = time.perf_counter()
    with open(folder / "store.log", "wb") as log:
        done = subprocess.run([sys.executable, "-c", code, experiment], cwd=folder, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise UserError(f"creating the bench's MLflow store failed: {_last_line(folder / 'store.log')}")
    return time.perf_counter() - t0


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"

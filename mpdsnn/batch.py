"""Train a pipeline's whole matrix in a few long-lived processes: ``mpdsnn pipeline train``.

DVC runs one stage at a time and each ``mpdsnn train`` process pays 5-8 s of imports before its
first batch: in the default pipeline most of the wall time was start-up on one of two cores.
Here ``--jobs`` worker processes (one per core) each train many runs, paying the imports once.
Every run records its *stage key* (the params sections its DVC stage reads, its matrix values
and the training-code hash, :func:`mpdsnn.runfolder.fingerprint.stage_key`); the stage's own
command then finds the finished run with the same key and returns at once, so ``dvc repro``
records the outputs without training twice. ``dvc repro`` alone still trains every stage.

A killed ``mpdsnn pipeline train`` (SIGTERM or SIGKILL to it alone) takes its workers with it:
each checks its pool's process every half second and, once it is gone, sends itself SIGTERM, so
a run in training stops at the next batch with its checkpoint kept, as after any SIGTERM, the
worker ends once the trainer has returned, and no queued run starts. Without that the workers
trained on, took the runs already queued to them and then waited on the queue for ever (seen:
two idle workers still there half an hour after the kill).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpdsnn.errors import UserError
from mpdsnn.lifecycle import POLL_SECONDS, is_alive, process_identity
from mpdsnn.runfolder import layout
from mpdsnn.runfolder.fingerprint import code_hash, stage_key
from mpdsnn.runfolder.io import read_json, read_yaml

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageRun:
    """One train stage of a pipeline: what ``train@<dataset>-<method>-<seed>`` runs."""

    dataset: str
    method: str
    seed: int
    out: Path
    checkpoint_dir: Path

    @property
    def name(self) -> str:
        return f"train@{self.dataset}-{self.method}-{self.seed}"


def stage_runs(params: dict[str, Any]) -> list[StageRun]:
    """The train matrix of a params.yaml, with the paths its dvc.yaml gives each stage."""
    pipeline = params.get("pipeline")
    if not pipeline:
        raise UserError("params.yaml names no pipeline; add `pipeline: <name>`")
    runs = []
    for dataset in params.get("datasets_run") or []:
        for method in params.get("methods") or []:
            for seed in params.get("seeds") or []:
                rel = Path(str(pipeline)) / dataset / method / f"seed{seed}"
                runs.append(StageRun(dataset, method, int(seed), Path("runs") / rel,
                                     Path("checkpoints") / rel))
    return runs


def finished_with_key(out: Path, key: str) -> dict[str, Any] | None:
    """The metrics of the finished run in ``out`` when it was trained for ``key``, else None."""
    metrics_path, recipe_path = out / layout.METRICS, out / layout.RECIPE
    if not (metrics_path.is_file() and recipe_path.is_file()):
        return None
    try:
        metrics, recipe = read_json(metrics_path), read_json(recipe_path)
    except UserError:
        return None
    return metrics if metrics.get("status") == layout.FINISHED and recipe.get("stage") == key else None


def _train_one(params_file: str, run: StageRun, key: str) -> dict[str, Any]:
    """In a worker: the same training a stage's ``mpdsnn train --params`` does."""
    if _POOL is not None and not is_alive(_POOL):
        os._exit(128 + signal.SIGTERM)  # queued by a pool that is gone: start nothing
    _TRAINING.set()
    try:
        return _train(params_file, run, key)
    finally:
        _TRAINING.clear()


def _train(params_file: str, run: StageRun, key: str) -> dict[str, Any]:
    import torch

    from mpdsnn.config import config_from_params
    from mpdsnn.train import train

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    os.environ["MPDSNN_DVC_STAGE"] = run.name  # the MLflow tag a stage would set
    config = config_from_params(Path(params_file), run.dataset, run.method, run.seed,
                                {"checkpoint_dir": str(run.checkpoint_dir)})
    start = time.perf_counter()
    metrics = train(config, run.out, resume="auto", stage_key=key)
    return {"best_test_acc": metrics["best_test_acc"], "seconds": time.perf_counter() - start}


_POOL: str | None = None  # in a worker: its pool's process (lifecycle.process_identity)
_TRAINING = threading.Event()  # in a worker: a run is in training


def _init_worker(pool: str | None) -> None:
    """Quiet logging; stop with the pool's process (see the module docstring)."""
    global _POOL
    logging.basicConfig(level=logging.WARNING, force=True)
    _POOL = pool
    if pool is not None:
        threading.Thread(target=_stop_with_pool, args=(pool,), name="stop-with-pool",
                         daemon=True).start()


def _stop_with_pool(pool: str) -> None:
    """Once ``pool`` is gone: SIGTERM this worker, which stops a run in training at its next
    batch (the trainer's handler) and ends an idle worker; a worker that was training gets a
    second SIGTERM once its trainer has returned and has put its signal handler back."""
    while is_alive(pool):
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
    while True:
        time.sleep(POLL_SECONDS)
        if not _TRAINING.is_set():
            os.kill(os.getpid(), signal.SIGTERM)


def train_all(params_file: Path, jobs: int) -> int:
    """Train every stage of ``params_file``'s matrix not yet finished with its key, ``jobs`` at a
    time; run from the pipeline's folder (paths are relative to it, as in its dvc.yaml).
    Returns the number of runs that failed."""
    params = read_yaml(params_file)
    code = code_hash()
    todo = [(run, stage_key(params, run.dataset, run.method, run.seed,
                            {"checkpoint_dir": str(run.checkpoint_dir)}, code))
            for run in stage_runs(params)]
    todo = [(run, key) for run, key in todo if finished_with_key(run.out, key) is None]
    total = len(stage_runs(params))
    log.info("%d of %d runs to train, %d at a time", len(todo), total, jobs)
    failed = 0
    context = multiprocessing.get_context("spawn")  # no torch state forked from this process
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context,
                             initializer=_init_worker,
                             initargs=(process_identity(os.getpid()),)) as pool:
        futures = {pool.submit(_train_one, str(params_file), run, key): run for run, key in todo}
        for done, future in enumerate(as_completed(futures), 1):
            run = futures[future]
            try:
                result = future.result()
                log.info("[%d/%d] %s: best test %.2f%% in %.1f s", done, len(todo), run.out,
                         result["best_test_acc"], result["seconds"])
            except Exception as exc:  # noqa: BLE001 - report every failed run, keep training the rest
                failed += 1
                log.error("[%d/%d] %s failed: %s", done, len(todo), run.out, exc)
    return failed

"""`mpdsnn pipeline train` (mpdsnn/batch.py): a killed pool takes its workers with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mpdsnn.runfolder import layout
from pipeline_copy import copy_default_pipeline, write_params
from subprocess_env import subprocess_env

RUNS = Path("runs/default/digits")


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_killing_the_pool_stops_its_workers_and_starts_no_queued_run(tmp_path):
    """SIGTERM to `mpdsnn pipeline train` alone (as `kill` or `pkill -f` sends it): the run in
    training stops with its checkpoint, no queued run starts, and no worker is left behind.
    Before, the workers trained on, took the run queued to them, then waited for ever."""
    params = copy_default_pipeline(tmp_path, ["vanilla", "fixed", "ds-atgo"])
    params["train"].update(probe_every=0, probe_samples=32, train_subset=640, test_subset=64,
                           tracking=False)
    params["datasets"]["digits"].update(epochs=40)
    write_params(tmp_path, params)
    pool = subprocess.Popen([sys.executable, "-m", "mpdsnn", "pipeline", "train", "--jobs", "1"],
                            cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = tmp_path / "checkpoints/default/digits/vanilla/seed0" / layout.CHECKPOINT
    deadline = time.monotonic() + 180
    while not checkpoint.exists() and time.monotonic() < deadline and pool.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), "the first run never wrote its first checkpoint"
    children = psutil.Process(pool.pid).children(recursive=True)
    assert children, "the pool has no worker"
    os.kill(pool.pid, signal.SIGTERM)  # the pool alone: its workers are not signalled
    pool.wait(timeout=30)
    deadline = time.monotonic() + 60
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [" ".join(p.cmdline())[:120] for p in _alive(children)]
    assert left == [], f"processes left running after the pool was killed: {left}"
    metrics = tmp_path / RUNS / "vanilla/seed0" / layout.METRICS
    assert not metrics.exists() or json.loads(metrics.read_text())["status"] != layout.FINISHED
    assert checkpoint.exists()  # stopped before its 40 epochs, to be resumed from here
    started = sorted(p.parent.name for p in (tmp_path / RUNS).glob("*/seed0"))
    assert started == ["vanilla"], f"queued runs started after the kill: {started}"

"""scripts/mlflow-postgres: a real PostgreSQL-backed `mlflow server` takes several training runs
logging at once with nothing lost (docs/tracking.md, "Several runs at once")."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from mpdsnn.tracking import FINAL_KEYS

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "mlflow-postgres"
RUNS = 3
EPOCHS = 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       reason="no PostgreSQL server binaries: apt-get install -y postgresql"),
    pytest.mark.skipif(importlib.util.find_spec("psycopg2") is None,
                       reason="psycopg2 (MLflow's PostgreSQL driver) is not installed: "
                              "pip install -r requirements.txt"),
]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, limit_s: float = 180) -> None:
    deadline = time.time() + limit_s
    while time.time() < deadline:
        assert server.poll() is None, f"scripts/mlflow-postgres exited with {server.returncode}"
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"no MLflow server at {url} after {limit_s:g} s")


@pytest.fixture
def postgres_server():
    """The script in a fresh folder; stopped with SIGTERM (which also stops PostgreSQL)."""
    # As root the cluster runs as `postgres`, which cannot enter pytest's 0700 tmp folders.
    folder = Path(tempfile.mkdtemp(prefix="mlflow-postgres-"))
    folder.chmod(0o755)
    port = _free_port()
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(folder / "script.log", "w")
    server = subprocess.Popen([str(SCRIPT), str(folder / "store"), "--port", str(port),
                               "--pg-port", str(_free_port())], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url, folder
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            assert server.wait(timeout=60) == 0, (folder / "script.log").read_text()[-3000:]
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
            log.close()
            shutil.rmtree(folder, ignore_errors=True)
    assert not list(folder.glob("store/pgdata/postmaster.pid")), "PostgreSQL was left running"


def test_parallel_training_runs_log_everything_to_postgres(postgres_server) -> None:
    from mlflow.tracking import MlflowClient

    url, folder = postgres_server
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "mpdsnn.cli", "train", "--method", "vanilla", "--dataset", "digits",
         "--seed", str(seed), "--epochs", str(EPOCHS), "--limit-batches", "2",
         "--set", "probe_every=1", "--set", "probe_samples=16", "--set", "device=cpu",
         "--set", "experiment=postgres-parallel", "--out", str(folder / f"run{seed}")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for seed in range(RUNS)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    seconds = time.perf_counter() - start
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
        assert "MLflow tracking off" not in out, out[-3000:]

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("postgres-parallel")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["seed"] for r in runs) == [str(s) for s in range(RUNS)]
    assert {r.info.status for r in runs} == {"FINISHED"}
    points = 0
    for run in runs:
        layers = pd.read_csv(Path(run.data.tags["run_folder"]) / "probes" / "layers.csv")
        epoch_keys = ["train/loss", "train/acc", "test/loss", "test/acc", "train/lr",
                      *{f"probe/firing_rate/{n}" for n in layers["layer_name"]}]
        for key in epoch_keys:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == list(range(1, EPOCHS + 1)), (run.data.tags["seed"], key, steps)
            points += len(steps)
        assert "energy_uj_per_sample" in run.data.metrics
        points += sum(1 for k in run.data.metrics if k in FINAL_KEYS)  # one point each
    print(f"\nPostgreSQL-backed MLflow server: {len(runs)} parallel runs FINISHED, "
          f"{points} metric points all present, {seconds:.1f} s for the runs")

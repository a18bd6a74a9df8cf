"""Seeds in parallel: two experiments queued with `dvc exp run --queue` and run by
`dvc queue start -j 2` train at the same time in DVC's temporary copies and both log to the one
SQLite store at the project root, without "database is locked"."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mpdsnn
from subprocess_env import subprocess_env

REPO = Path(mpdsnn.__file__).resolve().parents[1]
DVC = Path(sys.executable).parent / "dvc"

PARAMS = """\
train:
  seed: 0
  epochs: 6
  batch_size: 32
  train_subset: 512
  test_subset: 64
  probe_samples: 16
  probe_every: 1
  device: cpu
  experiment: dvc-queue
datasets:
  digits: {T: 2}
method_options:
  vanilla: {}
"""

DVC_YAML = """\
stages:
  train:
    cmd: >-
      PYTHONPATH={repo} {python} -m mpdsnn.cli train --params params.yaml --dataset digits
      --method vanilla --seed ${{train.seed}} --out runs/seed${{train.seed}}
    params:
      - train
    outs:
      - runs/seed${{train.seed}}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None or not DVC.exists(), reason="needs git and dvc")
def test_two_queued_experiments_share_one_store(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    env = subprocess_env()

    def sh(*args: str, timeout: float = 60) -> str:
        done = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    (root / "params.yaml").write_text(PARAMS)
    (root / "dvc.yaml").write_text(DVC_YAML.format(repo=REPO, python=sys.executable))
    sh("git", "init", "-q")
    sh(str(DVC), "init", "-q")
    # Create the store first (what docs/distributed.md advises): both runs then open it at
    # once and train side by side. A fresh store raced by two processes is test_tracking's job.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    client.create_experiment("dvc-queue", artifact_location=(root / "mlartifacts").as_uri())
    (root / ".gitignore").write_text("/mlflow.db\n/mlartifacts\n")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "pipeline")
    for seed in (1, 2):
        sh(str(DVC), "exp", "run", "--queue", "-n", f"seed{seed}", "-S", f"train.seed={seed}")
    try:
        # `dvc queue start` returns at once, but its worker daemons inherit its output: capturing
        # it in pipes would wait until both experiments finished (over 60 s on a busy machine).
        with (tmp_path / "queue-start.log").open("w") as out:
            started = subprocess.run([str(DVC), "queue", "start", "-j", "2"], cwd=root, env=env,
                                     stdout=out, stderr=subprocess.STDOUT, timeout=60)
        assert started.returncode == 0, (tmp_path / "queue-start.log").read_text()
        deadline = time.time() + 240
        status = ""
        while time.time() < deadline:
            status = sh(str(DVC), "queue", "status")
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(1)
    finally:
        subprocess.run([str(DVC), "queue", "stop", "--kill"], cwd=root, env=env,
                       capture_output=True, timeout=60)
    rows = [line.split() for line in status.splitlines() if line.split()[1:2] in (["seed1"], ["seed2"])]
    assert sorted((r[1], r[-1]) for r in rows) == [("seed1", "Success"), ("seed2", "Success")], status

    logs = {seed: sh(str(DVC), "queue", "logs", f"seed{seed}") for seed in (1, 2)}
    for log in logs.values():
        assert "MLflow run " in log and "finished: best test" in log, log
        assert "database is locked" not in log and "MLflow tracking off" not in log, log

    runs = client.search_runs([client.get_experiment_by_name("dvc-queue").experiment_id])
    assert sorted(r.data.tags["seed"] for r in runs) == ["1", "2"]
    assert all(r.info.status == "FINISHED" and "test/acc" in r.data.metrics for r in runs)
    history = {r.data.tags["seed"]: client.get_metric_history(r.info.run_id, "test/acc") for r in runs}
    assert all(len(h) == 6 for h in history.values())
    a, b = (r.info for r in runs)
    print(f"MLflow runs: {a.start_time}-{a.end_time} and {b.start_time}-{b.end_time}")
    assert a.start_time < b.end_time and b.start_time < a.end_time, "the runs did not overlap"

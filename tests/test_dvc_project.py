"""DVC as a newcomer meets it on a fresh clone: at the root it speaks of the default pipeline
only (each paper pipeline is a DVC project of its own), `dvc plots show` works, and a
single-stage experiment shows its accuracy in `dvc exp show` (docs/pipelines.md)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_env import subprocess_env

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs a git checkout to clone")]


def _run(args: list[str], cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(args, cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fresh") / "mpdsnn"
    _run(["git", "clone", "-q", str(REPO), str(path)], REPO)
    return path


def test_the_root_speaks_of_the_default_pipeline_only(clone):
    dag = _run(["dvc", "dag"], clone)
    assert "train@digits-ds-atgo-0" in dag and "nmnist" not in dag and "cifar" not in dag
    assert len(dag.splitlines()) < 40
    metrics = _run(["dvc", "metrics", "show"], clone)
    assert "reports/summary.json" in metrics and "pipelines/" not in metrics
    inside = _run(["dvc", "dag"], clone / "pipelines" / "nmnist-cpu")
    assert "prepare@nmnist" in inside and "digits" not in inside


def test_python_bytecode_beside_the_package_changes_no_stage(clone):
    """A normal interpreter (PYTHONDONTWRITEBYTECODE unset) writes ``__pycache__`` beside the
    modules the train stages depend on; DVC must not take it for changed code (.dvcignore),
    or every `dvc repro` after an `import mpdsnn` would rerun all 42 train stages."""
    before = _run(["dvc", "status", "train@digits-ds-atgo-0"], clone)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "mpdsnn", "baselines"], cwd=clone,
                   check=True)
    assert any((clone / "mpdsnn" / "neuron" / "__pycache__").iterdir())
    assert _run(["dvc", "status", "train@digits-ds-atgo-0"], clone) == before


def test_dvc_plots_show_works_on_a_fresh_clone(clone, tmp_path):
    _run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], clone)
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "test_accuracy" in page and "train_loss" in page


def test_a_single_stage_experiment_shows_its_accuracy(clone):
    _run(["dvc", "repro", "prepare@digits"], clone)  # what `make repro` leaves behind
    _run(["dvc", "exp", "run", "--temp", "--downstream", "-S", "datasets.digits.epochs=1",
          "-S", "+train.train_subset=256", "-S", "+train.test_subset=64", "-S", "+train.tracking=false",
          "train@digits-ds-atgo-0"], clone)
    table = _run(["dvc", "exp", "show", "--csv", "--drop", ".*", "--keep",
                  "Experiment|digits/ds-atgo/best_test_acc_mean"], clone)
    rows = list(csv.DictReader(io.StringIO(table)))
    experiment = [r for r in rows if r["Experiment"]]
    assert experiment, table
    assert 0.0 < float(experiment[0]["digits/ds-atgo/best_test_acc_mean"]) <= 100.0

"""The run folder as the one seam (docs/run-folder.md): one writer, one reader, one definition
of a run, and the rules that keep a run from being lost or mixed with another."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mpdsnn.cli import main
from mpdsnn.errors import UserError
from mpdsnn.runfolder import layout
from mpdsnn.runfolder.guard import RunLock, check_out_folder, lock_path
from mpdsnn.runfolder.reader import read_runs
from mpdsnn.verdicts import check_claims
from synthetic_runs import write_runs
from verdict_runs import write_family, write_run

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
ACC = {"vanilla": [93.0, 93.3, 93.1], "at": [93.8, 94.0, 93.9], "tgo": [94.3, 94.6, 94.4],
       "ds-atgo": [95.0, 95.2, 94.9]}
FAST = ["--dataset", "digits", "--batch-size", "64", "--no-tracking", "--set", "train_subset=128",
        "--set", "test_subset=64", "--set", "probe_samples=32"]


# --- one reader: what a run is, what is skipped and why ----------------------------------------

def test_report_and_claims_agree_on_nested_and_duplicate_runs(tmp_path, capsys):
    write_family(tmp_path, ACC)
    outer = tmp_path / "test/cifar10/ds-atgo/seed0"
    nested = write_run(outer, method="vanilla", seed=5, best=10.0)  # a run inside a run
    time.sleep(0.01)
    duplicate = write_run(tmp_path, method="vanilla", seed=1, best=93.3, pipeline="again")
    tables = read_runs([tmp_path])
    reasons = {str(s.path): s.reason for s in tables.skipped}
    assert "runs never nest" in reasons[str(nested)]
    old_copy = str((tmp_path / "test/cifar10/vanilla/seed1").resolve())
    assert f"duplicate of {duplicate.resolve()}" in reasons[old_copy]
    assert len(tables.finished) == 12 and tables.finished["seed"].max() == 2

    c3 = next(r for r in check_claims([tmp_path]) if r.claim == "C3")
    assert c3.n == 3  # paired seeds 0-2: the nested seed-5 run and the old copy are not used

    assert main(["report", str(tmp_path), "--out", str(tmp_path / "reports")]) == 0
    readme = (tmp_path / "reports" / "README.md").read_text()
    assert "2 folder(s) skipped" in readme and str(nested) in readme and old_copy in readme
    assert main(["claims", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(nested) in out and old_copy in out  # the claims name the same skipped folders


def test_broken_files_are_skipped_naming_the_file_and_the_rest_is_reported(tmp_path):
    write_family(tmp_path, {"vanilla": [90.0, 91.0], "ds-atgo": [92.0, 93.0]})
    binary = write_run(tmp_path, method="at", seed=0, best=80.0)
    (binary / layout.HISTORY).write_bytes(b"\x00\xff\xfe binary")
    bad_yaml = write_run(tmp_path, method="at", seed=1, best=80.0)
    (bad_yaml / layout.CONFIG).write_text("method: [unclosed\n")
    bad_t = write_run(tmp_path, method="at", seed=2, best=80.0)
    metrics = json.loads((bad_t / layout.METRICS).read_text())
    (bad_t / layout.METRICS).write_text(json.dumps({**metrics, "T": "four"}))
    foreign = tmp_path / "other-tool/result"
    foreign.mkdir(parents=True)
    (foreign / layout.METRICS).write_text("{}")
    nan = write_run(tmp_path, method="tgo", seed=5, best=80.0)
    metrics = json.loads((nan / layout.METRICS).read_text())
    (nan / layout.METRICS).write_text(json.dumps({**metrics, "best_test_acc": float("nan")}))
    tables = read_runs([tmp_path])
    reasons = {s.path.name if s.path != foreign else "foreign": s.reason for s in tables.skipped}
    assert "best_test_acc is not a finite number" in reasons["seed5"]
    assert "history.csv is not a readable CSV" in reasons["seed0"]
    assert "config.yaml is not valid YAML" in reasons["seed1"]
    assert "T is 'four', not an integer" in reasons["seed2"]
    assert "not a run folder written by mpdsnn" in reasons["foreign"]
    assert sorted(tables.finished["method"]) == ["ds-atgo", "ds-atgo", "vanilla", "vanilla"]


def test_runs_record_their_variant_and_recipe_and_pool_only_on_a_match(tmp_path):
    write_run(tmp_path, method="ds-atgo", seed=0, method_options={"tgo_rule": "code"})
    write_run(tmp_path, method="ds-atgo", seed=1, pipeline="p2")
    recorded = json.loads((tmp_path / "test/cifar10/ds-atgo/seed0" / layout.RECIPE).read_text())
    assert recorded["variant"] == {"tgo_rule": "code"} and len(recorded["code"]) == 16
    runs = read_runs([tmp_path]).finished.set_index("seed")
    assert runs.loc[0, "variant"] == "tgo_rule=code" and runs.loc[1, "variant"] == ""
    assert runs.loc[0, "recipe"] != runs.loc[1, "recipe"]


# --- the golden report: same run folders, same tables, CSVs and claims ---------------------------

def _golden_outputs(tmp_path: Path) -> dict[str, str]:
    runs = tmp_path / "runs"
    write_runs(runs, unfinished=False)
    assert main(["report", str(runs), "--out", str(tmp_path / "reports")]) == 0
    out = tmp_path / "reports"
    texts = {f"tables/{p.name}": p.read_text() for p in sorted((out / "tables").iterdir())}
    # the recipe fingerprint holds the training-code hash: it changes with any code edit
    texts["tables/comparison.csv"] = pd.read_csv(out / "tables/comparison.csv").drop(
        columns="recipe").to_csv(index=False)
    texts["summary.json"] = (out / "summary.json").read_text()
    texts["curves.csv"] = (out / "curves.csv").read_text()
    readme = (out / "README.md").read_text()
    texts["claims.md"] = readme[readme.index("## The paper's claims, checked"):readme.index("## Environment")]
    return texts


def test_the_default_report_is_unchanged_on_the_same_run_folders(tmp_path):
    """Regenerate with MPDSNN_UPDATE_GOLDEN=1 after a change of wording made on purpose."""
    texts = _golden_outputs(tmp_path)
    for name, text in texts.items():
        path = GOLDEN / name.replace("/", "__")
        if os.environ.get("MPDSNN_UPDATE_GOLDEN"):
            path.write_text(text)
        assert text == path.read_text(), f"{name} differs from {path}"


# --- one writer: --out rules, the lock, code changes, foreign weights ----------------------------

@pytest.mark.parametrize("out, message", [
    ("", "names the working directory"),
    (".", "names the working directory"),
    ("..", "is the working directory or one above it"),
    ("project", "is a project folder (it holds .git, dvc.yaml)"),
    ("holds-runs", "holds other runs"),
    ("user-files", "already holds files that are not a run's (history.csv, notes.txt)"),
    ("holds-runs/test/cifar10/vanilla/seed0/sub", "lies inside the run folder"),
])
def test_out_refuses_folders_where_results_would_be_lost_or_mixed(tmp_path, monkeypatch, out, message):
    (tmp_path / "project/.git").mkdir(parents=True)
    (tmp_path / "project/dvc.yaml").write_text("stages: {}\n")
    write_run(tmp_path / "holds-runs", method="vanilla", seed=0)
    (tmp_path / "user-files").mkdir()
    (tmp_path / "user-files/history.csv").write_text("my own data\n")
    (tmp_path / "user-files/notes.txt").write_text("notes\n")
    monkeypatch.chdir(tmp_path / "project" if out in ("", ".", "..") else tmp_path)
    with pytest.raises(UserError, match=re.escape(message)):
        check_out_folder(out)


def test_out_accepts_a_new_or_empty_folder_or_the_same_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    run = write_run(tmp_path / "runs", method="vanilla", seed=0)
    for out in ("new/run", "empty", str(run)):
        assert check_out_folder(out) == Path(out)


def test_training_into_a_folder_of_user_files_changes_nothing(tmp_path, capsys):
    folder = tmp_path / "mine"
    (folder / "probes").mkdir(parents=True)
    (folder / "history.csv").write_text("my own data\n")
    (folder / "probes/layers.csv").write_text("mine too\n")
    (folder / "notes.txt").write_text("x")
    assert main(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--out", str(folder)]) == 2
    assert "not a run's" in capsys.readouterr().err
    assert (folder / "history.csv").read_text() == "my own data\n"
    assert (folder / "probes/layers.csv").read_text() == "mine too\n"


def test_the_lock_outlives_a_deleted_run_folder(tmp_path):
    folder = tmp_path / "runs/r"
    folder.mkdir(parents=True)
    with RunLock(folder):
        shutil.rmtree(folder)  # what DVC does to a stage's outputs before rerunning it
        with pytest.raises(UserError, match=f"in use by another trainer \\(pid {os.getpid()}\\)"):
            with RunLock(folder):
                pass
    assert lock_path(folder).parent == tmp_path / "runs"
    with RunLock(folder):  # released with its holder
        pass


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_of_other_code(tmp_path, capsys, monkeypatch):
    from mpdsnn import train as train_module

    out = tmp_path / "run"
    monkeypatch.setattr(train_module.Trainer, "_finish", lambda *a: (_ for _ in ()).throw(
        RuntimeError("crash after the last checkpoint")))
    with pytest.raises(RuntimeError):
        main(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--out", str(out)])
    monkeypatch.undo()
    assert (out / layout.CHECKPOINT_DIR / layout.CHECKPOINT).exists()
    monkeypatch.setattr(train_module, "code_hash", lambda: "edited-code")
    args = ["train", "--method", "vanilla", *FAST, "--epochs", "1", "--out", str(out)]
    assert main([*args, "--resume"]) == 2
    assert "training code changed" in capsys.readouterr().err
    assert main([*args, "--resume-if-compatible"]) == 0  # what the pipelines pass
    assert "training code changed): starting afresh" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_refuses_weights_of_another_run(tmp_path, capsys):
    for T in (2, 4):
        assert main(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--T", str(T),
                     "--out", str(tmp_path / f"T{T}")]) == 0
    shutil.copy(tmp_path / "T2" / layout.MODEL, tmp_path / "T4" / layout.MODEL)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "T4")]) == 2
    err = capsys.readouterr().err
    assert "was not trained by this run" in err and "T: 2 vs 4" in err


@pytest.mark.slow
def test_a_finished_run_logs_only_its_own_files(tmp_path, capsys):
    from mpdsnn.runfolder.writer import RunWriter

    out = tmp_path / "run"
    assert main(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--out", str(out)]) == 0
    names = sorted(p.relative_to(out).as_posix() for p in RunWriter(out).files())
    assert names == sorted(layout.RUN_FILES)
    assert not (out / layout.CHECKPOINT_DIR).exists()  # nothing to resume: no empty folder left


# --- the layout: one reader, no registry on the analysis side ---------------------------------

def test_one_definition_of_finding_runs_and_no_registry_on_the_analysis_side():
    sources = {p: p.read_text() for p in (REPO / "mpdsnn").rglob("*.py")}
    finders = [p for p, text in sources.items() if re.search(r"^def (find_runs|find_run_dirs)\(", text, re.M)]
    assert [p.relative_to(REPO).as_posix() for p in finders] == ["mpdsnn/runfolder/reader.py"]
    analysis = [p for p in sources if p.relative_to(REPO / "mpdsnn").parts[0] in
                ("models", "report", "verdicts") or p.name == "reader.py"]
    importers = [p.relative_to(REPO).as_posix() for p in analysis
                 if re.search(r"^\s*(from|import) mpdsnn\.methods", sources[p], re.M)]
    assert importers == []
    spelled = [p.relative_to(REPO).as_posix() for p, text in sources.items()
               if p.parent.name != "runfolder" and re.search(r'"(metrics\.json|history\.csv|recipe\.json)"', text)]
    assert spelled == []  # file names live in mpdsnn/runfolder/layout.py only


# --- a pipeline stage dies with dvc ------------------------------------------------------------

def _trainers(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "train" in cmd and any(marker in part for part in cmd):
                found.append(int(proc.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_killing_dvc_stops_its_trainer_and_a_rerun_trains_once(tmp_path):
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "OMP_NUM_THREADS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    marker = f"killrun{os.getpid()}"
    (tmp_path / "dvc.yaml").write_text(f"""stages:
  train:
    cmd: MPDSNN_DVC_STAGE=train mpdsnn train --method vanilla --dataset digits --epochs 8
      --no-tracking --set train_subset=640 --set test_subset=64 --set probe_samples=32
      --out runs/{marker} --checkpoint-dir checkpoints/{marker} --resume-if-compatible
    outs:
      - runs/{marker}
      - checkpoints/{marker}:
          persist: true
          cache: false
""")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "stage"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    dvc = subprocess.Popen(["dvc", "repro"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = tmp_path / "checkpoints" / marker / layout.CHECKPOINT
    deadline = time.monotonic() + 180
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), "the stage never wrote its first checkpoint"
    trainers = _trainers(marker)
    assert len(trainers) == 1
    os.kill(dvc.pid, signal.SIGKILL)  # dvc alone, as a crashed or killed dvc
    dvc.wait()
    deadline = time.monotonic() + 60
    while _trainers(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _trainers(marker) == [], "the trainer kept running after dvc was killed"
    rerun = subprocess.run(["dvc", "repro"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    run = tmp_path / "runs" / marker
    metrics = json.loads((run / layout.METRICS).read_text())
    history = pd.read_csv(run / layout.HISTORY)
    assert metrics["status"] == "finished" and history["epoch"].tolist() == list(range(1, 9))


def test_a_stop_before_the_first_checkpoint_names_no_checkpoint(tmp_path, capsys, monkeypatch):
    from mpdsnn import train as train_module

    def stopped(self, *args, **kwargs):
        self._stop_signal = signal.SIGTERM
        raise train_module.Interrupted()

    monkeypatch.setattr(train_module.Trainer, "_train_epoch", stopped)
    assert main(["train", "--method", "vanilla", *FAST, "--epochs", "1", "--out", str(tmp_path / "r")]) == 143
    err = capsys.readouterr().err
    assert "no epoch had finished, so there is no checkpoint yet" in err and "last.pt" not in err


def test_training_never_imports_the_analysis_side():
    """The training side (what the code hash covers) imports nothing of the analysis side, so
    an edit there can neither change a run's numbers nor leave a stale recipe fingerprint."""
    from mpdsnn.runfolder.fingerprint import training_code_files

    analysis = r"mpdsnn\.(report|verdicts|bench|evaluate|pipeline|runfolder\.reader)\b"
    offenders = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in training_code_files()
                 for m in [re.search(rf"^\s*(from|import) {analysis}", p.read_text(), re.M)] if m
                 and p.name != "cli.py"]  # the command line dispatches to both sides, lazily
    assert offenders == []

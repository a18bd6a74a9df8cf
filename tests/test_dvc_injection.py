"""Shell injection through params.yaml (issue 13, item 9): a method name went unquoted into the
train stages' commands, so ``methods: ["vanilla;echo INJECTED >FILE;#"]`` ran the echo. Now the
first stage (``prepare``, which checks every name) stops the real ``dvc repro``, the commands
quote what they interpolate, and nothing is executed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from pipeline_copy import copy_default_pipeline, write_params
from subprocess_env import subprocess_env

REPO = Path(__file__).resolve().parents[1]
DVC_FILES = [REPO / "dvc.yaml", *sorted(REPO.glob("pipelines/*/dvc.yaml"))]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**subprocess_env(), "PYTHONPATH": str(cwd)}  # the copied package, not this checkout
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the default pipeline (digits, one seed) whose prepare stage has already run."""
    root = tmp_path_factory.mktemp("project")
    write_params(root, copy_default_pipeline(root, ["vanilla"]))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "pipeline"], ["dvc", "repro", "prepare"]):
        result = _run(cmd, root)
        assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.mark.parametrize("name", ["vanilla;echo INJECTED >FILE;#", "vanilla';echo INJECTED >FILE;'",
                                  "$(echo INJECTED >FILE)", "vanilla name"])
def test_an_injected_method_name_stops_dvc_repro_and_runs_nothing(project, name):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(methods=[name], datasets_run=["digits"], seeds=[0])
    params["method_options"][name] = {}
    write_params(project, params)
    result = _run(["dvc", "repro"], project)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"method {name!r} is not a safe name" in output, output
    assert "Running stage 'train@" not in output, output
    assert not list(project.rglob("FILE")), "the injected command ran"
    assert not (project / "runs").exists()


def test_every_stage_command_quotes_what_it_interpolates():
    """Each ``${...}`` in a ``cmd`` sits inside single quotes (the names are also checked, so
    none can hold a quote)."""
    for path in DVC_FILES:
        stages = yaml.safe_load(path.read_text())["stages"]
        for name, stage in stages.items():
            cmd = (stage.get("do") or stage)["cmd"]
            for word in cmd.split():
                if "${" in word:
                    value = word.split("=", 1)[1] if word.startswith("MPDSNN_DVC_STAGE=") else word
                    assert value.startswith("'") and value.endswith("'"), f"{path}: {name}: {word}"

"""A baseline from a separate, installed package: ``tests/plugin_pkg`` (method ``lsg``) is built
and installed into a temporary folder, then listed, trained and run in a real DVC pipeline by
subprocesses that see that folder on their path. Nothing in this repository names ``lsg``."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
PLUGIN_SRC = REPO / "tests" / "plugin_pkg"


def _env(*paths: Path) -> dict[str, str]:
    """This interpreter's environment with ``paths`` first on PYTHONPATH, then this checkout."""
    env = dict(os.environ, OMP_NUM_THREADS="1", DVC_NO_ANALYTICS="1",
               PYTHONDONTWRITEBYTECODE="1")
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), str(REPO), *rest])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_stray_processes():
    """A failed assertion must not leave the side-by-side subprocesses running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _STARTED.append(proc)
    return proc


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    """Wait for ``proc``; its stdout, or a failure that shows the command and both streams."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"{' '.join(proc.args)} ran over {timeout} s\n"
                    f"stdout:\n{stdout}\nstderr:\n{stderr}")
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} exited {proc.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    return stdout


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None,
         timeout: float = 120) -> str:
    return _finish(_start(args, env, cwd), timeout)


def _git_status() -> str | None:
    """``git status --porcelain`` of this checkout, or None outside a git checkout."""
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def _install_plugin(tmp_path: Path) -> Path:
    """Build and install the plugin offline into ``tmp_path/site`` (from a copy, so the build's
    ``build/`` and ``*.egg-info`` land in tmp_path, not in this repository)."""
    src = tmp_path / "plugin_src"
    shutil.copytree(PLUGIN_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                   "__pycache__"))
    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "--target", str(site), str(src)], _env())
    assert (site / "mpdsnn_lsg_plugin.py").is_file()
    return site


def _expected_widths(run: Path) -> dict[str, float]:
    """The LSG width of each spiking layer from the decay the run saved:
    ``2 * Vth * sqrt(1 + sigmoid(w)^2)`` with Vth = 1."""
    state = torch.load(run / "model.pt", map_location="cpu", weights_only=False)["state_dict"]
    return {key.removesuffix(".decay.w"): 2 * math.sqrt(1 + torch.sigmoid(w).item() ** 2)
            for key, w in state.items() if key.endswith(".decay.w")}


def test_lsg_absent_from_repo_and_its_gradient_window():
    """The plugin module's rule, imported straight from its source folder (no install): width
    ``2 sqrt(1 + beta^2)`` from the layer's decay, gradient ``1/w`` inside ``|U - Vth| <= w/2``.
    Before the import, this repository alone does not know ``lsg``: nothing here was edited."""
    script = textwrap.dedent(f"""
        import json, sys, torch
        from mpdsnn.errors import UserError
        from mpdsnn.methods import LayerContext, create_method, list_methods

        bare = list_methods()
        sys.path.insert(0, {str(PLUGIN_SRC)!r})
        import mpdsnn_lsg_plugin  # registers "lsg" on import

        node = create_method("lsg", init_tau=0.5).neuron(LayerContext(T=1))
        x = torch.linspace(-1.0, 3.0, 401).reshape(1, 401).requires_grad_()
        node(x).sum().backward()
        fixed = create_method("lsg", learnable_decay=False).neuron(LayerContext(T=1))
        try:
            create_method("lsg", vth=0.0)
            error = None
        except UserError as exc:
            error = str(exc)
        print(json.dumps({{"x": x.detach()[0].tolist(), "grad": x.grad[0].tolist(),
                          "learnable": [n for n, _ in node.named_parameters()],
                          "fixed_params": [n for n, _ in fixed.named_parameters()],
                          "error": error, "bare": bare, "with_plugin": list_methods()}}))
    """)
    stdout = _run([sys.executable, "-c", script], _env())
    out = json.loads(stdout.strip().splitlines()[-1])
    assert "ds-atgo" in out["bare"] and "lsg" not in out["bare"]
    assert sorted([*out["bare"], "lsg"]) == out["with_plugin"]
    width = 2 * math.sqrt(1 + 0.5**2)  # beta = sigmoid(logit(0.5)) = 0.5
    for x, grad in zip(out["x"], out["grad"]):
        inside = abs(x - 1.0) <= width / 2 - 1e-5
        outside = abs(x - 1.0) > width / 2 + 1e-5
        if inside:
            assert grad == pytest.approx(1 / width, rel=1e-5), x
        elif outside:
            assert grad == 0.0, x
    assert out["learnable"] == ["decay.w"] and out["fixed_params"] == []
    assert out["error"] == "lsg's vth must be positive, got 0.0"


@pytest.mark.slow
def test_installed_plugin_lists_trains_and_runs_in_dvc(tmp_path):
    before = _git_status()
    site = _install_plugin(tmp_path)
    env = _env(site)
    project = tmp_path / "project"
    _dvc_project(project, site / "mpdsnn_lsg_plugin.py")
    run = tmp_path / "run"
    dvc = [sys.executable, "-m", "dvc"]
    # Independent processes run side by side: each is mostly Python start-up and imports.
    listing = _start([sys.executable, "-m", "mpdsnn.cli", "list"], env)
    training = _start([sys.executable, "-m", "mpdsnn.cli", "train", "--method", "lsg",
                       "--dataset", "digits", "--epochs", "1", "--no-tracking",
                       "--set", "train_subset=200", "--set", "test_subset=100",
                       "--set", "probe_samples=32", "--out", str(run)], env, cwd=tmp_path)
    first = _start([*dvc, "repro"], env, cwd=project)

    # (a) the CLI lists it, with its docstring's first line.
    listed = _finish(listing)
    assert any(line.split()[:2] == ["lsg", "LSG-style"] for line in listed.splitlines()), listed

    # (b) one epoch of training writes a finished run folder whose widths follow the rule.
    _finish(training)
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["status"], metrics["method"], metrics["epochs"]) == ("finished", "lsg", 1)
    assert yaml.safe_load((run / "config.yaml").read_text())["method_options"] == {
        "vth": 1.0, "init_tau": 0.2, "learnable_decay": True, "alpha": 1.0}
    widths = pd.read_csv(run / "probes" / "timesteps.csv").groupby("layer_name")["width"]
    expected = _expected_widths(run)
    assert set(widths.groups) == set(expected) and len(expected) == 5
    for layer, w in expected.items():
        assert widths.get_group(layer).to_numpy() == pytest.approx(w, rel=1e-5), layer

    # (c) a DVC pipeline of the repository's shape trains it, then has nothing left to do.
    first_out = _finish(first, timeout=180)
    assert "Running stage 'train@digits-lsg-0'" in first_out, first_out
    stage_run = project / "runs" / "plugin" / "digits" / "lsg" / "seed0"
    stage_metrics = json.loads((stage_run / "metrics.json").read_text())
    assert (stage_metrics["status"], stage_metrics["method"]) == ("finished", "lsg")
    stage_config = yaml.safe_load((stage_run / "config.yaml").read_text())
    assert stage_config["method_options"]["init_tau"] == 0.3
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]["train@digits-lsg-0"]
    assert lock["params"]["params.yaml"]["method_options.lsg"] == {"init_tau": 0.3}

    second = _run([*dvc, "repro"], env, cwd=project)
    assert "Data and pipelines are up to date" in second, second
    assert "Running stage" not in second
    assert json.loads((stage_run / "metrics.json").read_text()) == stage_metrics

    # The plugin's code is a dependency: editing it makes the stage stale.
    with open(site / "mpdsnn_lsg_plugin.py", "a") as module:
        module.write("\n# edited\n")
    status = _run([*dvc, "status"], env, cwd=project)
    assert "train@digits-lsg-0" in status and "mpdsnn_lsg_plugin.py" in status, status

    assert _git_status() == before, "the test changed files in this repository"


def _dvc_project(root: Path, plugin_module: Path) -> None:
    """A fresh git + DVC project whose train stage has the shape of this repository's dvc.yaml."""
    root.mkdir()
    env = _env()
    _run(["git", "init", "-q"], env, cwd=root)
    _run([sys.executable, "-m", "dvc", "init", "-q"], env, cwd=root)
    _run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], env, cwd=root)
    params = {
        "pipeline": "plugin",
        "methods": ["lsg"],
        "datasets_run": ["digits"],
        "seeds": [0],
        "train": {"epochs": 1, "batch_size": 64, "train_subset": 200, "test_subset": 100,
                  "probe_samples": 32, "tracking": False, "device": "cpu"},
        "datasets": {"digits": {"T": 4}},
        "method_options": {"lsg": {"init_tau": 0.3}},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    mpdsnn = "mpdsnn" if (Path(sys.executable).parent / "mpdsnn").exists() \
        else f"{sys.executable} -m mpdsnn.cli"
    path = "${pipeline}/${item.dataset}/${item.method}/seed${item.seed}"
    stage = {
        "matrix": {"dataset": "${datasets_run}", "method": "${methods}", "seed": "${seeds}"},
        "cmd": ("MPDSNN_DVC_STAGE=train@${item.dataset}-${item.method}-${item.seed} "
                f"{mpdsnn} train --params params.yaml --dataset ${{item.dataset}} "
                "--method ${item.method} --seed ${item.seed} "
                f"--out runs/{path} --checkpoint-dir checkpoints/{path} --resume"),
        "deps": [str(plugin_module)],
        "params": ["train", "datasets.${item.dataset}", "method_options.${item.method}"],
        "outs": [f"runs/{path}", {f"checkpoints/{path}": {"persist": True, "cache": False}}],
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}, sort_keys=False))


def test_installed_plugin_dataset_is_listed_and_trained_on(tmp_path):
    """A dataset from another package (``blobs``, entry-point group ``mpdsnn.datasets``): listed,
    trained on, and recorded in the run folder, with nothing in this repository naming it."""
    site = _install_plugin(tmp_path)
    env = _env(site)
    assert "blobs" not in _run([sys.executable, "-m", "mpdsnn.cli", "list"], _env())
    listing = _run([sys.executable, "-m", "mpdsnn.cli", "list"], env)
    assert "blobs" in listing and "4 classes" in listing
    out = tmp_path / "run"
    _run([sys.executable, "-m", "mpdsnn.cli", "train", "--method", "vanilla", "--dataset", "blobs",
          "--epochs", "4", "--no-tracking", "--out", str(out)], env)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "blobs" and metrics["model"] == "convnet" and metrics["T"] == 2
    assert metrics["best_test_acc"] > 50.0  # the blobs are learnable: chance is 25 %

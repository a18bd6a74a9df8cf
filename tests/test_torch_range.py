"""The declared torch range is the one that is checked: scripts/test-torch-min (run by CI) installs
exactly pyproject.toml's lower bounds, and the main venv's pins lie inside the range."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "test-torch-min"


def _declared() -> dict[str, Requirement]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {r.name: r for r in map(Requirement, deps)}


def _lower(req: Requirement) -> Version:
    (bound,) = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return bound


def _plan() -> dict[str, str]:
    out = subprocess.run([sys.executable, str(SCRIPT), "--plan"], capture_output=True, text=True,
                         check=True).stdout
    return {Requirement(line).name: line for line in out.split()}


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if "==" in spec:
            name, version = spec.split("==")
            pins[name.strip()] = Version(version)
    return pins


def test_torch_min_installs_the_declared_lower_bounds():
    declared, plan = _declared(), _plan()
    for name in ("torch", "torchvision"):
        assert plan[name] == f"{name}=={_lower(declared[name])}", (name, plan[name])


def test_torch_min_has_only_what_the_gpu_image_has():
    plan = _plan()
    assert not {"tonic", "mlflow", "dvc", "aedat", "vl-convert-python"} & set(plan)
    assert {"numpy", "pandas", "scikit-learn", "PyYAML", "torch", "torchvision"} <= set(plan)


def test_the_absent_check_fails_where_tonic_mlflow_and_dvc_import(capfd):
    """The guard is real: this (full) venv has them all, and the check names them."""
    check_absent = runpy.run_path(str(SCRIPT))["check_absent"]
    with pytest.raises(subprocess.CalledProcessError):
        check_absent(sys.executable)
    assert "importable but absent on the GPU image: tonic, mlflow, dvc" in capfd.readouterr().err


def test_declared_torchvision_is_the_release_paired_with_declared_torch():
    """torchvision 0.(N+15) is built for torch 2.N: a bound moved alone could not install."""
    declared = _declared()
    torch, vision = _lower(declared["torch"]), _lower(declared["torchvision"])
    assert (torch.major, vision.major) == (2, 0)
    assert vision.minor == torch.minor + 15, (str(torch), str(vision))


def test_main_venv_pins_lie_in_the_declared_range():
    declared, pins = _declared(), _pins()
    makefile = (REPO / "Makefile").read_text()
    for name in ("torch", "torchvision"):
        assert pins[name] in declared[name].specifier, (name, str(pins[name]))
        assert f"{name}=={pins[name]}" in makefile  # the Makefile installs requirements' build


def test_ci_runs_the_torch_min_check():
    assert re.search(r"^test-torch-min:.*\n\t.*scripts/test-torch-min", (REPO / "Makefile").read_text(),
                     re.M)
    assert re.search(r"^make test-torch-min\b", (REPO / ".ci" / "run").read_text(), re.M)

"""scripts/gpu-check: at tiny CPU sizes it runs every step and prints its one table (the script,
not a measurement); it fails loudly when told a GPU should exist and none is usable, names the
wheels to bring for what is missing and installs only from the folder it is given."""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data_formats import write_image_folder
from mpdsnn.data.cifar import CIFAR10_CLASSES

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu-check"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "GPU_CHECK_EXPECT_GPU"}
    environment.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", **env)
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), *args],
                          env=environment, capture_output=True, text=True, timeout=600)


def _mirror(tmp_path: Path) -> Path:
    mirror = tmp_path / "mirror"
    write_image_folder(mirror, CIFAR10_CLASSES, per_class=4)
    return mirror


def _script():
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("gpu_check", loader))
    loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_cpu_run_prints_one_table_with_projected_hours(tmp_path):
    result = _run(tmp_path, "--mirror", str(_mirror(tmp_path)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NOT a measurement" in result.stdout
    table = pd.read_csv(tmp_path / "out" / "table.csv")
    assert list(table.columns) == ["measurement", "images/s", "epoch s", "peak MiB", "projected GPU-hours"]
    rows = dict(zip(table["measurement"], table.index))
    for row in ("train step, pipeline settings", "train step, channels_last True",
                "one real epoch of pipelines/cifar10 (ds-atgo)"):
        assert table.loc[rows[row], "images/s"] > 0, row
    assert any(m.startswith("data loader (0 workers") for m in rows)
    # cifar10: 7 methods x 3 seeds x 400 epochs of the measured epoch
    epoch_s = table.loc[rows["one real epoch of pipelines/cifar10 (ds-atgo)"], "epoch s"]
    hours = table.loc[rows["pipelines/cifar10: 21 runs x 400 epochs"], "projected GPU-hours"]
    assert hours == pytest.approx(epoch_s * 400 * 21 / 3600, rel=1e-6)
    assert (tmp_path / "out" / "cifar10-ds-atgo" / "metrics.json").exists()  # the real epoch's run
    assert "projected GPU-hours" in result.stdout and "measure nothing" in result.stdout
    assert "gpu-check took " in result.stdout
    # step 6: the neuron comparison, its ratio table and the advice on the CUDA default
    bench = pd.read_csv(tmp_path / "out" / "bench" / "bench.csv")
    impls = set(bench[bench.level == "neuron"].impl)
    assert {"mpdsnn fixed (fused)", "mpdsnn fixed (compiled)", "mpdsnn ds-atgo (fused)",
            "mpdsnn ds-atgo (compiled)"} <= impls
    assert "spikingjelly LIFNode (CUDA kernel, triangle)" not in impls  # no CUDA here
    assert "one spiking layer, forward + backward" in result.stdout
    assert "fixed fused/compiled" in result.stdout and "median" in result.stdout
    assert "the CUDA default: not judged without a GPU" in result.stdout


def test_cuda_default_advice_follows_both_medians():
    gpu_check = _script()

    def ratios(fixed, dsatgo):
        return pd.DataFrame([{"workload": "w", "fixed fused/compiled": 9.0, "ds-atgo fused/compiled": 9.0},
                             {"workload": "median", "fixed fused/compiled": fixed,
                              "ds-atgo fused/compiled": dsatgo}])

    assert "make it the CUDA default" in gpu_check.cuda_default_advice(ratios(1.8, 2.1))
    assert "1.80x (fixed) and 2.10x (ds-atgo)" in gpu_check.cuda_default_advice(ratios(1.8, 2.1))
    for slow in ((1.8, 1.05), (0.9, 2.0)):
        assert "fused stays the CUDA default" in gpu_check.cuda_default_advice(ratios(*slow))


def test_fails_when_a_gpu_is_expected_and_torch_cannot_use_one(tmp_path):
    for result in (_run(tmp_path, "--mirror", str(tmp_path), "--expect-gpu"),
                   _run(tmp_path, "--mirror", str(tmp_path), GPU_CHECK_EXPECT_GPU="1")):
        assert result.returncode == 1
        assert "gpu-check FAILED: a GPU was expected but torch cannot use it" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing measured


def test_a_missing_mirror_is_named_with_the_fix(tmp_path):
    result = _run(tmp_path, "--mirror", str(tmp_path / "none"))
    assert result.returncode == 1 and "must hold train/<class>/* and test/<class>/*" in result.stderr


def test_missing_packages_name_the_wheels_and_install_only_from_the_folder(tmp_path, monkeypatch):
    gpu_check = _script()
    monkeypatch.setattr(gpu_check, "REQUIRED", [*gpu_check.REQUIRED,
                                                 ("no_such_module_xyz", "no-such-wheel-xyz", "a test")])
    with pytest.raises(gpu_check.CheckFailed) as missing:
        gpu_check.check_packages(None)
    assert "missing: no-such-wheel-xyz (import no_such_module_xyz: a test)" in str(missing.value)
    assert "pip download --only-binary=:all:" in str(missing.value) and "--wheels wheels" in str(missing.value)
    (tmp_path / "wheels").mkdir()
    with pytest.raises(gpu_check.CheckFailed, match="could not install no-such-wheel-xyz from"):
        gpu_check.check_packages(tmp_path / "wheels")

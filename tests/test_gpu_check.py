"""scripts/gpu-check runs end to end (on a CPU at tiny sizes: the script, not a measurement)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_formats import write_image_folder
from mpdsnn.data.cifar import CIFAR10_CLASSES

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_script_runs_and_reports_throughput_and_accuracy(tmp_path):
    mirror = tmp_path / "mirror"
    write_image_folder(mirror, CIFAR10_CLASSES, per_class=2)
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_OUT": str(tmp_path / "out"),
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([str(REPO / "scripts" / "gpu-check"), str(mirror)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "images/second (median epoch):" in result.stdout
    assert "best test accuracy:" in result.stdout
    assert (tmp_path / "out" / "bench" / "bench.csv").exists()

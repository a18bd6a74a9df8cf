"""What a run records about where it came from: git commit, packages, machine, data."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("mpdsnn", "torch", "torchvision", "numpy", "tonic", "scikit-learn", "mlflow", "dvc",
            "pandas")


def git_state(cwd: Path | None = None) -> tuple[str, bool]:
    """(commit, dirty) of the repository holding ``cwd``; ("unknown", False) outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        # dvc.lock is DVC's own bookkeeping, rewritten while a pipeline runs: not a code change.
        # The whole work tree (":(top)"), not just the folder a pipeline runs in.
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                 ":(top)", ":(top,exclude,glob)**/dvc.lock"], cwd=cwd,
                                capture_output=True, text=True, check=True, timeout=10).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def cpu_name() -> str:
    """The processor's model name (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def environment(device: torch.device, data_fingerprint: str, autocast_dtype: torch.dtype | None = None,
                world_size: int = 1) -> dict[str, Any]:
    """What decides a run's numbers besides its config: code, packages, machine, precision.

    Precision (``autocast_dtype``: "none" without autocast; the TF32 flags as training set them)
    and the CUDA stack are recorded because the same seed gives other numbers under each; probes
    run under the same autocast as training, so ``probe_autocast_dtype`` is the same value.
    """
    commit, dirty = git_state()
    autocast = str(autocast_dtype).removeprefix("torch.") if autocast_dtype is not None else "none"
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "platform": platform.platform(),
        "processor": cpu_name(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "world_size": world_size,
        "autocast_dtype": autocast,
        "probe_autocast_dtype": autocast,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        **cuda_stack(),
        "torch_threads": torch.get_num_threads(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "data_fingerprint": data_fingerprint,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def cuda_stack() -> dict[str, str | None]:
    """CUDA, cuDNN and NCCL versions torch was built with (None where absent, e.g. CPU wheels)."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    nccl = None
    if torch.cuda.is_available() and hasattr(torch.cuda, "nccl"):
        try:
            found = torch.cuda.nccl.version()
            nccl = ".".join(map(str, found)) if isinstance(found, tuple) else str(found)
        except (RuntimeError, AttributeError):
            nccl = None
    return {"cuda_version": torch.version.cuda, "cudnn_version": str(cudnn) if cudnn else None,
            "nccl_version": nccl}

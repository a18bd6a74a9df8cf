"""The compiled backend's forward charge on CPU as hand-written C, loaded with ctypes.

Why: inductor fuses a sum into a pointwise loop with one accumulator chain (or a cascade kept in
memory), so the charge kernel that also sums ``U(t)`` and ``U(t)^2`` for DS-ATGO's threshold cost
+0.1-0.2 ms a step on a million potentials, and step 0's kernel twice the fixed LIF's eager
charge. ``native_lif.c`` is the same charge with an OpenMP SIMD reduction: the sums ride on the
loop's memory traffic for free, and the charge itself is the reference's expression in its order
(no FMA), so spikes stay bit for bit (docs/bench.md has the measurements). The fixed LIF's charge
runs through the same C, so DS-ATGO and the fixed LIF are compared on the same code.

Used on single-threaded CPU runs (``torch.get_num_threads() == 1``, as the pipelines and the
bench run): the loop is serial, where inductor's kernels spread over every intra-op thread.
Built on first use with the C compiler inductor also needs (``CC``, else ``cc``), about 0.3 s,
into the project's ``build/native`` (``~/.cache/mpdsnn/native`` outside a checkout) under a name
hashed from the source, the flags and the compiler's version, so a pipeline builds it once. On
x86-64 with GCC the loops are cloned for AVX-512, AVX2 and the baseline and picked at load time
(a build shared over NFS runs on any node). No compiler, a failed build or
``MPDSNN_NATIVE_CHARGE=0``: :func:`library` returns None and the compiled backend charges with
inductor's kernels (one warning says why).

Usage::

    lib = library()
    if lib is not None and NativeCharge.suits(flat_x):
        charge = NativeCharge(lib, flat_x.dtype)
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native_lif.c")
FLAGS = ("-O3", "-fopenmp-simd", "-ffp-contract=off", "-shared", "-fPIC")
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}

_state: dict[str, Any] = {}  # "lib" and "path": the loaded library and its file; "failed": why not


def library() -> ctypes.CDLL | None:
    """The built library, building it on first call in this process; None if it cannot be."""
    if "lib" in _state or "failed" in _state:
        return _state.get("lib")
    if os.environ.get("MPDSNN_NATIVE_CHARGE", "1") == "0":
        _state["failed"] = "MPDSNN_NATIVE_CHARGE=0"
        return None
    try:
        _state["path"] = build()
        _state["lib"] = _declare(ctypes.CDLL(str(_state["path"])))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        _state["failed"] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        log.warning("the native charge could not be built (%s); the compiled backend charges with "
                    "inductor's kernels", _state["failed"])
        return None
    return _state["lib"]


def status() -> str:
    """The built library's file name, or why the charge runs on inductor's kernels (for the
    bench's record of the machine)."""
    if library() is None:
        return f"inductor kernels: {_state['failed']}"
    return _state["path"].name


def build(cache_dir: Path | None = None) -> Path:
    """Compile ``native_lif.c`` into ``cache_dir`` unless a build of the same source, flags and
    compiler is there; returns the shared library's path. Raises RuntimeError when the compiler
    is missing or fails (its message included)."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("no C compiler found (set CC or install gcc)")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), *FLAGS, compiler, version,
                                    platform.machine()]).encode()).hexdigest()[:16]
    folder = cache_dir or _cache_dir()
    target = folder / f"native_lif-{key}.so"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed: two processes building at once both end with a whole
    # library, never a half-written one.
    fd, partial = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run([compiler, *FLAGS, "-o", partial, str(SOURCE)], capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target


def _cache_dir() -> Path:
    """The project's ignored ``build/native`` when running from a checkout, as inductor's cache
    (:func:`mpdsnn.neuron.compiled.use_project_cache`); else the user's cache."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / "build" / "native"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mpdsnn" / "native"


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    for suffix in _SUFFIX.values():
        getattr(lib, f"charge_{suffix}").argtypes = [pointer] * 7 + [size]
        getattr(lib, f"charge_sums_{suffix}").argtypes = [pointer] * 7 + [size, pointer]
        getattr(lib, f"first_sums_{suffix}").argtypes = [pointer] * 3 + [size, pointer]
        for name in ("charge", "charge_sums", "first_sums"):
            getattr(lib, f"{name}_{suffix}").restype = None
    return lib


class NativeCharge:
    """The C charge for one layer call, with the signatures of the compiled backend's inductor
    kernels; sums come back as two Python floats (no tensor, no ``.tolist()``)."""

    def __init__(self, lib: ctypes.CDLL, dtype: torch.dtype) -> None:
        suffix = _SUFFIX[dtype]
        self.dtype = dtype
        self._charge = getattr(lib, f"charge_{suffix}")
        self._charge_sums = getattr(lib, f"charge_sums_{suffix}")
        self._first_sums = getattr(lib, f"first_sums_{suffix}")

    @staticmethod
    def suits(flat_x: Tensor) -> bool:
        """CPU, float32 or float64, contiguous rows (the C walks memory in order), and one
        intra-op thread: the C loop is serial, inductor's kernels use every thread torch has
        (the pipelines and the bench train with one thread per process)."""
        return (flat_x.device.type == "cpu" and flat_x.dtype in _SUFFIX
                and flat_x.is_contiguous() and torch.get_num_threads() == 1)

    def scalar(self, value: Tensor) -> Tensor:
        """A 0-d operand in the layer's dtype (the C reads it from memory as that type), as
        type promotion casts it in the inductor kernel."""
        return value if value.dtype == self.dtype else value.to(self.dtype)

    def charge(self, u_prev: Tensor, fire: Tensor, x: Tensor, tau: Tensor, scale: Tensor,
               u_out: Tensor, spike_out: Tensor) -> None:
        """``tau`` and ``scale`` already in the layer's dtype (:meth:`scalar`, once a call)."""
        fire = self.scalar(fire)  # held in a name: its memory must outlive the C call
        self._charge(u_prev.data_ptr(), fire.data_ptr(), x.data_ptr(), tau.data_ptr(),
                     scale.data_ptr(), u_out.data_ptr(), spike_out.data_ptr(), u_prev.numel())

    def charge_sums(self, u_prev: Tensor, fire: Tensor, x: Tensor, tau: Tensor, scale: Tensor,
                    u_out: Tensor, spike_out: Tensor) -> list[float]:
        fire, sums = self.scalar(fire), (ctypes.c_double * 2)()
        self._charge_sums(u_prev.data_ptr(), fire.data_ptr(), x.data_ptr(), tau.data_ptr(),
                          scale.data_ptr(), u_out.data_ptr(), spike_out.data_ptr(),
                          u_prev.numel(), sums)
        return [sums[0], sums[1]]

    def first_sums(self, x_0: Tensor, scale: Tensor) -> tuple[Tensor, list[float]]:
        u, sums = torch.empty_like(x_0), (ctypes.c_double * 2)()
        self._first_sums(x_0.data_ptr(), scale.data_ptr(), u.data_ptr(), x_0.numel(), sums)
        return u, [sums[0], sums[1]]

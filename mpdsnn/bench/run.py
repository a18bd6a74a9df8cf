"""``run_bench``: the neuron-, model- and pipeline-level tables, written as CSV + JSON.

Sizes: ``tiny`` checks the harness in seconds (CI); ``cpu`` is the real measurement on a CPU;
``gpu`` the published shapes on one CUDA device. Every time is a median over interleaved rounds
(:mod:`mpdsnn.bench.measure`); every ratio is against the row named in ``vs`` of the same
workload and T: our fused fixed LIF at neuron level, the method's reference backend at model level,
the stage's wall time at pipeline level (one real train stage split into phases,
:mod:`mpdsnn.bench.stage`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch
from torch.utils.data import Dataset

from mpdsnn.bench import neurons
from mpdsnn.bench.measure import Timing, peak_bytes, saved_bytes, time_interleaved
from mpdsnn.bench.models import ModelWorkload, train_steps
from mpdsnn.bench.pipeline import loader_throughput
from mpdsnn.bench.stage import SPLIT, WALL, StageRun, run_stage
from mpdsnn.errors import UserError, unknown_name
from mpdsnn.neuron import native
from mpdsnn.provenance import cpu_name

log = logging.getLogger(__name__)

COLUMNS = ["level", "workload", "T", "impl", "time_ms", "iqr_ms", "samples_per_s", "saved_mb",
           "peak_mb", "setup_s", "vs", "time_ratio", "mem_ratio"]
MODEL_METHODS = ("vanilla", "ds-atgo", "fixed", "tet", "mpd-agl")
LEVELS = ("neuron", "model", "pipeline")
DEFAULT_LEVELS = ("neuron", "model")
"""``pipeline`` trains for real (a process, MLflow, every epoch): opt in with ``--levels``."""


@dataclass(frozen=True)
class Sizes:
    """``neuron``: (label, per-step shape ``[N, C, H, W]``) run for every T in ``Ts``;
    ``compile_T``: the T at which the first neuron workload is also run under torch.compile
    (None: never, compilation takes tens of seconds); ``stage_epochs``: the pipeline level's
    epochs (None: params.yaml's, as the pipeline trains)."""

    neuron: tuple[tuple[str, tuple[int, ...]], ...]
    Ts: tuple[int, ...]
    models: tuple[ModelWorkload, ...]
    warmup: int
    repeats: int
    compile_T: int | None
    device: str
    stage_epochs: int | None


SIZES: dict[str, Sizes] = {
    "tiny": Sizes(
        neuron=(("resnet19 layer", (2, 16, 8, 8)), ("vggsnn layer", (2, 8, 12, 12))),
        Ts=(2, 4),
        models=(ModelWorkload("resnet19", T=2, batch=2, size=16, in_channels=3,
                              options={"width": 0.0625}),
                ModelWorkload("vggsnn", T=4, batch=2, size=16, in_channels=2,
                              options={"width": 0.0625, "input_size": 16})),
        warmup=1, repeats=3, compile_T=None, device="cpu", stage_epochs=1),
    "cpu": Sizes(
        neuron=(("resnet19 layer", (8, 128, 32, 32)), ("vggsnn layer", (4, 64, 48, 48))),
        Ts=(2, 4, 10),
        models=(ModelWorkload("resnet19", T=2, batch=8, size=32, in_channels=3,
                              options={"width": 0.25}),
                ModelWorkload("vggsnn", T=10, batch=2, size=48, in_channels=2,
                              options={"width": 0.25, "input_size": 48})),
        warmup=2, repeats=11, compile_T=4, device="cpu", stage_epochs=None),
    "gpu": Sizes(
        neuron=(("resnet19 layer", (32, 128, 32, 32)), ("vggsnn layer", (16, 64, 48, 48))),
        Ts=(2, 4, 10),
        models=(ModelWorkload("resnet19", T=2, batch=64, size=32, in_channels=3),
                ModelWorkload("vggsnn", T=10, batch=16, size=48, in_channels=2,
                              options={"input_size": 48})),
        warmup=3, repeats=20, compile_T=4, device="cuda", stage_epochs=None),
}


def run_bench(sizes: str = "tiny", out_dir: str | os.PathLike | None = None,
              levels: tuple[str, ...] = DEFAULT_LEVELS,
              datasets: Mapping[str, Dataset] | None = None,
              libraries: bool = True) -> pd.DataFrame:
    """Measure and return the table (columns :data:`COLUMNS`); with ``out_dir``, also write
    ``bench.csv`` and ``bench.json`` (rows plus the machine they ran on) there.

    ``datasets``: name -> Dataset, each measured by :func:`loader_throughput` (level
    "pipeline", impl "DataLoader"). ``libraries=False`` leaves SpikingJelly and snnTorch out.
    """
    if sizes not in SIZES:
        raise unknown_name("bench size", sizes, list(SIZES))
    bad = sorted(set(levels) - set(LEVELS))
    if bad:
        raise UserError(f"unknown bench level(s) {', '.join(bad)}; valid levels: "
                        f"{', '.join(sorted(LEVELS))}")
    cfg = SIZES[sizes]
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("bench sizes 'gpu' need a CUDA device; none is visible (use --sizes cpu)")
    info = machine()  # before measuring: the load average says how busy the machine was
    rows: list[dict[str, Any]] = []
    if "neuron" in levels:
        rows += _neuron_rows(cfg, device, libraries)
    if "model" in levels:
        rows += _model_rows(cfg, device)
    stage: dict[str, Any] | None = None
    if "pipeline" in levels:
        log.info("pipeline level: one train stage of the default pipeline, in a fresh process")
        load = _load()
        run = run_stage(cfg.stage_epochs, cfg.device)
        stage = {**run.details, "load_avg_1m": load, "load_avg_1m_end": _load()}
        log.info("pipeline level: %s took %.1f s (%.1f s before the trainer's clock, %.1f s "
                 "after its record), load average %s -> %s", run.label, run.seconds[WALL],
                 stage["before_clock_s"], stage["after_record_s"], load, stage["load_avg_1m_end"])
        rows += _stage_rows(run)
    for name, dataset in (datasets or {}).items():
        r = loader_throughput(dataset)
        rows.append(_row("pipeline", name, None, "DataLoader", None, samples_per_s=r["samples_per_s"]))
    table = _with_ratios(pd.DataFrame(rows, columns=COLUMNS))
    if out_dir is not None:
        info["load_avg_1m_end"] = _load()
        write(table, Path(out_dir), sizes, info, stage)
    return table


def _neuron_rows(cfg: Sizes, device: torch.device, libraries: bool) -> list[dict[str, Any]]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    for i, (label, shape) in enumerate(cfg.neuron):
        for T in cfg.Ts:
            x = torch.randn((T, *shape), generator=gen).to(device).requires_grad_()
            grad = torch.randn((T, *shape), generator=gen).to(device)
            cands = neurons.candidates(T, with_libraries=libraries, example=x)
            if i == 0 and T == cfg.compile_T:
                cands += _compiled(T, x)
            for c in cands:
                c.module.to(device)
            log.info("neuron level: %s T=%d, %d candidates", label, T, len(cands))
            steps = {c.name: _fwd_bwd(c, x, grad) for c in cands}
            timings = time_interleaved(steps, cfg.warmup, cfg.repeats, device)
            for c in cands:
                saved = _saved(lambda c=c: c.forward(x), c.module)
                peak = peak_bytes(steps[c.name], device)
                rows.append(_row("neuron", f"{label} [T,{','.join(map(str, shape))}]", T, c.name,
                                 timings[c.name], saved_b=saved, peak_b=peak, setup_s=c.setup_s,
                                 vs=neurons.FIXED_FUSED))
    return rows


def _stage_rows(stage: StageRun) -> list[dict[str, Any]]:
    """One row per phase, the remainder and the wall time; ``time_ratio``: the share of wall."""
    return [{**_row("pipeline", stage.label, stage.T, phase, None, vs=WALL),
             "time_ms": stage.seconds[phase] * 1e3, "setup_s": None} for phase in SPLIT]


def _compiled(T: int, x: torch.Tensor) -> list[neurons.NeuronCandidate]:
    out = []
    for method in ("fixed", "ds-atgo"):
        try:
            out.append(neurons.compiled(method, T, x))
        except Exception as exc:  # no C++ compiler, unsupported platform: measure the rest
            log.warning("torch.compile of %s failed, row left out: %s", method, exc)
    return out


def _fwd_bwd(c: neurons.NeuronCandidate, x: torch.Tensor, grad: torch.Tensor):
    def step() -> None:
        c.module.zero_grad(set_to_none=True)
        c.forward(x).backward(grad)
        x.grad = None

    return step


def _saved(forward, module: torch.nn.Module) -> int | None:
    try:
        return saved_bytes(forward, exclude=[*module.parameters(), *module.buffers()])
    except Exception as exc:  # e.g. a compiled graph that refuses saved-tensor hooks
        log.warning("saved-activation count failed: %s", exc)
        return None


def _model_rows(cfg: Sizes, device: torch.device) -> list[dict[str, Any]]:
    """Every method and backend of one network timed in the same interleaved rounds, so
    samples/s compare across methods as well as across backends."""
    rows = []
    for work in cfg.models:
        log.info("model level: %s T=%d, %s", work.label, work.T, ", ".join(MODEL_METHODS))
        steps = [s for method in MODEL_METHODS for s in train_steps(work, method, device)]
        timings = time_interleaved({s.name: s.step for s in steps}, cfg.warmup, cfg.repeats,
                                   device)
        for s in steps:
            saved = _saved(s.forward_loss, s.model)
            t = timings[s.name]
            rows.append(_row("model", work.label, work.T, s.name, t,
                             samples_per_s=work.batch / t.median, saved_b=saved,
                             peak_b=peak_bytes(s.step, device, before=lambda: s.model.zero_grad(set_to_none=True)), setup_s=s.setup_s,
                             vs=f"{s.method} (reference)"))
    return rows


_RATIOS = {  # column: (numerator impl, denominator impl), both timed in the same rounds
    "ds-atgo/fixed fused": ("mpdsnn ds-atgo (fused)", "mpdsnn fixed (fused)"),
    "ds-atgo/fixed compiled": ("mpdsnn ds-atgo (compiled)", "mpdsnn fixed (compiled)"),
    "fixed fused/compiled": ("mpdsnn fixed (fused)", "mpdsnn fixed (compiled)"),
    "ds-atgo fused/compiled": ("mpdsnn ds-atgo (fused)", "mpdsnn ds-atgo (compiled)"),
    "spikingjelly/fixed compiled": (neurons.SPIKINGJELLY, "mpdsnn fixed (compiled)"),
    "snntorch/fixed compiled": ("snntorch Leaky (loop)", "mpdsnn fixed (compiled)"),
    # CUDA only (NaN elsewhere): SpikingJelly's fused kernel against ours
    "spikingjelly kernel/fixed compiled": (neurons.SPIKINGJELLY_KERNEL, "mpdsnn fixed (compiled)"),
    "spikingjelly kernel/fixed fused": (neurons.SPIKINGJELLY_KERNEL, "mpdsnn fixed (fused)"),
}


def neuron_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Time ratios per neuron workload and T (the issue's figures), plus their median row."""
    neuron = table[table.level == "neuron"]
    rows = []
    for (workload, T), group in neuron.groupby(["workload", "T"], sort=False):
        ms = dict(zip(group.impl, group.time_ms))
        rows.append({"workload": workload, "T": T, **{
            col: ms[a] / ms[b] if a in ms and b in ms else math.nan
            for col, (a, b) in _RATIOS.items()}})
    out = pd.DataFrame(rows, columns=["workload", "T", *_RATIOS])
    if len(out):
        medians = out[list(_RATIOS)].median()
        out.loc[len(out)] = {"workload": "median", "T": None, **medians.to_dict()}
    return out.astype({"T": "Int64"})


def pipeline_phases(table: pd.DataFrame) -> pd.DataFrame:
    """The pipeline level's split of a stage: ``phase``, ``seconds``, ``pct_of_wall``."""
    rows = table[(table.level == "pipeline") & table.impl.isin(SPLIT)]
    return pd.DataFrame({"workload": rows.workload, "phase": rows.impl,
                         "seconds": rows.time_ms / 1e3,
                         "pct_of_wall": rows.time_ratio * 100}).reset_index(drop=True)


def _row(level: str, workload: str, T: int | None, impl: str, timing: Timing | None,
         samples_per_s: float | None = None, saved_b: int | None = None,
         peak_b: int | None = None, setup_s: float = 0.0, vs: str | None = None) -> dict[str, Any]:
    mb = (lambda b: None if b is None else b / 2**20)
    return {"level": level, "workload": workload, "T": T, "impl": impl,
            "time_ms": None if timing is None else timing.median * 1e3,
            "iqr_ms": None if timing is None else timing.iqr * 1e3,
            "samples_per_s": samples_per_s, "saved_mb": mb(saved_b), "peak_mb": mb(peak_b),
            "setup_s": setup_s, "vs": vs}


def _with_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """``time_ratio``/``mem_ratio``: this row over the ``vs`` row of the same workload and T."""
    table = table.astype({"time_ms": float, "saved_mb": float, "time_ratio": float,
                          "mem_ratio": float})
    key = table.set_index(["level", "workload", "T", "impl"])
    for i, row in table.iterrows():
        ref = (row["level"], row["workload"], row["T"], row["vs"])
        if row["vs"] is None or ref not in key.index:
            continue
        base = key.loc[ref]
        table.loc[i, "time_ratio"] = row["time_ms"] / base["time_ms"]
        table.loc[i, "mem_ratio"] = _ratio(row["saved_mb"], base["saved_mb"])
    return table


def _ratio(a: float, b: float) -> float:
    return math.nan if not (a == a and b == b) or b == 0 else a / b


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu": cpu_name(), "cpu_count": os.cpu_count(),
                            "load_avg_1m": _load(),
                            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                            "cuda_device": (torch.cuda.get_device_name() if torch.cuda.is_available()
                                            else None)}
    for pkg in ("spikingjelly", "snntorch"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = None
    if info["spikingjelly"] and torch.cuda.is_available():
        try:
            info["spikingjelly_cuda_lif"] = neurons.spikingjelly_kernel_name(torch.device("cuda"))
        except (RuntimeError, ValueError) as exc:
            info["spikingjelly_cuda_lif"] = f"none: {exc}"
    info["native_charge"] = native.status()  # which charge the compiled rows ran on CPU
    return info


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def write(table: pd.DataFrame, out_dir: Path, sizes: str, info: dict[str, Any],
          stage: dict[str, Any] | None = None) -> None:
    """``bench.csv`` (the table) and ``bench.json`` (``sizes``, ``machine``: ``info``, ``rows``,
    ``neuron_ratios``: :func:`neuron_ratios`, ``pipeline_phases``: :func:`pipeline_phases`,
    ``pipeline_stage``: ``stage``, what the pipeline level ran and the load around it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "bench.csv", index=False)
    records = json.loads(table.to_json(orient="records"))
    ratios = json.loads(neuron_ratios(table).to_json(orient="records"))
    phases = json.loads(pipeline_phases(table).to_json(orient="records"))
    payload = {"sizes": sizes, "machine": info, "rows": records, "neuron_ratios": ratios,
               "pipeline_phases": phases, "pipeline_stage": stage}
    (out_dir / "bench.json").write_text(json.dumps(payload, indent=2) + "\n")

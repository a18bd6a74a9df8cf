"""Speed and memory benchmarks: ``mpdsnn bench`` and :func:`run_bench`.

Usage::

    table = run_bench("cpu", "bench-results/cpu")   # DataFrame; also bench.csv + bench.json
    main(["--sizes", "tiny"])                        # what ``mpdsnn bench --sizes tiny`` runs
"""

from __future__ import annotations

import argparse
import math
from typing import Sequence

import pandas as pd
import torch

from mpdsnn.bench.measure import Timing, peak_bytes, saved_bytes, time_interleaved
from mpdsnn.bench.pipeline import loader_throughput
from mpdsnn.bench.run import COLUMNS, SIZES, neuron_ratios, run_bench

__all__ = ["COLUMNS", "SIZES", "Timing", "loader_throughput", "main", "neuron_ratios",
           "peak_bytes", "render", "run_bench", "saved_bytes", "time_interleaved"]

_SHOWN = ["level", "workload", "T", "impl", "time_ms", "samples_per_s", "saved_mb", "time_ratio",
          "mem_ratio"]


def main(argv: Sequence[str] | None = None) -> int:
    """``mpdsnn bench [--sizes tiny|cpu|gpu] [--out DIR] [--levels neuron,model] [--threads N]``."""
    parser = argparse.ArgumentParser(prog="mpdsnn bench", description=(
        "Time and activation memory of our neurons (reference, fused and compiled), "
        "SpikingJelly's and "
        "snnTorch's, and of one training step per method; writes bench.csv and bench.json."))
    parser.add_argument("--sizes", choices=sorted(SIZES), default="tiny",
                        help="tiny: seconds, checks the harness; cpu: the CPU measurement; "
                             "gpu: published shapes on one CUDA device")
    parser.add_argument("--out", default=None, help="output folder (default bench-results/SIZES)")
    parser.add_argument("--levels", default="neuron,model", help="comma-separated: neuron,model")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    parser.add_argument("--no-libraries", action="store_true",
                        help="leave SpikingJelly and snnTorch out")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = args.out or f"bench-results/{args.sizes}"
    table = run_bench(args.sizes, out, levels=tuple(filter(None, args.levels.split(","))),
                      libraries=not args.no_libraries)
    print(render(table))
    ratios = neuron_ratios(table).dropna(axis=1, how="all")  # e.g. no library rows
    if len(ratios):
        print("time ratios, same rounds (ds-atgo/fixed: > 1 is DS-ATGO slower; "
              "fused/compiled and library/ours: > 1 is ours compiled faster)")
        print(ratios.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"wrote {out}/bench.csv and {out}/bench.json")
    return 0


def render(table: pd.DataFrame) -> str:
    """The table as text: a rich table when rich is installed, else pandas' plain layout."""
    shown = table[[c for c in _SHOWN if c in table.columns]]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return shown.to_string(index=False, float_format=lambda v: f"{v:.3g}")
    out = Table(*shown.columns)
    for row in shown.itertuples(index=False):
        out.add_row(*(_cell(v) for v in row))
    console = Console(width=200, record=True)
    with console.capture() as captured:
        console.print(out)
    return captured.get()


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)

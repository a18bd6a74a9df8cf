"""Speed and memory benchmarks: ``mpdsnn bench`` and :func:`run_bench`.

Usage::

    table = run_bench("cpu", "bench-results/cpu")   # DataFrame; also bench.csv + bench.json
    bench("tiny", None, ["neuron", "model"], None, True)  # what ``mpdsnn bench`` runs
    run_bench("cpu", None, levels=("pipeline",))      # one train stage, split into phases
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd
import torch

from mpdsnn.bench.measure import Timing, peak_bytes, saved_bytes, time_interleaved
from mpdsnn.bench.pipeline import loader_throughput
from mpdsnn.bench.run import (COLUMNS, DEFAULT_LEVELS, LEVELS, SIZES, neuron_ratios, pipeline_phases,
                              run_bench)
from mpdsnn.bench.stage import SPLIT

__all__ = ["COLUMNS", "DEFAULT_LEVELS", "LEVELS", "SIZES", "Timing", "bench", "loader_throughput",
           "neuron_ratios", "peak_bytes", "pipeline_phases", "render", "run_bench", "saved_bytes",
           "time_interleaved"]

_SHOWN = ["level", "workload", "T", "impl", "time_ms", "samples_per_s", "saved_mb", "peak_mb",
          "time_ratio", "mem_ratio"]


def bench(sizes: str, out: str | None, levels: Sequence[str], threads: int | None,
          libraries: bool) -> int:
    """What ``mpdsnn bench`` runs: the measurement, the printed tables, the files."""
    if threads is not None:
        torch.set_num_threads(threads)
    out = out or f"bench-results/{sizes}"
    table = run_bench(sizes, out, levels=tuple(levels), libraries=libraries)
    timed = table[~((table.level == "pipeline") & table.impl.isin(SPLIT))]
    if len(timed):
        print(render(timed))
    ratios = neuron_ratios(table).dropna(axis=1, how="all")  # e.g. no library rows
    if len(ratios):
        print("time ratios, same rounds (ds-atgo/fixed: > 1 is DS-ATGO slower; "
              "fused/compiled and library/ours: > 1 is ours compiled faster)")
        print(ratios.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for workload, split in pipeline_phases(table).groupby("workload", sort=False):
        print(f"pipeline stage {workload}: where its wall time went")
        shown = split[["phase", "seconds", "pct_of_wall"]].rename(columns={"pct_of_wall": "% of wall"})
        print(shown.to_string(index=False, formatters={"seconds": "{:.2f}".format,
                                                       "% of wall": "{:.1f}".format}))
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

"""Shared figure plumbing: one file per setting, aggregation over seeds, lines with std bands.

Figures are drawn on ``matplotlib.figure.Figure`` objects, which render through Agg without
touching pyplot's global backend or state (safe in notebooks, threads and headless CI).
"""

from __future__ import annotations

import logging
import re
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mpdsnn.paper import method_rank, order_methods
from mpdsnn.report import palette as colors_
from mpdsnn.runfolder.reader import SETTING

logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting: one INFO line per table

DPI = 300
FORMATS = (".png", ".pdf", ".svg")
"""Every figure is written in each: PNG (300 dpi) for pages, PDF and SVG (vector, text kept as
text) for papers and slides."""
MIN_WIDTH = 6.0  # inches: room for a figure title and an outside legend
TITLE_CHARS_PER_INCH = 13  # suptitle at 10 pt: wrap so no line runs off the figure


def aggregate(frame: pd.DataFrame, by: list[str], quantities: dict[str, tuple[str, float]]) -> pd.DataFrame:
    """Mean, sample std and n over seeds, long format: ``by + [quantity, mean, std, n]``.
    ``quantities`` maps a column to (output name, scale), e.g. ``{"firing_rate": ("firing_rate_pct", 100)}``."""
    parts = []
    for column, (name, scale) in quantities.items():
        grouped = (frame.assign(_v=pd.to_numeric(frame[column], errors="coerce") * scale)
                   .groupby(by, sort=False, dropna=False)["_v"])
        part = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count()})
        parts.append(part.reset_index().assign(quantity=name))
    if not parts:
        return pd.DataFrame(columns=[*by, "quantity", "mean", "std", "n"])
    out = pd.concat(parts, ignore_index=True)[[*by, "quantity", "mean", "std", "n"]]
    return sort(out)


def sort(frame: pd.DataFrame) -> pd.DataFrame:
    """Setting, then method in report order, then whatever identifies the point."""
    cols = [c for c in [*SETTING, "method", "quantity", "layer", "t", "epoch"] if c in frame]
    return frame.sort_values(cols, key=lambda c: method_rank(c) if c.name == "method" else c,
                             kind="stable").reset_index(drop=True)


def last_probe(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of each run's last probed epoch: the trained network, as the paper's figures show."""
    if frame.empty:
        return frame
    last = frame.groupby("run")["epoch"].transform("max")
    return frame[frame["epoch"] == last]


def settings(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """``(suffix, title, rows)`` per setting (pipeline, dataset, model, T) in ``frame``. With one
    setting the suffix is empty; otherwise ``-<dataset>``, extended by pipeline, model and
    ``T<T>`` only where the dataset alone does not tell two settings apart."""
    combos = frame[SETTING].drop_duplicates().sort_values(SETTING)
    named = ["dataset"]
    for col in ("pipeline", "model", "T"):
        if combos.groupby(named)[col].nunique().max() > 1:
            named.append(col)
    out = []
    for combo in combos.itertuples(index=False):
        values = dict(zip(SETTING, combo))
        rows = frame[(frame[SETTING] == pd.Series(values)).all(axis=1)]
        parts = [f"T{values[c]}" if c == "T" else str(values[c]) for c in named]
        suffix = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)) if len(combos) > 1 else ""
        title = f"{values['dataset']}, {values['model']}, T = {values['T']}"
        if values["pipeline"] and "pipeline" in named:
            title = f"{values['pipeline']}: {title}"
        out.append((f"-{suffix}" if suffix else "", title, rows))
    return out


def figure_files(out: Path) -> list[Path]:
    """The PNGs a figure function wrote for ``out``: ``out`` itself or its per-setting files."""
    if out.exists():
        return [out]
    return sorted(out.parent.glob(f"{out.stem}-*{out.suffix}"), key=lambda p: p.stem)


def clear(out: Path) -> None:
    """Remove this figure's files from a previous report (a setting may have disappeared)."""
    for path in [*out.parent.glob(f"{out.stem}.*"), *out.parent.glob(f"{out.stem}-*.*")]:
        if path.suffix in (*FORMATS, ".csv"):
            path.unlink()


def palette(methods: list[str]) -> dict[str, str]:
    """The fixed colour of each method (:mod:`mpdsnn.report.palette`)."""
    return colors_.method_colors(methods)


def n_label(method: str, n: pd.Series) -> str:
    """Legend label naming the number of seeds behind a line: ``ds-atgo (n=3)``, or
    ``(n=2-3)`` where some points average fewer seeds (a run stopped early)."""
    n = pd.to_numeric(n, errors="coerce").dropna().astype(int)
    if n.empty:
        return method
    lo, hi = n.min(), n.max()
    return f"{method} (n={hi})" if lo == hi else f"{method} (n={lo}–{hi})"


@contextmanager
def styled() -> Iterator[None]:
    """Seaborn's whitegrid look; fonts embedded as TrueType in PDF and kept as text in SVG, so
    a figure's labels stay editable and searchable."""
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85), \
            rc_context({"pdf.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": "mpdsnn"}):
        yield


def new_figure(nrows: int, ncols: int, width: float, height: float, **kw) -> tuple[Figure, np.ndarray]:
    """A figure of ``nrows x ncols`` panels of ``width x height`` inches. Grids get fixed
    margins (in inches) instead of a layout engine or a tight crop: both redraw the figure and
    cost seconds on a few dozen panels."""
    grid = nrows * ncols > 4
    if not grid:
        fig = Figure(figsize=(max(width * ncols, MIN_WIDTH), height * nrows), layout="constrained")
        return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)
    left, right, top, bottom = 1.0, 0.25, 0.9, 1.0  # inches: 3-line y labels, rotated ticks
    w, h = max(width * ncols + left + right, MIN_WIDTH), height * nrows + top + bottom
    fig = Figure(figsize=(w, h))
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        hspace=0.35, wspace=0.3)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def suptitle(fig: Figure, text: str) -> None:
    """Figure title wrapped to the figure's width, so it is never cut at the edges."""
    chars = max(int(fig.get_figwidth() * TITLE_CHARS_PER_INCH), 30)
    fig.suptitle("\n".join(textwrap.wrap(text, chars)), fontsize=10)


def integer_ticks(axis: Axis) -> None:
    """Ticks at whole numbers only (epochs, timesteps): no "epoch 1.5"."""
    axis.set_major_locator(MaxNLocator(integer=True))


def save(fig: Figure, path: Path) -> None:
    """``path`` (PNG, 300 dpi) and the same figure as PDF and SVG beside it. No timestamps in
    the vector files, so rebuilding a report from the same runs gives the same bytes."""
    fig.savefig(path.with_suffix(".png"), dpi=DPI)
    fig.savefig(path.with_suffix(".pdf"), metadata={"CreationDate": None, "ModDate": None})
    fig.savefig(path.with_suffix(".svg"), metadata={"Date": None})


def per_setting(data: pd.DataFrame, out: Path, draw: Callable[[pd.DataFrame, str], Figure]) -> None:
    """Draw and save one figure (PNG, PDF, SVG; its data as CSV beside it) per setting in ``data``."""
    clear(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix, title, rows in settings(data):
        path = out.with_name(f"{out.stem}{suffix}{out.suffix}")
        with styled():
            save(draw(rows, title), path)
        rows.to_csv(path.with_suffix(".csv"), index=False)


def lines(ax: Axes, data: pd.DataFrame, x: str, colors: dict, band: bool = True, **kw) -> None:
    """One line per method through ``mean`` (legend: method and seeds n), a +-std band where
    std is defined (n > 1)."""
    for method in order_methods(data["method"]):
        d = data[data["method"] == method].sort_values(x)
        ax.plot(d[x], d["mean"], color=colors[method], label=n_label(method, d["n"]),
                **{"marker": colors_.method_marker(method), "ms": 3.5, **kw})
        if band and d["std"].notna().any():
            ax.fill_between(d[x], d["mean"] - d["std"], d["mean"] + d["std"], color=colors[method],
                            alpha=0.2, linewidth=0)


def legend(ax: Axes, title: str = "method") -> None:
    """Legend outside the axes, right of it, so it never hides a line."""
    ax.legend(title=title, fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def layer_axis(ax: Axes, data: pd.DataFrame) -> None:
    """x ticks at layer indices, labelled with layer names when few enough to read."""
    names = data.drop_duplicates("layer").sort_values("layer")
    ax.set_xticks(names["layer"].tolist())
    if len(names) <= 12 and "layer_name" in names:
        ax.set_xticklabels(names["layer_name"].astype(str), rotation=40, ha="right")
    ax.set_xlabel("spiking layer (forward order)")

"""The paper's figures, regenerated from run folders (never by retraining).

Each ``figN_*`` function takes loaded tables (:mod:`mpdsnn.report.collect`) and the PNG path
to write, writes the data it drew as ``<figure>.csv`` beside the PNG, and returns that data as a
tidy DataFrame, so tests check the numbers behind a figure rather than its pixels. With several
settings (dataset, model, T) a figure is written once per setting, ``<figure>-<setting>.png``.
Probe figures show each run's last probed epoch; "mean +- std" is over seeds (sample std).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns

from mpdsnn.report import _plot
from mpdsnn.paper import METHOD_ORDER as ABLATION, TARGET_RATE as TARGET_RATE_PCT, order_methods
from mpdsnn.runfolder.reader import SETTING

log = logging.getLogger(__name__)

BY_LAYER = [*SETTING, "method", "layer", "layer_name"]


def _empty(out: Path, what: str, columns: list[str]) -> pd.DataFrame:
    _plot.clear(out)
    log.info("no %s in the run folders: %s not drawn", what, out.name)
    return pd.DataFrame(columns=columns)


# --- Fig. 5: analytic fraction of potentials inside the gradient window -----------------------

PAPER_FIG5 = pd.DataFrame({
    "s": [0.5, 1.0, 2.0, 0.5, 1.0, 2.0],
    "rule": ["fixed"] * 3 + ["tgo"] * 3,
    "fraction_pct": [47.72, 24.17, 12.10, 26.00, 24.17, 21.30],
})
"""The paper's Fig. 5 points (percent of N(0, s^2) potentials inside the window)."""
RULES = {"fixed": "fixed k = 1", "tgo": "TGO k = 1 + tanh(s - 1)"}


def tgo_width(x: np.ndarray | float, vth: float = 1.0, k0: float = 1.0) -> np.ndarray:
    """TGO width ``k0 (1 - tanh(Vth - x))`` below Vth and ``k0 (1 + tanh(x - Vth))`` above:
    one function, ``k0 (1 + tanh(x - Vth))`` (numpy twin of ``mpdsnn.neuron.width.tgo_width``,
    so a report never imports torch)."""
    return k0 * (1 + np.tanh(np.asarray(x, dtype=float) - vth))


def window_fraction(s: np.ndarray | float, k: np.ndarray | float, theta: np.ndarray | float | None = None) -> np.ndarray:
    """P(|U - theta| <= k / 2) for U ~ N(0, s^2): the share of potentials that get a gradient
    from a rectangular surrogate of width k centred on theta (theta = s, the AT threshold of a
    zero-mean MPD, by default). Fraction 0-1."""
    s = np.asarray(s, dtype=float)
    theta = s if theta is None else np.asarray(theta, dtype=float)
    erf = np.vectorize(math.erf)
    cdf = lambda z: 0.5 * (1 + erf(z / math.sqrt(2)))  # noqa: E731
    return cdf((theta + np.asarray(k) / 2) / s) - cdf((theta - np.asarray(k) / 2) / s)


def window_fractions(s_values: np.ndarray) -> pd.DataFrame:
    """Analytic Fig. 5 curves: ``s``, ``rule`` (fixed | tgo), ``k``, ``fraction_pct``, with
    Vth = 1 and theta = s."""
    s_values = np.asarray(s_values, dtype=float)
    frames = []
    for rule, k in (("fixed", np.ones_like(s_values)), ("tgo", tgo_width(s_values))):
        frames.append(pd.DataFrame({"s": s_values, "rule": rule, "k": k,
                                    "fraction_pct": 100 * window_fraction(s_values, k)}))
    return pd.concat(frames, ignore_index=True)


def fig5_window_fractions(layers: pd.DataFrame | None, out: Path,
                          s_values: np.ndarray | None = None) -> pd.DataFrame:
    """Paper Fig. 5: analytic window fractions for fixed and TGO widths with the paper's points
    marked; beside it, when probes exist, the measured gradient-available proportion per layer.
    Returns rows with ``source`` = analytic | paper | measured."""
    s_values = np.round(np.linspace(0.25, 3.0, 56), 6) if s_values is None else s_values
    analytic = window_fractions(np.union1d(s_values, PAPER_FIG5["s"])).assign(source="analytic")
    paper = PAPER_FIG5.assign(source="paper", k=lambda d: np.where(d.rule == "tgo", tgo_width(d.s), 1.0))
    curves = pd.concat([analytic, paper], ignore_index=True)
    measured = pd.DataFrame()
    if layers is not None and not layers.empty:
        measured = _plot.aggregate(_plot.last_probe(layers), BY_LAYER,
                                   {"grad_available": ("grad_available_pct", 100.0)})
    _plot.clear(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = _plot.settings(measured) if not measured.empty else [("", "", measured)]
    frames = []
    for suffix, title, rows in parts:
        data = pd.concat([curves, rows.assign(source="measured")], ignore_index=True)
        for col in ("T", "layer", "n"):  # integers, with gaps on the analytic rows
            if col in data:
                data[col] = data[col].astype("Int64")
        path = out.with_name(f"{out.stem}{suffix}{out.suffix}")
        with _plot.styled():
            fig, axes = _plot.new_figure(1, 1 if rows.empty else 2, 5.2, 3.8)
            ax = axes[0, 0]
            for rule, color in (("fixed", "tab:gray"), ("tgo", "tab:red")):
                a = analytic[analytic.rule == rule]
                ax.plot(a.s, a.fraction_pct, color=color, label=RULES[rule])
                p = paper[paper.rule == rule]
                ax.scatter(p.s, p.fraction_pct, color=color, zorder=3, edgecolor="black")
                for r in p.itertuples():
                    ax.annotate(f"{r.fraction_pct:.2f}", (r.s, r.fraction_pct), textcoords="offset points",
                                xytext=(4, 4 if rule == "tgo" else -11), fontsize=7)
            ax.set(xlabel="std s of the potentials (U ~ N(0, s²), θ = s, Vth = 1)",
                   ylabel="potentials inside |U − θ| ≤ k/2 (%)",
                   title="Fig. 5 (analytic): gradient window; dots = paper")
            ax.legend(fontsize=8)
            if not rows.empty:
                ax = axes[0, 1]
                _plot.lines(ax, rows, "layer", _plot.palette(rows["method"].tolist()))
                _plot.layer_axis(ax, rows)
                ax.set(ylabel="gradient available (%)", title=f"measured per layer (last probe), {title}")
                _plot.legend(ax)
            _plot.save(fig, path)
        data.to_csv(path.with_suffix(".csv"), index=False)
        frames.append(data)
    return pd.concat(frames, ignore_index=True).drop_duplicates(
        subset=[c for c in ["source", "rule", "s", *BY_LAYER] if c in frames[0]]).reset_index(drop=True)


# --- Fig. 6: ablation curves ---------------------------------------------------------------------

def fig6_ablation_curves(history: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Paper Fig. 6: training loss and test accuracy per epoch of vanilla, at, tgo and ds-atgo
    (mean over seeds, +-std band). Quantities ``train_loss`` and ``test_acc`` (%)."""
    rows = history[history["method"].isin(ABLATION)] if not history.empty else history
    cols = [*SETTING, "method", "epoch", "quantity", "mean", "std", "n"]
    if rows.empty:
        return _empty(out, "history of the ablation methods (vanilla, at, tgo, ds-atgo)", cols)
    data = _plot.aggregate(rows, [*SETTING, "method", "epoch"],
                           {"train_loss": ("train_loss", 1.0), "test_acc": ("test_acc", 1.0)})

    def draw(part: pd.DataFrame, title: str):
        fig, axes = _plot.new_figure(1, 2, 5.0, 3.6)
        colors = _plot.palette(part["method"].tolist())
        for ax, (q, label) in zip(axes[0], [("train_loss", "training loss"), ("test_acc", "test accuracy (%)")]):
            _plot.lines(ax, part[part.quantity == q], "epoch", colors)
            ax.set(xlabel="epoch", ylabel=label, title=label)
        _plot.legend(axes[0, 1])
        fig.suptitle(f"Fig. 6: ablation curves, {title} (mean ± std over seeds)")
        return fig

    _plot.per_setting(data, out, draw)
    return data


# --- Fig. 8 / Fig. 11: per-layer firing rate and gradient availability ---------------------------

def _per_layer(layers: pd.DataFrame, out: Path, column: str, label: str, fig_title: str,
               reference: tuple[float, str] | None = None) -> pd.DataFrame:
    name = f"{column}_pct"
    if layers.empty:
        return _empty(out, "probes/layers.csv", [*BY_LAYER, "quantity", "mean", "std", "n"])
    data = _plot.aggregate(_plot.last_probe(layers), BY_LAYER, {column: (name, 100.0)})

    def draw(part: pd.DataFrame, title: str):
        fig, axes = _plot.new_figure(1, 1, 7.0, 4.0)
        ax = axes[0, 0]
        _plot.lines(ax, part, "layer", _plot.palette(part["method"].tolist()))
        if reference:
            ax.axhline(reference[0], color="black", ls=":", lw=1, label=reference[1])
        _plot.layer_axis(ax, part)
        ax.set(ylabel=label, title=f"{fig_title}, {title}\n(last probe, mean ± std over seeds)")
        _plot.legend(ax)
        return fig

    _plot.per_setting(data, out, draw)
    return data


def fig8_firing_rate_per_layer(layers: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Paper Fig. 8: test-set firing rate (%) of each spiking layer per method."""
    return _per_layer(layers, out, "firing_rate", "firing rate (%)", "Fig. 8: firing rate per layer",
                      (TARGET_RATE_PCT, f"1 − Φ(1) = {TARGET_RATE_PCT:.2f} %"))


def fig11_grad_available_per_layer(layers: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Paper Fig. 11: share (%) of potentials inside the surrogate window, per layer and method."""
    return _per_layer(layers, out, "grad_available", "gradient available (%)",
                      "Fig. 11: gradient-available proportion per layer")


# --- Fig. 10: firing rate per timestep ----------------------------------------------------------

def fig10_firing_rate_per_timestep(timesteps: pd.DataFrame, layers: pd.DataFrame | None,
                                   out: Path) -> pd.DataFrame:
    """Paper Fig. 10: the network's firing rate (%) at each timestep: spikes over neurons of all
    layers, i.e. layers weighted by their ``neurons`` from layers.csv (equal weights without it)."""
    cols = [*SETTING, "method", "t", "quantity", "mean", "std", "n"]
    if timesteps.empty:
        return _empty(out, "probes/timesteps.csv", cols)
    steps = _plot.last_probe(timesteps)
    if layers is not None and not layers.empty and "neurons" in layers:
        steps = steps.merge(layers[["run", "epoch", "layer", "neurons"]], on=["run", "epoch", "layer"], how="left")
    else:
        steps = steps.assign(neurons=1.0)
    steps = steps.assign(neurons=steps["neurons"].fillna(1.0), _w=lambda d: d.firing_rate * d.neurons)
    per_run = steps.groupby(["run", *SETTING, "method", "t"], as_index=False)[["_w", "neurons"]].sum()
    per_run["firing_rate"] = per_run["_w"] / per_run["neurons"]
    data = _plot.aggregate(per_run, [*SETTING, "method", "t"], {"firing_rate": ("firing_rate_pct", 100.0)})

    def draw(part: pd.DataFrame, title: str):
        fig, axes = _plot.new_figure(1, 1, 6.0, 3.8)
        ax = axes[0, 0]
        _plot.lines(ax, part, "t", _plot.palette(part["method"].tolist()))
        ax.set_xticks(sorted(part["t"].unique()))
        ax.set(xlabel="timestep t", ylabel="firing rate, all layers (%)",
               title=f"Fig. 10: firing rate per timestep, {title}")
        _plot.legend(ax)
        return fig

    _plot.per_setting(data, out, draw)
    return data


# --- Fig. 2: MPD histograms ------------------------------------------------------------------

def _pick_layers(layers: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` layers, evenly spaced, always the first and the last."""
    layers = np.sort(np.unique(layers))
    if len(layers) <= most:
        return layers
    return layers[np.unique(np.round(np.linspace(0, len(layers) - 1, most)).astype(int))]


def fig2_mpd_histograms(mpd_hist: pd.DataFrame, out: Path, max_layers: int = 4,
                        methods: list[str] | None = None) -> pd.DataFrame:
    """Paper Fig. 2: the membrane-potential distribution of each layer (rows, at most
    ``max_layers`` evenly spaced) and method (columns), one line per timestep, showing its drift.
    ``methods`` defaults to the ablation methods present (all methods when none is), which
    keeps the grid small enough to draw in about a second. Drawn from the lowest seed of each
    method (edges may differ between runs, so densities are not averaged).
    ``density`` = count / (total of that layer and t x bin width)."""
    cols = [*SETTING, "method", "seed", "layer", "layer_name", "t", "center", "density"]
    if not mpd_hist.empty:
        if methods is None:
            methods = [m for m in ABLATION if m in set(mpd_hist["method"])] or None
        if methods is not None:
            mpd_hist = mpd_hist[mpd_hist["method"].isin(methods)]
    if mpd_hist.empty:
        return _empty(out, "probes/mpd_hist.npz", cols)
    first = mpd_hist.groupby([*SETTING, "method"])["seed"].transform("min")
    hist = mpd_hist[mpd_hist["seed"] == first]
    keep = hist.groupby(SETTING)["layer"].transform(lambda s: s.isin(_pick_layers(s.to_numpy(), max_layers)))
    hist = hist[keep.astype(bool)]
    total = hist.groupby(["run", "layer", "t"])["count"].transform("sum").replace(0, np.nan)
    data = hist.assign(center=(hist.left + hist.right) / 2,
                       density=hist["count"] / (total * (hist.right - hist.left)))[cols]
    data = _plot.sort(data)

    def draw(part: pd.DataFrame, title: str):
        methods = order_methods(part["method"])
        layer_ids = sorted(part["layer"].unique())
        fig, axes = _plot.new_figure(len(layer_ids), len(methods), 2.8, 1.9, sharex=True)
        steps = sorted(part["t"].unique())
        colors = dict(zip(steps, sns.color_palette("viridis", len(steps))))
        for i, layer in enumerate(layer_ids):
            for j, method in enumerate(methods):
                ax = axes[i, j]
                cell = part[(part.layer == layer) & (part.method == method)]
                for t in steps:
                    d = cell[cell.t == t]
                    ax.plot(d.center, d.density, color=colors[t], lw=1, label=f"t = {t}")
                ax.axvline(1.0, color="black", ls=":", lw=0.8)
                if i == 0:
                    ax.set_title(f"{method} (seed {int(cell.seed.min()) if len(cell) else '-'})")
                if j == 0:
                    name = cell.layer_name.iloc[0] if len(cell) else layer
                    ax.set_ylabel(f"layer {layer}\n{name}\ndensity", fontsize=8)
                if i == len(layer_ids) - 1:
                    ax.set_xlabel("potential U (pre-fire)")
        axes[0, -1].legend(fontsize=7, title="timestep", title_fontsize=7)
        fig.suptitle(f"Fig. 2: MPD per layer and timestep, {title} (dotted: Vth = 1)")
        return fig

    _plot.per_setting(data, out, draw)
    return data


# --- thresholds and widths ---------------------------------------------------------------------

THRESHOLD_QUANTITIES = {
    "theta": ("theta", "threshold θ (eval, running estimate)"),
    "theta_train": ("theta_train", "threshold θ (training mode)"),
    "width": ("width", "surrogate width k (training mode)"),
}


def thresholds_widths(timesteps: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Threshold (eval and training mode) and surrogate width of each layer and timestep per
    method, at the last probe (mean over seeds): the trajectories behind AT and TGO. Methods
    whose thresholds and widths are one constant everywhere (vanilla, fixed: 1 and 1) are left
    out of the data and named in the figure title."""
    by = [*BY_LAYER, "t"]
    cols = [*by, "quantity", "mean", "std", "n"]
    if timesteps.empty:
        return _empty(out, "probes/timesteps.csv", cols)
    present = {c: (c, 1.0) for c in THRESHOLD_QUANTITIES if c in timesteps}
    data = _plot.aggregate(_plot.last_probe(timesteps), by, present)
    spread = data.groupby([*SETTING, "method", "quantity"])["mean"].agg(lambda v: v.max() - v.min())
    varying = spread[spread > 1e-9].reset_index()[[*SETTING, "method"]].drop_duplicates()
    constant = (data[[*SETTING, "method"]].drop_duplicates()
                .merge(varying, how="left", indicator=True).query("_merge == 'left_only'"))
    data = data.merge(varying, on=[*SETTING, "method"])
    if data.empty:
        return _empty(out, "a method with adaptive thresholds or widths", cols)

    def draw(part: pd.DataFrame, title: str):
        methods = order_methods(part["method"])
        quantities = [q for q in THRESHOLD_QUANTITIES if q in set(part.quantity)]
        fig, axes = _plot.new_figure(len(quantities), len(methods), 3.0, 2.4, sharey="row", sharex=True)
        steps = sorted(part["t"].unique())
        colors = dict(zip(steps, sns.color_palette("viridis", len(steps))))
        for i, q in enumerate(quantities):
            for j, method in enumerate(methods):
                ax = axes[i, j]
                cell = part[(part.quantity == q) & (part.method == method)]
                for t in steps:
                    d = cell[cell.t == t].sort_values("layer")
                    ax.plot(d.layer, d["mean"], color=colors[t], marker="o", ms=2, lw=1, label=f"t = {t}")
                if i == 0:
                    ax.set_title(method)
                if j == 0:
                    ax.set_ylabel(THRESHOLD_QUANTITIES[q][1], fontsize=8)
                if i == len(quantities) - 1:
                    _plot.layer_axis(ax, cell if len(cell) else part)
        axes[0, -1].legend(fontsize=7, title="timestep", title_fontsize=7)
        rows = part[SETTING].iloc[0]
        flat = constant[(constant[SETTING] == rows).all(axis=1)]["method"]
        note = f"; constant, not shown: {', '.join(order_methods(flat))}" if len(flat) else ""
        fig.suptitle(f"Thresholds and surrogate widths per layer and timestep, {title} (last probe{note})")
        return fig

    _plot.per_setting(data, out, draw)
    return data


# --- accuracy vs energy ---------------------------------------------------------------------

def accuracy_vs_energy(runs: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Best test accuracy (%) against energy per sample (uJ; the common 45 nm convention, not a
    number from the paper), mean +- std over seeds of each method's finished runs."""
    cols = [*SETTING, "method", "quantity", "mean", "std", "n"]
    done = runs[runs["finished"]] if "finished" in runs else runs
    need = {"best_test_acc", "energy_uj_per_sample"}
    if done.empty or not need <= set(done.columns) or done["energy_uj_per_sample"].isna().all():
        return _empty(out, "energy_uj_per_sample in metrics.json", cols)
    data = _plot.aggregate(done, [*SETTING, "method"], {
        "energy_uj_per_sample": ("energy_uj_per_sample", 1.0), "best_test_acc": ("best_test_acc", 1.0)})

    def draw(part: pd.DataFrame, title: str):
        fig, axes = _plot.new_figure(1, 1, 6.0, 4.2)
        ax = axes[0, 0]
        wide = part.pivot(index="method", columns="quantity", values=["mean", "std"])
        colors = _plot.palette(part["method"].tolist())
        for method in order_methods(part["method"]):
            row = wide.loc[method]
            ax.errorbar(row[("mean", "energy_uj_per_sample")], row[("mean", "best_test_acc")],
                        xerr=row[("std", "energy_uj_per_sample")], yerr=row[("std", "best_test_acc")],
                        fmt="o", color=colors[method], capsize=3, label=method)
        ax.set(xlabel="energy per test sample (µJ, 45 nm convention; not in the paper)",
               ylabel="best test accuracy (%)", title=f"Accuracy vs energy, {title}")
        _plot.legend(ax)
        return fig

    _plot.per_setting(data, out, draw)
    return data

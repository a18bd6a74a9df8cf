"""The paper's figures, regenerated from run folders (never by retraining).

Each ``figN_*`` function takes loaded tables (:mod:`mpdsnn.runfolder.reader`) and the PNG path
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

from mpdsnn.paper import METHOD_ORDER as ABLATION, TARGET_RATE as TARGET_RATE_PCT, order_methods
from mpdsnn.report import _plot, palette
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
            for rule, color in (("fixed", palette.METHOD_COLORS["vanilla"]), ("tgo", palette.METHOD_COLORS["tgo"])):
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
    (mean over seeds, +-std band). Quantities ``train_loss`` and ``test_acc`` (%). Variants
    without runs in a setting are named in its title ("not run: tgo")."""
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
            _plot.integer_ticks(ax.xaxis)
            ax.set(xlabel="epoch", ylabel=label, title=label)
        _plot.legend(axes[0, 1])
        missing = [m for m in ABLATION if m not in set(part["method"])]
        note = f"; not run: {', '.join(missing)}" if missing else ""
        _plot.suptitle(fig, f"Fig. 6: ablation curves, {title} (mean ± std over seeds{note})")
        return fig

    _plot.per_setting(data, out, draw)
    return data


# --- Fig. 8 / Fig. 11: per-layer firing rate and gradient availability ---------------------------

Reference = tuple[float, str, str]
"""A horizontal line on a figure: (y, legend label, colour); the paper's numbers are dashed."""

PAPER_FIG8 = [(15.0, "paper, CIFAR-10: ds-atgo ≈ 15 %", palette.METHOD_COLORS["ds-atgo"]),
              (10.66, "paper: vanilla mean 10.66 %", palette.METHOD_COLORS["vanilla"])]
PAPER_FIG11 = [(38.53, "paper, CIFAR-100: ds-atgo > 38.53 %", palette.METHOD_COLORS["ds-atgo"]),
               (15.13, "paper: vanilla < 15.13 % (last 3)", palette.METHOD_COLORS["vanilla"])]
PAPER_FIG10 = (14.0, 15.9)
"""The paper's Fig. 10 range (CIFAR10-DVS, t = 1..10), percent; SPEC section 7."""


def _reference_lines(ax, references: list[Reference]) -> None:
    for y, label, color in references:
        ax.axhline(y, color=color, ls="--", lw=0.9, alpha=0.8, label=label)


def _per_layer(layers: pd.DataFrame, out: Path, column: str, label: str, fig_title: str,
               theory: tuple[float, str] | None = None, paper: list[Reference] = ()) -> pd.DataFrame:
    name = f"{column}_pct"
    if layers.empty:
        return _empty(out, "probes/layers.csv", [*BY_LAYER, "quantity", "mean", "std", "n"])
    data = _plot.aggregate(_plot.last_probe(layers), BY_LAYER, {column: (name, 100.0)})

    def draw(part: pd.DataFrame, title: str):
        fig, axes = _plot.new_figure(1, 1, 8.0, 4.2)
        ax = axes[0, 0]
        _plot.lines(ax, part, "layer", _plot.palette(part["method"].tolist()))
        if theory:
            ax.axhline(theory[0], color="black", ls=":", lw=1, label=theory[1])
        _reference_lines(ax, paper)
        _plot.layer_axis(ax, part)
        ax.set(ylabel=label)
        _plot.suptitle(fig, f"{fig_title}, {title} (last probe, mean ± std over n seeds)")
        _plot.legend(ax)
        return fig

    _plot.per_setting(data, out, draw)
    return data


def fig8_firing_rate_per_layer(layers: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Paper Fig. 8: test-set firing rate (%) of each spiking layer per method."""
    return _per_layer(layers, out, "firing_rate", "firing rate (%)", "Fig. 8: firing rate per layer",
                      (TARGET_RATE_PCT, f"1 − Φ(1) = {TARGET_RATE_PCT:.2f} %"), PAPER_FIG8)


def fig11_grad_available_per_layer(layers: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Paper Fig. 11: share (%) of potentials inside the surrogate window, per layer and method."""
    return _per_layer(layers, out, "grad_available", "gradient available (%)",
                      "Fig. 11: gradient-available proportion per layer", paper=PAPER_FIG11)


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
        fig, axes = _plot.new_figure(1, 1, 8.0, 4.0)
        ax = axes[0, 0]
        _plot.lines(ax, part, "t", _plot.palette(part["method"].tolist()))
        ax.axhspan(*PAPER_FIG10, color=palette.METHOD_COLORS["ds-atgo"], alpha=0.08, lw=0,
                   label="paper, CIFAR10-DVS: 14.0–15.9 %")
        ax.set_xticks(sorted(part["t"].unique()))
        _plot.integer_ticks(ax.xaxis)
        ax.set(xlabel="timestep t", ylabel="firing rate, all layers (%)")
        _plot.suptitle(fig, f"Fig. 10: firing rate per timestep, {title} (mean ± std over n seeds)")
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


def _tails(hist: pd.DataFrame) -> pd.DataFrame:
    """Split each run's histogram into its interior bins and its two edge bins. The probe clamps
    potentials into its range (probes.HIST_EDGES), so an edge bin holds everything beyond it:
    drawn as a density it would be a false spike at the border. Adds ``below_pct`` and
    ``above_pct`` (share of that layer and timestep's potentials in the edge bins) and
    ``below_edge`` / ``above_edge`` (the inner border of the edge bins, e.g. -3.9 and 3.9)."""
    lo = hist.groupby("run")["left"].transform("min")
    hi = hist.groupby("run")["right"].transform("max")
    low_bin, high_bin = hist["left"] == lo, hist["right"] == hi
    total = hist.groupby(["run", "layer", "t"])["count"].transform("sum").replace(0, np.nan)
    share = 100 * hist["count"] / total
    keys = ["run", "layer", "t"]
    below = share.where(low_bin).groupby([hist[k] for k in keys]).transform("max")
    above = share.where(high_bin).groupby([hist[k] for k in keys]).transform("max")
    edges = hist.assign(below_edge=hist["right"].where(low_bin), above_edge=hist["left"].where(high_bin))
    return hist.assign(
        density=hist["count"] / (total * (hist.right - hist.left)), center=(hist.left + hist.right) / 2,
        below_pct=below.fillna(0.0), above_pct=above.fillna(0.0),
        below_edge=edges.groupby("run")["below_edge"].transform("max"),
        above_edge=edges.groupby("run")["above_edge"].transform("min"),
    )[~(low_bin | high_bin)]


def _xlim(part: pd.DataFrame) -> tuple[float, float]:
    """The range that holds data: the outermost non-empty bins of every panel, or the edge
    bins' borders where a tail is non-empty (the tails are written as text there)."""
    filled = part[part["density"] > 0]
    lo, hi = filled["center"].min(), filled["center"].max()
    if (part["below_pct"] > 0).any():
        lo = part["below_edge"].min()
    if (part["above_pct"] > 0).any():
        hi = part["above_edge"].max()
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def fig2_mpd_histograms(mpd_hist: pd.DataFrame, out: Path, timesteps: pd.DataFrame | None = None,
                        max_layers: int = 12, methods: list[str] | None = None) -> pd.DataFrame:
    """Paper Fig. 2: the membrane-potential distribution of each layer (rows; every layer up to
    ``max_layers``, else an evenly spaced selection named in the title) and method (columns),
    one line per timestep, showing its drift, with each method's firing threshold theta(t)
    from timesteps.csv (dotted, in the timestep's colour when it varies with t).
    ``methods`` defaults to the ablation methods present (all methods when none is). Drawn
    from the lowest seed of each method (edges may differ between runs, so densities are not
    averaged); ``n_seeds`` says how many there were. ``density`` = count / (total of that layer
    and t x bin width) over the interior bins; the clamped edge bins are reported as
    ``below_pct`` / ``above_pct`` instead of being drawn."""
    cols = [*SETTING, "method", "seed", "n_seeds", "layer", "layer_name", "t", "center", "density",
            "below_pct", "above_pct", "below_edge", "above_edge", "theta"]
    if not mpd_hist.empty:
        if methods is None:
            methods = [m for m in ABLATION if m in set(mpd_hist["method"])] or None
        if methods is not None:
            mpd_hist = mpd_hist[mpd_hist["method"].isin(methods)]
    if mpd_hist.empty:
        return _empty(out, "probes/mpd_hist.npz", cols)
    seeds = mpd_hist.groupby([*SETTING, "method"])["seed"]
    hist = mpd_hist.assign(n_seeds=seeds.transform("nunique"))[mpd_hist["seed"] == seeds.transform("min")]
    all_layers = hist.groupby(SETTING)["layer"].transform("nunique").rename("n_layers")
    keep = hist.groupby(SETTING)["layer"].transform(lambda s: s.isin(_pick_layers(s.to_numpy(), max_layers)))
    hist = _tails(hist[keep.astype(bool)].assign(n_layers=all_layers))
    theta = pd.DataFrame(columns=["run", "layer", "t", "theta"])
    if timesteps is not None and not timesteps.empty and "theta" in timesteps:
        theta = _plot.last_probe(timesteps)[["run", "layer", "t", "theta"]]
    hist = hist.merge(theta, on=["run", "layer", "t"], how="left")
    n_layers = hist.groupby(SETTING)["n_layers"].first()
    data = _plot.sort(hist[cols])

    def draw(part: pd.DataFrame, title: str):
        methods = order_methods(part["method"])
        layer_ids = sorted(part["layer"].unique())
        total_layers = int(n_layers.loc[tuple(part[SETTING].iloc[0])])
        fig, axes = _plot.new_figure(len(layer_ids), len(methods), 2.8, 1.9, sharex=True)
        steps = sorted(part["t"].unique())
        colors = palette.timestep_colors(steps)
        for i, layer in enumerate(layer_ids):
            for j, method in enumerate(methods):
                ax = axes[i, j]
                cell = part[(part.layer == layer) & (part.method == method)]
                for t in steps:
                    d = cell[cell.t == t]
                    ax.plot(d.center, d.density, color=colors[t], lw=1, label=f"t = {t}")
                _threshold_lines(ax, cell, colors)
                _tail_note(ax, cell)
                if i == 0 and len(cell):
                    ax.set_title(f"{method}: seed {int(cell.seed.min())} of n = {int(cell.n_seeds.max())}",
                                 fontsize=9)
                if j == 0:
                    name = cell.layer_name.iloc[0] if len(cell) else layer
                    ax.set_ylabel(f"layer {layer}\n{name}\ndensity", fontsize=8)
                if i == len(layer_ids) - 1:
                    ax.set_xlabel("potential U (pre-fire)")
        axes[0, 0].set_xlim(*_xlim(part))
        axes[0, -1].legend(fontsize=7, title="timestep", title_fontsize=7)
        shown = (f"all {total_layers} spiking layers" if len(layer_ids) == total_layers else
                 f"layers {', '.join(map(str, layer_ids))} of {total_layers}")
        _plot.suptitle(fig, f"Fig. 2: MPD per layer and timestep, {title}; {shown}; dotted: each "
                            "method's firing threshold θ(t); boxes: potentials beyond the probe's range")
        return fig

    _plot.per_setting(data, out, draw)
    return data


def _threshold_lines(ax, cell: pd.DataFrame, colors: dict[int, str]) -> None:
    """The firing threshold the neurons of this panel used: one black line where it is the same
    at every timestep (vanilla, TGO: Vth = 1), else one line per timestep in its colour."""
    theta = cell.dropna(subset=["theta"]).drop_duplicates("t")[["t", "theta"]]
    if theta.empty:
        return
    if theta["theta"].max() - theta["theta"].min() < 1e-3:
        ax.axvline(theta["theta"].iloc[0], color="black", ls=":", lw=0.9)
        return
    for row in theta.itertuples():
        ax.axvline(row.theta, color=colors[row.t], ls=":", lw=0.9)


def _tail_note(ax, cell: pd.DataFrame) -> None:
    """The share of potentials beyond the probe's range (the largest over timesteps)."""
    if cell.empty:
        return
    below, above = cell["below_pct"].max(), cell["above_pct"].max()
    if below <= 0 and above <= 0:
        return
    text = f"U < {cell.below_edge.min():g}: {below:.2g} %\nU > {cell.above_edge.max():g}: {above:.2g} %"
    ax.text(0.98, 0.95, text, transform=ax.transAxes, ha="right", va="top", fontsize=6,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.8", "alpha": 0.85})


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
        fig, axes = _plot.new_figure(len(quantities), len(methods), 3.2, 2.4, sharey="row", sharex=True)
        steps = sorted(part["t"].unique())
        colors = palette.timestep_colors(steps)
        for i, q in enumerate(quantities):
            for j, method in enumerate(methods):
                ax = axes[i, j]
                cell = part[(part.quantity == q) & (part.method == method)]
                for t in steps:
                    d = cell[cell.t == t].sort_values("layer")
                    ax.plot(d.layer, d["mean"], color=colors[t], marker="o", ms=2, lw=1, label=f"t = {t}")
                if i == 0:
                    ax.set_title(_plot.n_label(method, cell["n"]), fontsize=9)
                if j == 0:
                    ax.set_ylabel(THRESHOLD_QUANTITIES[q][1], fontsize=8)
                if i == len(quantities) - 1:
                    _plot.layer_axis(ax, cell if len(cell) else part)
        axes[0, -1].legend(fontsize=7, title="timestep", title_fontsize=7)
        rows = part[SETTING].iloc[0]
        flat = constant[(constant[SETTING] == rows).all(axis=1)]["method"]
        note = f"; constant, not shown: {', '.join(order_methods(flat))}" if len(flat) else ""
        _plot.suptitle(fig, f"Thresholds and surrogate widths per layer and timestep, {title} "
                            f"(last probe, mean over n seeds{note})")
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
                        fmt=palette.method_marker(method), color=colors[method], capsize=3,
                        label=_plot.n_label(method, part.loc[part.method == method, "n"]))
        ax.set(xlabel="energy per test sample (µJ, 45 nm convention; not in the paper)",
               ylabel="best test accuracy (%)")
        _plot.suptitle(fig, f"Accuracy vs energy, {title} (mean ± std over n seeds)")
        _plot.legend(ax)
        return fig

    _plot.per_setting(data, out, draw)
    return data

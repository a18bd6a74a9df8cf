"""Reports from run folders: every number behind a table or figure equals what the synthetic
run folders (tests/synthetic_runs.py) hold; files exist, open and reference each other."""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mpdsnn.errors import UserError
from mpdsnn.cli import main as cli_main
from mpdsnn.paper import order_methods
from mpdsnn.report import FIGURES, _plot, build_report, comparison_table, figures, palette, vega
from mpdsnn.runfolder.reader import read_runs
from synthetic_runs import LAYER_NAMES, NEURONS, write_runs

EXTRA = [("Published vs reproduced", "| claim | verdict |\n| --- | --- |\n| CIFAR-10 +1.71 | pending |")]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return root, write_runs(root)


@pytest.fixture(scope="module")
def report(synth, tmp_path_factory):
    root, _ = synth
    return build_report(read_runs([root]), [root], tmp_path_factory.mktemp("site") / "reports",
                        extra_sections=EXTRA)


def finished(runs):
    return [r for r in runs if r.status == "finished"]


def groups(runs):
    out: dict[tuple[str, str], list] = {}
    for r in finished(runs):
        out.setdefault((r.dataset, r.method), []).append(r)
    return out


def sd(values):
    return statistics.stdev(values) if len(values) > 1 else math.nan


def close(a, b, tol=1e-9):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path) -> list[str]:
    """Every text of a matplotlib SVG (the report keeps text as text: svg.fonttype none)."""
    return [" ".join(t.itertext()) for t in ET.parse(path).iter(f"{SVG}text")]


def svg_legend(path) -> dict[str, str]:
    """Legend label -> the stroke colour of the line drawn beside it, in the first legend."""
    legend = next(g for g in ET.parse(path).iter(f"{SVG}g") if g.get("id", "").startswith("legend"))
    out, colour = {}, None
    for el in legend.iter():
        style = el.get("style", "")
        if el.tag == f"{SVG}path" and "stroke: #" in style and "fill: none" in style:
            colour = style.split("stroke: ")[1].split(";")[0]
        if el.tag == f"{SVG}text" and colour:
            out["".join(el.itertext())] = colour
            colour = None
    return out


def svg_xticks(path) -> list[str]:
    ticks = [g for g in ET.parse(path).iter(f"{SVG}g") if g.get("id", "").startswith("xtick")]
    return ["".join(t.itertext()) for g in ticks for t in g.iter(f"{SVG}text")]


# --- collect ----------------------------------------------------------------------------------

def test_long_table_has_one_row_per_run_with_keys_and_metrics(synth):
    root, runs = synth
    table = read_runs([root]).runs
    assert len(table) == len(runs) == 34
    assert table["finished"].sum() == 32
    for col in ["run", "pipeline", "dataset", "model", "method", "seed", "T", "best_test_acc", "config.lr"]:
        assert col in table
    row = table[table["run"] == "synthetic/cifar10-dvs/tgo/seed1"].iloc[0]
    written = next(r for r in runs if (r.dataset, r.method, r.seed) == ("cifar10-dvs", "tgo", 1))
    assert (row.pipeline, row.model, row["T"]) == ("synthetic", "vggsnn", 4)
    assert row.best_test_acc == written.metrics["best_test_acc"]
    assert row.energy_uj_per_sample == written.metrics["energy_uj_per_sample"]


def test_unfinished_runs_are_listed_warned_and_kept_out_of_every_table(synth, caplog):
    root, _ = synth
    with caplog.at_level(logging.WARNING, logger="mpdsnn.runfolder.reader"):
        tables = read_runs([root])
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "2 unfinished" in warning and "ds-atgo/seed7 (no metrics.json)" in warning
    assert "at/seed9 (no metrics.json)" in warning
    assert set(tables.runs.loc[~tables.runs.finished, "status"]) == {"no metrics.json"}
    for frame in (tables.history, tables.layers, tables.timesteps, tables.mpd_hist):
        assert not frame.empty and not frame["run"].str.contains("seed7|seed9").any()


def test_bad_inputs_are_user_errors_naming_the_fix(tmp_path, synth):
    with pytest.raises(UserError, match="is not a directory"):
        read_runs([tmp_path / "nope"])
    with pytest.raises(UserError, match="no run folders"):
        read_runs([tmp_path])
    run = tmp_path / "p" / "d" / "m" / "seed0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("method: m\n")
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(UserError, match="metrics.json is not valid JSON"):
        read_runs([tmp_path])
    (run / "metrics.json").write_text(json.dumps({"status": "finished", "method": "m", "seed": 0, "T": 2}))
    with pytest.raises(UserError, match="names no 'dataset'"):
        read_runs([tmp_path])
    root, _ = synth
    with pytest.raises(UserError, match="extra report sections"):
        build_report(read_runs([root]), [root], tmp_path / "out", extra_sections=["just a string"])


def test_cli_reports_user_errors_without_traceback(tmp_path, capsys):
    assert cli_main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "error: run root" in capsys.readouterr().err
    (tmp_path / "spec.json").write_text("<html>")
    assert cli_main(["plots", "render-vega", str(tmp_path / "spec.json"), str(tmp_path / "o")]) == 2
    assert "cannot read a Vega-Lite spec" in capsys.readouterr().err


# --- tables --------------------------------------------------------------------------------

def test_method_order_puts_ds_atgo_and_ablations_first():
    assert order_methods(["zeta", "vanilla", "alpha", "tgo", "ds-atgo", "at", "vanilla"]) == [
        "ds-atgo", "at", "tgo", "vanilla", "alpha", "zeta"]


def test_comparison_table_equals_the_written_numbers(synth, report):
    _, runs = synth
    table = report.comparison
    assert list(table[table.dataset == "cifar10"]["method"]) == ["ds-atgo", "at", "tgo", "vanilla", "fixed", "ltmd"]
    expected = groups(runs)
    assert len(table) == len(expected) == 12
    for row in table.itertuples():
        rs = expected[(row.dataset, row.method)]
        assert row.n == len(rs)
        for metric in ["best_test_acc", "last_test_acc"]:
            values = [r.metrics[metric] for r in rs]
            assert close(getattr(row, f"{metric}_mean"), statistics.mean(values))
            assert close(getattr(row, f"{metric}_std"), sd(values))
        val = [r.metrics["val_selected_test_acc"] for r in rs]
        if row.dataset == "cifar10-dvs":  # no validation split
            assert math.isnan(row.val_selected_test_acc_mean)
        else:
            assert close(row.val_selected_test_acc_mean, statistics.mean(val))
        assert close(row.mean_firing_rate_mean, statistics.mean(r.metrics["mean_firing_rate"] for r in rs))
        assert close(row.energy_uj_per_sample_mean, statistics.mean(r.metrics["energy_uj_per_sample"] for r in rs))
    # the unfinished ds-atgo run (best 36 %) would drag this mean far down if it were counted
    assert table.set_index(["dataset", "method"]).loc[("cifar10", "ds-atgo"), "n"] == 3


def test_comparison_table_ignores_unfinished_rows_itself(synth):
    root, _ = synth
    runs = read_runs([root]).runs
    direct = comparison_table(runs)
    assert direct.set_index(["dataset", "method"]).loc[("cifar10", "ds-atgo"), "n"] == 3


def test_table_files_hold_every_method_row(report):
    md = report.tables["md"].read_text()
    tex = report.tables["tex"].read_text()
    csv = pd.read_csv(report.tables["csv"])
    assert len(csv) == 12 and csv["best_test_acc_std"].isna().sum() == 2  # ltmd, n = 1
    for method in ["ds-atgo", "at", "tgo", "vanilla", "fixed", "ltmd"]:
        assert f"| {method} |" in md and f" & {method} & " in tex
    assert "nan" not in md.lower() and "nan" not in tex.lower()
    assert "| cifar10 | resnet19 | 2 | ltmd | 1 | 84.60 ± - |" in md  # std of one seed is "-"
    assert "89.66 ± 0.61" in md  # ds-atgo cifar10: mean of 89.6, 90.3, 89.075
    assert r"\toprule" in tex and r"89.66 $\pm$ 0.61" in tex and r"best test acc (\%)" in tex


def test_summary_json_is_flat_and_matches_the_table(report):
    flat = json.loads(report.summary_json.read_text())
    assert all(isinstance(v, (int, float)) for v in flat.values())
    table = report.comparison.set_index(["dataset", "method"])
    assert flat["cifar10/ds-atgo/best_test_acc_mean"] == round(table.loc[("cifar10", "ds-atgo"), "best_test_acc_mean"], 6)
    assert flat["cifar10-dvs/vanilla/n"] == 3
    assert "cifar10/ltmd/best_test_acc_std" not in flat  # undefined for one seed: left out
    assert "cifar10-dvs/ds-atgo/val_selected_test_acc_mean" not in flat
    assert flat["runs/finished"] == 32 and flat["runs/unfinished"] == 2


def test_runs_csv_lists_every_run_without_machine_paths(report):
    runs = pd.read_csv(report.runs_csv)
    assert len(runs) == 34 and "path" not in runs
    assert set(runs.loc[~runs.finished, "status"]) == {"no metrics.json"}


# --- figures: the data behind each ---------------------------------------------------------------

def last_layers(r):
    return r.layers[r.layers.epoch == r.layers.epoch.max()]


@pytest.mark.parametrize("name,column", [("fig8_firing_rate_per_layer", "firing_rate"),
                                         ("fig11_grad_available_per_layer", "grad_available")])
def test_per_layer_figures_plot_the_mean_over_seeds_of_the_last_probe(synth, report, name, column):
    _, runs = synth
    data = report.figures[name].set_index(["dataset", "method", "layer"])
    assert len(data) == 12 * len(LAYER_NAMES)
    for (dataset, method), rs in groups(runs).items():
        for layer in range(len(LAYER_NAMES)):
            values = [100 * last_layers(r).set_index("layer").loc[layer, column] for r in rs]
            row = data.loc[(dataset, method, layer)]
            assert close(row["mean"], statistics.mean(values)) and close(row["std"], sd(values))
            assert row["n"] == len(rs)


def test_fig10_weights_layers_by_neurons_per_timestep(synth, report):
    _, runs = synth
    data = report.figures["fig10_firing_rate_per_timestep"].set_index(["dataset", "method", "t"])
    for (dataset, method), rs in groups(runs).items():
        for t in range(1, rs[0].T + 1):
            per_run = []
            for r in rs:
                steps = r.timesteps[(r.timesteps.epoch == r.timesteps.epoch.max()) & (r.timesteps.t == t)]
                per_run.append(100 * np.average(steps.sort_values("layer").firing_rate, weights=NEURONS))
            assert close(data.loc[(dataset, method, t), "mean"], statistics.mean(per_run))


def test_fig6_shows_only_the_ablation_methods_per_epoch(synth, report):
    _, runs = synth
    data = report.figures["fig6_ablation_curves"]
    assert set(data["method"]) == {"ds-atgo", "at", "tgo", "vanilla"}
    acc = data[data.quantity == "test_acc"].set_index(["dataset", "method", "epoch"])
    loss = data[data.quantity == "train_loss"].set_index(["dataset", "method", "epoch"])
    rs = groups(runs)[("cifar10-dvs", "at")]
    for epoch in range(1, 7):
        assert close(acc.loc[("cifar10-dvs", "at", epoch), "mean"],
                     statistics.mean(r.history.test_acc[epoch - 1] for r in rs))
        assert close(loss.loc[("cifar10-dvs", "at", epoch), "std"],
                     sd([r.history.train_loss[epoch - 1] for r in rs]))


def test_fig2_densities_come_from_the_lowest_seed_histograms(synth, report):
    _, runs = synth
    data = report.figures["fig2_mpd_histograms"]
    assert set(data["method"]) == {"ds-atgo", "at", "tgo", "vanilla"} and set(data["seed"]) == {0}
    assert set(data["n_seeds"]) == {3}
    run = next(r for r in runs if (r.dataset, r.method, r.seed) == ("cifar10-dvs", "vanilla", 0))
    cell = data[(data.dataset == "cifar10-dvs") & (data.method == "vanilla") & (data.layer == 2) & (data.t == 3)]
    counts = run.counts[2, 2]
    widths = np.diff(np.linspace(-3.0, 4.0, 36))
    # the two edge bins hold everything the probe clamped: reported as tails, not drawn
    np.testing.assert_allclose(cell["density"], counts[1:-1] / (counts.sum() * widths[1:-1]))
    assert np.isclose(cell["below_pct"].iloc[0], 100 * counts[0] / counts.sum())
    assert np.isclose(cell["above_pct"].iloc[0], 100 * counts[-1] / counts.sum())
    assert np.isclose((cell["density"] * widths[1:-1]).sum() + (cell.below_pct.iloc[0] + cell.above_pct.iloc[0]) / 100, 1.0)
    assert (cell.below_edge.iloc[0], cell.above_edge.iloc[0]) == pytest.approx((-3.0 + 0.2, 4.0 - 0.2))


def test_fig2_shows_every_layer_and_each_methods_own_threshold_per_timestep(synth, report):
    _, runs = synth
    data = report.figures["fig2_mpd_histograms"]
    for (dataset, method), part in data.groupby(["dataset", "method"]):
        assert sorted(part["layer"].unique()) == list(range(len(LAYER_NAMES))), (dataset, method)
    run = next(r for r in runs if (r.dataset, r.method, r.seed) == ("cifar10-dvs", "at", 0))
    last = run.timesteps[run.timesteps.epoch == run.timesteps.epoch.max()].set_index(["layer", "t"])["theta"]
    drawn = data[(data.dataset == "cifar10-dvs") & (data.method == "at")].drop_duplicates(["layer", "t"])
    for row in drawn.itertuples():
        assert row.theta == pytest.approx(last.loc[(row.layer, row.t)])
    assert drawn.set_index(["layer", "t"])["theta"].loc[3].tolist() == pytest.approx(
        [1.6 - 0.05 * (t - 2.5) for t in range(1, 5)])  # not Vth = 1: AT fires at its own theta(t)
    assert set(data.loc[data.method == "vanilla", "theta"]) == {1.0}
    svg = report.out_dir / "figures" / "fig2_mpd_histograms-cifar10-dvs.svg"
    assert f"all {len(LAYER_NAMES)} spiking layers" in " ".join(svg_texts(svg))


def test_fig2_reports_clamped_tails_instead_of_an_edge_bin_spike(synth, tmp_path):
    root, _ = synth
    tables = read_runs([root])
    hist = tables.mpd_hist[tables.mpd_hist.dataset == "cifar10"].copy()
    edge = hist["right"] == hist["right"].max()
    hist.loc[edge, "count"] += 2000  # what clamping at the probe's range does to a wide MPD
    out = tmp_path / "fig2.png"
    data = figures.fig2_mpd_histograms(hist, out, tables.timesteps)
    on_disk = pd.read_csv(out.with_suffix(".csv"))
    assert on_disk["center"].max() < 4.0 - 0.2  # no row for the edge bin
    assert (on_disk["above_pct"] > 10).all()  # 2000 of ~12000 potentials: reported as a tail
    last_density = data.sort_values("center").groupby(["method", "layer", "t"])["density"].last()
    assert (last_density < 0.05).all()  # the curves fall to zero at the border, no spike
    texts = " ".join(svg_texts(out.with_suffix(".svg")))
    assert "U > 3.8" in texts and "dotted: each method's firing threshold" in texts


def test_fig2_names_its_layer_selection(synth, tmp_path):
    root, _ = synth
    tables = read_runs([root])
    hist = tables.mpd_hist[tables.mpd_hist.dataset == "cifar10"]
    data = figures.fig2_mpd_histograms(hist, tmp_path / "fig2.png", tables.timesteps, max_layers=2)
    assert sorted(data["layer"].unique()) == [0, 3]
    assert f"layers 0, 3 of {len(LAYER_NAMES)}" in " ".join(svg_texts(tmp_path / "fig2.svg"))


def test_thresholds_figure_keeps_adaptive_methods_only(synth, report):
    _, runs = synth
    data = report.figures["thresholds_widths"]
    assert set(data["method"]) == {"ds-atgo", "at", "tgo", "ltmd"}  # vanilla, fixed: constant 1
    theta = data[(data.quantity == "theta")].set_index(["dataset", "method", "layer", "t"])["mean"]
    rs = groups(runs)[("cifar10", "ds-atgo")]
    expected = statistics.mean(1.0 + 0.2 * 3 - 0.05 * (2 - 1.5) + 0.01 * r.seed for r in rs)
    assert close(theta.loc[("cifar10", "ds-atgo", 3, 2)], expected)


def test_accuracy_vs_energy_plots_the_comparison_means(report):
    data = report.figures["accuracy_vs_energy"].set_index(["dataset", "method", "quantity"])["mean"]
    table = report.comparison.set_index(["dataset", "method"])
    for (dataset, method), row in table.iterrows():
        assert close(data.loc[(dataset, method, "best_test_acc")], row.best_test_acc_mean)
        assert close(data.loc[(dataset, method, "energy_uj_per_sample")], row.energy_uj_per_sample_mean)


def test_fig5_analytic_fractions_equal_the_paper():
    fixed = 100 * figures.window_fraction([0.5, 1.0, 2.0], 1.0)
    np.testing.assert_allclose(fixed, [47.72, 24.17, 12.10], atol=0.01)
    k = figures.tgo_width(np.array([0.5, 1.0, 2.0]))
    np.testing.assert_allclose(k, [0.5379, 1.0, 1.7616], atol=1e-4)
    np.testing.assert_allclose(100 * figures.window_fraction([0.5, 1.0, 2.0], k), [26.00, 24.17, 21.30], atol=0.01)


def test_fig5_data_marks_the_paper_points_and_the_measured_layers(report):
    data = report.figures["fig5_window_fractions"]
    analytic = data[data.source == "analytic"].set_index(["rule", "s"])["fraction_pct"]
    for p in figures.PAPER_FIG5.itertuples():
        assert abs(analytic.loc[(p.rule, p.s)] - p.fraction_pct) < 0.01
    assert len(data[data.source == "paper"]) == 6
    measured = data[data.source == "measured"].set_index(["dataset", "method", "layer"])["mean"]
    fig11 = report.figures["fig11_grad_available_per_layer"].set_index(["dataset", "method", "layer"])["mean"]
    pd.testing.assert_series_equal(measured.sort_index(), fig11.sort_index(), check_names=False,
                                   check_index_type=False)


def test_figures_without_data_write_nothing(tmp_path):
    empty = pd.DataFrame(columns=["run", "pipeline", "dataset", "model", "T", "method", "seed"])
    assert figures.fig8_firing_rate_per_layer(empty, tmp_path / "fig8.png").empty
    assert list(tmp_path.iterdir()) == []
    data = figures.fig5_window_fractions(None, tmp_path / "fig5.png")  # analytic part needs no runs
    assert set(data["source"]) == {"analytic", "paper"} and (tmp_path / "fig5.png").exists()


def test_one_setting_writes_one_unsuffixed_file(synth, tmp_path):
    root, _ = synth
    layers = read_runs([root]).layers
    out = tmp_path / "fig8_firing_rate_per_layer.png"
    figures.fig8_firing_rate_per_layer(layers[layers.dataset == "cifar10"], out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"fig8_firing_rate_per_layer.{ext}" for ext in ("csv", "pdf", "png", "svg")]


def test_fig6_has_integer_epoch_ticks_and_names_the_variants_not_run(synth, tmp_path):
    root, _ = synth
    history = read_runs([root]).history
    history = history[(history.dataset == "cifar10") & (history.method != "tgo")]
    out = tmp_path / "fig6.png"
    figures.fig6_ablation_curves(history, out)
    ticks = svg_xticks(out.with_suffix(".svg"))
    assert ticks and all(t.isdigit() for t in ticks), ticks  # no "1.5" between epochs
    texts = " ".join(svg_texts(out.with_suffix(".svg")))
    assert "not run: tgo" in texts
    assert svg_legend(out.with_suffix(".svg")) == {
        "ds-atgo (n=3)": "#0072b2", "at (n=3)": "#e69f00", "vanilla (n=3)": "#000000"}


def test_integer_ticks_helper_sets_an_integer_locator():
    fig, axes = _plot.new_figure(1, 1, 4, 3)
    axes[0, 0].plot([1, 2, 3], [0, 1, 0])
    _plot.integer_ticks(axes[0, 0].xaxis)
    ticks = axes[0, 0].xaxis.get_major_locator().tick_values(1, 3)
    assert all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize("name", ["fig8_firing_rate_per_layer", "fig11_grad_available_per_layer",
                                  "fig10_firing_rate_per_timestep", "fig6_ablation_curves"])
def test_method_lines_have_the_palette_colour_and_their_seed_count(report, name):
    legend = svg_legend(report.out_dir / "figures" / f"{name}-cifar10.svg")
    assert legend["ds-atgo (n=3)"] == palette.METHOD_COLORS["ds-atgo"].lower()
    assert legend["vanilla (n=3)"] == palette.METHOD_COLORS["vanilla"].lower()
    if name != "fig6_ablation_curves":
        assert legend["ltmd (n=1)"] == palette.METHOD_COLORS["ltmd"].lower()
    if name == "fig11_grad_available_per_layer":  # the paper's bound, in the method's colour
        assert legend["paper, CIFAR-100: ds-atgo > 38.53 %"] == palette.METHOD_COLORS["ds-atgo"].lower()


def test_every_figure_names_its_seeds(report):
    for name, files in report.figure_files.items():
        for png in files:
            texts = " ".join(svg_texts(png.with_suffix(".svg")))
            assert re.search(r"\bn ?= ?\d", texts), (name, png.name)


def test_palette_fixes_known_colours_and_gives_plugins_stable_distinct_extras():
    known = palette.method_colors(palette.METHOD_COLORS)
    assert len(set(known.values())) == len(known) == 9
    assert palette.method_colors(["vanilla", "ds-atgo"])["ds-atgo"] == "#0072B2"
    one = palette.method_colors(["my-plugin", "ds-atgo"])["my-plugin"]
    assert one in palette.EXTRA_COLORS and one == palette.method_colors(["vanilla", "my-plugin"])["my-plugin"]
    crowd = palette.method_colors([f"plugin{i}" for i in range(9)])
    assert len(set(crowd.values())) == 9  # a collision moves to the next free extra colour
    steps = palette.timestep_colors([1, 2, 3, 4])
    assert len(set(steps.values())) == 4


def test_dvc_template_colours_equal_the_report_palette():
    names = ["ds-atgo", "at", "vanilla", "ltmd", "my-plugin", "Spiky_2", "x"]
    spec = {"data": {"values": [{"method": m, "i": i} for i, m in enumerate(names)]},
            "transform": [{"calculate": palette.vega_color_expr(), "as": "c"},
                          {"calculate": "datum.method + '=' + datum.c", "as": "label"}],
            "mark": "text", "encoding": {"y": {"field": "i", "type": "ordinal"}, "text": {"field": "label"}}}
    vlc = pytest.importorskip("vl_convert")
    svg = vlc.vegalite_to_svg(spec)
    got = dict(t.split("=") for t in re.findall(r">([^<>=]+=#[0-9A-Fa-f]{6})<", svg))
    assert got == {m: palette.METHOD_COLORS.get(m) or palette.EXTRA_COLORS[palette.extra_index(m)]
                   for m in names}
    template = vega.DVC_BY_METHOD
    assert template["transform"][1]["calculate"] == palette.vega_color_expr("method")
    assert template["spec"]["encoding"]["color"]["scale"] == {"range": {"field": "method_color"}}


def test_titles_fit_and_small_grids_keep_a_readable_width():
    fig, axes = _plot.new_figure(3, 1, 3.2, 2.4)
    _plot.suptitle(fig, "Thresholds and surrogate widths per layer and timestep, cifar10-cpu: "
                        "cifar10, resnet19, T = 2 (last probe, mean over n seeds; constant, not shown: vanilla)")
    assert fig.get_figwidth() >= _plot.MIN_WIDTH
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width


# --- files and the page ------------------------------------------------------------------------

def test_every_figure_is_a_real_png_per_setting_with_its_csv(report):
    assert set(report.figure_files) == {e.name for e in FIGURES}
    for name, files in report.figure_files.items():
        assert [p.stem.removeprefix(name) for p in files] == ["-cifar10", "-cifar10-dvs"], name
        for path in files:
            with Image.open(path) as img:
                assert img.format == "PNG" and img.size[0] >= 1800 and img.size[1] > 750
                assert img.info["dpi"] == pytest.approx((300, 300), abs=0.1)
            pdf = path.with_suffix(".pdf").read_bytes()
            assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
            root = ET.parse(path.with_suffix(".svg")).getroot()
            assert root.tag == f"{SVG}svg" and svg_texts(path.with_suffix(".svg"))
            beside = pd.read_csv(path.with_suffix(".csv"))
            assert not beside.empty and set(beside.dataset.dropna()) == {path.stem.split("-", 1)[1]}


def test_page_references_every_figure_and_holds_the_extra_sections(report):
    html = report.index_html.read_text()
    md = report.readme.read_text()
    out = report.out_dir
    pngs = sorted(out.rglob("*.png"))
    assert len(pngs) == 17  # 8 figures x 2 settings + the Vega-Lite curves
    for png in pngs:
        rel = png.relative_to(out).as_posix()
        assert f'src="{rel}"' in html and f"]({rel})" in md
    assert "<h2>Published vs reproduced</h2>" in html and "<td>pending</td>" in html
    assert "## Published vs reproduced" in md
    assert '<td style="text-align:left">ds-atgo</td>' in html  # the table is inline, not an image
    assert "mpdsnn report " in md and "synthetic/cifar10/ds-atgo/seed7" in md
    assert "NVIDIA H200" in md and "| torch | 2.14.1 |" in md  # environment of the runs


def test_vega_curves_csv_and_png(synth, report):
    _, runs = synth
    curves = pd.read_csv(report.curves_csv)
    assert {"epoch", "method", "test_acc"} <= set(curves.columns)
    rs = groups(runs)[("cifar10", "tgo")]
    row = curves[(curves.setting == "cifar10") & (curves.method == "tgo") & (curves.epoch == 4)].iloc[0]
    assert close(row.test_acc, statistics.mean(r.history.test_acc[3] for r in rs))
    with Image.open(report.plots["png"]) as img:
        assert img.format == "PNG" and img.size[0] > 400
    spec = json.loads(report.plots["spec"].read_text())
    assert spec["facet"]["row"]["field"] == "setting"
    assert spec["resolve"]["scale"]["x"] == "independent"  # a 4-epoch setting is not squeezed
    assert "html" not in report.plots  # opt-in: about 1 MB and seconds
    color = spec["spec"]["layer"][1]["encoding"]["color"]
    scale = dict(zip(color["scale"]["domain"], color["scale"]["range"]))
    assert scale["ds-atgo"] == "#0072B2" and scale == palette.method_colors(curves["method"])
    assert "'ds-atgo (n=3)'" in color["legend"]["labelExpr"].replace('"', "'")
    x = spec["spec"]["layer"][1]["encoding"]["x"]["axis"]["values"]
    assert x == [1, 2, 3, 4, 5, 6]
    drawn = pytest.importorskip("vl_convert").vegalite_to_svg(spec)  # the legend survives the layering
    assert ">ds-atgo (n=3)<" in drawn and ">ltmd (n=1)<" in drawn and 'stroke="#0072B2"' in drawn


def test_vega_html_and_dvc_template_work_offline(report, tmp_path):
    spec = json.loads(report.plots["spec"].read_text())
    paths = vega.render(spec, tmp_path, html=True)
    page = paths["html"].read_text()
    assert "vegaEmbed" in page and "<script src" not in page.replace(" ", "")
    written = vega.write_dvc_templates(tmp_path / "plots")
    page = written["html"].read_text()
    assert "{plot_divs}" in page and "{scripts}" not in page and "<script src" not in page
    template = json.loads(written["template"].read_text())
    assert template["data"]["values"] == "<DVC_METRIC_DATA>"
    assert template["spec"]["encoding"]["color"]["field"] == "method"
    assert template["resolve"]["scale"]["x"] == "independent"


def test_a_report_of_unfinished_runs_only_still_builds(tmp_path):
    runs = write_runs(tmp_path / "runs")
    for r in runs:
        if r.status == "finished":
            metrics = {**r.metrics, "status": "failed"}
            (r.path / "metrics.json").write_text(json.dumps(metrics))
    report = build_report(read_runs([tmp_path / "runs"]), [tmp_path / "runs"], tmp_path / "reports")
    assert report.comparison.empty and report.plots == {}
    assert json.loads(report.summary_json.read_text()) == {"runs/finished": 0, "runs/unfinished": 34}
    assert report.figure_files["fig5_window_fractions"]  # the analytic part needs no runs
    assert report.figure_files["fig8_firing_rate_per_layer"] == []
    assert "0 finished" in report.readme.read_text()

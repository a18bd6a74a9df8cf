"""``build_report``: run folders in, ``reports/`` out (README.md, index.html, tables, figures,
runs.csv, summary.json, curves.csv). Never retrains, never reads MLflow.

Other parts of the project add sections (published vs reproduced, claim checks) through
``extra_sections``: a list of ``(title, markdown)`` pairs placed after the figures, in both the
Markdown and the HTML page, so this module does not change when they do.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd
from markdown_it import MarkdownIt

import mpdsnn
from mpdsnn.errors import UserError
from mpdsnn.report import _plot, figures, tables, vega
from mpdsnn.runfolder.reader import RunTables
from mpdsnn.provenance import cpu_name

log = logging.getLogger(__name__)

Section = tuple[str, str]
"""An extra report section: (title, Markdown body)."""


@dataclass(frozen=True)
class FigureEntry:
    name: str
    title: str
    caption: str
    draw: Callable[[RunTables, Path], pd.DataFrame]


FIGURES = [
    FigureEntry("fig2_mpd_histograms", "Fig. 2: membrane-potential distributions",
                "Density of pre-fire potentials per layer (rows: every spiking layer, or the "
                "selection the title names) and method (columns), one line per timestep, with each "
                "method's own firing threshold θ(t) dotted. Versus the paper: drawn from the last "
                "probe of the lowest seed (n in each column title) on one fixed evaluation batch, "
                "for the ablation methods side by side; the probe stores potentials in [−4, 4] "
                "(units of Vth), so what lies beyond its edge bins is given as a share in each "
                "panel's box instead of being drawn.",
                lambda t, p: figures.fig2_mpd_histograms(t.mpd_hist, p, t.timesteps)),
    FigureEntry("fig5_window_fractions", "Fig. 5: potentials inside the gradient window",
                "Left: analytic share of N(0, s²) potentials with |U − θ| ≤ k/2 for θ = s, Vth = 1, "
                "fixed k = 1 and TGO k = 1 + tanh(s − 1); dots are the paper's values, which the "
                "curves reproduce to 0.01 points. Right (not in the paper): the measured "
                "gradient-available proportion per layer (last probe, mean ± std over n seeds).",
                lambda t, p: figures.fig5_window_fractions(t.layers, p)),
    FigureEntry("fig6_ablation_curves", "Fig. 6: ablation training curves",
                "Training loss and test accuracy per epoch of DS-ATGO, AT, TGO and vanilla, mean ± "
                "std over n seeds. Variants without runs in a setting are named in its title "
                "(\"not run: ...\"); the epochs are this pipeline's (the paper's CIFAR recipe "
                "runs 400).",
                lambda t, p: figures.fig6_ablation_curves(t.history, p)),
    FigureEntry("fig8_firing_rate_per_layer", "Fig. 8: firing rate per layer",
                "Firing rate of each spiking layer on the probe batch (held-out validation samples where the dataset has a validation split, else test samples: metrics.json `probe_split`) (last probe, mean ± std over n seeds); "
                "dotted: 1 − Φ(1) = 15.87 %, the rate an MPD threshold of mean + std gives a "
                "Gaussian potential; dashed: the paper's numbers (DS-ATGO about 15 ± 1.62 % per "
                "layer on CIFAR-10, vanilla mean 10.66 %), drawn for reference whatever the "
                "dataset and network here.",
                lambda t, p: figures.fig8_firing_rate_per_layer(t.layers, p)),
    FigureEntry("fig10_firing_rate_per_timestep", "Fig. 10: firing rate per timestep",
                "Firing rate of the paper's layer set (downsample neurons left out; layers "
                "weighted by their neuron counts) per timestep, mean ± std over n seeds; shaded: the paper's DS-ATGO range on "
                "CIFAR10-DVS, 14.0–15.9 % over t = 1..10 (the paper gives fractions, 0.140–0.159).",
                lambda t, p: figures.fig10_firing_rate_per_timestep(t.timesteps, t.layers, p)),
    FigureEntry("fig11_grad_available_per_layer", "Fig. 11: gradient-available proportion per layer",
                "Share of potentials inside the surrogate window (training-mode θ and k) per layer, "
                "mean ± std over n seeds; dashed: the paper's bounds on CIFAR-100 / ResNet-19 "
                "(DS-ATGO above 38.53 % in every layer, vanilla below 15.13 % in its last three).",
                lambda t, p: figures.fig11_grad_available_per_layer(t.layers, p)),
    FigureEntry("thresholds_widths", "Thresholds and surrogate widths",
                "Eval-mode threshold (running estimate), training-mode threshold and surrogate width "
                "per layer and timestep at the last probe, mean over n seeds. The paper's threshold "
                "trajectories follow training; only the last probe is drawn here (earlier ones, "
                "with probe_every > 0, are in each run's probes/timesteps.csv).",
                lambda t, p: figures.thresholds_widths(t.timesteps, p)),
    FigureEntry("accuracy_vs_energy", "Accuracy vs energy",
                f"Best test accuracy against energy per sample, mean ± std over n seeds (not a "
                f"figure of the paper). {tables.ENERGY_NOTE}",
                lambda t, p: figures.accuracy_vs_energy(t.runs, p)),
]

REPORT_PACKAGES = ["mpdsnn", "numpy", "pandas", "matplotlib", "seaborn", "vl-convert-python",
                   "Jinja2", "markdown-it-py", "PyYAML"]

HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mpdsnn report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


@dataclass
class Report:
    """What :func:`build_report` wrote (paths under ``out_dir``) and the data behind it."""

    out_dir: Path
    readme: Path
    index_html: Path
    runs_csv: Path
    summary_json: Path
    curves_csv: Path
    tables: dict[str, Path]
    comparison: pd.DataFrame
    figures: dict[str, pd.DataFrame] = field(default_factory=dict)
    figure_files: dict[str, list[Path]] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)


def default_command(run_roots: Sequence[str | Path], out_dir: str | Path) -> str:
    args = [*map(str, run_roots), "--out", str(out_dir)]
    return "mpdsnn report " + " ".join(shlex.quote(a) for a in args)


def _check_sections(sections: Iterable[Section]) -> list[Section]:
    checked = []
    for item in sections:
        if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(s, str) for s in item)):
            raise UserError(f"extra report sections are (title, markdown) string pairs; got {item!r}")
        title, body = item
        first, _, rest = body.lstrip().partition("\n")
        if first.startswith("#") and first.lstrip("# ").strip() == title:
            body = rest.lstrip()  # the page writes the title itself: do not repeat it
        checked.append((title, body))
    return checked


def _version(package: str) -> str:
    if package == "mpdsnn":
        return mpdsnn.__version__
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _versions(series: pd.Series) -> str:
    counts = series.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{v} ({n} runs)" for v, n in counts.items())


def environment_markdown(run_tables: RunTables) -> str:
    """Where the runs ran (from their env.json) and where this report was built."""
    parts = ["## Environment", ""]
    machines = run_tables.machines
    if not machines.empty:
        m = machines.assign(git_commit=machines["git_commit"].astype(str).str[:12])
        cols = ["device_name", "platform", "python", "git_commit", "git_dirty"]
        hosts = m.fillna("-").astype(str).groupby(cols).size().rename("runs").reset_index()
        parts += ["Runs (from each run's env.json):", "", tables.to_markdown(hosts), ""]
    packages = run_tables.packages
    in_runs = packages.groupby("package")["version"].agg(_versions) if not packages.empty else pd.Series(dtype=str)
    names = sorted(set(in_runs.index) | set(REPORT_PACKAGES), key=str.lower)
    pkg = pd.DataFrame({"package": names,
                        "runs": [in_runs.get(n, "-") for n in names],
                        "this report": [_version(n) for n in names]})
    parts += ["Packages:", "", tables.to_markdown(pkg), ""]
    parts += [
        "This report: Python {}, {}, CPU {} ({} cores); no GPU is used (it reads files only).".format(
            platform.python_version(), platform.platform(), cpu_name(), os.cpu_count()), ""]
    return "\n".join(parts)


def _runs_markdown(run_tables: RunTables, roots: Sequence[str | Path]) -> str:
    runs = run_tables.runs
    done = int(runs["finished"].sum())
    lines = ["## Runs", "",
             f"{len(runs)} run folders under {', '.join(f'`{r}`' for r in roots)}: {done} finished"
             f" ({runs[runs.finished].groupby(['dataset', 'method']).ngroups} dataset x method groups).",
             "All runs, one row each: [runs.csv](runs.csv). Flat summary for DVC: [summary.json](summary.json).", ""]
    unfinished = runs[~runs["finished"]]
    if len(unfinished):
        lines += [f"**{len(unfinished)} unfinished run(s) are listed here and excluded from every "
                  "table and figure:**", "", tables.to_markdown(unfinished[["run", "status"]]), ""]
    if run_tables.skipped:
        lines += [f"**{len(run_tables.skipped)} folder(s) skipped (not used anywhere in this "
                  "report, claims included):**", "",
                  *[f"- `{s.path}`: {s.reason}" for s in run_tables.skipped], ""]
    return "\n".join(lines)


def _figure_markdown(entry: FigureEntry, files: list[Path], out_dir: Path) -> str:
    lines = [f"### {entry.title}", "", entry.caption, ""]
    if not files:
        return "\n".join(lines + ["_Not drawn: the run folders hold no data for it._", ""])
    for path in files:
        rel = path.relative_to(out_dir).as_posix()
        csv = path.with_suffix(".csv").relative_to(out_dir).as_posix()
        lines += [f"![{entry.title} ({path.stem})]({rel})", "", f"Data: [{Path(csv).name}]({csv})", ""]
    return "\n".join(lines)


def build_report(run_tables: RunTables, run_roots: Sequence[str | Path], out_dir: str | Path = "reports",
                 extra_sections: Iterable[Section] = (), command: str | None = None,
                 html_plots: bool = False) -> Report:
    """Aggregate the runs read from ``run_roots`` (``read_runs(run_roots)``, read once by the
    caller and shared with the verdicts) into ``out_dir``: README.md and a
    self-contained index.html (same content; images referenced relatively, tables inline),
    tables/comparison.{md,csv,tex}, figures/<figure>[-<setting>].{png,csv}, runs.csv (every run),
    summary.json (flat, for DVC ``metrics:``), curves.csv and plots/accuracy_curves.png (for DVC
    ``plots:``; see docs/plots.md), plus, with ``html_plots``, a self-contained interactive
    plots/accuracy_curves.html (about 1 MB, seconds to render). ``command`` is shown as the way
    to regenerate (default: the equivalent ``mpdsnn report`` call)."""
    roots = list(run_roots)
    sections = _check_sections(extra_sections)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = run_tables.runs

    runs_csv = out / "runs.csv"
    runs.drop(columns=["path"]).to_csv(runs_csv, index=False)
    comparison = tables.comparison_table(runs)
    table_paths = tables.write_tables(comparison, out / "tables")
    flat = {"runs/finished": int(runs["finished"].sum()), "runs/unfinished": int((~runs["finished"]).sum()),
            **tables.summary(comparison)}
    summary_json = out / "summary.json"
    summary_json.write_text(json.dumps(flat, indent=1) + "\n")

    report = Report(out, out / "README.md", out / "index.html", runs_csv, summary_json,
                    out / "curves.csv", table_paths, comparison)
    for entry in FIGURES:
        path = out / "figures" / f"{entry.name}.png"
        report.figures[entry.name] = entry.draw(run_tables, path)
        report.figure_files[entry.name] = _plot.figure_files(path)
        log.info("figure %s: %d file(s)", entry.name, len(report.figure_files[entry.name]))

    curves = vega.curves_table(run_tables.history)
    curves.to_csv(report.curves_csv, index=False)
    if not curves.empty:
        report.plots = vega.render(vega.accuracy_curves_spec(curves), out / "plots", html=html_plots)

    md = [
        "# mpdsnn report", "",
        "Generated from the run folders alone (docs/run-folder.md); nothing here is hand-written. "
        "Regenerate with:", "", "```", command or default_command(roots, out_dir), "```", "",
        _runs_markdown(run_tables, roots),
        "## Comparison", "",
        "Mean ± sample std over finished seeds (n); \"-\": undefined (one seed) or not measured "
        "(no validation split). Best = the best epoch's test accuracy (optimistic); last = the "
        "final epoch; val-selected = the test accuracy at the epoch with the best validation accuracy.",
        "", tables.to_markdown(tables.display_table(comparison)), "", tables.ENERGY_NOTE, "",
        "Files: " + " · ".join(f"[{p.name}]({p.relative_to(out).as_posix()})" for p in table_paths.values()), "",
        "## Figures", "",
    ]
    md += [_figure_markdown(e, report.figure_files[e.name], out) for e in FIGURES]
    if report.plots:
        links = [f"[{p.name}]({p.relative_to(out).as_posix()})" for k, p in report.plots.items() if k != "png"]
        md += ["### Test accuracy per epoch (Vega-Lite)", "",
               f"![test accuracy per epoch]({report.plots['png'].relative_to(out).as_posix()})", "",
               f"Rendered offline by vl-convert; data: [curves.csv](curves.csv); also " + ", ".join(links) + ".", ""]
    for title, body in sections:
        md += [f"## {title}", "", body.strip(), ""]
    md += [environment_markdown(run_tables)]
    text = "\n".join(md).rstrip() + "\n"
    report.readme.write_text(text)
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    report.index_html.write_text(HTML_PAGE.format(body=html))
    log.info("report written to %s (%d runs, %d finished)", out, len(runs), int(runs["finished"].sum()))
    return report

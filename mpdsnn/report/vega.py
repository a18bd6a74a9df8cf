"""Per-epoch curves as Vega-Lite, rendered offline.

``dvc plots show`` writes HTML that loads Vega from a CDN, which stays blank without a
network. Here the same kind of chart is rendered by ``vl_convert`` (vl-convert-python, which
embeds Vega) to a PNG and to an HTML page with the scripts inlined. ``curves.csv`` is also the
file DVC's top-level ``plots:`` points at (docs/plots.md), so ``dvc plots diff`` can compare
experiments.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from mpdsnn.errors import UserError
from mpdsnn.paper import order_methods
from mpdsnn.report import _plot, palette
from mpdsnn.runfolder.reader import SETTING

CURVE_COLUMNS = ["setting", "method", "epoch", "test_acc", "test_acc_std", "train_loss", "n"]


def curves_table(history: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per setting, method and epoch: ``setting`` (label, e.g. ``cifar10``, from
    :func:`mpdsnn.report._plot.settings`), ``method``, ``epoch``, ``test_acc`` (%),
    ``test_acc_std`` (empty for one seed), ``train_loss``, ``n`` (seeds)."""
    if history.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    frame = history.assign(test_acc=pd.to_numeric(history["test_acc"], errors="coerce"),
                           train_loss=pd.to_numeric(history["train_loss"], errors="coerce"))
    grouped = frame.groupby([*SETTING, "method", "epoch"], sort=False)
    out = pd.DataFrame({
        "test_acc": grouped["test_acc"].mean(), "test_acc_std": grouped["test_acc"].std(ddof=1),
        "train_loss": grouped["train_loss"].mean(), "n": grouped["test_acc"].count(),
    }).reset_index()
    labels = []
    for suffix, title, rows in _plot.settings(out):
        labels.append(pd.Series(suffix.lstrip("-") or rows["dataset"].iloc[0], index=rows.index))
    out.insert(0, "setting", pd.concat(labels))
    return _plot.sort(out)[CURVE_COLUMNS]


def accuracy_curves_spec(curves: pd.DataFrame) -> dict[str, Any]:
    """Vega-Lite v5: test accuracy vs epoch, one line per method in its fixed colour
    (:mod:`mpdsnn.report.palette`) with a +-std band, one row per setting; the legend names
    each method's seeds, ``ds-atgo (n=3)``. Data is inlined, so the spec renders anywhere."""
    if curves.empty:
        raise UserError("no per-epoch history in the run folders: nothing to plot; train first")
    methods = order_methods(curves["method"])
    records = []
    for row in curves.to_dict("records"):
        std = row["test_acc_std"]
        has = std is not None and not math.isnan(std)
        records.append({"setting": row["setting"], "method": row["method"], "epoch": int(row["epoch"]),
                        "test_acc": round(float(row["test_acc"]), 4),
                        "lo": round(row["test_acc"] - std, 4) if has else None,
                        "hi": round(row["test_acc"] + std, 4) if has else None})
    labels = {m: _plot.n_label(m, curves.loc[curves["method"] == m, "n"]) for m in methods}
    color = {"field": "method", "type": "nominal", "title": "method (seeds)",
             "scale": palette.vega_color_scale(methods),
             "legend": {"labelExpr": _label_expr(labels), "labelLimit": 240, "symbolType": "stroke",
                        "symbolOpacity": 1, "symbolStrokeWidth": 2.5}}
    x = {"field": "epoch", "type": "quantitative", "title": "epoch",
         "axis": {"values": epoch_ticks(curves["epoch"]), "format": "d"}}
    layer = [
        {"mark": {"type": "area", "opacity": 0.2},
         "transform": [{"filter": "datum.lo != null"}],
         "encoding": {"x": x, "y": {"field": "lo", "type": "quantitative"}, "y2": {"field": "hi"},
                      "color": color}},
        {"mark": {"type": "line", "point": True},
         "encoding": {"x": x, "y": {"field": "test_acc", "type": "quantitative", "title": "test accuracy (%)",
                                    "scale": {"zero": False}},
                      "color": color, "tooltip": [{"field": "method"}, {"field": "epoch"},
                                                  {"field": "test_acc", "format": ".2f"}]}},
    ]
    spec: dict[str, Any] = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Test accuracy per epoch (mean ± std over seeds)",
        "data": {"values": records},
    }
    inner = {"width": 460, "height": 260, "layer": layer}
    if curves["setting"].nunique() > 1:
        spec.update(facet={"row": {"field": "setting", "type": "nominal", "title": None}},
                    spec=inner, resolve={"scale": {"x": "independent", "y": "independent"}})
    else:
        spec.update(inner)
    return spec


def epoch_ticks(epochs: pd.Series, most: int = 12) -> list[int]:
    """Whole-number ticks, at most ``most``, on a 1-2-5 step: Vega-Lite's ``tickMinStep`` is
    ignored in layered charts and gives "1, 1.5, 2" (shown as "1 2 2") on short runs."""
    lo, hi = int(epochs.min()), int(epochs.max())
    step = next(s * 10 ** e for e in range(7) for s in (1, 2, 5) if (hi - lo) / (s * 10 ** e) < most)
    return [v for v in range(0, hi + 1, step) if v >= lo]


def _label_expr(labels: dict[str, str]) -> str:
    """A Vega expression mapping a legend entry (the method) to its label."""
    expr = "datum.label"
    for method, label in reversed(labels.items()):
        expr = f"datum.label === {json.dumps(method)} ? {json.dumps(label)} : ({expr})"
    return expr


def _vl_convert():
    """vl-convert-python, imported on use: only rendering needs the embedded Vega."""
    try:
        import vl_convert
    except ImportError:
        raise UserError("rendering Vega-Lite offline needs vl-convert-python: pip install 'mpdsnn[plots]'")
    return vl_convert


def render(spec: dict[str, Any], out_dir: Path, stem: str = "accuracy_curves", html: bool = True) -> dict[str, Path]:
    """Write ``<stem>.vl.json`` (the spec), ``<stem>.png`` and, with ``html``, a self-contained
    ``<stem>.html`` (Vega bundled in the page: opens offline) under ``out_dir``."""
    vlc = _vl_convert()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"spec": out_dir / f"{stem}.vl.json", "png": out_dir / f"{stem}.png"}
    paths["spec"].write_text(json.dumps(spec, indent=1))
    paths["png"].write_bytes(vlc.vegalite_to_png(spec, scale=2))
    if html:
        paths["html"] = out_dir / f"{stem}.html"
        paths["html"].write_text(vlc.vegalite_to_html(spec, bundle=True))
    return paths


OFFLINE_DVC_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{{refresh_tag}}
<title>DVC plots (offline)</title>
<script type="text/javascript">{bundle}</script>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


DVC_BY_METHOD = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "data": {"values": "<DVC_METRIC_DATA>"},
    "title": "<DVC_METRIC_TITLE>",
    "transform": [
        {"calculate": "toNumber(datum.n)", "as": "seeds"},
        {"calculate": palette.vega_color_expr("method"), "as": "method_color"},
        {"joinaggregate": [{"op": "min", "field": "seeds", "as": "n_lo"},
                           {"op": "max", "field": "seeds", "as": "n_hi"}], "groupby": ["setting"]},
        {"calculate": "datum.setting + ' (seeds per method: n = ' + (datum.n_lo === datum.n_hi ? "
                      "datum.n_hi : datum.n_lo + '-' + datum.n_hi) + ')'", "as": "panel"},
    ],
    "facet": {"row": {"field": "panel", "type": "nominal", "title": None}},
    "resolve": {"scale": {"x": "independent", "y": "independent", "color": "independent"}},
    "spec": {
        "width": 420, "height": 240,
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "<DVC_METRIC_X>", "type": "quantitative", "title": "<DVC_METRIC_X_LABEL>",
                  "axis": {"tickMinStep": 1, "labelExpr": "datum.value % 1 ? '' : format(datum.value, 'd')"}},
            "y": {"field": "<DVC_METRIC_Y>", "type": "quantitative", "title": "<DVC_METRIC_Y_LABEL>",
                  "scale": {"zero": False}},
            "color": {"field": "method", "type": "nominal", "scale": {"range": {"field": "method_color"}}},
            "strokeDash": {"field": "rev", "type": "nominal"},
            "tooltip": [{"field": "rev"}, {"field": "setting"}, {"field": "method"}, {"field": "n", "title": "seeds (n)"},
                        {"field": "<DVC_METRIC_X>"}, {"field": "<DVC_METRIC_Y>"}],
        },
    },
}
"""DVC plot template for the long curves.csv: colour = method, dash = revision (experiment), one
row per setting, headed by its seeds (n). DVC's built-in templates colour by revision only,
which would join the methods of one revision into a single zigzag line. Colours are the
report's (:func:`mpdsnn.report.palette.vega_color_expr`, a scale range read from the data);
Vega cannot share such a scale across facet rows, so each row has its own legend."""


def write_dvc_templates(folder: Path) -> dict[str, Path]:
    """Write ``by_method.json`` (:data:`DVC_BY_METHOD`; in ``.dvc/plots/`` it is usable as
    ``template: by_method``) and ``offline.html``, a page for ``dvc plots show|diff
    --html-template`` (or ``dvc config plots.html_template``) with Vega, Vega-Lite and
    vega-embed inlined from vl-convert's bundle. DVC's default page fills ``{scripts}`` with CDN
    script tags; this one has no ``{scripts}`` placeholder, so it renders offline."""
    vlc = _vl_convert()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"template": folder / "by_method.json", "html": folder / "offline.html"}
    paths["template"].write_text(json.dumps(DVC_BY_METHOD, indent=1) + "\n")
    paths["html"].write_text(OFFLINE_DVC_PAGE.format(bundle=vlc.javascript_bundle()))
    return paths


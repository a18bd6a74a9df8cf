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
import seaborn as sns

from mpdsnn.errors import UserError
from mpdsnn.report import _plot
from mpdsnn.report.collect import SETTING, order_methods

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
    """Vega-Lite v5: test accuracy vs epoch, one coloured line per method with a +-std band,
    one row per setting. Data is inlined, so the spec renders anywhere."""
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
    color = {"field": "method", "type": "nominal", "title": "method",
             "scale": {"domain": methods, "range": sns.color_palette("colorblind", len(methods)).as_hex()}}
    x = {"field": "epoch", "type": "quantitative", "title": "epoch", "axis": {"tickMinStep": 1, "format": "d"}}
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
                    spec=inner, resolve={"scale": {"y": "independent"}})
    else:
        spec.update(inner)
    return spec


def render(spec: dict[str, Any], out_dir: Path, stem: str = "accuracy_curves", html: bool = True) -> dict[str, Path]:
    """Write ``<stem>.vl.json`` (the spec), ``<stem>.png`` and, with ``html``, a self-contained
    ``<stem>.html`` (Vega bundled in the page: opens offline) under ``out_dir``."""
    import vl_convert as vlc  # imported here: only this function needs the embedded Vega

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


def write_offline_dvc_template(path: Path) -> Path:
    """An HTML template for ``dvc plots show|diff --html-template PATH`` with Vega, Vega-Lite
    and vega-embed inlined (from vl-convert's bundle). DVC's default page fills ``{scripts}``
    with CDN script tags; this page has no ``{scripts}`` placeholder, so it works offline."""
    import vl_convert as vlc

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OFFLINE_DVC_PAGE.format(bundle=vlc.javascript_bundle()))
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m mpdsnn.report.vega render SPEC.json OUT_DIR`` renders any Vega-Lite spec
    (e.g. ``dvc plots diff --show-vega`` output) to PNG and HTML offline;
    ``python -m mpdsnn.report.vega dvc-template PATH`` writes the offline DVC page template."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mpdsnn.report.vega", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("render", help="render a Vega-Lite JSON spec to OUT_DIR/<name>.png and .html")
    one.add_argument("spec", type=Path)
    one.add_argument("out_dir", type=Path)
    two = sub.add_parser("dvc-template", help="write an offline HTML template for dvc plots")
    two.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dvc-template":
        print(write_offline_dvc_template(args.path))
        return 0
    try:
        spec = json.loads(args.spec.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"error: cannot read a Vega-Lite spec from {args.spec}: {err}")
    for path in render(spec, args.out_dir, stem=args.spec.stem, html=True).values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

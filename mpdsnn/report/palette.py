"""One colour per method, the same in every figure, Vega-Lite chart and DVC plot.

Known methods take the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), the
common colour-blind-safe set of eight, plus a neutral grey: a reader who learns "ds-atgo is
blue" in one figure can rely on it in the next. Any other method (a plugin registered through
``mpdsnn.methods`` entry points) gets a colour from :data:`EXTRA_COLORS` (Paul Tol's "muted"
set, also colour-blind safe) picked from its name alone, so it keeps its colour from report to
report and in ``dvc plots``.

Timesteps are an order, not categories: :func:`timestep_colors` gives a sequential ramp whose
neighbours differ in lightness, so t = 2, 3, 4 never look alike.
"""

from __future__ import annotations

import json
from typing import Iterable

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex

from mpdsnn.paper import order_methods

METHOD_COLORS = {
    "ds-atgo": "#0072B2",  # blue: the method under test
    "at": "#E69F00",       # orange
    "tgo": "#009E73",      # bluish green
    "vanilla": "#000000",  # black: the control every ablation is measured against
    "fixed": "#999999",    # grey
    "plif": "#56B4E9",     # sky blue
    "tet": "#CC79A7",      # reddish purple
    "mpd-agl": "#D55E00",  # vermillion: the predecessor
    "ltmd": "#F0E442",     # yellow
}
"""Okabe-Ito colours (plus grey #999999) of the methods this project ships."""

METHOD_MARKERS = {"ds-atgo": "o", "at": "s", "tgo": "^", "vanilla": "D", "fixed": "v",
                  "plif": "P", "tet": "X", "mpd-agl": "*", "ltmd": "h"}
"""A second cue beside colour, for greyscale prints."""

EXTRA_COLORS = ["#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99",
                "#999933", "#AA4499"]
"""Paul Tol's "muted" scheme: colours for methods not in :data:`METHOD_COLORS`."""


NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def extra_index(method: str) -> int:
    """Index into :data:`EXTRA_COLORS` from the name alone, with arithmetic a Vega expression
    can repeat (:func:`vega_color_expr`), so a plugin has one colour in the report and in
    ``dvc plots``: length, first and last character."""
    def pos(char: str) -> int:
        return NAME_ALPHABET.find(char.lower()) + 1
    return (len(method) + 7 * pos(method[:1]) + 3 * pos(method[-1:])) % len(EXTRA_COLORS)


def _extra(method: str, taken: set[str]) -> str:
    """The extra colour of ``method``; the next free one if a method drawn beside it already has
    it (two plugins on one figure never share a colour)."""
    start = extra_index(method)
    for step in range(len(EXTRA_COLORS)):
        color = EXTRA_COLORS[(start + step) % len(EXTRA_COLORS)]
        if color not in taken:
            return color
    return EXTRA_COLORS[start]


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    """Hex colour of each method, in report order (ds-atgo, at, tgo, vanilla, the rest)."""
    order = order_methods(methods)
    colors = {m: METHOD_COLORS[m] for m in order if m in METHOD_COLORS}
    for m in order:
        if m not in colors:
            colors[m] = _extra(m, set(colors.values()))
    return {m: colors[m] for m in order}


def method_marker(method: str) -> str:
    return METHOD_MARKERS.get(method, "o")


def vega_color_scale(methods: Iterable[str]) -> dict[str, list[str]]:
    """A Vega-Lite ``scale`` giving exactly :func:`method_colors`."""
    colors = method_colors(methods)
    return {"domain": list(colors), "range": list(colors.values())}


def vega_color_expr(field: str = "method") -> str:
    """A Vega expression giving a method's colour from its name: the fixed colour of a known
    method, else its :func:`extra_index` colour (a DVC template cannot know the methods in
    advance; unlike :func:`method_colors` two plugins may then share a colour)."""
    known = json.dumps(METHOD_COLORS)
    name = f"datum[{json.dumps(field)}]"
    alphabet = json.dumps(NAME_ALPHABET)

    def pos(char: str) -> str:
        return f"(indexof({alphabet}, lower({char})) + 1)"
    index = (f"(length({name}) + 7 * {pos(f'slice({name}, 0, 1)')} + 3 * {pos(f'slice({name}, -1)')})"
             f" % {len(EXTRA_COLORS)}")
    return f"{known}[{name}] || {json.dumps(EXTRA_COLORS)}[{index}]"


def timestep_colors(steps: Iterable[int]) -> dict[int, str]:
    """A dark-to-light ramp over the timesteps (matplotlib's "viridis" cut before its pale
    yellow end, which vanishes on white)."""
    steps = sorted(set(int(t) for t in steps))
    cmap = colormaps["viridis"]
    positions = np.linspace(0.0, 0.85, len(steps)) if len(steps) > 1 else [0.0]
    return {t: to_hex(cmap(p)) for t, p in zip(steps, positions)}

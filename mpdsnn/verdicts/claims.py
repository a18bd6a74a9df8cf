"""The paper's claims as checks over run folders: PASS, FAIL or INCONCLUSIVE, never a bare number.

Runs are grouped by (dataset, model, T, epochs): only runs of one setting are compared, paired by
seed. A claim is INCONCLUSIVE when fewer than ``MIN_SEEDS`` seeds (or seed pairs) exist, when its
inputs are missing, or when its 95 % interval straddles the decision boundary; it PASSes or FAILs
only when the interval lies on one side. Runs with non-default method options (``variant``) are
left out: the claims are about the methods as registered.

- C1: ds-atgo's firing rate, per timestep, mean over layers (last probe), lies within
  ``RATE_TOLERANCE`` points of 1 - Phi(1) = 15.87 % for every t (its t-interval over seeds
  inside the band), and its spread across timesteps (max - min over t, mean over layers) is
  smaller than vanilla's (paired t-interval of vanilla - ds-atgo above 0). The band of +-2
  points holds the paper's own variation: 15 +- 1.62 % per layer (Fig. 8) and 14.0-15.9 % per
  timestep (Fig. 10).
- C2: grad_available, mean over the deeper third of layers (last probe): ds-atgo - vanilla > 0.
- C3: accuracy ds-atgo - vanilla > 0; PASS/FAIL needs the paired t-interval and a seeded
  percentile bootstrap interval to agree.
- C4: each adjacent pair of vanilla < at < tgo < ds-atgo; PASS when all three hold.
- C5: ds-atgo's ``last_test_acc`` (running thresholds) - ``test_acc_batch_thresholds`` lies
  within +-``EQUIVALENCE_MARGIN`` points (95 % interval inside the margin). Both are read as
  evaluations of the final weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from mpdsnn.errors import UserError, unknown_name
from mpdsnn.verdicts._table import fmt, fmt_interval, markdown_table
from mpdsnn.verdicts.published import compare_published, published_markdown
from mpdsnn.paper import ABLATION_LADDER, TARGET_RATE
from mpdsnn.runfolder.reader import RunTables, read_runs
from mpdsnn.verdicts.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    STATS_BACKEND,
    Interval,
    bootstrap_interval,
    t_interval,
)

log = logging.getLogger(__name__)

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
RATE_TOLERANCE = 2.0  # points
EQUIVALENCE_MARGIN = 1.0  # points
MIN_SEEDS = 3
FAMILY = ABLATION_LADDER
ACCURACY_COLUMNS = {"best": "best_test_acc", "last": "last_test_acc",
                    "val": "val_selected_test_acc"}
ACCURACY_LABELS = {"best": "best-test", "last": "last-epoch", "val": "val-selected test"}
PAPER_GAIN = {"cifar10": 1.71, "cifar10-dvs": 2.30}  # AT+TGO over vanilla, SPEC section 3

CLAIMS = {
    "C1": f"AT keeps the firing rate within {RATE_TOLERANCE:g} points of 1 - Phi(1) = "
          f"{TARGET_RATE:.2f} % at every timestep, and its spread across timesteps is smaller "
          "than vanilla's",
    "C2": "DS-ATGO puts more neurons in the gradient window than vanilla in the deeper third "
          "of layers",
    "C3": "DS-ATGO beats vanilla in test accuracy (paired by seed)",
    "C4": "The ablation ordering vanilla < AT < TGO < AT+TGO holds in test accuracy",
    "C5": "Running thresholds at inference give the same accuracy as each test batch's own "
          f"statistics (within +-{EQUIVALENCE_MARGIN:g} point)",
}
_T95 = "95% t-interval"
_PAIRED = "95% paired t-interval"


@dataclass(frozen=True)
class ClaimResult:
    """One verdict. ``effect`` and the interval are in ``unit``; ``n`` counts seeds or pairs."""

    claim: str
    text: str
    group: str
    dataset: str
    verdict: str
    effect: float | None
    unit: str
    ci_low: float | None
    ci_high: float | None
    n: int
    interval: str
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass
class _Group:
    """Runs of one setting; ``method(name)`` is indexed by seed."""

    dataset: str
    model: str
    T: int
    epochs: int
    runs: pd.DataFrame
    layer_probe: Callable[[str], pd.DataFrame | None]
    timestep_probe: Callable[[str], pd.DataFrame | None]

    @property
    def label(self) -> str:
        return f"{self.dataset} / {self.model} / T={self.T} / {self.epochs} epochs"

    def method(self, name: str) -> pd.DataFrame:
        return self.runs[self.runs["method"] == name].set_index("seed").sort_index()

    def result(self, claim: str, verdict: str, detail: str, iv: Interval | None = None,
               unit: str = "points", interval: str = _PAIRED) -> ClaimResult:
        iv = iv or Interval(math.nan, math.nan, math.nan, 0, math.nan)
        return ClaimResult(claim, CLAIMS[claim], self.label, self.dataset, verdict,
                           _num(iv.mean), unit, _num(iv.low), _num(iv.high), iv.n, interval,
                           detail)


def _directional(iv: Interval, bound: float = 0.0) -> tuple[str, str]:
    """Verdict of 'the mean exceeds ``bound``' from its interval."""
    if iv.n < MIN_SEEDS:
        return INCONCLUSIVE, f"only {iv.n} seed pair(s), need >= {MIN_SEEDS}"
    if iv.low > bound:
        return PASS, "interval above 0"
    if iv.high < bound:
        return FAIL, "interval below 0"
    return INCONCLUSIVE, "interval straddles 0"


def _combine(verdicts: Iterable[str]) -> str:
    verdicts = list(verdicts)
    if FAIL in verdicts:
        return FAIL
    return PASS if all(v == PASS for v in verdicts) else INCONCLUSIVE


def _paired(a: pd.Series, b: pd.Series) -> pd.Series:
    """a - b over the seeds both have (NaNs dropped)."""
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    return both["a"] - both["b"]


def _iv_text(iv: Interval) -> str:
    return f"{fmt(iv.mean, sign=True)} {fmt_interval(iv.low, iv.high)} (n={iv.n})"


def _per_seed(runs: pd.DataFrame, probe: Callable[[str], pd.DataFrame | None],
              reduce: Callable[[pd.DataFrame], object]) -> tuple[dict[int, object], list[int]]:
    """``reduce(probe table)`` per seed, and the seeds whose run has no probe file."""
    values, missing = {}, []
    for seed, path in runs["path"].items():
        table = probe(path)
        if table is None:
            missing.append(int(seed))
        else:
            values[int(seed)] = reduce(table)
    return values, missing


def _rate_by_t(table: pd.DataFrame) -> pd.Series:
    return 100.0 * table.groupby("t")["firing_rate"].mean()


def _spread(table: pd.DataFrame) -> float:
    by_layer = table.groupby("layer")["firing_rate"]
    return float(100.0 * (by_layer.max() - by_layer.min()).mean())


def check_c1(g: _Group) -> ClaimResult:
    atgo = g.method("ds-atgo")
    if atgo.empty:
        return g.result("C1", INCONCLUSIVE, "no ds-atgo runs", unit="points from target",
                        interval=_T95)
    rates, missing = _per_seed(atgo, g.timestep_probe, _rate_by_t)
    if not rates:
        return g.result("C1", INCONCLUSIVE, "no probes/timesteps.csv in the ds-atgo runs",
                        unit="points from target", interval=_T95)
    by_t = pd.DataFrame(rates)  # index t, columns seed
    ivs = {int(t): t_interval(by_t.loc[t].dropna() - TARGET_RATE) for t in by_t.index}
    worst_t = max(ivs, key=lambda t: abs(ivs[t].mean))
    n = min(iv.n for iv in ivs.values())
    outside = [t for t, iv in ivs.items() if iv.defined and
               (iv.low > RATE_TOLERANCE or iv.high < -RATE_TOLERANCE)]
    unsure = [t for t, iv in ivs.items() if not iv.defined or
              iv.low < -RATE_TOLERANCE or iv.high > RATE_TOLERANCE]
    if n < MIN_SEEDS:
        part1, why1 = INCONCLUSIVE, f"only {n} seed(s) with probes, need >= {MIN_SEEDS}"
    elif outside:
        part1, why1 = FAIL, f"outside the band at t = {', '.join(map(str, outside))}"
    elif unsure:
        part1, why1 = INCONCLUSIVE, f"interval crosses the band edge at t = " \
                                    f"{', '.join(map(str, unsure))}"
    else:
        part1, why1 = PASS, "every timestep's interval inside the band"
    per_t = "; ".join(f"t={t}: {fmt(iv.mean + TARGET_RATE)} %, {fmt_interval(iv.low, iv.high)}"
                      for t, iv in ivs.items())
    detail = (f"part 1 {part1} ({why1}); ds-atgo rate per timestep (mean over layers and "
              f"seeds; interval of the deviation from {TARGET_RATE:.2f} %, band "
              f"+-{RATE_TOLERANCE:g}): {per_t}")
    if missing:
        detail += f"; seeds without probes: {missing}"
    if g.T < 2:
        part2, why2 = INCONCLUSIVE, "T = 1 has no spread across timesteps"
    else:
        van, _ = _per_seed(g.method("vanilla"), g.timestep_probe, _spread)
        own, _ = _per_seed(atgo, g.timestep_probe, _spread)
        if not van:
            part2, why2 = INCONCLUSIVE, "no vanilla runs with probes/timesteps.csv"
        else:
            diff = t_interval(_paired(pd.Series(van), pd.Series(own)))
            part2, why2 = _directional(diff)
            why2 = (f"vanilla - ds-atgo spread (max - min over t, mean over layers, points) "
                    f"{_iv_text(diff)}: {why2}")
    detail += f". Part 2 {part2}: {why2}"
    return g.result("C1", _combine([part1, part2]), detail, ivs[worst_t],
                    unit=f"points from {TARGET_RATE:.2f} % (worst t={worst_t})",
                    interval=f"{_T95} over seeds")


def _deep_grad(table: pd.DataFrame) -> tuple[float, int]:
    layers = sorted(table["layer"].unique())
    deep = layers[len(layers) - math.ceil(len(layers) / 3):]
    return float(100.0 * table[table["layer"].isin(deep)]["grad_available"].mean()), len(layers)


def check_c2(g: _Group) -> ClaimResult:
    atgo, _ = _per_seed(g.method("ds-atgo"), g.layer_probe, _deep_grad)
    van, _ = _per_seed(g.method("vanilla"), g.layer_probe, _deep_grad)
    if not atgo or not van:
        return g.result("C2", INCONCLUSIVE, "needs ds-atgo and vanilla runs with "
                                            "probes/layers.csv")
    depths = {v[1] for v in [*atgo.values(), *van.values()]}
    if len(depths) > 1:
        return g.result("C2", INCONCLUSIVE, f"runs disagree on the number of spiking layers "
                                            f"({sorted(depths)}); cannot pair layers")
    depth = depths.pop()
    a = pd.Series({s: v[0] for s, v in atgo.items()})
    b = pd.Series({s: v[0] for s, v in van.items()})
    diff = _paired(a, b)
    iv = t_interval(diff)
    verdict, why = _directional(iv)
    seeds = diff.index
    mean_a, mean_b = float(a[seeds].mean()), float(b[seeds].mean())
    relative = 100.0 * (mean_a / mean_b - 1.0) if mean_b > 0 else math.nan
    first = depth - math.ceil(depth / 3)
    detail = (f"{why}; grad_available in layers {first}-{depth - 1} of {depth} (last probe): "
              f"ds-atgo {fmt(mean_a)} %, vanilla {fmt(mean_b)} %, relative gain "
              f"{fmt(relative, 1, sign=True)} % (a widely read summary says +32.7 %, a figure "
              "not in the paper's text)")
    return g.result("C2", verdict, detail, iv)


def _accuracy(g: _Group, method: str, column: str) -> pd.Series:
    return g.method(method)[column]


def check_c3(g: _Group, accuracy: str) -> ClaimResult:
    column = ACCURACY_COLUMNS[accuracy]
    diff = _paired(_accuracy(g, "ds-atgo", column), _accuracy(g, "vanilla", column))
    iv = t_interval(diff)
    boot = bootstrap_interval(diff.to_numpy())
    verdict, why = _directional(iv)
    if verdict != INCONCLUSIVE and iv.n >= MIN_SEEDS:
        agrees = boot[0] > 0 if verdict == PASS else boot[1] < 0
        if not agrees:
            verdict, why = INCONCLUSIVE, "t and bootstrap intervals disagree"
    detail = (f"{why}; {ACCURACY_LABELS[accuracy]} accuracy, ds-atgo - vanilla; bootstrap "
              f"{fmt_interval(*boot)} ({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED})")
    if g.dataset in PAPER_GAIN and iv.defined:
        gain = PAPER_GAIN[g.dataset]
        inside = "inside" if iv.low <= gain <= iv.high else "outside"
        detail += f"; the paper reports +{gain:.2f}, {inside} the t-interval"
    return g.result("C3", verdict, detail, iv)


def check_c4(g: _Group, accuracy: str) -> ClaimResult:
    column = ACCURACY_COLUMNS[accuracy]
    pairs, texts = [], []
    for low, high in zip(FAMILY, FAMILY[1:]):
        if g.method(low).empty or g.method(high).empty:
            absent = low if g.method(low).empty else high
            pairs.append((INCONCLUSIVE, Interval(math.nan, math.nan, math.nan, 0, math.nan)))
            texts.append(f"{low} < {high}: INCONCLUSIVE (no {absent} runs)")
            continue
        iv = t_interval(_paired(_accuracy(g, high, column), _accuracy(g, low, column)))
        verdict, why = _directional(iv)
        pairs.append((verdict, iv))
        texts.append(f"{low} < {high}: {verdict} ({high} - {low} {_iv_text(iv)}, {why})")
    defined = [iv for _, iv in pairs if iv.n > 0]
    weakest = min(defined, key=lambda iv: iv.mean) if defined else None
    detail = f"{ACCURACY_LABELS[accuracy]} accuracy; " + "; ".join(texts)
    result = g.result("C4", _combine(v for v, _ in pairs), detail, weakest,
                      unit="points (weakest adjacent pair)")
    return result if weakest is None else _with_n(result, min(iv.n for iv in defined))


def _with_n(result: ClaimResult, n: int) -> ClaimResult:
    return ClaimResult(**{**result.to_dict(), "n": n})


def check_c5(g: _Group) -> ClaimResult:
    atgo = g.method("ds-atgo")
    if atgo.empty:
        return g.result("C5", INCONCLUSIVE, "no ds-atgo runs")
    diff = (atgo["last_test_acc"] - atgo["test_acc_batch_thresholds"]).dropna()
    if diff.empty:
        return g.result("C5", INCONCLUSIVE, "no ds-atgo run reports test_acc_batch_thresholds")
    iv = t_interval(diff)
    m = EQUIVALENCE_MARGIN
    if iv.n < MIN_SEEDS:
        verdict, why = INCONCLUSIVE, f"only {iv.n} seed(s), need >= {MIN_SEEDS}"
    elif -m <= iv.low and iv.high <= m:
        verdict, why = PASS, f"interval inside +-{m:g}"
    elif iv.low > m or iv.high < -m:
        verdict, why = FAIL, f"interval outside +-{m:g}"
    else:
        verdict, why = INCONCLUSIVE, f"interval crosses the +-{m:g} margin"
    detail = (f"{why}; last-epoch accuracy with running thresholds - with each test batch's "
              f"own statistics (both taken as evaluations of the final weights): running "
              f"{fmt(atgo.loc[diff.index, 'last_test_acc'].mean())} %, batch "
              f"{fmt(atgo.loc[diff.index, 'test_acc_batch_thresholds'].mean())} %")
    return g.result("C5", verdict, detail, iv)


def _probe_lookup(probes: pd.DataFrame, runs: pd.DataFrame) -> Callable[[str], pd.DataFrame | None]:
    """run path -> that run's last-probe rows, or None for a run without probes."""
    by_run = {run: part.reset_index(drop=True) for run, part in probes.groupby("run")} \
        if not probes.empty else {}
    run_of = dict(zip(runs["path"], runs["run"]))
    return lambda path: by_run.get(run_of.get(path))


def claims_from_runs(tables: RunTables, dataset: str | None = None,
                     accuracy: str = "best") -> list[ClaimResult]:
    """Verdicts for every setting (dataset, model, T, epochs) holding DS-ATGO-family runs."""
    runs = tables.finished
    layer_probe = _probe_lookup(tables.last_layers, runs)
    timestep_probe = _probe_lookup(tables.last_timesteps, runs)
    if accuracy not in ACCURACY_COLUMNS:
        raise unknown_name("accuracy", accuracy, list(ACCURACY_COLUMNS))
    if dataset is not None:
        if dataset not in set(runs["dataset"]):
            raise UserError(f"no runs of dataset {dataset!r}; datasets in these runs: "
                            f"{', '.join(sorted(set(runs['dataset'])))}")
        runs = runs[runs["dataset"] == dataset]
    variants = runs[(runs["variant"] != "") & runs["method"].isin(FAMILY)]
    if not variants.empty:
        log.info("leaving out %d run(s) with non-default method options: %s", len(variants),
                 ", ".join(f"{r.run} ({r.variant})" for r in variants.itertuples()))
    runs = runs[(runs["variant"] == "") & runs["method"].isin(FAMILY)]
    results: list[ClaimResult] = []
    for (ds, model, T, epochs), part in runs.groupby(["dataset", "model", "T", "epochs"],
                                                     sort=True):
        g = _Group(str(ds), str(model), int(T), int(epochs), part, layer_probe, timestep_probe)
        results += [check_c1(g), check_c2(g), check_c3(g, accuracy), check_c4(g, accuracy),
                    check_c5(g)]
    return results


def check_claims(run_roots: Iterable[str | Path], dataset: str | None = None,
                 accuracy: str = "best") -> list[ClaimResult]:
    """Read the run folders under ``run_roots`` and check C1-C5 per setting.

    ``accuracy``: which test accuracy C3 and C4 compare: ``best`` (max over epochs, as the
    official codes report), ``last`` (final epoch) or ``val`` (epoch chosen on validation)."""
    return claims_from_runs(read_runs(run_roots), dataset, accuracy)


def claims_markdown(results: Sequence[ClaimResult]) -> str:
    """Verdict tables, one section per setting, then the claims' texts and the statistics."""
    out = ["## Claims checked on these runs\n"]
    if not results:
        out.append("No runs of ds-atgo, vanilla, at or tgo: no claim to check.\n")
        return "\n".join(out)
    headers = ["claim", "verdict", "effect", "unit", "95% interval", "n", "detail"]
    for group in dict.fromkeys(r.group for r in results):
        rows = [[r.claim, f"**{r.verdict}**", fmt(r.effect, sign=True), r.unit,
                 fmt_interval(r.ci_low, r.ci_high), r.n, r.detail]
                for r in results if r.group == group]
        out.append(f"### {group}\n\n{markdown_table(headers, rows)}")
    out.append("Claims:\n\n" + "\n".join(f"- {c}: {t}" for c, t in CLAIMS.items()) + "\n")
    out.append(f"A verdict needs >= {MIN_SEEDS} seeds (pairs) and an interval on one side of "
               f"its boundary; otherwise INCONCLUSIVE. Intervals: {STATS_BACKEND}.\n")
    return "\n".join(out)


def _json_ready(table: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else
                 v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")]


def main(argv: Sequence[str] | None = None) -> int:
    """``mpdsnn claims RUNS... [--dataset D] [--accuracy best|last|val] [--json OUT]``.

    Prints the verdicts and the published-vs-reproduced table as Markdown. Returns 0 whatever
    the verdicts (they are information), 2 on unusable input."""
    parser = argparse.ArgumentParser(
        prog="mpdsnn claims",
        description="Check the paper's claims (C1-C5) on run folders and compare with "
                    "published numbers.")
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or folders above them")
    parser.add_argument("--dataset", help="only this dataset")
    parser.add_argument("--accuracy", choices=sorted(ACCURACY_COLUMNS), default="best",
                        help="test accuracy compared by C3/C4 (default: best)")
    parser.add_argument("--json", type=Path, dest="json_out", help="also write results here")
    args = parser.parse_args(argv)
    try:
        tables = read_runs(args.runs)
        runs = tables.finished
        results = claims_from_runs(tables, args.dataset, args.accuracy)
        datasets = {args.dataset} if args.dataset else set(runs["dataset"])
        published = compare_published(runs)
        published = published[published["dataset"].isin(datasets)].reset_index(drop=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(claims_markdown(results))
    print(published_markdown(published))
    if tables.skipped:
        print("## Folders skipped (not used by any claim)\n")
        print("\n".join(f"- `{s.path}`: {s.reason}" for s in tables.skipped) + "\n")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "stats_backend": STATS_BACKEND,
            "accuracy": ACCURACY_LABELS[args.accuracy],
            "claims": [r.to_dict() for r in results],
            "published": _json_ready(published),
        }, indent=2))
    return 0

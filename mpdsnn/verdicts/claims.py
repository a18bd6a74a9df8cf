"""The paper's claims as checks over a runs table: PASS, FAIL or INCONCLUSIVE, never a bare number.

Runs are pooled per setting (dataset, model, T, epochs) and, within it, per recipe fingerprint
(:mod:`mpdsnn.verdicts.pooling`): methods are paired by seed, and runs of different recipes are
never pooled (a setting with two recipes of one method is checked once per recipe, and the
runs of each are named). Runs with non-default method options (``variant``) are left out, by
name: the claims are about the methods as registered.

Every decision is a one-sided t-test at 2.5 % (:mod:`mpdsnn.verdicts.stats`): a claim PASSes
when its test for the paper's direction rejects, FAILs when the test for the opposite direction
rejects, and is INCONCLUSIVE otherwise or with fewer than ``MIN_SEEDS`` seeds (pairs). A claim of
several parts PASSes only when every part does (p = the largest part p) and FAILs when one part
fails (p = Bonferroni over the parts). Holm's correction over every tested claim of one report
gives the adjusted verdict, printed beside the raw one. Each claim also states the smallest
effect it could detect at its n and spread, and the seeds it would need for the paper's effect.

- C1: ds-atgo's firing rate per timestep (mean over layers, last probe) within
  ``RATE_TOLERANCE`` points of 1 - Phi(1) = 15.87 % at every t (TOST per t), and a smaller spread
  across timesteps than vanilla's.
- C2: grad_available in the deeper third of layers (last probe): ds-atgo - vanilla > 0.
- C3: test accuracy ds-atgo - vanilla > 0.
- C4: each adjacent pair of vanilla < at < tgo < ds-atgo.
- C5: ds-atgo's ``last_test_acc`` (running thresholds) - ``test_acc_batch_thresholds`` (each
  test batch's own statistics) > 0, as the paper's Fig. 7 states; equivalence within
  +-``EQUIVALENCE_MARGIN`` is reported as secondary detail.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Sequence

import pandas as pd

from mpdsnn.errors import UserError, unknown_name
from mpdsnn.paper import ABLATION_LADDER, TARGET_RATE
from mpdsnn.runfolder.reader import read_runs
from mpdsnn.verdicts.pooling import Arm, Pool, pools, run_name
from mpdsnn.verdicts.stats import (
    ALPHA,
    BOOTSTRAP_MIN_N,
    Interval,
    bootstrap_interval,
    detectable_effect,
    holm,
    p_equivalent,
    p_greater,
    p_less,
    seeds_needed,
    t_interval,
)
from mpdsnn.verdicts._table import fmt, fmt_interval

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
RATE_TOLERANCE = 2.0  # points
EQUIVALENCE_MARGIN = 1.0  # points
MIN_SEEDS = 3
FAMILY = ABLATION_LADDER
SETTING = ["dataset", "model", "T", "epochs"]
ACCURACY_COLUMNS = {"best": "best_test_acc", "last": "last_test_acc",
                    "val": "val_selected_test_acc"}
ACCURACY_LABELS = {"best": "best-test", "last": "last-epoch", "val": "val-selected test"}

# The paper's effects, for power (SPEC.md sections 3, 6 and 7).
PAPER_GAIN = {"cifar10": 1.71, "cifar10-dvs": 2.30}  # AT+TGO over vanilla, SPEC section 3
OVER_MPD_AGL = round(96.91 - 96.18, 2)  # ds-atgo over MPD-AGL, CIFAR-10 T=2, SPEC section 6
FIG11_GAP = round(38.53 - 15.13, 2)  # Fig. 11: ds-atgo >= 38.53 %, vanilla <= 15.13 % (deep)

CLAIMS = {
    "C1": f"AT keeps the firing rate within {RATE_TOLERANCE:g} points of 1 - Phi(1) = "
          f"{TARGET_RATE:.2f} % at every timestep, and its spread across timesteps is smaller "
          "than vanilla's",
    "C2": "DS-ATGO puts more neurons in the gradient window than vanilla in the deeper third "
          "of layers",
    "C3": "DS-ATGO beats vanilla in test accuracy (paired by seed)",
    "C4": "The ablation ordering vanilla < AT < TGO < AT+TGO holds in test accuracy",
    "C5": "Running (moving-average) thresholds at inference beat each test batch's own "
          "statistics (paper Fig. 7; the gain is larger on CIFAR10-DVS than on CIFAR-10)",
}


@dataclass(frozen=True)
class ClaimResult:
    """One verdict. ``effect`` and the interval are in ``unit``; ``n`` counts seeds or pairs.

    ``p_value`` is the one-sided p of the test behind ``verdict`` (None: not tested);
    ``adjusted_p``/``adjusted_verdict`` apply Holm over the report's tested claims.
    ``detectable`` is the smallest true effect the test detects with 80 % power at this n and
    spread; ``seeds_needed`` the seeds (pairs) for ``target``, the paper's effect."""

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
    p_value: float | None = None
    adjusted_p: float | None = None
    adjusted_verdict: str = INCONCLUSIVE
    detectable: float | None = None
    target: float | None = None
    target_source: str = ""
    seeds_needed: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _p(x: float) -> float:
    """An undefined p (too few values) can neither pass nor fail."""
    return 1.0 if not math.isfinite(x) else x


@dataclass(frozen=True)
class _Test:
    """One-sided p-values for the paper's direction (pass) and the opposite one (fail)."""

    pass_p: float
    fail_p: float
    n: int

    @staticmethod
    def directional(values: Sequence[float], bound: float = 0.0) -> "_Test":
        iv = t_interval(values)
        return _Test(_p(p_greater(values, bound)), _p(p_less(values, bound)), iv.n)

    @staticmethod
    def all_of(parts: Sequence["_Test"]) -> "_Test":
        """Passes when every part passes (intersection-union: the largest p); fails when any
        part fails (Bonferroni over the parts)."""
        return _Test(max(t.pass_p for t in parts),
                     min(1.0, len(parts) * min(t.fail_p for t in parts)),
                     min(t.n for t in parts))

    def decide(self) -> tuple[str, float | None, str]:
        """(verdict, p of its test, why)."""
        if self.n < MIN_SEEDS:
            return INCONCLUSIVE, None, f"only {self.n} seed pair(s), need >= {MIN_SEEDS}"
        if self.pass_p < ALPHA:
            return PASS, self.pass_p, f"p = {self.pass_p:.3g} < {ALPHA:g}"
        if self.fail_p < ALPHA:
            return FAIL, self.fail_p, f"opposite direction p = {self.fail_p:.3g} < {ALPHA:g}"
        return (INCONCLUSIVE, min(self.pass_p, self.fail_p),
                f"neither direction significant (p = {self.pass_p:.3g}, "
                f"opposite {self.fail_p:.3g})")


@dataclass
class _Group:
    """One pool of comparable runs and the probe tables keyed by run."""

    pool: Pool
    layers: dict[str, pd.DataFrame]
    timesteps: dict[str, pd.DataFrame]

    @property
    def dataset(self) -> str:
        return str(self.pool.setting[0])

    @property
    def T(self) -> int:
        return int(self.pool.setting[2])

    @property
    def label(self) -> str:
        ds, model, T, epochs = self.pool.setting
        split = f" [{self.pool.split_label}]" if self.pool.split_label else ""
        return f"{ds} / {model} / T={T} / {epochs} epochs{split}"

    def method(self, name: str) -> pd.DataFrame:
        arm: Arm | None = self.pool.arms.get(name)
        return arm.runs if arm is not None else pd.DataFrame(columns=["path"])

    def result(self, claim: str, test: _Test | None, why: str, detail: str,
               iv: Interval | None = None, unit: str = "points",
               interval: str = "95% paired t-interval", target: float | None = None,
               target_source: str = "") -> ClaimResult:
        iv = iv or Interval(math.nan, math.nan, math.nan, 0, math.nan)
        verdict, p, reason = test.decide() if test is not None else (INCONCLUSIVE, None, why)
        if test is not None and why:
            reason = f"{reason}; {why}"
        sd = iv.sd if iv.n >= 2 else math.nan
        needed = seeds_needed(target, sd) if target is not None else None
        needed = None if needed is None else max(needed, MIN_SEEDS)
        return ClaimResult(claim, CLAIMS[claim], self.label, self.dataset, verdict,
                           _num(iv.mean), unit, _num(iv.low), _num(iv.high), iv.n, interval,
                           f"{reason}; {detail}" if detail else reason, p, None, INCONCLUSIVE,
                           _num(detectable_effect(sd, iv.n)), target, target_source, needed)


def _paired(a: pd.Series, b: pd.Series) -> pd.Series:
    """a - b over the seeds both have (NaNs dropped)."""
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    return both["a"] - both["b"]


def _iv_text(iv: Interval) -> str:
    return f"{fmt(iv.mean, sign=True)} {fmt_interval(iv.low, iv.high)} (n={iv.n})"


def _per_seed(runs: pd.DataFrame, probes: dict[str, pd.DataFrame], reduce) -> dict[int, object]:
    """``reduce(probe rows)`` per seed of ``runs`` that has probe rows."""
    out = {}
    for seed, row in runs.iterrows():
        table = next((probes[k] for k in _keys(row) if k in probes), None)
        if table is not None and not table.empty:
            out[int(seed)] = reduce(table)
    return out


def _keys(row: pd.Series) -> list[str]:
    """The names a run's probe rows may be filed under: its ``run`` and its ``path``."""
    return [str(row[k]) for k in ("run", "path") if k in row.index]


def _rate_by_t(table: pd.DataFrame) -> pd.Series:
    return 100.0 * table.groupby("t")["firing_rate"].mean()


def _spread(table: pd.DataFrame) -> float:
    by_layer = table.groupby("layer")["firing_rate"]
    return float(100.0 * (by_layer.max() - by_layer.min()).mean())


def check_c1(g: _Group) -> ClaimResult:
    unit, interval = f"points from {TARGET_RATE:.2f} %", "95% t-interval over seeds"
    atgo = g.method("ds-atgo")
    rates = _per_seed(atgo, g.timesteps, _rate_by_t)
    if not rates:
        why = "no ds-atgo runs" if atgo.empty else "no timestep probes in the ds-atgo runs"
        return g.result("C1", None, why, "", unit=unit, interval=interval)
    by_t = pd.DataFrame(rates)  # index t, columns seed
    devs = {int(t): by_t.loc[t].dropna() - TARGET_RATE for t in by_t.index}
    ivs = {t: t_interval(d) for t, d in devs.items()}
    band = RATE_TOLERANCE
    per_t = [_Test(_p(p_equivalent(d, band)),
                   min(_p(p_greater(d, band)), _p(p_less(d, -band))), ivs[t].n)
             for t, d in devs.items()]
    part1 = _Test.all_of(per_t)
    outside = [t for t, iv in ivs.items() if iv.defined and (iv.low > band or iv.high < -band)]
    v1 = part1.decide()[0]
    why1 = (f"outside the band at t = {', '.join(map(str, outside))}" if outside else
            "every timestep's interval inside the band" if v1 == PASS else
            "an interval crosses the band edge")
    per_t_text = "; ".join(f"t={t}: {fmt(iv.mean + TARGET_RATE)} %, "
                           f"{fmt_interval(iv.low, iv.high)}" for t, iv in ivs.items())
    detail = (f"part 1 {v1} ({why1}); ds-atgo rate per timestep (mean over layers and seeds; "
              f"interval of the deviation from {TARGET_RATE:.2f} %, band +-{band:g}): "
              f"{per_t_text}")
    if g.T < 2:
        part2, why2 = _Test(1.0, 1.0, part1.n), "T = 1 has no spread across timesteps"
    else:
        van = _per_seed(g.method("vanilla"), g.timesteps, _spread)
        own = _per_seed(atgo, g.timesteps, _spread)
        if not van:
            part2, why2 = _Test(1.0, 1.0, part1.n), "no vanilla runs with timestep probes"
        else:
            diff = _paired(pd.Series(van), pd.Series(own))
            part2 = _Test.directional(diff)
            why2 = (f"vanilla - ds-atgo spread (max - min over t, mean over layers, points) "
                    f"{_iv_text(t_interval(diff))}")
    detail += f". Part 2 {part2.decide()[0]}: {why2}"
    worst = max(ivs, key=lambda t: abs(ivs[t].mean))
    return g.result("C1", _Test.all_of([part1, part2]), "", detail, ivs[worst],
                    unit=f"{unit} (worst t={worst})", interval=interval)


def _deep_grad(table: pd.DataFrame) -> tuple[float, int]:
    layers = sorted(table["layer"].unique())
    deep = layers[len(layers) - math.ceil(len(layers) / 3):]
    return float(100.0 * table[table["layer"].isin(deep)]["grad_available"].mean()), len(layers)


def check_c2(g: _Group) -> ClaimResult:
    atgo = _per_seed(g.method("ds-atgo"), g.layers, _deep_grad)
    van = _per_seed(g.method("vanilla"), g.layers, _deep_grad)
    target = dict(target=FIG11_GAP, target_source="Fig. 11 (CIFAR-100): >= 38.53 % vs "
                  "<= 15.13 % in the last three layers, a lower bound")
    if not atgo or not van:
        return g.result("C2", None, "needs ds-atgo and vanilla runs with layer probes", "",
                        **target)
    depths = {v[1] for v in [*atgo.values(), *van.values()]}
    if len(depths) > 1:
        return g.result("C2", None, f"runs disagree on the number of spiking layers "
                                    f"({sorted(depths)}); cannot pair layers", "", **target)
    depth = depths.pop()
    a = pd.Series({s: v[0] for s, v in atgo.items()})
    b = pd.Series({s: v[0] for s, v in van.items()})
    diff = _paired(a, b)
    seeds = diff.index
    mean_a, mean_b = float(a[seeds].mean()), float(b[seeds].mean())
    relative = 100.0 * (mean_a / mean_b - 1.0) if mean_b > 0 else math.nan
    detail = (f"grad_available in the deepest {math.ceil(depth / 3)} of {depth} spiking layers "
              f"(last probe; downsample neurons left out, as in the paper's figures): "
              f"ds-atgo {fmt(mean_a)} %, vanilla {fmt(mean_b)} %, relative gain "
              f"{fmt(relative, 1, sign=True)} % (a widely read summary says +32.7 %, a figure "
              "not in the paper's text)")
    return g.result("C2", _Test.directional(diff), "", detail, t_interval(diff), **target)


def _paper_gain(dataset: str) -> tuple[float, str]:
    if dataset in PAPER_GAIN:
        return PAPER_GAIN[dataset], f"the paper's AT+TGO gain over vanilla on {dataset}"
    return OVER_MPD_AGL, (f"no paper gain for {dataset}: the smallest published DS-ATGO gain, "
                          f"+{OVER_MPD_AGL:.2f} over MPD-AGL on CIFAR-10")


def check_c3(g: _Group, accuracy: str) -> ClaimResult:
    column = ACCURACY_COLUMNS[accuracy]
    diff = _paired(g.method("ds-atgo").get(column, pd.Series(dtype=float)),
                   g.method("vanilla").get(column, pd.Series(dtype=float)))
    iv = t_interval(diff)
    boot = bootstrap_interval(diff.to_numpy())
    boot_text = (fmt_interval(*boot) + f" (percentile, seeded, n >= {BOOTSTRAP_MIN_N})"
                 if isinstance(boot, tuple) else boot)
    target, source = _paper_gain(g.dataset)
    detail = (f"{ACCURACY_LABELS[accuracy]} accuracy, ds-atgo - vanilla; bootstrap "
              f"{boot_text}")
    if g.dataset in PAPER_GAIN and iv.defined:
        inside = "inside" if iv.low <= target <= iv.high else "outside"
        detail += f"; the paper reports +{target:.2f}, {inside} the t-interval"
    return g.result("C3", _Test.directional(diff), "", detail, iv, target=target,
                    target_source=source)


def check_c4(g: _Group, accuracy: str) -> ClaimResult:
    column = ACCURACY_COLUMNS[accuracy]
    tests, texts, ivs = [], [], []
    for low, high in zip(FAMILY, FAMILY[1:]):
        if g.method(low).empty or g.method(high).empty:
            absent = low if g.method(low).empty else high
            tests.append(_Test(1.0, 1.0, 0))
            texts.append(f"{low} < {high}: INCONCLUSIVE (no {absent} runs)")
            continue
        diff = _paired(g.method(high)[column], g.method(low)[column])
        iv = t_interval(diff)
        test = _Test.directional(diff)
        tests.append(test)
        ivs.append(iv)
        texts.append(f"{low} < {high}: {test.decide()[0]} ({high} - {low} {_iv_text(iv)})")
    detail = f"{ACCURACY_LABELS[accuracy]} accuracy; " + "; ".join(texts)
    weakest = min(ivs, key=lambda iv: iv.mean) if ivs else None
    needed = [seeds_needed(OVER_MPD_AGL, iv.sd) for iv in ivs if iv.n >= 2]
    result = g.result("C4", _Test.all_of(tests), "", detail, weakest,
                      unit="points (weakest adjacent pair)", target=OVER_MPD_AGL,
                      target_source=f"no per-step gain published: +{OVER_MPD_AGL:.2f} (DS-ATGO "
                                    "over MPD-AGL, CIFAR-10) per adjacent pair")
    if needed and all(n is not None for n in needed):
        result = replace(result, seeds_needed=max(MIN_SEEDS, *needed))  # every pair must pass
    return result


def check_c5(g: _Group) -> ClaimResult:
    atgo = g.method("ds-atgo")
    source = "SPEC gives no Fig. 7 values"
    if atgo.empty:
        return g.result("C5", None, "no ds-atgo runs", "", target_source=source)
    if "test_acc_batch_thresholds" not in atgo:
        atgo = atgo.assign(test_acc_batch_thresholds=math.nan)
    diff = (atgo["last_test_acc"] - atgo["test_acc_batch_thresholds"]).dropna()
    if diff.empty:
        return g.result("C5", None, "no ds-atgo run reports test_acc_batch_thresholds", "",
                        target_source=source)
    iv = t_interval(diff)
    m = EQUIVALENCE_MARGIN
    eq = p_equivalent(diff, m)
    eq_text = ("n/a (n < 2)" if not math.isfinite(eq) else
               f"TOST p = {eq:.3g}: {'within' if eq < ALPHA else 'not shown within'} +-{m:g}")
    detail = (f"last-epoch accuracy with running thresholds - with each test batch's own "
              f"statistics (both on the final weights): running "
              f"{fmt(atgo.loc[diff.index, 'last_test_acc'].mean())} %, batch "
              f"{fmt(atgo.loc[diff.index, 'test_acc_batch_thresholds'].mean())} %; secondary: "
              f"equivalence {eq_text}")
    return g.result("C5", _Test.directional(diff), "", detail, iv, target_source=source)


def _probe_index(table: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Probe rows per run key (``path``, else ``run``): the last probed epoch, and the paper's
    layer set (downsample neurons, which its 18-layer ResNet-19 figures leave out, dropped)."""
    if table is None or table.empty:
        return {}
    keys = [k for k in ("run", "path") if k in table.columns]
    if not keys:
        raise UserError("a probe table needs a 'path' or 'run' column naming its run")
    table = paper_layers(table)
    out = {}
    for name, part in table.groupby(keys[0], sort=False):
        if "epoch" in part.columns:
            part = part[part["epoch"] == part["epoch"].max()]
        out[str(name)] = part.reset_index(drop=True)
    return out


def paper_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Probe rows without the downsample neurons (``layer_name`` containing "downsample"):
    the paper's per-layer figures of ResNet-19 show 18 spiking layers, not 20."""
    if "layer_name" not in table.columns:
        return table
    return table[~table["layer_name"].astype(str).str.contains("downsample")]


def _leave_out_variants(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    variants = runs[runs["variant"].fillna("") != ""]
    notes = [f"left out (non-default method options {r['variant']}): {run_name(r)}"
             for _, r in variants.iterrows()]
    return runs[runs["variant"].fillna("") == ""], notes


def adjust(results: Sequence[ClaimResult]) -> list[ClaimResult]:
    """Holm over the tested claims (those with a p-value) of one report."""
    adjusted = holm([r.p_value if r.p_value is not None else math.nan for r in results])
    out = []
    for r, p in zip(results, adjusted):
        p = _num(p)
        keep = r.verdict if p is not None and p < ALPHA else INCONCLUSIVE
        out.append(replace(r, adjusted_p=p, adjusted_verdict=keep))
    return out


@dataclass
class ClaimsReport:
    """The verdicts of one report and the notes on which runs were pooled or left out."""

    results: list[ClaimResult]
    notes: list[str]


def claims_report(runs: pd.DataFrame, layers: pd.DataFrame | None = None,
                  timesteps: pd.DataFrame | None = None, dataset: str | None = None,
                  accuracy: str = "best") -> ClaimsReport:
    """Verdicts for every pool of DS-ATGO-family runs, Holm-adjusted over the report.

    ``runs``: one row per finished run (``path`` or ``run``, ``method``, ``variant``,
    ``recipe`` (a stand-in is derived when absent), ``dataset``, ``model``, ``T``, ``epochs``,
    ``seed`` and the accuracy columns). ``layers``/``timesteps``: probe rows (layers.csv,
    timesteps.csv) with a ``path`` or ``run`` column; only each run's last epoch is used."""
    if accuracy not in ACCURACY_COLUMNS:
        raise unknown_name("accuracy", accuracy, list(ACCURACY_COLUMNS))
    if dataset is not None:
        if dataset not in set(runs["dataset"]):
            raise UserError(f"no runs of dataset {dataset!r}; datasets in these runs: "
                            f"{', '.join(sorted(set(runs['dataset'])))}")
        runs = runs[runs["dataset"] == dataset]
    runs = runs[runs["method"].isin(FAMILY)]
    if "variant" not in runs.columns:
        runs = runs.assign(variant="")
    runs, notes = _leave_out_variants(runs)
    layer_index, step_index = _probe_index(layers), _probe_index(timesteps)
    results: list[ClaimResult] = []

    def label(values: tuple) -> str:
        return f"{values[0]} / {values[1]} / T={values[2]} / {values[3]} epochs"

    for pool in pools(runs, SETTING, label):
        notes += [n for n in pool.notes if n not in notes]
        g = _Group(pool, layer_index, step_index)
        results += [check_c1(g), check_c2(g), check_c3(g, accuracy), check_c4(g, accuracy),
                    check_c5(g)]
    return ClaimsReport(adjust(results), notes)


def claims_from_runs(runs: pd.DataFrame, layers: pd.DataFrame | None = None,
                     timesteps: pd.DataFrame | None = None, dataset: str | None = None,
                     accuracy: str = "best") -> list[ClaimResult]:
    """The verdicts of :func:`claims_report`, without the pooling notes."""
    return claims_report(runs, layers, timesteps, dataset, accuracy).results


def check_claims(run_roots: Iterable, dataset: str | None = None,
                 accuracy: str = "best") -> list[ClaimResult]:
    """Read the run folders under ``run_roots`` and check C1-C5 per pool.

    ``accuracy``: which test accuracy C3 and C4 compare: ``best`` (max over epochs, as the
    official codes report), ``last`` (final epoch) or ``val`` (epoch chosen on validation)."""
    tables = read_runs(run_roots)
    return claims_from_runs(tables.finished, tables.last_layers, tables.last_timesteps,
                            dataset=dataset, accuracy=accuracy)

"""The statistics a verdict needs, from scipy and statsmodels: t-intervals and one-sided t-tests
of a mean, Welch and equivalence tests from summary statistics, Holm's correction, a bootstrap
only where n makes it meaningful, and power (smallest detectable effect, seeds needed).

Every decision is a one-sided test at ``ALPHA`` = 2.5 %, so a claim PASSes exactly when the
two-sided 95 % t-interval lies above its boundary: the interval and the p-value never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

STATS_BACKEND = f"scipy {scipy.__version__}, statsmodels {statsmodels.__version__}"
LEVEL = 0.95
ALPHA = (1.0 - LEVEL) / 2.0  # one-sided level of every decision
POWER = 0.8
BOOTSTRAP_MIN_N = 10
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 2025
BOOTSTRAP_NA = (f"n/a: a percentile bootstrap of a mean needs n >= {BOOTSTRAP_MIN_N}; with few "
                "values its 95 % tails sit on the sample extremes (n = 3: P(all draws = the "
                "minimum) = 1/27 > 2.5 %, so the interval is [min, max])")


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with its two-sided ``LEVEL`` t-interval; bounds are NaN for n < 2."""

    mean: float
    low: float
    high: float
    n: int
    sd: float

    @property
    def defined(self) -> bool:
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def no_spread(values: Sequence[float]) -> bool:
    """All values equal up to float rounding (e.g. 95.2 - 93.2 vs 96.0 - 94.0): the t statistic
    is then undefined or pure rounding noise."""
    x = _finite(values)
    return x.size >= 2 and float(x.std(ddof=1)) <= 1e-9 * max(1.0, float(abs(x).max()))


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and t-interval of ``values`` (NaNs dropped); the interval needs n >= 2."""
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan)
    if n < 2:
        return Interval(float(x[0]), math.nan, math.nan, 1, math.nan)
    if no_spread(x):  # scipy returns NaN here; the interval of identical values is the point
        return Interval(float(x.mean()), float(x.mean()), float(x.mean()), n, 0.0)
    sd = float(x.std(ddof=1))
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(level)
    return Interval(float(x.mean()), float(ci.low), float(ci.high), n, sd)


def p_greater(values: Sequence[float], bound: float = 0.0) -> float:
    """One-sided p-value of "the mean exceeds ``bound``" (one-sample t-test); NaN for n < 2."""
    return _one_sided(values, bound, "greater")


def p_less(values: Sequence[float], bound: float = 0.0) -> float:
    """One-sided p-value of "the mean is below ``bound``"; NaN for n < 2."""
    return _one_sided(values, bound, "less")


def _one_sided(values: Sequence[float], bound: float, alternative: str) -> float:
    x = _finite(values)
    if x.size < 2:
        return math.nan
    if no_spread(x):  # the t statistic is undefined: an exact sign test instead
        return sign_test(x - bound, alternative)
    return float(stats.ttest_1samp(x, bound, alternative=alternative).pvalue)


def sign_test(differences: Sequence[float], alternative: str = "two-sided") -> float:
    """Exact sign test (scipy's binomial test) of the differences' median against 0; ties
    dropped. It needs no spread, so it stays valid when every difference is equal (accuracies
    on a small test set are discrete): three equal pairs give one-sided p = 1/8, not 0."""
    d = _finite(differences)
    d = d[d != 0.0]
    if d.size == 0:
        return 1.0
    return float(stats.binomtest(int((d > 0).sum()), int(d.size), 0.5,
                                 alternative=alternative).pvalue)


def p_equivalent(values: Sequence[float], margin: float) -> float:
    """TOST p-value of "the mean lies within +-``margin``" (the larger of two one-sided p)."""
    return max(p_greater(values, -margin), p_less(values, margin))


def holm(pvalues: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """Holm-adjusted p-values (statsmodels); NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=alpha, method="holm")[1]
    return out.tolist()


def bootstrap_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float] | str:
    """Seeded percentile-bootstrap interval of the mean (scipy), or the reason it is n/a."""
    x = _finite(values)
    if x.size < BOOTSTRAP_MIN_N:
        return BOOTSTRAP_NA
    ci = stats.bootstrap((x,), np.mean, confidence_level=level, method="percentile",
                         n_resamples=BOOTSTRAP_RESAMPLES,
                         rng=np.random.default_rng(BOOTSTRAP_SEED)).confidence_interval
    return float(ci.low), float(ci.high)


def detectable_effect(sd: float, n: int) -> float:
    """Smallest true mean difference a one-sided paired t-test at ``ALPHA`` detects with
    ``POWER``, given ``n`` pairs with spread ``sd`` (statsmodels' noncentral t); NaN for n < 2."""
    if n < 2 or not math.isfinite(sd) or sd == 0.0:  # no spread measured: power unknown
        return math.nan
    d = TTestPower().solve_power(nobs=n, alpha=ALPHA, power=POWER, alternative="larger")
    return float(d * sd)


def seeds_needed(effect: float, sd: float, cap: int = 1000) -> int | None:
    """Seeds (pairs) a one-sided t-test at ``ALPHA`` needs to detect ``effect`` with ``POWER``
    when seeds spread by ``sd``; None when ``sd`` is unknown or 0 (equal differences from a
    few seeds of discrete accuracies measure no spread); ``cap`` when more are needed.

    The smallest n whose statsmodels power reaches ``POWER`` (its root finder fails for large
    effects, whose answer lies below its search range)."""
    if not (math.isfinite(sd) and math.isfinite(effect)) or effect <= 0 or sd == 0.0:
        return None
    power = TTestPower()
    for n in range(2, cap + 1):
        if power.power(effect / sd, n, ALPHA, alternative="larger") >= POWER:
            return n
    return cap


@dataclass(frozen=True)
class TwoSample:
    """A reproduced mean against a published one: Welch's test and a Welch TOST."""

    difference: float
    se: float
    df: float
    p_two_sided: float
    p_equivalent: float
    detectable: float


def welch_from_stats(mean1: float, sd1: float, n1: int, mean2: float, sd2: float | None,
                     n2: int | None, margin: float) -> TwoSample:
    """Welch's t-test of mean1 - mean2 from summary statistics, the TOST p of
    |mean1 - mean2| < ``margin`` on the same standard error and Welch-Satterthwaite degrees of
    freedom, and the smallest difference detectable two-sided at 5 % with ``POWER``.

    ``sd2 = None`` treats mean2 as exact (a one-sample t-test of sample 1 against it).
    Needs n1 >= 2."""
    terms = [(sd1 ** 2 / n1, n1 - 1)]
    if sd2 is not None:
        terms.append((sd2 ** 2 / n2, n2 - 1))
    var = sum(v for v, _ in terms)
    diff = mean1 - mean2
    if var == 0.0:  # no spread anywhere: the difference is known exactly
        return TwoSample(diff, 0.0, math.inf, float(diff == 0.0),
                         float(abs(diff) >= margin), 0.0)
    se = math.sqrt(var)
    df = var ** 2 / sum(v ** 2 / k for v, k in terms if v > 0)
    t = stats.t(df)
    p = float(2.0 * t.sf(abs(diff) / se))
    p_eq = max(float(t.sf((diff + margin) / se)), float(t.cdf((diff - margin) / se)))
    detectable = float((t.ppf(1 - ALPHA) + t.ppf(POWER)) * se)
    return TwoSample(diff, se, df, p, p_eq, detectable)

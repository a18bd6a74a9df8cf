"""The few statistics a verdict needs: Student-t intervals of a mean and a deterministic
percentile bootstrap.

Student-t quantiles come from scipy when it is installed; otherwise from a numpy-free,
pure-Python inversion of the t CDF (regularised incomplete beta by continued fraction), which
agrees with scipy to about 1e-10. ``STATS_BACKEND`` names the one in use, so reports can say
which produced their intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

try:  # scipy is optional: not a declared dependency of mpdsnn
    from scipy import stats as _scipy_stats
    import scipy as _scipy

    STATS_BACKEND = f"scipy {_scipy.__version__}"
except ImportError:  # pragma: no cover - depends on the environment
    _scipy_stats = None
    STATS_BACKEND = "pure-Python t quantiles (scipy not installed)"

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 2025


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with its two-sided ``level`` t-interval; bounds are NaN for n < 2."""

    mean: float
    low: float
    high: float
    n: int
    sd: float

    @property
    def defined(self) -> bool:
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf_pure(t: float, df: float) -> float:
    """CDF of Student's t with ``df`` degrees of freedom, without scipy."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile_pure(q: float, df: float) -> float:
    """Quantile of Student's t by bisection on :func:`t_cdf_pure` (|error| < 1e-12)."""
    if not 0.0 < q < 1.0 or df <= 0:
        raise ValueError(f"need 0 < q < 1 and df > 0, got q={q}, df={df}")
    if q < 0.5:
        return -t_quantile_pure(1.0 - q, df)
    low, high = 0.0, 1.0
    while t_cdf_pure(high, df) < q:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf_pure(mid, df) < q:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return 0.5 * (low + high)


def t_quantile(q: float, df: float) -> float:
    if _scipy_stats is not None:
        return float(_scipy_stats.t.ppf(q, df))
    return t_quantile_pure(q, df)


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and t-interval of ``values`` (NaNs dropped); the interval needs n >= 2."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, 1, math.nan)
    sd = float(x.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd)


def bootstrap_interval(values: Sequence[float], level: float = LEVEL,
                       resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; a fixed seed makes it reproducible.

    With few values it is coarse (n = 3 has only 10 distinct resample means): report it beside
    the t-interval, not instead of it."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)

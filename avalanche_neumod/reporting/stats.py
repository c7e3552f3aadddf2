"""Statistics of the reports: intervals over seeds, paired comparisons, slopes.

- :func:`t_interval`: mean and the 95% Student-t interval over seeds,
  ``mean +- t_{0.975, n-1} s / sqrt(n)`` (``s`` with ddof 1); NaN bounds for one seed.
- :func:`paired_bootstrap`: the seeds two methods share, the mean of the paired
  differences ``a_s - b_s`` and its 95% percentile-bootstrap interval (10,000
  resamples of the seeds, a fixed generator), with the sign count.
- :func:`verdict`: "better" / "worse" only when the paired bootstrap interval and the
  paired t-interval both exclude 0 (the percentile bootstrap alone is too narrow with 3-5
  seeds: with 3 seeds it excludes 0 whenever all three differences share a sign),
  "no detectable difference" otherwise; "too few seeds" under :data:`MIN_PAIRED` shared
  seeds. Never from the sign of a difference alone.
- :func:`slope`: the least-squares slope of y against x; :func:`slope_interval`: one
  slope per seed (accuracy right after each task against the task index), then the
  t-interval over the seeds' slopes (the tasks of a seed are not independent draws, the
  seeds are).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
N_BOOT = 10_000
MIN_PAIRED = 3


def _finite(values: Sequence[float]) -> np.ndarray:
    a = np.asarray([float(v) for v in values], dtype=float)
    return a[np.isfinite(a)]


@dataclass
class Interval:
    """A mean with its interval; ``n`` values behind it."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half(self) -> float:
        return (self.hi - self.lo) / 2 if math.isfinite(self.lo) else math.nan

    def excludes_zero(self) -> bool:
        return math.isfinite(self.lo) and (self.lo > 0 or self.hi < 0)


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and Student-t interval of the finite ``values`` (NaN bounds when n < 2)."""
    a = _finite(values)
    n = len(a)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    m = float(a.mean())
    if n < 2:
        return Interval(m, math.nan, math.nan, n)
    h = float(sps.t.ppf(0.5 + level / 2, n - 1) * a.std(ddof=1) / math.sqrt(n))
    return Interval(m, m - h, m + h, n)


@dataclass
class Paired:
    """A paired comparison a - b over the shared seeds."""

    diff: Interval  # mean difference and its percentile-bootstrap interval
    seeds: list[int]
    n_pos: int
    n_neg: int
    sign_p: float  # two-sided sign test (ties dropped)
    t: Optional[Interval] = None  # the paired t-interval of the same differences

    def decided(self) -> bool:
        """Both intervals exclude 0 on the same side (the conservative union of the two:
        the percentile bootstrap alone is too narrow with a handful of seeds)."""
        t = self.t
        return (
            self.diff.excludes_zero()
            and t is not None
            and t.excludes_zero()
            and (self.diff.lo > 0) == (t.lo > 0)
        )


def paired_bootstrap(
    a: dict[int, float],
    b: dict[int, float],
    level: float = LEVEL,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Paired:
    """Paired differences ``a[s] - b[s]`` over the seeds both have (finite values),
    with the percentile-bootstrap interval of their mean."""
    seeds = sorted(s for s in a if s in b and math.isfinite(a[s]) and math.isfinite(b[s]))
    d = np.asarray([a[s] - b[s] for s in seeds], dtype=float)
    n = len(d)
    n_pos, n_neg = int((d > 0).sum()), int((d < 0).sum())
    p = float(sps.binomtest(n_pos, n_pos + n_neg).pvalue) if n_pos + n_neg else 1.0
    if n == 0:
        return Paired(Interval(math.nan, math.nan, math.nan, 0), seeds, 0, 0, 1.0)
    m = float(d.mean())
    if n < 2:
        return Paired(Interval(m, math.nan, math.nan, n), seeds, n_pos, n_neg, p)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    t = t_interval(d, level)
    return Paired(Interval(m, float(lo), float(hi), n), seeds, n_pos, n_neg, p, t)


def verdict(p: Paired, higher_better: bool = True) -> str:
    """ "better" / "worse" (a's side) when the paired interval excludes 0, else "no
    detectable difference"; "too few seeds" below :data:`MIN_PAIRED` shared seeds."""
    if p.diff.n < MIN_PAIRED:
        return "too few seeds"
    if not p.decided():
        return "no detectable difference"
    up = p.diff.lo > 0
    return "better" if up == higher_better else "worse"


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``y`` on ``x`` over the finite pairs (NaN under 2 points)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if len(xs) < 2 or np.ptp(xs) == 0:
        return math.nan
    return float(np.polyfit(xs, ys, 1)[0])


def slope_interval(curves: Sequence[Sequence[float]], level: float = LEVEL) -> Interval:
    """Per-seed least-squares slopes of ``curve[k]`` against ``k``, and their t-interval."""
    return t_interval([slope(range(len(c)), c) for c in curves], level)


def peak_slope(curve: Sequence[float]) -> float:
    """Least-squares slope of ``curve`` from its maximum to its end (NaN when the maximum
    is the last point): the decline after the peak, without the rise before it."""
    c = [float(v) for v in curve]
    if not c or not all(math.isfinite(v) for v in c):
        return math.nan
    k = int(np.argmax(c))
    return slope(range(len(c) - k), c[k:]) if len(c) - k >= 2 else math.nan


def fmt_interval(iv: Interval, scale: float = 100.0, digits: int = 2) -> str:
    """``mean [lo, hi]`` scaled; ``mean (n=1)`` without an interval."""
    if not math.isfinite(iv.mean):
        return "n/a"
    if not math.isfinite(iv.lo):
        return f"{iv.mean * scale:.{digits}f} (n={iv.n})"
    return f"{iv.mean * scale:.{digits}f} [{iv.lo * scale:.{digits}f}, {iv.hi * scale:.{digits}f}]"


def sign_count(p: Paired) -> str:
    return f"{p.n_pos}+/{p.n_neg}- of {p.diff.n} seeds"


def describe(p: Paired, scale: float = 100.0, unit: str = " points", digits: int = 2) -> str:
    """``+1.23 points [95% CI -0.40, 2.90], 3+/2- of 5 seeds``."""
    iv = p.diff
    if not math.isfinite(iv.mean):
        return "no shared seeds"
    s = f"{iv.mean * scale:+.{digits}f}{unit}"
    if math.isfinite(iv.lo):
        s += f" [95% bootstrap CI {iv.lo * scale:+.{digits}f}, {iv.hi * scale:+.{digits}f}"
        if p.t is not None and math.isfinite(p.t.lo):
            s += f"; t {p.t.lo * scale:+.{digits}f}, {p.t.hi * scale:+.{digits}f}"
        s += "]"
    return s + f", {sign_count(p)}"

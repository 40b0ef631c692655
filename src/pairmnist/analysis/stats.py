"""Uncertainty of the study's numbers: confidence intervals and paired comparisons over seeds.

Every function takes accuracies as fractions in [0, 1] and returns fractions too; the report
turns them into percentage points for display. The seeds pair the runs: one seed gives every
model the same training, validation and test pairs, so two groups are compared seed by seed
on the seeds they share (a paired design), never as two independent samples.

Distributions and tests come from ``scipy.stats``; the Holm adjustment is written out here
(scipy has no Holm step-down procedure).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

LEVEL = 0.95  # confidence level of every interval, and 1 - the significance level of every test
DECIMALS = 9  # accuracy differences are exact at this precision (metrics.json keeps 6 decimals)


def t_interval(values: np.ndarray | list[float], level: float = LEVEL) -> tuple[float, float]:
    """Student-t confidence interval of the mean: mean ± t(n-1, (1+level)/2) · s / sqrt(n), from scipy's t-test.

    Assumes the values are independent draws from a roughly normal distribution (here: one
    value per seed). Source: Student (1908); any statistics textbook, e.g. Wasserman,
    *All of Statistics*, §10.

    Args:
        values: (n,) sample, e.g. one test accuracy per seed.
        level: coverage, 0.95 by default.

    Returns:
        (low, high); (nan, nan) for fewer than 2 values. A sample without spread gives (mean, mean).
    """
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0:  # exactly no spread (a float mean and std would leave 1e-17 of noise)
        return float(x[0]), float(x[0])
    low, high = stats.ttest_1samp(x, 0.0).confidence_interval(level)
    return float(low), float(high)


def ci_caveat(low: float, high: float, n: int) -> str:
    """What a 95 % CI of an accuracy (fractions) cannot say, as a short note; empty when it is usable.

    Below 3 seeds the t interval rests on one or two degrees of freedom; an interval reaching
    past 0 or 100 % is wider than anything an accuracy can do; a zero-width one comes from
    values without spread, not from certainty.
    """
    if math.isnan(low):
        return ""
    if n < 3:
        return f"{n} seeds: uninformative"
    if low < 0 or high > 1:
        return "past 0–100 %: uninformative"
    if low == high:
        return "no spread: no interval"
    return ""


def binomial_se(accuracy: Any, n: Any) -> Any:
    """Standard error of an accuracy measured on ``n`` independent test items: sqrt(p(1-p)/n).

    The test set's own sampling noise (binomial): how much a model's accuracy would move
    from one draw of ``n`` test pairs to another, with nothing else changed. Element-wise on
    arrays (one group per element); a missing ``n`` (NaN) gives NaN.

    Raises:
        ValueError: ``n`` < 1 or ``accuracy`` outside [0, 1].
    """
    p, n = np.asarray(accuracy, dtype=float), np.asarray(n, dtype=float)
    if np.any(n < 1) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"binomial_se needs n >= 1 and accuracy in [0, 1], got n={n}, accuracy={p}")
    return np.sqrt(p * (1 - p) / n)


@dataclass(frozen=True)
class Paired:
    """The paired comparison of two groups, a and b, on the seeds they share (fractions).

    Attributes:
        n_seeds: number of shared seeds.
        seeds: the shared seeds, ascending.
        mean_diff: mean over shared seeds of acc_a - acc_b.
        ci_low, ci_high: Student-t 95 % interval of that mean (:func:`t_interval` of the differences).
        p_ttest: two-sided paired t-test p-value (``scipy.stats.ttest_rel``); nan when every
            difference is the same (no spread to test against).
        p_wilcoxon: two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``, exact
            for small samples without ties); 1.0 when every difference is 0.
        wins_a, wins_b, ties: seeds on which a is higher, b is higher, both equal.
    """

    n_seeds: int
    seeds: tuple[int, ...]
    mean_diff: float
    ci_low: float
    ci_high: float
    p_ttest: float
    p_wilcoxon: float
    wins_a: int
    wins_b: int
    ties: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``seeds`` as a space-separated string)."""
        return {**asdict(self), "seeds": " ".join(map(str, self.seeds))}


def differences(a: dict[int, float], b: dict[int, float]) -> np.ndarray:
    """(n,) float64: a[s] - b[s] for the n seeds s both have, ascending, rounded to :data:`DECIMALS`.

    Accuracies are counts over at most 10,000 test pairs, stored to 6 decimals: differences
    rounded to 9 decimals are exact, so a constant gap is seen as constant (float noise is not spread).
    """
    return np.round(np.array([a[s] - b[s] for s in sorted(set(a) & set(b))], dtype=float), DECIMALS)


def paired(a: dict[int, float], b: dict[int, float]) -> Paired | None:
    """Compare two groups seed by seed, on the seeds both have.

    Paired t-test: assumes the per-seed differences are roughly normal. Wilcoxon signed-rank:
    assumes only that they are symmetric about their median; it is the check that does not
    rest on normality. Both are two-sided. Sources: Student (1908); Wilcoxon (1945),
    "Individual comparisons by ranking methods"; scipy.stats documentation.

    Args:
        a, b: seed -> accuracy (fraction) of each group.

    Returns:
        A :class:`Paired`, or None when the groups share fewer than 2 seeds (not comparable:
        they are never compared as unpaired samples).
    """
    seeds = tuple(sorted(set(a) & set(b)))
    if len(seeds) < 2:
        return None
    d = differences(a, b)
    p_t = math.nan if np.ptp(d) == 0 else float(stats.ttest_1samp(d, 0.0).pvalue)  # no spread: nothing to test
    p_w = 1.0 if np.all(d == 0) else float(stats.wilcoxon(d).pvalue)
    wins = (int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum()))
    return Paired(len(seeds), seeds, float(d.mean()), *t_interval(d), p_t, p_w, *wins)


@dataclass(frozen=True)
class Equivalence:
    """Whether a mean lies within a stated interval (low, high), by two one-sided t-tests (TOST).

    Attributes:
        mean: the sample mean.
        ci_low, ci_high: its Student-t interval at 2 · LEVEL − 1 (90 %): the interval TOST at
            1 − LEVEL (5 %) checks against (low, high).
        p: the larger of the two one-sided p-values (H0: mean <= low, H0: mean >= high); NaN
            when the values have no spread (nothing to test against).
        shown: p < 1 − LEVEL, i.e. the 90 % interval lies inside (low, high); without spread,
            whether the common value does.
    """

    mean: float
    ci_low: float
    ci_high: float
    p: float
    shown: bool


def equivalence(values: np.ndarray | list[float], low: float, high: float, level: float = LEVEL) -> Equivalence | None:
    """Two one-sided t-tests that the mean of ``values`` lies strictly within (low, high).

    Equivalence is shown only by rejecting both "mean <= low" and "mean >= high": a difference
    that is not significant never counts as "as good as". ``high`` may be ``math.inf`` (a one-sided
    "at least ``low``"). Assumes roughly normal values (one per seed). Source: D. J. Schuirmann (1987),
    "A comparison of the two one-sided tests procedure and the power approach for assessing the
    equivalence of average bioavailability", J. Pharmacokinet. Biopharm. 15:657-680.

    Args:
        values: (n,) sample, e.g. paired differences or accuracies (fractions).
        low, high: the interval the mean must be shown to lie in (same unit as ``values``).

    Returns:
        An :class:`Equivalence`, or None for fewer than 2 values.
    """
    x = np.round(np.asarray(values, dtype=float), DECIMALS)
    if len(x) < 2:
        return None
    ci_low, ci_high = t_interval(x, 2 * level - 1)
    if np.ptp(x) == 0:  # no spread: no test, the common value decides
        return Equivalence(float(x[0]), ci_low, ci_high, math.nan, bool(low < x[0] < high))
    above = float(stats.ttest_1samp(x, low, alternative="greater").pvalue)
    below = float(stats.ttest_1samp(x, high, alternative="less").pvalue) if high < math.inf else 0.0
    p = max(above, below)
    return Equivalence(float(x.mean()), ci_low, ci_high, p, p < 1 - level)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for the number of tests made together.

    Sort the m p-values ascending; the k-th smallest (k = 0..m-1) becomes
    max over j <= k of min(1, (m - j) · p_(j)). Controls the family-wise error rate without
    assuming independence. Source: S. Holm (1979), "A simple sequentially rejective multiple
    test procedure", Scand. J. Statist. 6:65-70. NaN p-values stay NaN and do not count in m.

    Returns:
        The adjusted p-values, in the input order.
    """
    order = sorted((i for i, p in enumerate(p_values) if not math.isnan(p)), key=p_values.__getitem__)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class SdRatio:
    """The ratio of two groups' standard deviations over the seeds they share (paired samples).

    Attributes:
        n_seeds: number of shared seeds.
        ratio: s_a / s_b, the sample standard deviations' ratio.
        ci_low, ci_high: 95 % interval of sigma_a / sigma_b (Pitman's interval, :func:`pitman_morgan`).
        p: two-sided Pitman-Morgan p-value of sigma_a = sigma_b.
    """

    n_seeds: int
    ratio: float
    ci_low: float
    ci_high: float
    p: float


def pitman_morgan(a: dict[int, float], b: dict[int, float], level: float = LEVEL) -> SdRatio | None:
    """Pitman-Morgan test and interval for the variances of two paired samples.

    On one seed two nets share their data, so their accuracies are correlated and an unpaired
    F or Levene test is wrong. For a bivariate normal (a, b): var(a) - var(b) = cov(a + b, a - b),
    so var(a) = var(b) exactly when the sums and differences are uncorrelated; with r their
    sample correlation, t = r sqrt(n - 2) / sqrt(1 - r^2) follows Student's t with n - 2 degrees
    of freedom. The interval of gamma = var(a) / var(b) is F (K -/+ sqrt(K^2 - 1)), with F = s_a^2 / s_b^2,
    K = 1 + 2 (1 - rho^2) t_q^2 / (n - 2), rho the correlation of a and b and t_q the t quantile:
    the gamma the same test (of a and sqrt(gamma) b) does not reject. Sources: E. J. G. Pitman (1939),
    "A note on normal correlation", Biometrika 31:9-12; W. A. Morgan (1939), Biometrika 31:13-19.

    Args:
        a, b: seed -> accuracy (fraction) of each group.

    Returns:
        An :class:`SdRatio` (square roots of the variance ratio and its interval), or None when
        the groups share fewer than 3 seeds, or a group or their difference has no spread.
    """
    seeds = sorted(set(a) & set(b))
    x, y = np.array([a[s] for s in seeds], dtype=float), np.array([b[s] for s in seeds], dtype=float)
    n = len(seeds)
    if n < 3 or min(np.ptp(x), np.ptp(y), np.ptp(np.round(x - y, DECIMALS))) == 0:  # no spread, no test
        return None
    f = x.var(ddof=1) / y.var(ddof=1)
    r = float(np.corrcoef(x + y, x - y)[0, 1])
    p = float(2 * stats.t.sf(abs(r) * math.sqrt(n - 2) / math.sqrt(max(1 - r * r, 1e-300)), df=n - 2))
    rho = float(np.corrcoef(x, y)[0, 1])
    t_q = float(stats.t.ppf((1 + level) / 2, df=n - 2))
    k = 1 + 2 * (1 - rho * rho) * t_q * t_q / (n - 2)
    low, high = f * (k - math.sqrt(k * k - 1)), f * (k + math.sqrt(k * k - 1))
    return SdRatio(n, math.sqrt(f), math.sqrt(low), math.sqrt(high), p)

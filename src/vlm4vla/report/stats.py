"""Statistics for comparing variants honestly at small scale.

Success rates are binomial: a difference between two variants is tested with Fisher's
exact test on the 2x2 table (exact, no large-sample assumption; tens of trials are normal
here). Correlations (Figure 3) get Pearson and Spearman coefficients with percentile
bootstrap intervals from a seeded generator, so reports are reproducible to the byte.
Everything is numpy + math; tests check the values against scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from vlm4vla.eval.metrics import wilson_interval  # noqa: F401  (re-exported for reports)

# The significance level of every test in the reports (a "significant" column, a direction
# read from a delta, the power footers): the one place it is set.
ALPHA = 0.05


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Two-sided Fisher exact p-value for H0: both variants have the same success rate.

    Sums the hypergeometric probabilities of every table with the same margins that is
    no more likely than the observed one (the usual two-sided definition, as scipy)."""
    for k, n in ((successes_a, n_a), (successes_b, n_b)):
        if n < 0 or not 0 <= k <= n:
            raise ValueError(f"need 0 <= successes <= n, got {k}/{n}")
    total_s = successes_a + successes_b
    total = n_a + n_b
    if total == 0:
        return 1.0
    lo, hi = max(0, total_s - n_b), min(total_s, n_a)
    denom = _log_comb(total, total_s)

    def logp(x: int) -> float:
        return _log_comb(n_a, x) + _log_comb(n_b, total_s - x) - denom

    observed = logp(successes_a)
    eps = 1e-7  # relative tolerance for ties, as in scipy
    p = sum(math.exp(logp(x)) for x in range(lo, hi + 1) if logp(x) <= observed + eps)
    return min(1.0, p)


def _rank(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), 1-based."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((xc * xc).sum() * (yc * yc).sum()))
    return float((xc * yc).sum() / denom) if denom > 0 else float("nan")


def spearman(x, y) -> float:
    return pearson(_rank(np.asarray(x, float)), _rank(np.asarray(y, float)))


def bootstrap_ci(x, y, stat, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of stat(x, y) over resampled (x, y) pairs.
    Resamples where the statistic is undefined (constant input) are skipped."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        v = stat(x[idx], y[idx])
        if not math.isnan(v):
            vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def mean_ci(x, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of x (e.g. CALVIN's completed lengths)."""
    x = np.asarray(x, float)
    means = x[np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def permutation_p(a, b, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided permutation test of a difference in means (e.g. two policies' CALVIN chain
    lengths): the share of random relabellings at least as far apart as observed (the
    observed labelling counted, so p > 0)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    both, na = np.concatenate([a, b]), len(a)
    observed = abs(a.mean() - b.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_perm):
        perm = rng.permutation(both)
        hits += abs(perm[:na].mean() - perm[na:].mean()) >= observed - 1e-12
    return (hits + 1) / (n_perm + 1)


def significance_marker(p: float, alpha: float = ALPHA) -> str:
    return "yes" if p < alpha else "no"


def detectable_difference(n1: int, n2: int, power: float = 0.8, alpha: float = ALPHA,
                          p: float = 0.5) -> float:
    """Smallest true difference in success rate (fraction) that a two-sided test at `alpha`
    detects with probability `power` from n1 and n2 trials, both rates near `p` (normal
    approximation; p = 0.5 is the worst case). 60 vs 60 trials: ~0.256."""
    if n1 < 1 or n2 < 1:
        raise ValueError(f"need at least one trial per arm, got {n1} and {n2}")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return z * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


def power_at(delta: float, n1: int, n2: int, alpha: float = ALPHA, p: float = 0.5) -> float:
    """Probability that a two-sided test at `alpha` detects a true difference `delta`
    (fraction) from n1 and n2 trials, rates near `p` (normal approximation)."""
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return NormalDist().cdf(abs(delta) / se - NormalDist().inv_cdf(1 - alpha / 2))


POWER_TARGET_PTS = 25.0  # the difference a comparison table should be able to see


def power_footer(trials: dict[str, list[int]], alpha: float = ALPHA, power: float = 0.8,
                 seeds: int = 1) -> list[str]:
    """Markdown lines saying, per benchmark, the trials per arm, the smallest difference two
    arms are told apart by with `power` (the fewest-trial pair), and the chance of seeing a
    POWER_TARGET_PTS-point difference; a column where that chance is under one half is
    called underpowered in so many words, so its 'not significant' reads 'cannot tell'.
    Then what the test does not cover: the spread between trainings of one arm (`seeds`
    training runs per arm), which evaluation trials cannot show."""
    target = POWER_TARGET_PTS
    lines = ["", f"Power (two-sided, alpha {alpha}, success rates near 50%): the smallest "
             f"difference between two arms detected with {power:.0%} probability, and the "
             f"probability of detecting a true {target:.0f}-point difference. A difference "
             "smaller than the first will usually read 'not significant' even when real."]
    for bench in sorted(trials):
        ns = sorted(trials[bench])
        n1, n2 = ns[0], ns[1] if len(ns) > 1 else ns[0]
        d = 100 * detectable_difference(n1, n2, power, alpha)
        at = power_at(target / 100, n1, n2, alpha)
        per_arm = str(ns[0]) if ns[0] == ns[-1] else f"{ns[0]}-{ns[-1]}"
        verdict = (f"; underpowered: this column cannot detect a {target:.0f}-point difference, "
                   "read its p-values as 'cannot tell'" if at < 0.5 else "")
        lines.append(f"- {bench}: {per_arm} trials per arm -> {d:.1f} points "
                     f"({at:.0%} power at {target:.0f} points){verdict}")
    if seeds == 1:
        lines += ["", "Each arm is one training run (one seed). Intervals and p-values count "
                  "evaluation trials only, not the spread between two trainings of the same arm "
                  "(docs/learning.md section 9 measures it for the embedded default): a "
                  "significant difference between two single runs can still be a seed effect."]
    else:
        lines += ["", f"Each arm pools {seeds} training runs (seeds). The pooled interval and "
                  "p-value still treat every trial as independent, so they understate the spread "
                  "between trainings; the per-seed values show it."]
    return lines


def format_p(p: float) -> str:
    """A p-value for a table cell; values rounded to 4 decimals show as '<0.0001', not 0."""
    return "<0.0001" if p < 1e-4 else f"{p:.3g}"

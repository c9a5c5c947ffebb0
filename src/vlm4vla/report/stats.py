"""Statistics for comparing variants honestly at small scale.

Success rates are binomial: a difference between two variants is tested with Fisher's
exact test on the 2x2 table (exact, no large-sample assumption; tens of trials are normal
here). Correlations (Figure 3) get Pearson and Spearman coefficients with percentile
bootstrap intervals from a seeded generator, so reports are reproducible to the byte.
Everything is numpy + math; tests check the values against scipy.
"""

from __future__ import annotations

import math

import numpy as np

from vlm4vla.eval.metrics import wilson_interval  # noqa: F401  (re-exported for reports)


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


def significance_marker(p: float, alpha: float = 0.05) -> str:
    return "yes" if p < alpha else "no"

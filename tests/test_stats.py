"""Report statistics against scipy's reference implementations."""

import numpy as np
import pytest
from scipy import stats as sps

from vlm4vla.report.stats import bootstrap_ci, fisher_exact, pearson, spearman


@pytest.mark.parametrize("a,na,b,nb", [(3, 10, 9, 10), (0, 20, 0, 20), (7, 7, 0, 7), (12, 50, 20, 50),
                                       (1, 3, 2, 9), (5, 5, 5, 5), (0, 4, 4, 4)])
def test_fisher_matches_scipy(a, na, b, nb):
    want = sps.fisher_exact([[a, na - a], [b, nb - b]]).pvalue
    assert fisher_exact(a, na, b, nb) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_fisher_rejects_impossible_counts():
    with pytest.raises(ValueError):
        fisher_exact(11, 10, 0, 10)


def test_correlations_match_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=12)
    y = 0.6 * x + rng.normal(size=12)
    y[3] = y[4]  # a tie for the rank correlation
    assert pearson(x, y) == pytest.approx(sps.pearsonr(x, y).statistic, rel=1e-12)
    assert spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, rel=1e-12)


def test_bootstrap_is_seeded_and_brackets_estimate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + 0.5 * rng.normal(size=30)
    lo, hi = bootstrap_ci(x, y, pearson, n_boot=500, seed=7)
    assert (lo, hi) == bootstrap_ci(x, y, pearson, n_boot=500, seed=7)
    assert lo < pearson(x, y) < hi and hi - lo < 0.5


def test_detectable_difference_matches_the_textbook_formula():
    from vlm4vla.report.stats import detectable_difference
    # (1.95996 + 0.84162) * sqrt(0.25 * (2 / 60)) = 0.2558
    assert abs(detectable_difference(60, 60) - 0.2558) < 1e-3
    assert detectable_difference(20, 20) > 0.44  # a 20-trial column cannot see 25 points
    assert detectable_difference(200, 200) < detectable_difference(60, 60)
    with pytest.raises(ValueError):
        detectable_difference(0, 10)


def test_power_footer_flags_underpowered_columns():
    from vlm4vla.report.stats import power_footer
    text = "\n".join(power_footer({"metaworld": [60, 60, 60], "libero": [20, 20]}))
    mw = next(line for line in text.splitlines() if line.startswith("- metaworld"))
    lib = next(line for line in text.splitlines() if line.startswith("- libero"))
    assert "60 trials per arm -> 25.6 points (78% power at 25 points)" in mw
    assert "underpowered" not in mw
    assert "20 trials per arm -> 44.3 points" in lib and "underpowered" in lib
    # what the trials cannot show: the spread between trainings of one arm
    assert "one training run (one seed)" in text and "can still be a seed effect" in text
    pooled = "\n".join(power_footer({"metaworld": [120, 120]}, seeds=2))
    assert "pools 2 training runs" in pooled and "one training run" not in pooled


def test_format_p_never_prints_zero():
    from vlm4vla.report.stats import format_p
    assert format_p(0.0) == "<0.0001" and format_p(0.0319) == "0.0319" and format_p(1.0) == "1"

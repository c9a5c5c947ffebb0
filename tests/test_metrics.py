"""Wilson score intervals against published values and the summary aggregation."""

import pytest

from vlm4vla.eval.metrics import rate_summary, summarise, wilson_interval


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
# method 3 (score interval without continuity correction), plus small-n textbook values.
@pytest.mark.parametrize("k, n, low, high", [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (5, 10, 0.2366, 0.7634),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
])
def test_wilson_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_matches_scipy_if_available():
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(3, 7), (0, 1), (50, 50), (17, 40)]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        lo, hi = wilson_interval(k, n, z=1.959963984540054)
        assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_edge_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_summarise_counts_errors_as_failures():
    records = [{"task": "b", "success": True, "error": None},
               {"task": "b", "success": False, "error": "RuntimeError: x"},
               {"task": "a", "success": False, "error": None}]
    s = summarise(records)
    assert list(s["tasks"]) == ["a", "b"]
    assert s["tasks"]["b"] == rate_summary(1, 2, errors=1)
    assert s["overall"]["n"] == 3 and s["overall"]["successes"] == 1
    assert s["overall"]["errors"] == 1 and s["overall"]["success_rate"] == pytest.approx(1 / 3)

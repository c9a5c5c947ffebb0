"""Success-rate statistics for evaluation rollouts."""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default: 95%).

    Chosen over the normal approximation because evaluations here are small (tens of
    episodes per task) and often at 0% or 100%, where the normal interval collapses to a
    point; Wilson stays inside [0, 1] and has sensible width at the extremes.
    n = 0 gives the uninformative (0, 1).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_summary(successes: int, n: int, errors: int = 0) -> dict:
    """{n, successes, errors, success_rate, wilson_low, wilson_high} for one group.
    Errored episodes count as failures (they are in n): a crash is not a success."""
    low, high = wilson_interval(successes, n)
    return {"n": n, "successes": successes, "errors": errors,
            "success_rate": successes / n if n else 0.0,
            "wilson_low": low, "wilson_high": high}


def summarise(records: list[dict]) -> dict:
    """Per-task and overall success statistics from episode records
    (dicts with "task", "success" and "error")."""
    by_task: dict[str, list[dict]] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r)

    def group(rs: list[dict]) -> dict:
        return rate_summary(sum(bool(r["success"]) for r in rs), len(rs),
                            sum(r["error"] is not None for r in rs))

    return {"tasks": {t: group(rs) for t, rs in sorted(by_task.items())},
            "overall": group(records)}

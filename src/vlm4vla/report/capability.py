"""Figure 3's table: does a VLM's general capability predict the VLA built on it?

Points: every main-table run and every seed-0 aux run on the figure's benchmarks; each
starts from a VLM whose general capability is
- measured (embedded default): its accuracy on the held-out VQA split of the
  `experiments.capability.x_tasks` (pooled over their questions), or
- published (paper scale): the mean of the general-benchmark scores listed for its paper
  backbone in config/data/general_capability.csv (each row cites its source).
y = closed-loop success %, min-max normalised per benchmark as in the paper. Per benchmark:
a least-squares line, Pearson and Spearman coefficients with percentile-bootstrap 95%
intervals (seeded: reproducible to the byte). A coefficient is undefined (NaN, said so)
when x or y is constant; runs without an x value (a family without a language-model head,
a backbone without published scores) are listed but not fitted.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from vlm4vla import pipeline as P
from vlm4vla.eval.metrics import wilson_interval
from vlm4vla.io import atomic_write_text
from vlm4vla.report.aux import eval_summary, vqa_metrics
from vlm4vla.report.stats import bootstrap_ci, pearson, spearman

GENERAL_COLUMNS = ("backbone", "benchmark", "score", "source")


def published_scores(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: experiments.capability.x = published needs "
                                f"the general-benchmark scores ({', '.join(GENERAL_COLUMNS)})")
    df = pd.read_csv(path, comment="#")
    missing = [c for c in GENERAL_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {', '.join(GENERAL_COLUMNS)}")
    return df


def measured_capability(metrics: dict, tasks: list[str], name: str) -> float:
    """Question-weighted mean accuracy over `tasks` (pooled correct / pooled questions)."""
    missing = [t for t in tasks if t not in metrics]
    if missing:
        raise ValueError(f"VQA metrics of {name} have no {', '.join(missing)} task: add it to "
                         "vqa.tasks or drop it from experiments.capability.x_tasks")
    n = sum(int(metrics[t]["n"]) for t in tasks)
    return round(sum(float(metrics[t]["accuracy"]) * int(metrics[t]["n"]) for t in tasks) / n, 6)


def capability_points(cfg: dict) -> pd.DataFrame:
    exp = cfg["experiments"]["capability"]
    scores = published_scores(P.GENERAL_SCORES) if exp["x"] == "published" else None
    rows = []
    for bench, run in P.capability_runs(cfg):
        model, vlm = P.start_vlm(run)
        x, note = None, ""
        if scores is not None:
            name = cfg["models"][model].get("paper_name")
            sub = scores[scores["backbone"] == name]
            if vlm != "base":
                note = "aux-tuned VLM: no published score"
            elif sub.empty:
                note = f"no published score for {name or model}"
            else:
                x = float(sub["score"].mean())
                note = "; ".join(f"{r.benchmark} {r.score:g} ({r.source})" for r in sub.itertuples())
        elif not P.supports_vqa(cfg, model):
            note = f"backbone {cfg['models'][model]['backbone']} has no language-model head"
        else:
            x = measured_capability(vqa_metrics(model, vlm), exp["x_tasks"], f"{model}/{vlm}")
        o = eval_summary(bench, run)["overall"]
        n, k = int(o["n"]), int(o["successes"])
        lo, hi = wilson_interval(k, n)
        rows.append({"benchmark": bench, "run": run, "model": model, "start_vlm": vlm,
                     "capability": x, "capability_source": exp["x"], "note": note,
                     "trials": n, "successes": k, "success_pct": round(100 * k / n, 2),
                     "ci95_low_pct": round(100 * lo, 2), "ci95_high_pct": round(100 * hi, 2)})
    df = pd.DataFrame(rows)
    norm = []
    for r in df.itertuples():
        ys = df.loc[df["benchmark"] == r.benchmark, "success_pct"]
        span = ys.max() - ys.min()
        norm.append(round((r.success_pct - ys.min()) / span, 4) if span > 0 else 0.5)
    df["score_norm"] = norm  # min-max per benchmark; 0.5 when every run scores the same
    return df


def correlations(points: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    rows = []
    for bench, g in points.groupby("benchmark", sort=True):
        g = g.dropna(subset=["capability"])
        x, y = g["capability"].to_numpy(float), g["score_norm"].to_numpy(float)
        row = {"benchmark": bench, "n_points": len(g)}
        if len(g) >= 2 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            row.update(slope=round(float(slope), 4), intercept=round(float(intercept), 4))
        else:
            row.update(slope=None, intercept=None)
        for name, fn in (("pearson", pearson), ("spearman", spearman)):
            r = fn(x, y) if len(g) >= 2 else float("nan")
            lo, hi = bootstrap_ci(x, y, fn, n_boot=n_boot, seed=seed) if len(g) >= 3 else (math.nan, math.nan)
            row.update({name: _r(r), f"{name}_ci95_low": _r(lo), f"{name}_ci95_high": _r(hi)})
        row["note"] = ("x constant: no line, correlation undefined" if len(g) >= 2 and np.ptp(x) == 0
                       else "y constant: correlation undefined" if len(g) >= 2 and np.ptp(y) == 0
                       else "fewer than 2 points" if len(g) < 2 else "")
        rows.append(row)
    return pd.DataFrame(rows)


def _r(v: float):
    return None if v is None or math.isnan(v) else round(float(v), 4)


def _f(v, fmt="{:+.3f}") -> str:
    return "undefined" if v is None or pd.isna(v) else fmt.format(v)


def to_markdown(points: pd.DataFrame, corr: pd.DataFrame, x_kind: str,
                x_tasks: tuple[str, ...] = ("general_vqa",)) -> str:
    xdesc = (f"accuracy of the run's start VLM on the held-out {' + '.join(x_tasks)} split"
             if x_kind == "measured"
             else "mean published general-benchmark score of the paper backbone")
    lines = ["# General capability vs VLA score (Figure 3)", "",
             f"x = {xdesc}; y = closed-loop success %, min-max normalised per benchmark. "
             "Correlations with percentile-bootstrap 95% intervals.", "",
             "| benchmark | points | slope | Pearson r [95% CI] | Spearman rho [95% CI] | note |",
             "|---|---:|---:|---|---|---|"]
    for r in corr.itertuples():
        lines.append(f"| {r.benchmark} | {r.n_points} | {_f(r.slope)} | "
                     f"{_f(r.pearson)} [{_f(r.pearson_ci95_low)}, {_f(r.pearson_ci95_high)}] | "
                     f"{_f(r.spearman)} [{_f(r.spearman_ci95_low)}, {_f(r.spearman_ci95_high)}] | {r.note} |")
    lines += ["", "| benchmark | run | start VLM | x | success % | normalised | note |",
              "|---|---|---|---:|---:|---:|---|"]
    for r in points.sort_values(["benchmark", "run"]).itertuples():
        x = "-" if pd.isna(r.capability) else f"{r.capability:.3f}"
        lines.append(f"| {r.benchmark} | {r.run} | {r.start_vlm} | {x} | {r.success_pct:.1f} "
                     f"[{r.ci95_low_pct:.1f}, {r.ci95_high_pct:.1f}] (n={r.trials}) | "
                     f"{r.score_norm:.3f} | {r.note} |")
    return "\n".join(lines) + "\n"


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def write(points: pd.DataFrame, corr: pd.DataFrame, x_kind: str, csv_path: str, corr_path: str,
          md_path: str, x_tasks: tuple[str, ...] = ("general_vqa",)) -> None:
    atomic_write_text(csv_path, _csv(points))
    atomic_write_text(corr_path, _csv(corr))
    atomic_write_text(md_path, to_markdown(points, corr, x_kind, x_tasks))

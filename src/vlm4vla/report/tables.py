"""Results tables: CSV (long form, machine-readable) + Markdown (for people).

Every success rate carries its number of trials and a Wilson 95% interval. Tables with a
reference variant (ablation: full fine-tuning; init: the pretrained model) also give the
difference to the reference and a two-sided Fisher exact p-value, so a tiny-scale run
does not pretend to more than it shows.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from vlm4vla import pipeline as P
from vlm4vla.eval.metrics import wilson_interval
from vlm4vla.io import atomic_write_text, read_artifact_json, read_jsonl
from vlm4vla.report.stats import ALPHA, fisher_exact, format_p, permutation_p, power_footer

STAGE1_LABELS = {"frozen_vision": "FAST tokens, vision frozen", "full": "FAST tokens, vision trained"}


def run_row(cfg: dict, benchmark: str, run: str) -> dict:
    """One evaluated run: trials, successes, success % with Wilson 95% CI, sizes."""
    summary = read_artifact_json(Path(P.eval_dir(benchmark, run)) / "summary.json")
    if not summary.get("complete"):
        raise FileNotFoundError(f"{P.eval_dir(benchmark, run)}/summary.json is from an "
                                "unfinished evaluation; rerun the evaluate rule")
    policy = read_artifact_json(Path(P.policy_dir(benchmark, run)) / "policy.json")
    n, k = int(summary["overall"]["n"]), int(summary["overall"]["successes"])
    lo, hi = wilson_interval(k, n)
    mcfg = P.model_cfg(cfg, run, benchmark)
    model, variant = P.split_run(run)
    params = policy.get("param_counts", {})
    return {"benchmark": benchmark, "run": run, "model": model, "variant": variant,
            # what the run starts from as a reader knows it (its model's init, or the run's
            # start: scratch / aux_<task> / fast_<stage1>), not the loader's internal "aux"
            "backbone": mcfg["backbone"], "init": P.parse_run(run)["start"] or cfg["models"][model]["init"],
            "freeze": "+".join(mcfg.get("freeze", [])) or "none",
            "params_total": params.get("total"), "params_trainable": params.get("trainable"),
            "trials": n, "successes": k, "success_pct": round(100 * k / n, 2),
            "ci95_low_pct": round(100 * lo, 2), "ci95_high_pct": round(100 * hi, 2),
            **chain_fields(summary)}


def chain_fields(summary: dict) -> dict:
    """A chain benchmark's (CALVIN's) metric: average completed length with its bootstrap
    interval and the success rate after each subtask (trials = chains, successes = chains
    whose first subtask succeeded). Other benchmarks: metric "success"."""
    c = summary.get("chains")
    if not c:
        return {"metric": "success"}
    return {"metric": "avg_len", "avg_len": round(c["avg_len"], 3),
            "avg_len_ci95_low": round(c["avg_len_ci95"][0], 3), "avg_len_ci95_high": round(c["avg_len_ci95"][1], 3),
            **{f"success_after_{k}_pct": round(100 * v["success_rate"], 2)
               for k, v in sorted(c["success_after"].items(), key=lambda kv: int(kv[0]))}}


def chain_lengths(benchmark: str, run: str) -> list[int]:
    """Completed length of every evaluated chain of a run (its episodes.jsonl)."""
    return [int(r["completed"]) for r in read_jsonl(Path(P.eval_dir(benchmark, run)) / "episodes.jsonl")]


def results_table(cfg: dict, table: str) -> pd.DataFrame:
    rows = [run_row(cfg, b, r) for b, r in P.table_runs(cfg, table)]
    if table == "init":  # here the reference run is the pretrained one: say so
        for r in rows:
            r["variant"] = "pretrained" if r["variant"] == "full" else r["variant"]
    if table == "vision_supervision":  # Table 4's two axes, spelled out
        for r in rows:
            start = P.parse_run(r["run"])["start"] or ""
            r["stage1"] = STAGE1_LABELS[start[len(P.FAST_PREFIX):]] if start else "none"
            r["stage2_vision"] = "frozen" if "vision" in r["freeze"].split("+") else "trained"
    reference = P.RUN_TABLES[table].reference
    if reference is not None:
        by_key = {(r["benchmark"], r["model"], r["variant"]): r for r in rows}
        for r in rows:
            ref = by_key.get((r["benchmark"], r["model"], "pretrained" if table == "init" else reference))
            if ref is None or r is ref:
                r.update(reference="", delta_pct=None, p_value=None, significant="")
                continue
            if r["metric"] == "avg_len":  # CALVIN: average length, permutation test over chains
                p = permutation_p(chain_lengths(r["benchmark"], r["run"]),
                                  chain_lengths(ref["benchmark"], ref["run"]))
                r.update(reference=ref["run"], delta_pct=None, delta_avg_len=round(r["avg_len"] - ref["avg_len"], 3),
                         p_value=round(p, 4), significant="yes" if p < ALPHA else "no")
                continue
            p = fisher_exact(r["successes"], r["trials"], ref["successes"], ref["trials"])
            r.update(reference=ref["run"], delta_pct=round(r["success_pct"] - ref["success_pct"], 2),
                     p_value=round(p, 4), significant="yes" if p < ALPHA else "no")
    return pd.DataFrame(rows)


def _cell(r) -> str:
    if getattr(r, "metric", "success") == "avg_len":
        return f"avg len {r.avg_len:.2f} [{r.avg_len_ci95_low:.2f}, {r.avg_len_ci95_high:.2f}] ({r.trials} chains)"
    return f"{r.success_pct:.1f} [{r.ci95_low_pct:.1f}, {r.ci95_high_pct:.1f}] (n={r.trials})"


def _delta(r) -> str:
    if not r.reference:
        return "reference"
    if getattr(r, "metric", "success") == "avg_len":
        return f"{r.delta_avg_len:+.2f} subtasks"
    return f"{r.delta_pct:+.1f}"


def _params(v) -> str:
    return "-" if v is None or pd.isna(v) else f"{int(v):,}"


def to_markdown(df: pd.DataFrame, title: str) -> str:
    lines = [f"# {title}", "",
             "Success rate % over closed-loop trials, Wilson 95% interval in brackets, "
             "number of trials in parentheses."]
    if "p_value" not in df.columns:
        # backbone x benchmark pivot
        benches = sorted(df["benchmark"].unique())
        if (df["variant"] == "scratch").any():
            lines += ["", "`<model>--scratch` is the model's architecture trained from random weights "
                      "(the scratch-init row; pretrained vs scratch is tested in table_init)."]
        lines += ["", "| model | backbone | init | trainable params | " + " | ".join(benches) + " |",
                  "|---|---|---|---:|" + "---:|" * len(benches)]
        for run, g in df.groupby("run", sort=True):
            first = g.iloc[0]
            cells = [_cell(g[g["benchmark"] == b].iloc[0]) if (g["benchmark"] == b).any() else "-"
                     for b in benches]
            lines.append(f"| {run} | {first.backbone} | {first.init} | "
                         f"{_params(first.params_trainable)} | " + " | ".join(cells) + " |")
    elif "stage1" in df.columns:
        lines += [f"Stage 1 fine-tunes the VLM to emit FAST action tokens (or is skipped); stage 2 "
                  "is the usual VLA training with the vision encoder trained or frozen. Delta and "
                  "p-value (two-sided Fisher exact) against no stage 1 + vision trained; "
                  f"significant = p < {ALPHA}.", "",
                  "| benchmark | model | stage 1 | stage 2 vision | trainable / total params | "
                  "success % | delta vs reference | p | significant |",
                  "|---|---|---|---|---:|---:|---:|---:|---|"]
        order = {"none": 0, **{v: i + 1 for i, v in enumerate(STAGE1_LABELS.values())}}
        for r in sorted(df.itertuples(), key=lambda r: (r.benchmark, r.model, order[r.stage1],
                                                         r.stage2_vision != "trained")):
            delta = _delta(r)
            p = "" if not r.reference else format_p(r.p_value)
            lines.append(f"| {r.benchmark} | {r.model} | {r.stage1} | {r.stage2_vision} | "
                         f"{_params(r.params_trainable)} / {_params(r.params_total)} | {_cell(r)} | "
                         f"{delta} | {p} | {r.significant} |")
    else:
        lines += [f"Delta and p-value (two-sided Fisher exact) against the reference row; "
                  f"significant = p < {ALPHA}.", "",
                  "| benchmark | model | variant | trainable / total params | success % | "
                  "delta vs reference | p | significant |",
                  "|---|---|---|---:|---:|---:|---:|---|"]
        for r in df.sort_values(["benchmark", "model", "variant"]).itertuples():
            delta = _delta(r)
            p = "" if not r.reference else format_p(r.p_value)
            lines.append(f"| {r.benchmark} | {r.model} | {r.variant} | {_params(r.params_trainable)} / "
                         f"{_params(r.params_total)} | {_cell(r)} | {delta} | {p} | {r.significant} |")
    chained, note = chain_footer(df, "the average number of subtasks completed per chain (CALVIN's "
                                 "metric), a 95% bootstrap interval over chains in brackets; differences "
                                 "tested by a two-sided permutation test over chains.")
    lines += note
    lines += power_footer({b: list(g["trials"]) for b, g in df[~chained].groupby("benchmark", sort=True)})
    return "\n".join(lines) + "\n"


def chain_footer(df: pd.DataFrame, how: str) -> tuple[pd.Series, list[str]]:
    """(which rows are on a chain benchmark, the footer naming those benchmarks and `how`
    their metric is read); their rows take no success-rate power line."""
    chained = df["metric"] == "avg_len" if "metric" in df.columns else pd.Series(False, index=df.index)
    if not chained.any():
        return chained, []
    return chained, ["", "Chain benchmarks (" + ", ".join(sorted(df[chained]["benchmark"].unique()))
                     + "): " + how]


def write_table(df: pd.DataFrame, csv_path: str, md_path: str, title: str) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(md_path, to_markdown(df, title))

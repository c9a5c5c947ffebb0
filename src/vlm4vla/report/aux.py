"""Figure 4's table: does a VLM made better at an embodied skill make a better VLA?

For every model and auxiliary VQA task ("arm" aux_<task>; the plain VLM is arm "base"; a
VLM someone else tuned from that model and released, e.g. RoboBrain2, is an arm of its own
named in experiments.aux.released, with no skill column of its own):
- the skill, measured: the VLM's accuracy on that task's held-out VQA split before (base)
  and after the auxiliary fine-tuning (plus abs-rel error for metric-depth questions);
- the control, measured: closed-loop success of the VLA trained from that VLM, per
  benchmark and seed, pooled over seeds with a Wilson 95% interval, and tested against the
  base arm (two-sided Fisher exact on the pooled trials; the same evaluation episodes for
  every arm, so the comparison is paired by design). On a chain benchmark (CALVIN, the
  paper's Figure 4) the control is CALVIN's metric instead: the average number of subtasks
  completed per chain, per seed and pooled over seeds with a bootstrap 95% interval over
  chains, success after 1..5 subtasks, and a two-sided permutation test over chains
  against the base arm (as table_main does).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from vlm4vla import pipeline as P
from vlm4vla.eval.chains import chain_metrics
from vlm4vla.eval.metrics import wilson_interval
from vlm4vla.io import atomic_write_text, read_artifact_json
from vlm4vla.report.stats import ALPHA, fisher_exact, format_p, permutation_p, power_footer
from vlm4vla.report.tables import chain_footer, chain_lengths


def vqa_metrics(model: str, vlm: str) -> dict:
    return read_artifact_json(Path(P.vqa_eval_dir(model, vlm)) / "metrics.json")


def eval_summary(benchmark: str, run: str) -> dict:
    path = Path(P.eval_dir(benchmark, run)) / "summary.json"
    s = read_artifact_json(path)
    if not s.get("complete"):
        raise FileNotFoundError(f"{path} is from an unfinished evaluation; rerun the evaluate rule")
    return s


def aux_table(cfg: dict) -> pd.DataFrame:
    exp = cfg["experiments"]["aux"]
    seeds = int(exp["seeds"])
    rows, lengths = [], {}  # lengths: (benchmark, model, arm) -> pooled chain lengths
    for a in P.aux_arm_list(cfg):
        model, arm, task = a.model, a.arm, a.task
        base_vqa = vqa_metrics(model, "base")
        tuned = vqa_metrics(a.vlm_model, a.vlm)
        vqa = {"vqa_task": task, "vqa_n": None, "vqa_base_acc": None, "vqa_tuned_acc": None,
               "vqa_delta": None, "vqa_base_abs_rel": None, "vqa_tuned_abs_rel": None}
        if task:
            if task not in base_vqa or task not in tuned:
                raise ValueError(f"VQA metrics of {model} have no {task!r} task: is it in "
                                 "vqa.tasks with eval records?")
            b, t = base_vqa[task], tuned[task]
            vqa.update(vqa_n=b["n"], vqa_base_acc=round(b["accuracy"], 4),
                       vqa_tuned_acc=round(t["accuracy"], 4),
                       vqa_delta=round(t["accuracy"] - b["accuracy"], 4))
            if "abs_rel" in b:
                vqa.update(vqa_base_abs_rel=round(b["abs_rel"], 4),
                           vqa_tuned_abs_rel=round(t["abs_rel"], 4))
        general = tuned.get("general_vqa", {}).get("accuracy")
        for bench in sorted(exp["benchmarks"]):
            runs = [P.seeded(a.run, k) for k in range(seeds)]
            summaries = [eval_summary(bench, r) for r in runs]
            per_seed = [x["overall"] for x in summaries]
            n = sum(int(o["n"]) for o in per_seed)
            s = sum(int(o["successes"]) for o in per_seed)
            lo, hi = wilson_interval(s, n)
            row = {"benchmark": bench, "model": model, "arm": arm, **vqa,
                   "general_vqa_acc": None if general is None else round(general, 4),
                   "seeds": seeds,
                   "seed_success_pct": ";".join(
                       f"{100 * int(o['successes']) / int(o['n']):.1f}" for o in per_seed),
                   "trials": n, "successes": s, "success_pct": round(100 * s / n, 2),
                   "ci95_low_pct": round(100 * lo, 2), "ci95_high_pct": round(100 * hi, 2)}
            if any(x.get("chains") for x in summaries):
                lengths[(bench, model, arm)] = [c for r in runs for c in chain_lengths(bench, r)]
                row.update(_pooled_chains(summaries, lengths[(bench, model, arm)]))
            rows.append(row)
    df = pd.DataFrame(rows)
    ref = {(r.benchmark, r.model): r for r in df.itertuples() if r.arm == "base"}
    deltas, deltas_len, ps, sig = [], [], [], []
    for r in df.itertuples():
        b = ref[(r.benchmark, r.model)]
        if r.arm == "base":
            deltas.append(None), deltas_len.append(None), ps.append(None), sig.append("")
            continue
        if (r.benchmark, r.model, r.arm) in lengths:  # CALVIN: average length over chains
            p = permutation_p(lengths[(r.benchmark, r.model, r.arm)], lengths[(r.benchmark, r.model, "base")])
            deltas.append(None), deltas_len.append(round(r.avg_len - b.avg_len, 3))
        else:
            p = fisher_exact(r.successes, r.trials, b.successes, b.trials)
            deltas.append(round(r.success_pct - b.success_pct, 2)), deltas_len.append(None)
        ps.append(round(p, 4))
        sig.append("yes" if p < ALPHA else "no")
    df["delta_pct"], df["p_value"], df["significant"] = deltas, ps, sig
    if lengths:
        df["delta_avg_len"] = deltas_len
    return df


def _pooled_chains(summaries: list[dict], lengths: list[int]) -> dict:
    """CALVIN's metric of an arm on a chain benchmark: per-seed average lengths, and the
    chains of all seeds pooled (average length, its bootstrap interval, success after k)."""
    if not all(x.get("chains") for x in summaries):
        raise ValueError("an arm's seeds mix chain and single-task evaluations")
    m = chain_metrics(lengths, int(summaries[0]["chains"]["length"]))
    return {"metric": "avg_len",
            "seed_avg_len": ";".join(f"{x['chains']['avg_len']:.3f}" for x in summaries),
            "avg_len": round(m["avg_len"], 3), "avg_len_ci95_low": round(m["avg_len_ci95"][0], 3),
            "avg_len_ci95_high": round(m["avg_len_ci95"][1], 3),
            **{f"success_after_{k}_pct": round(100 * v["success_rate"], 2)
               for k, v in sorted(m["success_after"].items(), key=lambda kv: int(kv[0]))}}


def vqa_matrix(cfg: dict) -> pd.DataFrame:
    """Accuracy of every VLM of the experiment (rows model/arm) on every VQA task (columns)."""
    rows = []
    for a in P.aux_arm_list(cfg):
        m = vqa_metrics(a.vlm_model, a.vlm)
        rows.append({"model": a.model, "vlm": a.vlm if a.vlm_model == a.model else a.arm,
                     **{t: round(m[t]["accuracy"], 4) for t in sorted(m)}})
    return pd.DataFrame(rows)


def _chained(r) -> bool:
    return getattr(r, "metric", "success") == "avg_len"


def _f(v, fmt="{:.3f}") -> str:
    return "-" if v is None or pd.isna(v) else fmt.format(v)


def to_markdown(df: pd.DataFrame, matrix: pd.DataFrame) -> str:
    lines = ["# Auxiliary embodied VQA (Figure 4): VLM skill vs VLA control", "",
             "VQA accuracy on the held-out VQA split of the arm's own task, before (base VLM) and "
             "after auxiliary fine-tuning; closed-loop success % of the VLA trained from that VLM, "
             "pooled over seeds (per-seed values listed), Wilson 95% interval, and a two-sided "
             f"Fisher exact test against the base arm (significant = p < {ALPHA}).", "",
             "| benchmark | model | arm | VQA task | VQA acc base -> tuned | general VQA acc | "
             "success % per seed | pooled success % | delta vs base | p | significant |",
             "|---|---|---|---|---|---:|---|---:|---:|---:|---|"]
    arms = {a: i for i, a in enumerate(dict.fromkeys(df["arm"]))}  # base first, config order
    for r in sorted(df.itertuples(), key=lambda r: (r.benchmark, r.model, arms[r.arm])):
        skill = "-" if not r.vqa_task else f"{r.vqa_base_acc:.3f} -> {r.vqa_tuned_acc:.3f}"
        if r.vqa_task and not pd.isna(r.vqa_base_abs_rel):
            skill += f" (abs-rel {r.vqa_base_abs_rel:.3f} -> {r.vqa_tuned_abs_rel:.3f})"
        p = "" if r.arm == "base" else format_p(r.p_value)
        task = r.vqa_task or ("-" if r.arm == "base" else "released VLM")
        if _chained(r):  # CALVIN's metric: average length over chains
            per_seed = "avg len " + r.seed_avg_len.replace(";", ", ")
            pooled = f"avg len {r.avg_len:.2f} [{r.avg_len_ci95_low:.2f}, {r.avg_len_ci95_high:.2f}] ({r.trials} chains)"
            delta = "reference" if r.arm == "base" else f"{r.delta_avg_len:+.2f} subtasks"
        else:
            per_seed = r.seed_success_pct.replace(";", ", ")
            pooled = f"{r.success_pct:.1f} [{r.ci95_low_pct:.1f}, {r.ci95_high_pct:.1f}] (n={r.trials})"
            delta = "reference" if r.arm == "base" else f"{r.delta_pct:+.1f}"
        lines.append(f"| {r.benchmark} | {r.model} | {r.arm} | {task} | {skill} | "
                     f"{_f(r.general_vqa_acc)} | {per_seed} | {pooled} | {delta} | {p} | {r.significant} |")
    chained, note = chain_footer(df, "CALVIN's metric, the average number of subtasks completed per "
                                 "chain, per seed and pooled over seeds with a 95% bootstrap interval over "
                                 "chains; tested against the base arm by a two-sided permutation test over "
                                 "the pooled chains.")
    lines += note
    lines += power_footer({b: list(g["trials"]) for b, g in df[~chained].groupby("benchmark", sort=True)},
                          seeds=int(df["seeds"].max()))
    tasks = [c for c in matrix.columns if c not in ("model", "vlm")]
    lines += ["", "## VQA accuracy of every VLM on every held-out task", "",
              "| model | VLM | " + " | ".join(tasks) + " |", "|---|---|" + "---:|" * len(tasks)]
    for r in matrix.itertuples(index=False):
        d = r._asdict()
        lines.append(f"| {d['model']} | {d['vlm']} | " + " | ".join(_f(d[t]) for t in tasks) + " |")
    return "\n".join(lines) + "\n"


def write(df: pd.DataFrame, matrix: pd.DataFrame, csv_path: str, md_path: str) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(md_path, to_markdown(df, matrix))

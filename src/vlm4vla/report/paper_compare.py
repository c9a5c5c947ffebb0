"""The paper's published numbers beside this run's.

Rows are the paper's (config/data/paper_reported.csv, with its source column). A paper row
is matched to reproduced runs through `paper_name` in the config: a model's paper_name
names the paper backbone it stands in for, a benchmark's the paper benchmark. When the
reproduced benchmark is not the paper's (e.g. Meta-World standing in for CALVIN), or the
backbone is a tiny stand-in, the row says so: the absolute numbers are then not
comparable, but the *direction* of an ablation (does freezing X hurt?) is, and is shown
when the reproduced difference is significant (a non-significant one is said to be so).
"""

from __future__ import annotations

import io

import pandas as pd

from vlm4vla.io import atomic_write_text
from vlm4vla.pipeline.runs import AUX_PREFIX
from vlm4vla.report.stats import ALPHA, format_p  # a delta is read only below ALPHA

# paper variant name -> ours
VARIANT_MAP = {"baseline": "full", "full_finetune": "full", "freeze_vision": "freeze_vision",
               "freeze_word_embeddings": "freeze_word_embeddings", "freeze_llm": "freeze_llm"}
# Figure 4 (the paper's "auxiliary" experiment): the paper names an arm by its dataset; ours
# are aux_<task>, whose dataset is the format of the task's VQA file (vqa.files.<task>.format)
AUX_DATASETS = {"robopoint": "robopoint", "vica": "vica332k", "robo2vlm": "robo2vlm",
                "bridgevqa": "bridge_vqa"}


def aux_as_table(cfg: dict, aux: pd.DataFrame) -> pd.DataFrame:
    """Figure 4's table (report/aux.py) in the run tables' shape, each arm named as the
    paper names it: base -> full (the paper's 'baseline'), aux_<task> -> its VQA file's
    dataset, a released arm (e.g. robobrain2) -> its own name. An arm tuned on simulator-
    generated VQA (the embedded default's) is none of the paper's arms and is left out."""
    files = (cfg.get("vqa") or {}).get("files", {})
    rows = []
    for r in aux.to_dict("records"):
        arm = r["arm"]
        if arm == "base":
            variant = "full"
        elif arm.startswith(AUX_PREFIX):
            variant = AUX_DATASETS.get(files.get(arm[len(AUX_PREFIX):], {}).get("format"))
            if variant is None:
                continue
        else:
            variant = arm
        seeds = int(r["seeds"])
        rows.append({**r, "variant": variant,
                     "run": f"{r['model']} {arm}" + (f" ({seeds} seeds pooled)" if seeds > 1 else "")})
    return pd.DataFrame(rows)


def direction_verdict(paper_delta: float, delta: float, p_value: float) -> str:
    """'yes' / 'no' only for a significant reproduced delta: a difference the trials cannot
    tell from chance says nothing about the direction, so it is not counted as agreement."""
    if p_value is None or pd.isna(p_value) or p_value >= ALPHA:
        return "not significant"
    if delta == 0 or paper_delta == 0:
        return "no change"
    return "yes" if (paper_delta < 0) == (delta < 0) else "no"


PAPER_SCALE = "paper backbone"


def same_benchmark(bench: dict, paper_benchmark: str) -> bool:
    """Whether a configured benchmark IS the paper's, not a stand-in: its paper_name says so
    and, for a suite plugin (LIBERO), every task comes from that suite (LIBERO-Object tasks
    under paper_name libero_10 stand in for LIBERO-10; they do not reproduce it)."""
    if bench.get("paper_name") != paper_benchmark:
        return False
    if bench.get("plugin") == "libero":
        return all(str(t).split("/")[0] == paper_benchmark for t in bench.get("tasks", []))
    return True


def backbone_scale(model: dict) -> str:
    """'paper backbone' for real checkpoints (init pretrained from a source), else a stand-in."""
    if model.get("init") == "pretrained" and model.get("source"):
        return PAPER_SCALE
    return "tiny stand-in backbone"


def compare(cfg: dict, reported: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (paper row, matching reproduced run); unmatched paper rows kept."""
    if "auxiliary" in tables:
        tables = {**tables, "auxiliary": aux_as_table(cfg, tables["auxiliary"])}
    model_paper = {m: c.get("paper_name") for m, c in cfg["models"].items()}
    bench_paper = {b: c.get("paper_name") for b, c in cfg["benchmarks"].items()}
    paper_full = {(r.experiment, r.backbone, r.benchmark): r.value
                  for r in reported.itertuples() if VARIANT_MAP.get(r.variant) == "full"}
    rows = []
    for r in reported.sort_values(["experiment", "backbone", "variant", "benchmark"]).itertuples():
        base = {"experiment": r.experiment, "paper_backbone": r.backbone, "variant": r.variant,
                "paper_benchmark": r.benchmark, "metric": r.metric, "paper_value": r.value,
                "paper_source": r.source}
        ours = tables.get(r.experiment)
        variant = VARIANT_MAP.get(r.variant, r.variant if r.experiment == "auxiliary" else None)
        matches = pd.DataFrame()
        if ours is not None and variant is not None and not ours.empty:
            models = [m for m, p in model_paper.items() if p == r.backbone]
            matches = ours[ours["model"].isin(models) & (ours["variant"] == variant)]
        if matches.empty:
            rows.append({**base, "status": "not run in this configuration"})
            continue
        ref_full = paper_full.get((r.experiment, r.backbone, r.benchmark))
        # A benchmark that names its paper benchmark stands for that one only; one that
        # names none (e.g. Meta-World) stands in for any.
        matches = matches[[bench_paper.get(b) in (None, r.benchmark) for b in matches["benchmark"]]]
        if matches.empty:
            rows.append({**base, "status": "not run on this benchmark in this configuration"})
            continue
        for m in matches.sort_values(["benchmark", "model"]).itertuples():
            same_bench = same_benchmark(cfg["benchmarks"].get(m.benchmark, {}), r.benchmark)
            backbone = backbone_scale(cfg["models"].get(m.model, {}))
            row = {**base, "status": "reproduced" if same_bench and backbone == PAPER_SCALE
                   else "stand-in benchmark" if not same_bench else "stand-in backbone",
                   "run": m.run, "benchmark": m.benchmark, "reproduced_success_pct": m.success_pct,
                   "reproduced_ci95": f"[{m.ci95_low_pct}, {m.ci95_high_pct}]", "trials": m.trials,
                   "scale": backbone + ("" if same_bench else ", other benchmark")}
            chain = getattr(m, "metric", "success") == "avg_len"
            if chain:  # CALVIN: the paper's metric is the average length, so is ours
                row.update(reproduced_success_pct=None, reproduced_avg_len=m.avg_len,
                           reproduced_ci95=f"[{m.avg_len_ci95_low}, {m.avg_len_ci95_high}]")
            if variant != "full" and ref_full is not None and "delta_pct" in ours.columns:
                paper_delta = r.value - ref_full
                ours_delta = m.delta_avg_len if chain else m.delta_pct
                row.update(paper_delta_vs_full=round(paper_delta, 3),
                           **({"reproduced_delta_vs_full": ours_delta} if chain
                              else {"reproduced_delta_vs_full_pct": ours_delta}),
                           reproduced_p_value=m.p_value,
                           same_direction=direction_verdict(paper_delta, ours_delta, m.p_value))
            rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame) -> str:
    lines = ["# Paper vs reproduced", "",
             "Paper values from config/data/paper_reported.csv (source column). 'reproduced' "
             "= the paper's backbone (real checkpoint) on the paper's benchmark; 'stand-in "
             "benchmark' / 'stand-in backbone' rows compare another simulator or task suite / a "
             "tiny backbone: read the direction "
             "of ablations (same_direction), not absolute values. same_direction is yes/no only "
             f"when the reproduced delta is significant (p < {ALPHA}: Fisher exact on success rates, "
             "a permutation test over chains on CALVIN's average length); otherwise "
             "'not significant': the trials cannot tell it from chance, for or against the paper.", "",
             "| experiment | paper backbone | variant | paper benchmark | paper | status | run on benchmark | "
             "reproduced % [95% CI] (n) | paper delta | reproduced delta (p) | same direction |",
             "|---|---|---|---|---:|---|---|---|---:|---:|---|"]
    for r in df.itertuples():
        get = lambda k: getattr(r, k, None)  # noqa: E731
        rep = "" if pd.isna(get("reproduced_success_pct")) else \
            f"{get('reproduced_success_pct'):.1f} {get('reproduced_ci95')} (n={int(get('trials'))})"
        if get("reproduced_avg_len") is not None and not pd.isna(get("reproduced_avg_len")):
            rep = f"avg len {get('reproduced_avg_len'):.2f} {get('reproduced_ci95')} ({int(get('trials'))} chains)"
        pd_ = "" if pd.isna(get("paper_delta_vs_full")) else f"{get('paper_delta_vs_full'):+.3g}"
        rd = "" if pd.isna(get("reproduced_delta_vs_full_pct")) else \
            f"{get('reproduced_delta_vs_full_pct'):+.1f} (p={format_p(get('reproduced_p_value'))})"
        if get("reproduced_delta_vs_full") is not None and not pd.isna(get("reproduced_delta_vs_full")):
            rd = f"{get('reproduced_delta_vs_full'):+.2f} (p={format_p(get('reproduced_p_value'))})"
        same = "" if pd.isna(get("same_direction")) else get("same_direction")
        # which benchmark ran: Meta-World stands in for every paper benchmark, so one paper
        # row may hold the LIBERO stand-in's run and Meta-World's side by side
        run = "" if pd.isna(get("run")) else f"{get('run')} on {get('benchmark')}"
        variant = str(r.variant).replace("|", "\\|")  # a Markdown cell cannot hold a bare '|'
        lines.append(f"| {r.experiment} | {r.paper_backbone} | {variant} | {r.paper_benchmark} | "
                     f"{r.paper_value:g} {r.metric} | {r.status} | {run} | {rep} | {pd_} | {rd} | {same} |")
    return "\n".join(lines) + "\n"


def write(df: pd.DataFrame, csv_path: str, md_path: str) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(md_path, to_markdown(df))

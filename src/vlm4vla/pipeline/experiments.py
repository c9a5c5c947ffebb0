"""Experiment grids: which (benchmark, run) pairs each table and figure needs, and which VLM
jobs (pretraining, auxiliary tuning, VQA scoring, FAST stage 1) those runs start from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vlm4vla.models import families

from .runs import AUX_PREFIX, FAST_PREFIX, STAGE1, VARIANT_SEP, parse_run, run_name, seeded, start_vlm


def main_grid(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, model): every main-experiment backbone on every main benchmark."""
    exp = cfg["experiments"]["main"]
    return sorted((b, m) for b in exp["benchmarks"] for m in exp["models"])


def main_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, run) rows of the main table: the backbone grid plus, on the main
    benchmarks, the init experiment's pretrained model and its from-scratch twin (the
    paper's scratch-init row; the same runs as table_init, trained once)."""
    bench = set(cfg["experiments"]["main"]["benchmarks"])
    return sorted(set(main_grid(cfg)) | {(b, r) for b, r in init_runs(cfg) if b in bench})


def ablation_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, run) pairs of the modality ablation (Table 3)."""
    exp = cfg["experiments"].get("ablation")
    if not exp:
        return []
    return sorted((b, run_name(m, v)) for b in exp["benchmarks"] for m in exp["models"]
                  for v in exp["variants"])


def init_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, run) pairs of pretrained-vs-scratch (each model and its scratch twin)."""
    exp = cfg["experiments"].get("init")
    if not exp:
        return []
    return sorted((b, r) for b in exp["benchmarks"] for m in exp["models"]
                  for r in (m, run_name(m, "scratch")))


@dataclass(frozen=True)
class AuxArm:
    """One arm of Figure 4: the VLA runs `run` (seeded) start from VLM (vlm_model, vlm).
    arm "base": the model's VLM as it is; aux_<task>: that VLM tuned here on a VQA task;
    a released arm: another model, a VLM someone else tuned from the same base and released
    (e.g. RoboBrain2 from Qwen2.5-VL-7B), compared with that base."""
    model: str  # the base model the arm is compared with
    arm: str
    run: str  # run name before the seed suffix
    vlm_model: str
    vlm: str  # "base" or aux_<task>
    task: str = ""  # the VQA task the arm was tuned on here ("" for base and released arms)


def aux_arm_list(cfg: dict) -> list[AuxArm]:
    """Figure 4's arms, per base model (sorted): base, aux_<task> (config order), released."""
    exp = cfg["experiments"].get("aux")
    if not exp:
        return []
    released = exp.get("released", {})
    arms = []
    for m in sorted(set(exp["models"]) | set(released)):
        arms.append(AuxArm(m, "base", m, m, "base"))
        if m in exp["models"]:
            arms += [AuxArm(m, AUX_PREFIX + t, f"{m}{VARIANT_SEP}{AUX_PREFIX}{t}", m, AUX_PREFIX + t, t)
                     for t in exp["tasks"]]
        arms += [AuxArm(m, a, r, r, "base") for a, r in sorted(released.get(m, {}).items())]
    return arms


def aux_arms(cfg: dict) -> list[str]:
    """The tuned-here start points of Figure 4: "base" (the VLM as it is) and aux_<task> per task."""
    exp = cfg["experiments"].get("aux")
    return ["base", *(AUX_PREFIX + t for t in exp["tasks"])] if exp else []


def aux_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, run) pairs of Figure 4: every arm x seed on every benchmark."""
    exp = cfg["experiments"].get("aux")
    if not exp:
        return []
    return sorted({(b, seeded(a.run, k)) for b in exp["benchmarks"] for a in aux_arm_list(cfg)
                   for k in range(int(exp["seeds"]))})


def vision_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, run) pairs of Table 4: stage 1 (none | FAST tokens with frozen vision |
    with trained vision) x stage 2 (vision trained | frozen)."""
    exp = cfg["experiments"].get("vision_supervision")
    if not exp:
        return []
    starts = [None, *(FAST_PREFIX + s for s in STAGE1)]
    return sorted((b, VARIANT_SEP.join(p for p in (m, s, v) if p))
                  for b in exp["benchmarks"] for m in exp["models"] for s in starts
                  for v in (None, "freeze_vision"))


def stage1_jobs(cfg: dict) -> list[tuple[str, str, str]]:
    """(benchmark, model, stage1) of the FAST action-token VLM fine-tunings."""
    exp = cfg["experiments"].get("vision_supervision")
    if not exp:
        return []
    return sorted((b, m, s) for b in exp["benchmarks"] for m in exp["models"] for s in STAGE1)


@dataclass(frozen=True)
class RunTable:
    """A result table built from evaluation runs."""
    runs: Callable[[dict], list[tuple[str, str]]]  # cfg -> its (benchmark, run) rows
    title: str
    reference: str | None  # the variant each row is compared with (Fisher exact); None: no test


RUN_TABLES: dict[str, RunTable] = {
    "main": RunTable(main_runs, "Main results: backbone x benchmark", None),
    "ablation": RunTable(ablation_runs, "Modality ablation (Table 3): frozen parts vs full fine-tuning",
                         "full"),
    "init": RunTable(init_runs, "VLM initialisation vs training from scratch", "full"),
    "vision_supervision": RunTable(vision_runs, "Vision supervision (Table 4): FAST action-token "
                                   "stage 1 x vision encoder frozen or trained in stage 2", "full"),
}


def table_runs(cfg: dict, table: str) -> list[tuple[str, str]]:
    return RUN_TABLES[table].runs(cfg)


def active_tables(cfg: dict) -> list[str]:
    """Tables whose experiment is configured (main always is)."""
    return [t for t in RUN_TABLES if table_runs(cfg, t)]


def all_runs(cfg: dict) -> list[tuple[str, str]]:
    """Every (benchmark, run) some table or figure needs, each trained and evaluated once."""
    return sorted({r for t in active_tables(cfg) for r in table_runs(cfg, t)}
                  | set(aux_runs(cfg)) | set(vision_runs(cfg)))


def supports_vqa(cfg: dict, model: str) -> bool:
    """Whether a model's backbone family has a language-model-head (VQA) path (read from
    models/families.py: no model code is imported)."""
    return families.supports_vqa(cfg["models"][model]["backbone"])


def aux_vlm_jobs(cfg: dict) -> list[tuple[str, str]]:
    """(model, aux_<task>) VLM fine-tunings of Figure 4."""
    return sorted({(a.vlm_model, a.vlm) for a in aux_arm_list(cfg) if a.task})


def capability_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, run) points of Figure 3: main-table runs and the seed-0 aux runs (each
    starts from a VLM of its own general capability), on the figure's benchmarks."""
    exp = cfg["experiments"].get("capability")
    if not exp:
        return []
    runs = set(main_grid(cfg)) | {(b, r) for b, r in aux_runs(cfg) if parse_run(r)["seed"] == 0}
    return sorted((b, r) for b, r in runs if b in exp["benchmarks"])


def vqa_eval_jobs(cfg: dict) -> list[tuple[str, str]]:
    """(model, vlm) VQA evaluations: Figure 4's base + tuned VLMs, and (measured mode) the
    start VLM of every Figure 3 point whose family has a language-model head."""
    jobs = {(a.vlm_model, a.vlm) for a in aux_arm_list(cfg)}
    exp = cfg["experiments"].get("capability")
    if exp and exp["x"] == "measured":
        jobs |= {start_vlm(r) for _, r in capability_runs(cfg) if supports_vqa(cfg, start_vlm(r)[0])}
    return sorted(jobs)


def pretrain_jobs(cfg: dict) -> list[str]:
    """Models whose pretrain_vlm stage some run, VQA evaluation or stage 1 needs."""
    used = {parse_run(r)["model"] for _, r in all_runs(cfg)} | {m for m, _ in vqa_eval_jobs(cfg)} \
        | {m for m, _ in aux_vlm_jobs(cfg)} | {m for _, m, _ in stage1_jobs(cfg)}
    return sorted(m for m in used if cfg["models"][m]["init"] == "pretrain_vlm")

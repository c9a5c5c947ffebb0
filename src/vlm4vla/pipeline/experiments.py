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


def aux_arms(cfg: dict) -> list[str]:
    """The start points of Figure 4: "base" (the VLM as it is) and aux_<task> per task."""
    exp = cfg["experiments"].get("aux")
    return ["base", *(AUX_PREFIX + t for t in exp["tasks"])] if exp else []


def aux_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, run) pairs of Figure 4: every model x arm x seed on every benchmark."""
    exp = cfg["experiments"].get("aux")
    if not exp:
        return []
    return sorted((b, seeded(m if arm == "base" else f"{m}{VARIANT_SEP}{arm}", k))
                  for b in exp["benchmarks"] for m in exp["models"] for arm in aux_arms(cfg)
                  for k in range(int(exp["seeds"])))


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
    exp = cfg["experiments"].get("aux")
    return sorted((m, a) for m in exp["models"] for a in aux_arms(cfg)[1:]) if exp else []


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
    jobs = {(m, a) for m in (cfg["experiments"].get("aux") or {}).get("models", [])
            for a in aux_arms(cfg)}
    exp = cfg["experiments"].get("capability")
    if exp and exp["x"] == "measured":
        jobs |= {start_vlm(r) for _, r in capability_runs(cfg) if supports_vqa(cfg, start_vlm(r)[0])}
    return sorted(jobs)


def pretrain_jobs(cfg: dict) -> list[str]:
    """Models whose pretrain_vlm stage some run, VQA evaluation or stage 1 needs."""
    used = {parse_run(r)["model"] for _, r in all_runs(cfg)} | {m for m, _ in vqa_eval_jobs(cfg)} \
        | {m for m, _ in aux_vlm_jobs(cfg)} | {m for _, m, _ in stage1_jobs(cfg)}
    return sorted(m for m in used if cfg["models"][m]["init"] == "pretrain_vlm")

"""Specs: the exact config fragment each stage's result depends on (a Snakemake rule param,
the settings its script reads). DVC's params are the keys a spec reads (trace.read_keys):
drop keys with `without()` / keep some with `pick()`, so that only the kept ones are read."""

from __future__ import annotations

from .runs import (AUX_PREFIX, LABEL_KEYS, STAGE1, base_model_cfg, model_cfg, parse_run, run_seed,
                   split_run, start_model)
from .experiments import active_tables, aux_arm_list, aux_runs, capability_runs, table_runs
from .trace import pick, without


# The per-benchmark training recipe: benchmark key -> the `train` key it overrides for VLA
# fine-tuning on that benchmark (the paper's recipe differs per benchmark, too).
BENCH_TRAIN_KEYS = {"train_steps": "steps", "lr_schedule": "lr_schedule",
                    "train_batch_size": "batch_size", "train_warmup_steps": "warmup_steps"}
# ... and the `evaluate` keys a benchmark may override (official: CALVIN executes all 10
# actions of a chunk, LIBERO / Bridge sweep 4/2/1: eval/ckpts scripts of the official code)
BENCH_EVAL_KEYS = ("execute_chunk",)
# Benchmark keys that only evaluation and training read: changing them must not re-collect
# demos. (eval_seed_offset stays: demo collection checks its seeds stay below it.)
EVAL_ONLY_KEYS = ("eval_episodes_per_task", "eval_chains", "render_size", "wait_protocol", "chunk",
                  "augment", "action_norm", *BENCH_TRAIN_KEYS, *BENCH_EVAL_KEYS)


# --- specs: what each stage depends on ---------------------------------------------
def demo_spec(cfg: dict, benchmark: str) -> dict:
    bench = without(cfg["benchmarks"][benchmark], EVAL_ONLY_KEYS + LABEL_KEYS)
    return {"seed": cfg["seed"], "benchmark": benchmark, "bench": bench}


def train_spec(cfg: dict, benchmark: str, model: str) -> dict:
    mcfg = model_cfg(cfg, model, benchmark, labels=False)
    train = dict(cfg["train"])
    bench = cfg["benchmarks"][benchmark]
    for key, train_key in BENCH_TRAIN_KEYS.items():  # per-benchmark recipe (e.g. the paper:
        if key in bench:                              # CALVIN 30k steps, Bridge/LIBERO 50k)
            train[train_key] = bench[key]
    if "steps" in mcfg:  # per-model override (e.g. a slow real-size backbone) wins
        train["steps"] = mcfg.pop("steps")
    lr_on = mcfg.pop("lr_on", None) or {}  # a model's lr on some benchmarks (the paper: 5e-5
    if benchmark in lr_on:                  # for Kosmos-2 / PaliGemma on Bridge and LIBERO)
        mcfg["lr"] = lr_on[benchmark]
    spec = {"seed": run_seed(cfg, model), "threads": cfg["threads"], "benchmark": benchmark,
            "chunk": cfg["benchmarks"][benchmark]["chunk"], "model_name": model,
            "model": mcfg, "train": train}
    for key in ("augment", "action_norm"):  # the benchmark's image augmentation and
        if key in bench:                      # action normalisation, when it sets them
            spec[key] = bench[key]
    if spec["seed"] != cfg["seed"]:  # seed<k>: the random backbone stays the seed-0 one
        spec["backbone_seed"] = cfg["seed"]
    return spec


def vqa_data_spec(cfg: dict) -> dict:
    v = cfg["vqa"]
    return {"seed": cfg["seed"], "vqa": {k: v[k] for k in sorted(v) if k not in ("train", "eval")},
            "bench": {b: without(cfg["benchmarks"][b], EVAL_ONLY_KEYS + LABEL_KEYS + ("demos", "demos_per_task"))
                      for b in v["benchmarks"]}}


def pretrain_spec(cfg: dict, model: str) -> dict:
    mcfg = base_model_cfg(cfg, model)
    mcfg["init"] = "scratch"  # the same random start as the model's --scratch twin
    train = dict(cfg["pretrain"]["train"])
    if "pretrain_steps" in cfg["models"][model]:
        train["steps"] = cfg["models"][model]["pretrain_steps"]
    return {"seed": cfg["seed"], "threads": cfg["threads"], "model_name": model, "model": mcfg,
            "train": train, "tasks": sorted(cfg["pretrain"]["tasks"])}


def vlm_train_spec(cfg: dict, model: str, vlm: str) -> dict:
    return {"seed": cfg["seed"], "threads": cfg["threads"], "model_name": model,
            "model": start_model(cfg, model), "train": cfg["vqa"]["train"],
            "tasks": [vlm[len(AUX_PREFIX):]]}


def vqa_eval_spec(cfg: dict, model: str, vlm: str) -> dict:
    return {"seed": cfg["seed"], "threads": cfg["threads"], "model_name": model, "vlm": vlm,
            "model": start_model(cfg, model), "eval": cfg["vqa"]["eval"]}


def stage1_spec(cfg: dict, benchmark: str, model: str, stage1: str) -> dict:
    exp = cfg["experiments"]["vision_supervision"]
    mcfg = start_model(cfg, model)
    mcfg["freeze"] = sorted(set(mcfg.get("freeze", [])) | set(STAGE1[stage1]))
    spec = {"seed": cfg["seed"], "threads": cfg["threads"], "benchmark": benchmark,
            "chunk": cfg["benchmarks"][benchmark]["chunk"], "model_name": model, "stage1": stage1,
            "model": mcfg, "train": {**cfg["train"], "steps": exp["stage1_steps"]},
            "fast": exp["fast"]}
    if "action_norm" in cfg["benchmarks"][benchmark]:  # the FAST tokens fit normalised chunks
        spec["action_norm"] = cfg["benchmarks"][benchmark]["action_norm"]
    return spec


EVAL_VIEW_KEYS = ("workers", "videos_per_task")


def eval_spec(cfg: dict, benchmark: str, model: str) -> dict:
    # Left out on purpose: results are identical for any worker count, with or without videos.
    bench = without(cfg["benchmarks"][benchmark], LABEL_KEYS)
    evaluate = without(cfg["evaluate"], EVAL_VIEW_KEYS)
    evaluate.update(pick(bench, BENCH_EVAL_KEYS))  # the benchmark's own protocol wins
    return {"seed": cfg["seed"], "benchmark": benchmark, "model_name": model, "bench": bench,
            "evaluate": evaluate}


def table_spec(cfg: dict, table: str) -> dict:
    runs = table_runs(cfg, table)
    return {"table": table, "runs": [list(r) for r in runs],
            "models": {m: model_cfg(cfg, m, b) for b, m in sorted(runs)}}


def aux_spec(cfg: dict) -> dict:
    return {"aux": cfg["experiments"]["aux"], "runs": [list(r) for r in aux_runs(cfg)],
            "vqa_tasks": sorted(cfg["vqa"]["tasks"])}


def capability_spec(cfg: dict) -> dict:
    exp = cfg["experiments"]["capability"]
    return {"capability": exp, "runs": [list(r) for r in capability_runs(cfg)],
            "paper_names": {m: cfg["models"][m].get("paper_name") for m in sorted(cfg["models"])}
            if exp["x"] == "published" else {}}


def _table_models_and_benchmarks(cfg: dict) -> tuple[list[str], list[str]]:
    """The models and benchmarks of the result tables' runs: what the paper-vs-reproduced
    table can match (entries a config defines but does not run leave it unchanged)."""
    runs = [(b, parse_run(r)["model"]) for t in active_tables(cfg) for b, r in table_runs(cfg, t)]
    return sorted({m for _, m in runs}), sorted({b for b, _ in runs})


def paper_spec(cfg: dict) -> dict:
    models, benches = _table_models_and_benchmarks(cfg)
    spec = {"models": {m: cfg["models"][m].get("paper_name") for m in models},
            "benchmarks": {b: cfg["benchmarks"][b].get("paper_name") for b in benches}}
    if cfg["experiments"].get("aux"):  # Figure 4's arms are named by their VQA dataset's format
        files = cfg["vqa"].get("files", {})  # an aux experiment has a vqa section (validated)
        arms = aux_arm_list(cfg)
        spec["models"].update({a.model: cfg["models"][a.model].get("paper_name") for a in arms})
        spec["benchmarks"].update({b: cfg["benchmarks"][b].get("paper_name")
                                   for b in cfg["experiments"]["aux"]["benchmarks"]})
        spec["aux_formats"] = {a.task: files.get(a.task, {}).get("format") for a in arms if a.task}
    return spec

"""The stage graph, in one place, for both orchestrators.

Snakemake rules (rules/*.smk) and the DVC stage generator (workflow_scripts/make_dvc_yaml.py)
take artifact paths and "specs" from here, so the two tools cannot drift apart. A spec is
the exact config fragment a stage's result depends on: Snakemake gets it as a rule param
(change it -> that rule re-runs, nothing else), the stage's script reads its settings from
it, and DVC tracks the same keys as params.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vlm4vla.models import families

# --- artifact paths (relative to the repository root; never absolute in artifacts) -----
RESULTS = "results"


def demos_dir(benchmark: str) -> str:
    return f"{RESULTS}/demos/{benchmark}"


def policy_dir(benchmark: str, model: str) -> str:
    return f"{RESULTS}/vla/{benchmark}/{model}"


def state_dir(benchmark: str, model: str) -> str:
    # Resumable training state lives OUTSIDE declared outputs: Snakemake deletes the outputs
    # of a killed job and DVC deletes a stage's outputs before running it.
    return f".state/vla/{benchmark}/{model}"


def eval_dir(benchmark: str, model: str) -> str:
    return f"{RESULTS}/eval/{benchmark}/{model}"


EVAL_FILES = ("summary.json", "episodes.jsonl")
TABLE_MAIN = {"csv": f"{RESULTS}/tables/main.csv", "md": f"{RESULTS}/tables/main.md"}


def table_paths(name: str) -> dict:
    return {"csv": f"{RESULTS}/tables/{name}.csv", "md": f"{RESULTS}/tables/{name}.md"}


PAPER_REPORTED = "config/data/paper_reported.csv"
TABLE_PAPER = table_paths("paper_vs_reproduced")
FIGURE_MAIN = {"png": f"{RESULTS}/figures/main.png", "svg": f"{RESULTS}/figures/main.svg"}

# The per-benchmark training recipe: benchmark key -> the `train` key it overrides for VLA
# fine-tuning on that benchmark (the paper's recipe differs per benchmark, too).
BENCH_TRAIN_KEYS = {"train_steps": "steps", "lr_schedule": "lr_schedule"}
# Benchmark keys that only evaluation and training read: changing them must not re-collect
# demos. (eval_seed_offset stays: demo collection checks its seeds stay below it.)
EVAL_ONLY_KEYS = ("eval_episodes_per_task", "chunk", "augment", *BENCH_TRAIN_KEYS)


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


# --- run names: a named model plus modifiers, e.g. "qwen25vl_tiny--aux_pointing--seed1" ----
# <model>[--<modifier>]*, modifiers in any order, at most one per kind:
#   start point  scratch | aux_<vqa task> (VLM tuned on auxiliary VQA, Figure 4) |
#                fast_<stage1> (VLM tuned on FAST action tokens, Table 4)
#   freezing     freeze_vision | freeze_projector | freeze_llm | freeze_word_embeddings
#   seed         seed<k>: VLA fine-tuning seed = seed + k (the backbone's own random init,
#                for scratch models, stays at `seed`: seeds vary the fine-tuning only)
VARIANT_SEP = "--"
VARIANTS = {
    "full": {},  # full fine-tuning of everything (the paper's default recipe)
    "freeze_vision": {"freeze": ["vision"]},
    "freeze_projector": {"freeze": ["projector"]},
    "freeze_llm": {"freeze": ["llm"]},
    "freeze_word_embeddings": {"freeze": ["word_embeddings"]},
    "scratch": {"init": "scratch"},  # same architecture, random weights
}
AUX_PREFIX, FAST_PREFIX, SEED_PREFIX = "aux_", "fast_", "seed"
# Table 4's stage 1: the VLM learns to emit FAST action tokens with its vision encoder
# frozen or trained (stage "none" = no stage 1, the plain VLM).
STAGE1 = {"frozen_vision": ["vision"], "full": []}


def run_name(model: str, variant: str) -> str:
    return model if variant == "full" else f"{model}{VARIANT_SEP}{variant}"


def parse_run(name: str) -> dict:
    """run name -> {"model", "start": None | "scratch" | "aux_<t>" | "fast_<s>",
    "freeze": None | variant, "seed": int}; raises KeyError naming the bad part."""
    base, *mods = name.split(VARIANT_SEP)
    out = {"model": base, "start": None, "freeze": None, "seed": 0}
    for mod in mods:
        if mod == "scratch" or mod.startswith((AUX_PREFIX, FAST_PREFIX)):
            kind = "start"
        elif mod in VARIANTS and mod != "full":
            kind = "freeze"
        elif mod.startswith(SEED_PREFIX) and mod[len(SEED_PREFIX):].isdigit():
            kind, mod = "seed", int(mod[len(SEED_PREFIX):])
        else:
            raise KeyError(f"unknown run modifier {mod!r} in {name!r} (known: "
                           f"{', '.join(v for v in VARIANTS if v != 'full')}, aux_<vqa task>, "
                           f"fast_<{'|'.join(STAGE1)}>, seed<k>)")
        if out[kind] not in (None, 0):
            raise KeyError(f"run {name!r} has two {kind} modifiers")
        out[kind] = mod
    if out["start"] and out["start"].startswith(FAST_PREFIX) and \
            out["start"][len(FAST_PREFIX):] not in STAGE1:
        raise KeyError(f"unknown stage 1 {out['start']!r} in {name!r} (known: "
                       f"{', '.join(FAST_PREFIX + s for s in STAGE1)})")
    return out


def model_cfg(cfg: dict, name: str, benchmark: str | None = None) -> dict:
    """The model config behind a run name: a `models` entry with its modifiers applied.
    `benchmark` is needed for fast_* runs (stage 1 is trained on that benchmark's demos)."""
    run = parse_run(name)
    base = run["model"]
    if base not in cfg["models"]:
        raise KeyError(f"unknown model {base!r} (defined under 'models': {', '.join(sorted(cfg['models']))})")
    out = start_model(cfg, base)
    out.update({k: v for k, v in cfg["models"][base].items() if k in LABEL_KEYS + ("steps",)})
    if run["freeze"]:
        out["freeze"] = sorted(set(out.get("freeze", [])) | set(VARIANTS[run["freeze"]]["freeze"]))
    start = run["start"]
    if start == "scratch":
        out["init"] = "scratch"
        out.pop("source", None)
        out.pop("vlm", None)
    elif start and start.startswith(AUX_PREFIX):
        task = start[len(AUX_PREFIX):]
        known = sorted(cfg.get("vqa", {}).get("tasks", {}))
        if task not in known:
            raise KeyError(f"run {name!r}: VQA task {task!r} is not configured under 'vqa.tasks' "
                           f"(configured: {', '.join(known) or 'none'})")
        out.update(init="aux", vlm=vlm_dir(base, start))
        out.pop("source", None)
    elif start:  # fast_<stage1>
        if benchmark is None:
            raise KeyError(f"run {name!r} starts from a stage-1 VLM: its benchmark is needed")
        out.update(init="aux", vlm=fast_vlm_dir(benchmark, base, start[len(FAST_PREFIX):]))
        out.pop("source", None)
    return out


def run_seed(cfg: dict, name: str) -> int:
    return int(cfg["seed"]) + parse_run(name)["seed"]


def start_vlm_input(cfg: dict, benchmark: str, name: str) -> list[str]:
    """The VLM folder a run starts from, when it is an artifact of this pipeline."""
    mcfg = model_cfg(cfg, name, benchmark)
    return [mcfg["vlm"]] if mcfg.get("init") == "aux" else []


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


def seeded(run: str, k: int) -> str:
    return run if k == 0 else f"{run}{VARIANT_SEP}{SEED_PREFIX}{k}"


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


def split_run(name: str) -> tuple[str, str]:
    """run name -> (model, variant)."""
    base, sep, variant = name.partition(VARIANT_SEP)
    return base, (variant if sep else "full")


def all_runs(cfg: dict) -> list[tuple[str, str]]:
    """Every (benchmark, run) some table or figure needs, each trained and evaluated once."""
    return sorted({r for t in active_tables(cfg) for r in table_runs(cfg, t)}
                  | set(aux_runs(cfg)) | set(vision_runs(cfg)))


# --- auxiliary VQA (Figure 4, Figure 3's x axis) and FAST stage 1 (Table 4) --------------
VQA_DATA = f"{RESULTS}/vqa/data"  # one VQA store (both splits) from every vqa.benchmarks scene


def vlm_dir(model: str, vlm: str) -> str:
    """An aux-tuned VLM (vlm = aux_<task>)."""
    return f"{RESULTS}/vqa/vlm/{model}/{vlm}"


def vlm_state_dir(model: str, vlm: str) -> str:
    return f".state/vqa/{model}/{vlm}"


def vqa_eval_dir(model: str, vlm: str) -> str:
    """VQA metrics of a VLM (vlm = base | aux_<task>) on the held-out VQA split."""
    return f"{RESULTS}/vqa/eval/{model}/{vlm}"


def fast_vlm_dir(benchmark: str, model: str, stage1: str) -> str:
    return f"{RESULTS}/fast/{benchmark}/{model}/{stage1}"


def fast_state_dir(benchmark: str, model: str, stage1: str) -> str:
    return f".state/fast/{benchmark}/{model}/{stage1}"


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


def start_vlm(run: str) -> tuple[str, str]:
    """(model, vlm) whose VQA metrics describe the VLM a run starts from."""
    p = parse_run(run)
    return p["model"], (p["start"] if p["start"] and p["start"].startswith(AUX_PREFIX) else "base")


def vqa_eval_jobs(cfg: dict) -> list[tuple[str, str]]:
    """(model, vlm) VQA evaluations: Figure 4's base + tuned VLMs, and (measured mode) the
    start VLM of every Figure 3 point whose family has a language-model head."""
    jobs = {(m, a) for m in (cfg["experiments"].get("aux") or {}).get("models", [])
            for a in aux_arms(cfg)}
    exp = cfg["experiments"].get("capability")
    if exp and exp["x"] == "measured":
        jobs |= {start_vlm(r) for _, r in capability_runs(cfg) if supports_vqa(cfg, start_vlm(r)[0])}
    return sorted(jobs)


AUX_TABLE, CAPABILITY_TABLE = (table_paths(n) for n in ("aux", "capability"))
CAPABILITY_CORR = f"{RESULTS}/tables/capability_correlations.csv"
FIGURE_AUX = {"png": f"{RESULTS}/figures/aux.png", "svg": f"{RESULTS}/figures/aux.svg"}
FIGURE_CAPABILITY = {"png": f"{RESULTS}/figures/capability.png",
                     "svg": f"{RESULTS}/figures/capability.svg"}
GENERAL_SCORES = "config/data/general_capability.csv"  # published scores (capability x: published)


# --- specs: what each stage depends on ---------------------------------------------
def demo_spec(cfg: dict, benchmark: str) -> dict:
    bench = {k: v for k, v in cfg["benchmarks"][benchmark].items()
             if k not in EVAL_ONLY_KEYS + LABEL_KEYS}
    return {"seed": cfg["seed"], "benchmark": benchmark, "bench": bench}


# Keys that only label results (reports), never change what a stage computes.
LABEL_KEYS = ("paper_name",)


def train_spec(cfg: dict, benchmark: str, model: str) -> dict:
    mcfg = {k: v for k, v in model_cfg(cfg, model, benchmark).items() if k not in LABEL_KEYS}
    train = dict(cfg["train"])
    bench = cfg["benchmarks"][benchmark]
    for key, train_key in BENCH_TRAIN_KEYS.items():  # per-benchmark recipe (e.g. the paper:
        if key in bench:                              # CALVIN 30k steps, Bridge/LIBERO 50k)
            train[train_key] = bench[key]
    if "steps" in mcfg:  # per-model override (e.g. a slow real-size backbone) wins
        train["steps"] = mcfg.pop("steps")
    spec = {"seed": run_seed(cfg, model), "threads": cfg["threads"], "benchmark": benchmark,
            "chunk": cfg["benchmarks"][benchmark]["chunk"], "model_name": model,
            "model": mcfg, "train": train}
    if "augment" in cfg["benchmarks"][benchmark]:  # the benchmark's image augmentation
        spec["augment"] = cfg["benchmarks"][benchmark]["augment"]
    if spec["seed"] != cfg["seed"]:  # seed<k>: the random backbone stays the seed-0 one
        spec["backbone_seed"] = cfg["seed"]
    return spec


def vqa_data_spec(cfg: dict) -> dict:
    v = cfg["vqa"]
    return {"seed": cfg["seed"], "vqa": {k: v[k] for k in sorted(v) if k not in ("train", "eval")},
            "bench": {b: {k: val for k, val in cfg["benchmarks"][b].items()
                          if k not in EVAL_ONLY_KEYS + LABEL_KEYS + ("demos", "demos_per_task")}
                      for b in v["benchmarks"]}}


def _base_model(cfg: dict, model: str) -> dict:
    return {k: v for k, v in cfg["models"][model].items()
            if k not in LABEL_KEYS + ("steps", "pretrain_steps")}


# --- pretrain_vlm: the embedded stand-in for a pretrained VLM -------------------------
# A model with init pretrain_vlm is the tiny architecture first trained as a VLM (LM head,
# answer-token loss) on `pretrain.tasks` of the VQA store; every stage then starts from
# that VLM folder (init aux), and its `--scratch` twin from the same random weights the
# pretraining started from.
PRETRAIN_VLM = "pretrain"  # the folder name under vlm_dir(model, ...)


def start_model(cfg: dict, model: str) -> dict:
    """models.<model> as the stages start from it (labels and step overrides dropped):
    init pretrain_vlm -> {init: aux, vlm: <its pretrain_vlm folder>}."""
    out = _base_model(cfg, model)
    if out.get("init") == "pretrain_vlm":
        out.update(init="aux", vlm=vlm_dir(model, PRETRAIN_VLM))
    return out


def pretrain_input(cfg: dict, model: str) -> list[str]:
    """The pretrain_vlm folder a model's stages start from (none unless init pretrain_vlm)."""
    return [vlm_dir(model, PRETRAIN_VLM)] if cfg["models"][model]["init"] == "pretrain_vlm" else []


def pretrain_jobs(cfg: dict) -> list[str]:
    """Models whose pretrain_vlm stage some run, VQA evaluation or stage 1 needs."""
    used = {parse_run(r)["model"] for _, r in all_runs(cfg)} | {m for m, _ in vqa_eval_jobs(cfg)} \
        | {m for m, _ in aux_vlm_jobs(cfg)} | {m for _, m, _ in stage1_jobs(cfg)}
    return sorted(m for m in used if cfg["models"][m]["init"] == "pretrain_vlm")


def pretrain_spec(cfg: dict, model: str) -> dict:
    mcfg = _base_model(cfg, model)
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
    return {"seed": cfg["seed"], "threads": cfg["threads"], "benchmark": benchmark,
            "chunk": cfg["benchmarks"][benchmark]["chunk"], "model_name": model, "stage1": stage1,
            "model": mcfg, "train": {**cfg["train"], "steps": exp["stage1_steps"]},
            "fast": exp["fast"]}


EVAL_VIEW_KEYS = ("workers", "videos_per_task")


def eval_spec(cfg: dict, benchmark: str, model: str) -> dict:
    # Left out on purpose: results are identical for any worker count, with or without videos.
    return {"seed": cfg["seed"], "benchmark": benchmark, "model_name": model,
            "bench": {k: v for k, v in cfg["benchmarks"][benchmark].items() if k not in LABEL_KEYS},
            "evaluate": {k: v for k, v in cfg["evaluate"].items() if k not in EVAL_VIEW_KEYS}}


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
            "paper_names": {m: c.get("paper_name") for m, c in sorted(cfg["models"].items())}
            if exp["x"] == "published" else {}}


def paper_spec(cfg: dict) -> dict:
    return {"models": {m: c.get("paper_name") for m, c in sorted(cfg["models"].items())},
            "benchmarks": {b: c.get("paper_name") for b, c in sorted(cfg["benchmarks"].items())}}


# --- code each stage runs (DVC dependencies; editing plotting code re-runs only plots) --
CODE_DEPS = {
    "prepare_demos": ["src/vlm4vla/sim", "src/vlm4vla/data/demos.py", "src/vlm4vla/data/episodes.py",
                      "src/vlm4vla/data/sources.py", "src/vlm4vla/data/libero_hdf5.py"],
    "finetune_vla": ["src/vlm4vla/models", "src/vlm4vla/train", "src/vlm4vla/data"],
    "evaluate": ["src/vlm4vla/eval", "src/vlm4vla/sim", "src/vlm4vla/models", "src/vlm4vla/train",
                 "src/vlm4vla/data/normalize.py"],
    "make_table": ["src/vlm4vla/report/tables.py", "src/vlm4vla/report/stats.py",
                   "src/vlm4vla/eval/metrics.py"],
    "figure_main": ["src/vlm4vla/report/figures.py"],
    "table_paper_vs_reproduced": ["src/vlm4vla/report/paper_compare.py", "src/vlm4vla/report/stats.py"],
    "generate_vqa": ["src/vlm4vla/data/vqa", "src/vlm4vla/sim", "src/vlm4vla/data/demos.py",
                     "src/vlm4vla/data/folder_store.py"],
    "finetune_vlm": ["src/vlm4vla/models", "src/vlm4vla/train", "src/vlm4vla/data/vqa",
                     "src/vlm4vla/eval/vqa_metrics.py"],
    "eval_vqa": ["src/vlm4vla/models", "src/vlm4vla/train", "src/vlm4vla/data/vqa",
                 "src/vlm4vla/eval/vqa_metrics.py"],
    "stage1_fast": ["src/vlm4vla/models", "src/vlm4vla/train", "src/vlm4vla/data"],
    "figure_aux": ["src/vlm4vla/report/aux.py", "src/vlm4vla/report/stats.py",
                   "src/vlm4vla/report/figures.py", "src/vlm4vla/eval/metrics.py"],
    "figure_capability": ["src/vlm4vla/report/capability.py", "src/vlm4vla/report/stats.py",
                          "src/vlm4vla/report/aux.py", "src/vlm4vla/report/figures.py"],
    "table_vision_supervision": ["src/vlm4vla/report/tables.py", "src/vlm4vla/report/stats.py",
                                 "src/vlm4vla/eval/metrics.py"],
}
for _deps in CODE_DEPS.values():  # every stage writes (and most read) artifacts through io.py
    _deps.append("src/vlm4vla/io.py")


def spec_param_keys(spec_fn, cfg: dict, *args) -> list[str]:
    """Dotted config keys behind a spec, for DVC's `params:` (leaf-level where it matters)."""
    if spec_fn is demo_spec:
        (b,) = args
        return ["seed"] + [f"benchmarks.{b}.{k}" for k in sorted(cfg["benchmarks"][b])
                           if k not in EVAL_ONLY_KEYS + LABEL_KEYS]
    if spec_fn is train_spec:
        b, m = args
        base = split_run(m)[0]
        return ["seed", "threads", f"benchmarks.{b}.chunk", f"benchmarks.{b}.augment",
                *(f"benchmarks.{b}.{k}" for k in BENCH_TRAIN_KEYS), "train"] + _model_keys(cfg, base)
    if spec_fn is vqa_data_spec:
        keys = ["seed"] + [f"vqa.{k}" for k in sorted(cfg["vqa"]) if k not in ("train", "eval")]
        for b in cfg["vqa"]["benchmarks"]:
            keys += [f"benchmarks.{b}.{k}" for k in sorted(cfg["benchmarks"][b])
                     if k not in EVAL_ONLY_KEYS + LABEL_KEYS + ("demos", "demos_per_task")]
        return keys
    if spec_fn is pretrain_spec:
        (m,) = args
        return ["seed", "threads", "pretrain"] + _model_keys(cfg, m)
    if spec_fn in (vlm_train_spec, vqa_eval_spec):
        m, _ = args
        return ["seed", "threads", "vqa.train" if spec_fn is vlm_train_spec else "vqa.eval"] + \
            _model_keys(cfg, m)
    if spec_fn is stage1_spec:
        b, m, _ = args
        return ["seed", "threads", f"benchmarks.{b}.chunk", "train",
                "experiments.vision_supervision"] + _model_keys(cfg, m)
    if spec_fn is aux_spec:
        return ["experiments.aux", "vqa.tasks"]
    if spec_fn is capability_spec:
        return ["experiments.capability"] + [f"models.{m}.paper_name" for m in sorted(cfg["models"])
                                             if "paper_name" in cfg["models"][m]]
    if spec_fn is eval_spec:
        b, m = args
        return ["seed", "evaluate.execute_chunk", "evaluate.batch_envs"] + \
            [f"benchmarks.{b}.{k}" for k in sorted(cfg["benchmarks"][b]) if k not in LABEL_KEYS]
    if spec_fn is paper_spec:
        return [f"models.{m}.paper_name" for m in sorted(cfg["models"]) if "paper_name" in cfg["models"][m]] + \
               [f"benchmarks.{b}.paper_name" for b in sorted(cfg["benchmarks"]) if "paper_name" in cfg["benchmarks"][b]]
    if spec_fn is table_spec:
        (table,) = args
        exp = "main" if table == "main" else table
        models = sorted({split_run(m)[0] for _, m in table_runs(cfg, table)})
        return [f"experiments.{exp}"] + [f"models.{m}" for m in models]
    raise ValueError(spec_fn)


def _model_keys(cfg: dict, model: str) -> list[str]:
    return [f"models.{model}.{k}" for k in sorted(cfg["models"][model]) if k not in LABEL_KEYS]

"""The stage graph, in one place, for both orchestrators.

Snakemake rules (rules/*.smk) and the DVC stage generator (workflow_scripts/make_dvc_yaml.py)
take artifact paths and "specs" from here, so the two tools cannot drift apart. A spec is
the exact config fragment a stage's result depends on: Snakemake gets it as a rule param
(change it -> that rule re-runs, nothing else), the stage's script reads its settings from
it, and DVC tracks the same keys as params.
"""

from __future__ import annotations

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

# Benchmark keys that only evaluation and training read: changing them must not re-collect
# demos. (eval_seed_offset stays: demo collection checks its seeds stay below it.)
EVAL_ONLY_KEYS = ("eval_episodes_per_task", "chunk")


def main_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, model) pairs of the main table, in a stable order."""
    exp = cfg["experiments"]["main"]
    return sorted((b, m) for b in exp["benchmarks"] for m in exp["models"])


# --- variants: a named model plus one paper ablation, e.g. "qwen25vl_tiny--freeze_vision" ----
VARIANT_SEP = "--"
VARIANTS = {
    "full": {},  # full fine-tuning of everything (the paper's default recipe)
    "freeze_vision": {"freeze": ["vision"]},
    "freeze_projector": {"freeze": ["projector"]},
    "freeze_llm": {"freeze": ["llm"]},
    "freeze_word_embeddings": {"freeze": ["word_embeddings"]},
    "scratch": {"init": "scratch"},  # same architecture, random weights
}


def run_name(model: str, variant: str) -> str:
    return model if variant == "full" else f"{model}{VARIANT_SEP}{variant}"


def model_cfg(cfg: dict, name: str) -> dict:
    """The model config behind a run name: a `models` entry, optionally with a variant."""
    base, sep, variant = name.partition(VARIANT_SEP)
    if base not in cfg["models"]:
        raise KeyError(f"unknown model {base!r} (defined under 'models': {', '.join(sorted(cfg['models']))})")
    out = dict(cfg["models"][base])
    if sep:
        if variant not in VARIANTS:
            raise KeyError(f"unknown variant {variant!r} in {name!r} (known: {', '.join(VARIANTS)})")
        extra = VARIANTS[variant]
        if "freeze" in extra:
            out["freeze"] = sorted(set(out.get("freeze", [])) | set(extra["freeze"]))
        if "init" in extra:
            out["init"] = extra["init"]
            out.pop("source", None)
    return out


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


# Result tables built from evaluation runs: name -> (runs, title, reference variant).
# The reference is what each row is compared against (Fisher exact test); None = no test.
RUN_TABLES = {
    "main": (main_runs, "Main results: backbone x benchmark", None),
    "ablation": (ablation_runs, "Modality ablation (Table 3): frozen parts vs full fine-tuning", "full"),
    "init": (init_runs, "VLM initialisation vs training from scratch", "full"),
}


def table_runs(cfg: dict, table: str) -> list[tuple[str, str]]:
    return RUN_TABLES[table][0](cfg)


def active_tables(cfg: dict) -> list[str]:
    """Tables whose experiment is configured (main always is)."""
    return [t for t in RUN_TABLES if table_runs(cfg, t)]


def split_run(name: str) -> tuple[str, str]:
    """run name -> (model, variant)."""
    base, sep, variant = name.partition(VARIANT_SEP)
    return base, (variant if sep else "full")


def all_runs(cfg: dict) -> list[tuple[str, str]]:
    return sorted({r for t in active_tables(cfg) for r in table_runs(cfg, t)})


# --- specs: what each stage depends on ---------------------------------------------
def demo_spec(cfg: dict, benchmark: str) -> dict:
    bench = {k: v for k, v in cfg["benchmarks"][benchmark].items()
             if k not in EVAL_ONLY_KEYS + LABEL_KEYS}
    return {"seed": cfg["seed"], "benchmark": benchmark, "bench": bench}


# Keys that only label results (reports), never change what a stage computes.
LABEL_KEYS = ("paper_name",)


def train_spec(cfg: dict, benchmark: str, model: str) -> dict:
    mcfg = {k: v for k, v in model_cfg(cfg, model).items() if k not in LABEL_KEYS}
    train = dict(cfg["train"])
    if "steps" in mcfg:  # per-model override (e.g. a slow real-size backbone)
        train["steps"] = mcfg.pop("steps")
    return {"seed": cfg["seed"], "threads": cfg["threads"], "benchmark": benchmark,
            "chunk": cfg["benchmarks"][benchmark]["chunk"], "model_name": model,
            "model": mcfg, "train": train}


EVAL_VIEW_KEYS = ("workers", "videos_per_task")


def eval_spec(cfg: dict, benchmark: str, model: str) -> dict:
    # Left out on purpose: results are identical for any worker count, with or without videos.
    return {"seed": cfg["seed"], "benchmark": benchmark, "model_name": model,
            "bench": {k: v for k, v in cfg["benchmarks"][benchmark].items() if k not in LABEL_KEYS},
            "evaluate": {k: v for k, v in cfg["evaluate"].items() if k not in EVAL_VIEW_KEYS}}


def table_spec(cfg: dict, table: str) -> dict:
    runs = table_runs(cfg, table)
    return {"table": table, "runs": [list(r) for r in runs],
            "models": {m: model_cfg(cfg, m) for m in sorted({m for _, m in runs})}}


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
    "table_paper_vs_reproduced": ["src/vlm4vla/report/paper_compare.py"],
}


def spec_param_keys(spec_fn, cfg: dict, *args) -> list[str]:
    """Dotted config keys behind a spec, for DVC's `params:` (leaf-level where it matters)."""
    if spec_fn is demo_spec:
        (b,) = args
        return ["seed"] + [f"benchmarks.{b}.{k}" for k in sorted(cfg["benchmarks"][b])
                           if k not in EVAL_ONLY_KEYS + LABEL_KEYS]
    if spec_fn is train_spec:
        b, m = args
        base = split_run(m)[0]
        return ["seed", "threads", f"benchmarks.{b}.chunk", "train"] + \
            [f"models.{base}.{k}" for k in sorted(cfg["models"][base]) if k not in LABEL_KEYS]
    if spec_fn is eval_spec:
        b, m = args
        return ["seed", "evaluate.execute_chunk"] + \
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

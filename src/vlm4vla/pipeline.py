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
FIGURE_MAIN = {"png": f"{RESULTS}/figures/main.png", "svg": f"{RESULTS}/figures/main.svg"}

# Benchmark keys that only evaluation and training read: changing them must not re-collect
# demos. (eval_seed_offset stays: demo collection checks its seeds stay below it.)
EVAL_ONLY_KEYS = ("eval_episodes_per_task", "chunk")


def main_runs(cfg: dict) -> list[tuple[str, str]]:
    """(benchmark, model) pairs of the main table, in a stable order."""
    exp = cfg["experiments"]["main"]
    return sorted((b, m) for b in exp["benchmarks"] for m in exp["models"])


# --- specs: what each stage depends on ---------------------------------------------
def demo_spec(cfg: dict, benchmark: str) -> dict:
    bench = {k: v for k, v in cfg["benchmarks"][benchmark].items() if k not in EVAL_ONLY_KEYS}
    return {"seed": cfg["seed"], "benchmark": benchmark, "bench": bench}


def train_spec(cfg: dict, benchmark: str, model: str) -> dict:
    return {"seed": cfg["seed"], "threads": cfg["threads"], "benchmark": benchmark,
            "chunk": cfg["benchmarks"][benchmark]["chunk"], "model_name": model,
            "model": cfg["models"][model], "train": cfg["train"]}


def eval_spec(cfg: dict, benchmark: str, model: str) -> dict:
    # `workers` is left out on purpose: results are identical for any worker count.
    return {"seed": cfg["seed"], "benchmark": benchmark, "model_name": model,
            "bench": cfg["benchmarks"][benchmark],
            "evaluate": {k: v for k, v in cfg["evaluate"].items() if k != "workers"}}


def table_main_spec(cfg: dict) -> dict:
    return {"runs": [list(r) for r in main_runs(cfg)],
            "models": {m: cfg["models"][m] for m in cfg["experiments"]["main"]["models"]}}


# --- code each stage runs (DVC dependencies; editing plotting code re-runs only plots) --
CODE_DEPS = {
    "prepare_demos": ["src/vlm4vla/sim", "src/vlm4vla/data/demos.py", "src/vlm4vla/data/episodes.py"],
    "finetune_vla": ["src/vlm4vla/models", "src/vlm4vla/train", "src/vlm4vla/data"],
    "evaluate": ["src/vlm4vla/eval", "src/vlm4vla/sim", "src/vlm4vla/models", "src/vlm4vla/train",
                 "src/vlm4vla/data/normalize.py"],
    "table_main": ["src/vlm4vla/report/tables.py", "src/vlm4vla/eval/metrics.py"],
    "figure_main": ["src/vlm4vla/report/figures.py"],
}


def spec_param_keys(spec_fn, cfg: dict, *args) -> list[str]:
    """Dotted config keys behind a spec, for DVC's `params:` (leaf-level where it matters)."""
    if spec_fn is demo_spec:
        (b,) = args
        return ["seed"] + [f"benchmarks.{b}.{k}" for k in sorted(cfg["benchmarks"][b])
                           if k not in EVAL_ONLY_KEYS]
    if spec_fn is train_spec:
        b, m = args
        return ["seed", "threads", f"benchmarks.{b}.chunk", f"models.{m}", "train"]
    if spec_fn is eval_spec:
        b, m = args
        return ["seed", f"benchmarks.{b}", "evaluate.execute_chunk"]
    if spec_fn is table_main_spec:
        return ["experiments.main"] + [f"models.{m}" for m in cfg["experiments"]["main"]["models"]]
    raise ValueError(spec_fn)

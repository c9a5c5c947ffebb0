"""Artifact paths of every stage, relative to the repository root (never absolute in
artifacts, so a moved checkout re-runs nothing)."""

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


AUX_TABLE, CAPABILITY_TABLE = (table_paths(n) for n in ("aux", "capability"))
CAPABILITY_CORR = f"{RESULTS}/tables/capability_correlations.csv"
FIGURE_AUX = {"png": f"{RESULTS}/figures/aux.png", "svg": f"{RESULTS}/figures/aux.svg"}
FIGURE_CAPABILITY = {"png": f"{RESULTS}/figures/capability.png",
                     "svg": f"{RESULTS}/figures/capability.svg"}
GENERAL_SCORES = "config/data/general_capability.csv"  # published scores (capability x: published)

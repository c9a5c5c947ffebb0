"""The run-name grammar (`<model>[--<modifier>]*`) and the model config a run name stands
for: its start point (pretrained, scratch, an aux-tuned or stage-1 VLM), freezing, seed."""

from __future__ import annotations

from .paths import fast_vlm_dir, vlm_dir
from .trace import pick, without


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


def model_cfg(cfg: dict, name: str, benchmark: str | None = None, labels: bool = True) -> dict:
    """The model config behind a run name: a `models` entry with its modifiers applied.
    `benchmark` is needed for fast_* runs (stage 1 is trained on that benchmark's demos);
    labels=False leaves out LABEL_KEYS (what a training computes never reads them)."""
    run = parse_run(name)
    base = run["model"]
    if base not in cfg["models"]:
        raise KeyError(f"unknown model {base!r} (defined under 'models': {', '.join(sorted(cfg['models']))})")
    out = start_model(cfg, base)
    out.update(pick(cfg["models"][base], (LABEL_KEYS if labels else ()) + ("steps",)))
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


def seeded(run: str, k: int) -> str:
    return run if k == 0 else f"{run}{VARIANT_SEP}{SEED_PREFIX}{k}"


def split_run(name: str) -> tuple[str, str]:
    """run name -> (model, variant)."""
    base, sep, variant = name.partition(VARIANT_SEP)
    return base, (variant if sep else "full")


def start_vlm(run: str) -> tuple[str, str]:
    """(model, vlm) whose VQA metrics describe the VLM a run starts from."""
    p = parse_run(run)
    return p["model"], (p["start"] if p["start"] and p["start"].startswith(AUX_PREFIX) else "base")


# Keys that only label results (reports), never change what a stage computes.
LABEL_KEYS = ("paper_name",)


def base_model_cfg(cfg: dict, model: str) -> dict:
    return without(cfg["models"][model], LABEL_KEYS + ("steps", "pretrain_steps"))


# --- pretrain_vlm: the embedded stand-in for a pretrained VLM -------------------------
# A model with init pretrain_vlm is the tiny architecture first trained as a VLM (LM head,
# answer-token loss) on `pretrain.tasks` of the VQA store; every stage then starts from
# that VLM folder (init aux), and its `--scratch` twin from the same random weights the
# pretraining started from.
PRETRAIN_VLM = "pretrain"  # the folder name under vlm_dir(model, ...)


def start_model(cfg: dict, model: str) -> dict:
    """models.<model> as the stages start from it (labels and step overrides dropped):
    init pretrain_vlm -> {init: aux, vlm: <its pretrain_vlm folder>}."""
    out = base_model_cfg(cfg, model)
    if out.get("init") == "pretrain_vlm":
        out.update(init="aux", vlm=vlm_dir(model, PRETRAIN_VLM))
    return out


def pretrain_input(cfg: dict, model: str) -> list[str]:
    """The pretrain_vlm folder a model's stages start from (none unless init pretrain_vlm)."""
    return [vlm_dir(model, PRETRAIN_VLM)] if cfg["models"][model]["init"] == "pretrain_vlm" else []

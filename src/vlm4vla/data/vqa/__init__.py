"""Auxiliary embodied VQA data (paper Figure 4): one record format, an on-disk store,
generators from Meta-World and LIBERO simulator ground truth, and loaders for the paper's
datasets.

    records.py        VQARecord, write_vqa_store, VQAStore (frames.npy + masks.npy +
                      records.jsonl + meta.json, sha256-verified like the episode store)
    metaworld_gen.py  generate_vqa(bench_cfg, tasks_cfg, out_dir, seed): pointing, depth,
                      embodied_qa, general_vqa from the policy's own camera
    libero_gen.py     the same interface and tasks in LIBERO's scenes (agentview frames,
                      official initial states held out from the policy's evaluation), in
                      parts: libero_scene.py (camera, aligned depth / segmentation renderer,
                      items, initial-state split), libero_truth.py (one state's ground
                      truth), libero_questions.py (question templates)
    common.py         what both generators share (camera model, erosion, quotas)
    loaders.py        RoboPoint / Robo2VLM / Vica-332k / BridgeVQA-style files -> records
generate_records_for / generate_vqa_for(bench_cfg, ...) pick the generator of
bench_cfg["plugin"] (GENERATORS); loaders.file_records reads `vqa.files` entries.
Metrics live in vlm4vla.eval.vqa_metrics.
"""

from importlib import import_module

from vlm4vla.data.vqa.records import (  # noqa: F401
    SPLITS, VQA_TASKS, VQARecord, VQAStore, write_vqa_store)

# simulator plugin -> generator module (imported on use: each pulls in its simulator)
GENERATORS = {"metaworld": "vlm4vla.data.vqa.metaworld_gen",
              "libero": "vlm4vla.data.vqa.libero_gen"}


class NoGeneratorError(ValueError):
    """A benchmark's simulator plugin has no VQA generator."""


def generator_for(plugin: str):
    """The generator module of a simulator plugin; NoGeneratorError naming it if there is none."""
    if plugin not in GENERATORS:
        raise NoGeneratorError(f"no VQA generator for simulator plugin {plugin!r}; generators exist "
                         f"for {sorted(GENERATORS)} (give other data as vqa.files instead)")
    return import_module(GENERATORS[plugin])


def generate_records_for(bench_cfg: dict, tasks_cfg: dict, seed: int, stats: dict) -> list:
    """generate_records of the generator for bench_cfg["plugin"]: the records (both splits)
    of that benchmark's scenes, filling `stats`."""
    return generator_for(bench_cfg.get("plugin")).generate_records(bench_cfg, tasks_cfg, seed, stats)


def generate_vqa_for(bench_cfg: dict, tasks_cfg: dict, out_dir, seed: int) -> dict:
    """generate_vqa of the generator for bench_cfg["plugin"] (metaworld_gen or libero_gen):
    writes the VQA store at `out_dir` and returns its stats."""
    return generator_for(bench_cfg.get("plugin")).generate_vqa(bench_cfg, tasks_cfg, out_dir, seed)

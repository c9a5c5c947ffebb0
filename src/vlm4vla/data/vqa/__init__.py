"""Auxiliary embodied VQA data (paper Figure 4): one record format, an on-disk store,
generators from Meta-World simulator ground truth, and loaders for the paper's datasets.

    records.py        VQARecord, write_vqa_store, VQAStore (frames.npy + masks.npy +
                      records.jsonl + meta.json, sha256-verified like the episode store)
    metaworld_gen.py  generate_vqa(bench_cfg, tasks_cfg, out_dir, seed): pointing, depth,
                      embodied_qa, general_vqa from the policy's own camera
    loaders.py        RoboPoint / Robo2VLM / Vica-332k / BridgeVQA-style files -> records
Metrics live in vlm4vla.eval.vqa_metrics.
"""

from vlm4vla.data.vqa.records import (  # noqa: F401
    SPLITS, VQA_TASKS, VQARecord, VQAStore, write_vqa_store)

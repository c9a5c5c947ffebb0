"""Auxiliary embodied VQA (paper Figure 4): fine-tune the VLM on VQA, then evaluate it.

train_vqa fine-tunes the VLM (backbone + LM head, models/vqa_head.py) on the train split of
a VQA store (vlm4vla.data.vqa), with the VLA trainer's loop (train/loop.py: deterministic,
exact resume from state_dir) and freeze switches (model_cfg["freeze"]). Output folder,
written to a temporary sibling and renamed into place (all deterministic):
    vlm.safetensors   weights under HF ...ForConditionalGeneration names (model.*, lm_head.weight)
    tokenizer.json    the backbone's tokenizer
    vlm.json          backbone name + config, model_cfg, train_cfg, tasks, steps, seed, ...
    train_log.jsonl   {"step", "loss", "lr"} every log_every steps
A VLA starts from it with model_cfg {init: aux, vlm: <that folder>} (models/policy.py).

evaluate_vqa greedy-decodes the answers of a split and scores them with
vlm4vla.eval.vqa_metrics.score -> {vqa_task: metrics}; writes predictions.jsonl and
metrics.json (no timestamps: same inputs -> same bytes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.vqa.records import VQAStore
from ..eval.vqa_metrics import score
from ..io import atomic_dir, write_json, write_jsonl
from ..models.vqa_head import VLM_FORMAT, VQAModel, vlm_digest
from .loop import EpochSampler, LoopConfig, config_hash, run_loop, set_determinism


def select_rows(store: VQAStore, split: str, tasks: list[str] | None) -> list[int]:
    """Indices of the store's records in `split` (and in `tasks` if given), store order."""
    if tasks is not None:
        known = sorted(store.meta.get("counts", {}))
        unknown = sorted(set(tasks) - set(known))
        if unknown:
            raise ValueError(f"VQA task(s) {unknown} not in {store.path}; it has: {', '.join(known)}")
    idx = [i for i, r in enumerate(store.rows)
           if r["split"] == split and (tasks is None or r["task"] in tasks)]
    if not idx:
        raise ValueError(f"no {split!r} records{' for ' + str(sorted(tasks)) if tasks else ''} "
                         f"in {store.path}")
    return idx


def _batch(store: VQAStore, rows: list[int], picked: list[int]) -> dict:
    recs = [store.rows[rows[i]] for i in picked]
    return {"frames": np.stack([store.frames[r["frame"]] for r in recs]),
            "questions": [r["question"] for r in recs], "answers": [r["answer"] for r in recs]}


def _vqa_loss(model, batch: dict) -> dict:
    # model(...) (= VQAModel.vqa_loss), not model.vqa_loss: goes through a DDP wrapper
    return {"loss": model(batch["frames"], batch["questions"], batch["answers"])}


def _store_digest(store: VQAStore) -> dict:
    return {name: f["sha256"] for name, f in sorted(store.meta["files"].items())}


def train_vqa(model_cfg: dict, train_cfg: dict, vqa_dir, out_dir, state_dir, seed: int,
              threads: int, tasks: list[str] | None = None, progress=None) -> dict:
    """Fine-tune the VLM of `model_cfg` on the train split of the VQA store `vqa_dir`
    (only the VQA tasks in `tasks` if given). train_cfg: steps, batch_size, lr,
    warmup_steps, grad_clip, weight_decay, checkpoint_every, log_every (loop.LoopConfig).
    Returns the vlm.json content (also written to out_dir)."""
    set_determinism(threads)
    store = VQAStore(vqa_dir)
    tasks = None if tasks is None else sorted(set(tasks))
    rows = select_rows(store, "train", tasks)
    cfg = LoopConfig.from_train_cfg(train_cfg)
    model = VQAModel.build(model_cfg, seed)
    sampler = EpochSampler(len(rows), int(train_cfg["batch_size"]), seed)
    key = config_hash({"kind": "vqa", "model_cfg": model_cfg, "train_cfg": train_cfg, "seed": seed,
                       "threads": threads, "tasks": tasks, "format": VLM_FORMAT,
                       "vqa": _store_digest(store),
                       # a start VLM folder (init aux: e.g. the pretrain_vlm one) by its weights
                       **({"start": vlm_digest(model_cfg)} if model_cfg.get("init") == "aux" else {})})
    log = run_loop(model, _vqa_loss, sampler, lambda picked: _batch(store, rows, picked), cfg,
                   state_dir, key, progress, seed=seed)
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under `accelerate launch` one process writes
        return {}

    return write_vlm_folder(model, out_dir, log, {
        "model_cfg": model_cfg, "train_cfg": train_cfg, "seed": seed, "steps": cfg.steps,
        "tasks": tasks, "train_records": len(rows), "vqa_store": _store_digest(store),
        "param_counts": model.param_counts()})


def write_vlm_folder(model: VQAModel, out_dir, log: list[dict], info: dict, extra=None) -> dict:
    """Write a tuned VLM folder (model.save + train_log.jsonl, then `extra(tmp)` for any
    further files) into a temporary sibling and rename it into place: a reader never sees
    half a folder. Returns the vlm.json content."""
    with atomic_dir(out_dir) as tmp:
        meta = model.save(tmp, info)
        write_jsonl(tmp / "train_log.jsonl", log)
        if extra is not None:
            extra(tmp)
    return meta


def load_vqa_model(vlm, seed: int = 0) -> VQAModel:
    """A VQAModel from a VLM folder (path), a model_cfg (dict: built under `seed`, e.g. the
    untrained or pretrained baseline) or an existing VQAModel."""
    if isinstance(vlm, VQAModel):
        return vlm
    if isinstance(vlm, dict):
        return VQAModel.build(vlm, seed)
    return VQAModel.load(vlm)


def predict_vqa(model: VQAModel, store: VQAStore, rows: list[int], batch_size: int = 16,
                max_new_tokens: int = 48, use_cache: bool | None = None) -> list[str]:
    """Greedy answers of `rows`, batch by batch. use_cache None: decode on the KV cache when
    the backbone has it (the same answers as the full forward per token, tested in
    tests/test_vqa_cache.py and test_vqa_train.py), else with the full forward."""
    if use_cache is None:
        use_cache = bool(getattr(model.backbone, "supports_kv_cache", False))
    preds: list[str] = []
    for start in range(0, len(rows), batch_size):
        b = _batch(store, rows, list(range(start, min(start + batch_size, len(rows)))))
        preds += model.answer(b["frames"], b["questions"], max_new_tokens, use_cache=use_cache)
    return preds


def evaluate_vqa(vlm, vqa_dir, split: str = "eval", out_dir=None, tasks: list[str] | None = None,
                 batch_size: int = 16, max_new_tokens: int = 48, threads: int = 1,
                 seed: int = 0, use_cache: bool | None = None) -> dict:
    """Greedy-decode the answers of `split` (optionally only `tasks`) and score them:
    -> {vqa_task: {"n", "accuracy", <kind metrics>}} (vlm4vla.eval.vqa_metrics.score).
    `vlm`: a VLM folder, a model_cfg dict (built under `seed`) or a VQAModel. With out_dir,
    writes predictions.jsonl (id, task, question, answer, prediction) and metrics.json.
    use_cache: see predict_vqa (None: the KV cache where the backbone supports it)."""
    set_determinism(threads)
    model = load_vqa_model(vlm, seed)
    model.eval()
    store = VQAStore(vqa_dir)
    rows = select_rows(store, split, None if tasks is None else sorted(set(tasks)))
    preds = predict_vqa(model, store, rows, batch_size, max_new_tokens, use_cache)
    records = [store.record(i) for i in rows]
    metrics = score(records, preds)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_jsonl(out_dir / "predictions.jsonl",
                    ({"id": r.id, "task": r.task, "question": r.question, "answer": r.answer,
                      "prediction": p} for r, p in zip(records, preds)), ensure_ascii=False)
        write_json(out_dir / "metrics.json", metrics)
    return metrics

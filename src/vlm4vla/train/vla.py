"""Train a VLA policy on an episode store, and load a trained one for rollouts.

Outputs in `out_dir` (each written to a temp file and renamed):
    policy.safetensors   all weights (backbone, ActionQuery, head)
    tokenizer.json       the backbone's tokenizer (the folder is self-contained, no download)
    policy.json          model_cfg, chunk, norm stats, param counts, steps, backbone config
    train_log.jsonl      {"step", "loss", "arm", "gripper", "lr"} every log_every steps
    train_log.csv        the same rows as CSV (what `dvc plots` reads: the loss curves)
All five are deterministic: same inputs -> same bytes. Wall-clock data (TensorBoard
events) and the resumable checkpoint live in `state_dir`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..data.augment import augment_frames, center_crop, is_off
from ..data.dataset import ChunkDataset
from ..data.episodes import EpisodeStore
from ..data.normalize import ActionNormalizer
from ..io import atomic_path, atomic_write_text, read_json, write_json, write_jsonl
from ..models.backbones import get_backbone
from ..models.losses import action_loss
from ..models.policy import PAPER_HEAD_WIDTH, VLAPolicy
from ..models.vqa_head import vlm_digest
from .loop import EpochSampler, LoopConfig, config_hash, run_loop, set_determinism

POLICY_FORMAT = 1


def _vla_loss(model, batch: dict) -> dict:
    arm, grip = model(batch["frames"], batch["instructions"])
    return action_loss(arm, grip, batch["actions"].to(arm.device), batch["mask"].to(arm.device))


def train_vla(model_cfg: dict, train_cfg: dict, chunk: int, demos_dir, out_dir, state_dir,
              seed: int, threads: int, progress: bool | None = None,
              backbone_seed: int | None = None, augment: dict | None = None,
              action_norm: dict | None = None) -> dict:
    """Train one policy; return the policy.json content (also written to out_dir).
    `backbone_seed`: see VLAPolicy.build (seed<k> runs share the seed-0 random backbone).
    `augment`: the benchmark's image augmentation (data/augment.py); its evaluation centre
    crop is stored in policy.json, so the loaded policy applies it itself. `action_norm`: the
    benchmark's action normalisation (data/normalize.py: from_config; stored in policy.json)."""
    set_determinism(threads)
    store = EpisodeStore(demos_dir)
    normalizer = ActionNormalizer.from_config(action_norm, np.asarray(store.actions))
    dataset = ChunkDataset(store, chunk, normalizer)
    cfg = LoopConfig.from_train_cfg(train_cfg, lr=model_cfg.get("lr"), precision=model_cfg.get("precision"))
    policy = VLAPolicy.build(model_cfg, chunk, seed, backbone_seed)
    sampler = EpochSampler(len(dataset), int(train_cfg["batch_size"]), seed)
    # Resume only into the very same run: config, data (array checksums), seed, threads.
    key = config_hash({"model_cfg": model_cfg, "train_cfg": train_cfg, "chunk": chunk,
                       "seed": seed, "threads": threads, "policy_format": POLICY_FORMAT,
                       **({"backbone_seed": backbone_seed} if backbone_seed is not None else {}),
                       "demos": {k: v["sha256"] for k, v in store.meta["arrays"].items()},
                       # an aux-tuned start point is identified by its weights, not its path
                       "vlm": vlm_digest(model_cfg),
                       **({"augment": augment} if augment and not is_off(augment) else {}),
                       **({"action_norm": action_norm} if action_norm else {})})

    def get_batch(indices):
        batch = dataset.batch(indices)
        batch["frames"] = augment_frames(batch["frames"], augment)
        return batch

    rows = run_loop(policy, _vla_loss, sampler, get_batch, cfg, state_dir, key, progress,
                    seed=seed)
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under `accelerate launch` one process writes
        return {}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in policy.state_dict().items()}
    with atomic_path(out_dir / "policy.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    atomic_write_text(out_dir / "tokenizer.json", policy.backbone.tokenizer.to_str())
    info = {"format": POLICY_FORMAT, "model_cfg": model_cfg, "chunk": int(chunk),
            "norm_stats": normalizer.to_dict(), "param_counts": policy.param_counts(),
            "steps": cfg.steps, "seed": seed, "backbone": model_cfg["backbone"],
            "image_size": int(store.frames.shape[1]),  # the frames it was trained on
            **({"backbone_seed": backbone_seed} if backbone_seed is not None else {}),
            **({"augment": augment} if augment and (not is_off(augment)
                                                    or augment.get("eval_center_crop", 1.0) < 1.0) else {}),
            "backbone_config": policy.backbone.saved_config()}
    write_json(out_dir / "policy.json", info, default=str)
    write_jsonl(out_dir / "train_log.jsonl", rows)
    atomic_write_text(out_dir / "train_log.csv", log_csv(rows))
    return info


def log_csv(rows: list[dict]) -> str:
    """Training-log rows as CSV: sorted columns, numbers in their shortest exact form."""
    keys = sorted({k for r in rows for k in r})

    def cell(v) -> str:
        return "" if v is None else json.dumps(v)  # the log holds numbers only

    return ",".join(keys) + "\n" + "".join(",".join(cell(r.get(k)) for k in keys) + "\n" for r in rows)


class LoadedPolicy:
    """A trained policy for inference: eval mode, no grad, env action units."""

    def __init__(self, policy: VLAPolicy, normalizer: ActionNormalizer, info: dict):
        self.policy, self.normalizer, self.info = policy, normalizer, info
        self.chunk = policy.chunk
        # the evaluation-time crop of the recipe it was trained with (LIBERO: 0.9 of the area)
        self.eval_crop = float((info.get("augment") or {}).get("eval_center_crop", 1.0))
        # the crop resizes to the training frames' size (frames rendered larger, e.g. LIBERO's
        # 256, come out as the 224 the policy learned on); older policies: back to input size
        self.image_size = info.get("image_size")

    @torch.no_grad()
    def act(self, frames, instructions: list[str]) -> np.ndarray:
        """frames uint8 (B,H,W,3), B instructions -> float32 (B, chunk, 7): arm deltas in env
        units, gripper +1 close / -1 open."""
        arm, grip = self.policy(center_crop(frames, self.eval_crop, self.image_size), list(instructions))
        return self.normalizer.unnormalize(arm.float().cpu().numpy(),
                                           torch.sigmoid(grip.float()).cpu().numpy())


def load_policy(policy_dir, threads: int = 1) -> LoadedPolicy:
    """Rebuild a policy from its folder (no network). Usable as
    functools.partial(load_policy, path) in worker processes."""
    set_determinism(threads)
    policy_dir = Path(policy_dir)
    info = read_json(policy_dir / "policy.json")
    backbone = get_backbone(info["backbone"]).from_saved(
        info["backbone_config"], (policy_dir / "tokenizer.json").read_text())
    policy = VLAPolicy(backbone, info["chunk"], freeze=(),
                       head_width=info["model_cfg"].get("head_width") or PAPER_HEAD_WIDTH)
    policy.load_state_dict(load_file(str(policy_dir / "policy.safetensors")), strict=True)
    policy.eval()
    for p in policy.parameters():
        p.requires_grad_(False)
    return LoadedPolicy(policy, ActionNormalizer.from_dict(info["norm_stats"]), info)

"""A small, generic, resumable and deterministic training loop.

Why it exists instead of a framework trainer: VLM4VLA's recipe is plain (AdamW, linear
warm-up then constant lr, grad clip 1.0; a cosine decay is the embedded scale's option) and we need two properties frameworks make hard:
  * bit-for-bit determinism: same inputs -> byte-identical weights and log;
  * exact resume: killed at any step, restarted, it ends with the SAME weights as an
    uninterrupted run. The checkpoint therefore holds everything that evolves: weights,
    AdamW moments, scheduler, all RNG states and the batch sampler's state.
Checkpoints go to `state_dir` (never the rule's outputs: Snakemake deletes the declared
outputs of a killed job), written to a temp file and renamed, so a kill mid-save leaves the
previous checkpoint intact. A checkpoint is only resumed if its config hash matches.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import schema_default
from ..io import atomic_path

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    lr: float
    warmup_steps: int = 0
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    checkpoint_every: int = 0  # 0: only at the end
    log_every: int = 10
    # the schema declares these two defaults (config/schema.yaml train.*); not repeated here
    grad_accum: int = field(default_factory=lambda: schema_default("train", "grad_accum"))
    # micro-batches per optimizer step (gradients summed, sample-weighted)
    lr_schedule: str = field(default_factory=lambda: schema_default("train", "lr_schedule"))
    # after warm-up: "constant" (the paper) or "cosine" (to 0)
    precision: str = "bf16"  # GPU mixed precision (models.<m>.precision); CPU runs fp32

    @classmethod
    def from_train_cfg(cls, train_cfg: dict, lr: float | None = None,
                       precision: str | None = None) -> "LoopConfig":
        """From a `train`-shaped config section; keys it lacks keep the field defaults above
        (a validated config has them all; library callers may pass fewer)."""
        cast = {"int": int, "float": float, "str": str}  # the field annotations, as text
        kw = {f.name: cast[f.type](train_cfg[f.name]) for f in fields(cls)
              if f.name not in ("steps", "lr") and f.name in train_cfg}
        if precision is not None:  # a model's own (official: fp16 for PaliGemma / Kosmos-2)
            kw["precision"] = precision
        return cls(steps=int(train_cfg["steps"]), lr=float(lr if lr is not None else train_cfg["lr"]), **kw)


PRECISIONS = ("bf16", "fp16")


def mixed_precision(cuda: bool, precision: str) -> str:
    """accelerate's mixed_precision: fp32 on CPU; on a GPU the model's precision (the official
    runs: bf16, fp16 for PaliGemma and Kosmos-2: configs/*/finetune_*.json trainer.precision)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: known {', '.join(PRECISIONS)}")
    return precision if cuda else "no"


def set_determinism(threads: int) -> None:
    """Deterministic kernels and a fixed thread count (reductions depend on it)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by CUDA determinism
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(int(threads))


LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, warmup_steps: int, steps: int) -> Callable[[int], float]:
    """lr factor for optimizer step s (0-based): (s+1)/warmup during warm-up, then 1
    ("constant", the official recipe) or a half cosine from 1 towards 0 over the remaining
    steps ("cosine": the last step's factor is small but not 0, so no step is wasted).
    Why cosine exists: with a constant lr the last iterate of a small policy moves a lot
    from step to step, and its success with it (docs/learning.md section 9)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule '{schedule}' is not one of {', '.join(LR_SCHEDULES)}")
    decay = max(1, steps - warmup_steps)

    def factor(s: int) -> float:
        if warmup_steps > 0 and s < warmup_steps:
            return (s + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * (s - warmup_steps) / decay))
    return factor


class EpochSampler:
    """Batches of indices from seeded permutations (each sample once per epoch). Its whole
    state (generator, current permutation, cursor) is checkpointed for exact resume."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if n < 1:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.batch_size = int(n), int(batch_size)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.perm = torch.randperm(self.n, generator=self.generator)
        self.pos = 0

    def next(self) -> list[int]:
        out: list[int] = []
        while len(out) < self.batch_size:
            if self.pos == self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.generator), 0
            take = min(self.batch_size - len(out), self.n - self.pos)
            out += self.perm[self.pos:self.pos + take].tolist()
            self.pos += take
        return out

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, s: dict) -> None:
        self.generator.set_state(s["generator"])
        self.perm, self.pos = s["perm"].clone(), int(s["pos"])


def _rng_state() -> dict:
    s = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def run_loop(model: torch.nn.Module, compute_loss: Callable[[torch.nn.Module, dict], dict],
             sampler: EpochSampler, get_batch: Callable[[list[int]], dict], cfg: LoopConfig,
             state_dir: str | Path, config_hash: str, progress: bool | None = None,
             tensorboard: bool = True, seed: int | None = None) -> list[dict]:
    """Train `model` in place for cfg.steps optimizer steps; return the log rows
    [{"step", "loss", ..., "lr"}] every cfg.log_every steps (and at the last step).

    compute_loss(model, batch) -> dict of scalar tensors with key "loss" (others logged).
    """
    from accelerate import Accelerator  # imported here: keeps `import vlm4vla.train` light

    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = state_dir / CHECKPOINT
    cuda = torch.cuda.is_available()
    accelerator = Accelerator(cpu=not cuda, mixed_precision=mixed_precision(cuda, cfg.precision))
    params = [p for p in model.parameters() if p.requires_grad]
    # fused AdamW: one kernel over all parameters instead of several per tensor (12-26%
    # faster steps on the tiny CPU models, measured in benchmarks/trainer_overhead.py)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg.lr_schedule, cfg.warmup_steps,
                                                                     cfg.steps))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    raw = accelerator.unwrap_model(model)

    if seed is not None:
        # Dropout and any other sampling draw from the global RNGs: seed them, so a run does
        # not depend on what the process did before (a resume restores them below).
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
    start, rows = 0, []
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt.get("config_hash") == config_hash:
            raw.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            sampler.load_state_dict(ckpt["sampler"])
            _set_rng_state(ckpt["rng"])
            start, rows = int(ckpt["step"]), list(ckpt["log"])
            _say(f"resuming from {ckpt_path} at step {start}/{cfg.steps}")
        else:
            _say(f"ignoring {ckpt_path}: it belongs to another configuration")
        del ckpt

    def save(step: int) -> None:
        atomic_torch_save({"config_hash": config_hash, "step": step, "model": raw.state_dict(),
                           "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                           "sampler": sampler.state_dict(), "rng": _rng_state(), "log": rows},
                          ckpt_path)

    # TensorBoard events carry wall-clock timestamps: they live in state_dir, never among
    # the deterministic artifacts. purge_step drops events of steps redone after a resume.
    writer = None
    if tensorboard and start < cfg.steps and accelerator.is_main_process:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(state_dir / "tensorboard"), purge_step=start + 1)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress and accelerator.is_main_process:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, initial=start, desc="train", dynamic_ncols=True)

    model.train()
    # Under `accelerate launch` every process draws the same global batch from the shared
    # seeded sampler and trains on its own slice; DDP averages the gradients. With one
    # process the slice is the whole batch, so single-device results are unchanged.
    rank, world = accelerator.process_index, accelerator.num_processes
    main = accelerator.is_main_process
    if world > 1 and main:
        _say(f"data parallel over {world} processes ({accelerator.distributed_type}): each step's "
             f"batch is split between them")
    for step in range(start + 1, cfg.steps + 1):
        indices = sampler.next()[rank::world]
        lr = optimizer.param_groups[0]["lr"]
        optimizer.zero_grad(set_to_none=True)
        losses = accumulate(model, compute_loss, get_batch, indices, cfg.grad_accum, accelerator)
        if cfg.grad_clip > 0:
            accelerator.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {"step": step, **{k: float(v.detach()) for k, v in losses.items()}, "lr": lr}
            rows.append(row)
            if writer is not None:
                for k, v in row.items():
                    if k != "step":
                        writer.add_scalar(f"train/{k}", v, step)
            if bar is None and main:
                _say(f"step {step}/{cfg.steps} loss {row['loss']:.5f} lr {lr:.3g}")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(losses['loss'].detach()):.4f}", refresh=False)
        if main and (step == cfg.steps or (cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0)):
            save(step)
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    accelerator.wait_for_everyone()
    model.eval()
    return rows


def micro_batches(indices: list[int], n: int) -> list[list[int]]:
    """`indices` cut into at most n consecutive, nearly equal, non-empty slices."""
    n = max(1, min(int(n), len(indices)))
    q, r = divmod(len(indices), n)
    cuts = [i * q + min(i, r) for i in range(n + 1)]
    return [indices[a:b] for a, b in zip(cuts, cuts[1:])]


def accumulate(model, compute_loss, get_batch, indices: list[int], n: int, accelerator) -> dict:
    """Forward + backward over `indices` in n micro-batches; each loss is weighted by its
    share of the samples, so the summed gradient is the gradient of the whole batch's
    sample-mean loss (exactly, for a loss averaged over samples). Returns the weighted
    losses (detached for n > 1). Under DDP only the last pass synchronises gradients."""
    parts = micro_batches(indices, n)
    if len(parts) == 1:  # the plain step (bit-identical to a loop without accumulation)
        with accelerator.autocast():
            losses = compute_loss(model, get_batch(parts[0]))
        accelerator.backward(losses["loss"])
        return losses
    total: dict = {}
    for i, part in enumerate(parts):
        w = len(part) / len(indices)
        sync = accelerator.no_sync(model) if i < len(parts) - 1 else contextlib.nullcontext()
        with sync, accelerator.autocast():
            losses = compute_loss(model, get_batch(part))
            accelerator.backward(losses["loss"] * w)
        for k, v in losses.items():
            total[k] = total.get(k, 0.0) + v.detach() * w
    return total


def _say(msg: str) -> None:
    print(f"[train] {msg}", file=sys.stderr, flush=True)


def config_hash(obj) -> str:
    import hashlib
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()

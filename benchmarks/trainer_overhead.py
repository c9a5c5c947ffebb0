"""Per-step time of the real trainer (vlm4vla.train.loop.run_loop) vs a bare PyTorch loop.

Both train the same policy (same seed) on the same batches (same sampler seed):
forward + loss + backward + grad clip + AdamW step. The trainer adds accelerate, the lr
scheduler, logging (every log_every), TensorBoard and the progress/sampler bookkeeping.
Step time of the trainer = interval between successive batch fetches (so it includes all
per-step overhead); the first `--warmup` steps of each are dropped, and the median is taken.
Checkpoints (every 100 steps in the default config) are not in the window.

    python benchmarks/trainer_overhead.py [--steps 15] [--warmup 3] [--batch 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vlm4vla.data.dataset import ChunkDataset
from vlm4vla.data.episodes import Episode, EpisodeStore, write_store
from vlm4vla.data.normalize import ActionNormalizer
from vlm4vla.models.losses import action_loss
from vlm4vla.models.policy import VLAPolicy
from vlm4vla.train.loop import EpochSampler, LoopConfig, run_loop, set_determinism

MODEL = {"backbone": "qwen2_5_vl", "init": "scratch",
         "arch": {"hidden_size": 64, "num_hidden_layers": 2}, "freeze": []}


def synthetic_store(path: Path) -> EpisodeStore:
    rs = np.random.RandomState(0)
    eps = []
    for i in range(4):
        acts = rs.uniform(-1, 1, (40, 7)).astype(np.float32)
        acts[:, 6] = np.sign(acts[:, 6])
        eps.append(Episode("t", i, rs.randint(0, 256, (40, 224, 224, 3), dtype=np.uint8), acts))
    write_store(path, eps, {"t": "press the button"}, "synthetic")
    return EpisodeStore(path)


def bare(ds, n, batch, lr, clip):
    model = VLAPolicy.build(MODEL, ds.chunk, seed=123).train()
    sampler = EpochSampler(len(ds), batch, seed=123)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        b = ds.batch(sampler.next())
        loss = action_loss(*model(b["frames"], b["instructions"]), b["actions"], b["mask"])["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        times.append(time.perf_counter() - t)
    return times


def trainer(ds, n, batch, lr, clip, state_dir):
    model = VLAPolicy.build(MODEL, ds.chunk, seed=123)
    sampler = EpochSampler(len(ds), batch, seed=123)
    stamps = []

    def get_batch(idx):
        stamps.append(time.perf_counter())
        return ds.batch(idx)

    def loss_fn(m, b):
        return action_loss(*m(b["frames"], b["instructions"]), b["actions"], b["mask"])

    cfg = LoopConfig(steps=n + 1, lr=lr, warmup_steps=20, grad_clip=clip, checkpoint_every=100,
                     log_every=10)
    run_loop(model, loss_fn, sampler, get_batch, cfg, state_dir, "bench", progress=False)
    return [b - a for a, b in zip(stamps[:-1], stamps[1:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    set_determinism(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        store = synthetic_store(Path(tmp) / "demos")
        ds = ChunkDataset(store, 4, ActionNormalizer.fit(np.asarray(store.actions)))
        n = a.warmup + a.steps
        # bare, trainer, bare: the machine is shared, so bracket the trainer in time.
        b1 = bare(ds, n, a.batch, 1e-4, 1.0)[a.warmup:]
        tr = trainer(ds, n, a.batch, 1e-4, 1.0, Path(tmp) / "state")[a.warmup:]
        b2 = bare(ds, n, a.batch, 1e-4, 1.0)[a.warmup:]
    bare_s, tr_s = statistics.median(b1 + b2), statistics.median(tr)
    print(f"batch {a.batch}, threads {a.threads}, {a.steps} timed steps each (median)")
    print(f"bare PyTorch loop: {bare_s:.4f} s/step")
    print(f"vlm4vla trainer:   {tr_s:.4f} s/step")
    print(f"ratio trainer/bare: {tr_s / bare_s:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()

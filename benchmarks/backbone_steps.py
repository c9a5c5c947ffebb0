"""Training samples per second of the main backbone families: the embedded default's
training path now (config/config.yaml's models and `train` recipe) against the previous
default's path, measured side by side in the same run (so the machine's load is shared).

    previous  224 px frames, hidden 64 / 2 layers, the paper's 1024-wide head, batch 8,
              per-tensor AdamW (the default until 2026-12-02)
    current   the model entries of config/config.yaml (112 px; Qwen3-VL 128 px; hidden 96 /
              3 layers; 256-wide head), its train.batch_size, fused AdamW (as train/loop.py)

One step = forward + loss + backward + AdamW step on random frames and mixed instructions,
chunk 4; the median of `--steps` steps after `--warmup` is reported. Prints samples/s of
both and the ratio current / previous per family.

    python benchmarks/backbone_steps.py [--steps 8] [--warmup 2] [--threads 1]
                                        [--models qwen25vl_tiny,kosmos2_tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vlm4vla.config import load_config
from vlm4vla.models.losses import action_loss
from vlm4vla.models.policy import VLAPolicy

INSTRUCTIONS = ["press the button", "open the drawer", "pick up the red block and put it in the bowl",
                "push the green block onto the plate"]
PREVIOUS = {"arch": {"hidden_size": 64, "num_hidden_layers": 2, "image_size": 224}, "head_width": 1024}


def measure(model_cfg: dict, batch: int, fused: bool, steps: int, warmup: int) -> dict:
    pol = VLAPolicy.build({**model_cfg, "init": "scratch", "freeze": []}, chunk=4, seed=0)
    pol.train()
    opt = torch.optim.AdamW([p for p in pol.parameters() if p.requires_grad], lr=1e-4,
                            weight_decay=0, fused=fused)
    size = pol.backbone.image_size
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, (batch, size, size, 3), dtype=np.uint8)
    instr = [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(batch)]
    target = torch.from_numpy(rng.uniform(-1, 1, (batch, 4, 7)).astype(np.float32))
    target[..., 6] = (target[..., 6] > 0).float()
    mask = torch.ones(batch, 4)
    times = []
    for _ in range(warmup + steps):
        t = time.perf_counter()
        out = action_loss(*pol(x, instr), target, mask)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        times.append(time.perf_counter() - t)
    step = statistics.median(times[warmup:])
    counts = pol.param_counts()
    return {"samples_per_s": batch / step, "ms_per_step": 1000 * step, "params_M": counts["total"] / 1e6,
            "vision": counts["groups"]["vision"]["total"] / counts["total"],
            "head": counts["groups"]["head"]["total"] / counts["total"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--models", default="", help="default: experiments.main.models")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config([args.config])
    names = args.models.split(",") if args.models else cfg["experiments"]["main"]["models"]
    batch = int(cfg["train"]["batch_size"])
    print(f"threads {args.threads}, median of {args.steps} steps after {args.warmup} warm-up; "
          f"previous = batch 8, 224 px, hidden 64 x 2, head 1024, AdamW; current = {args.config}, batch {batch}, fused AdamW")
    print(f"{'model':16s} {'prev samples/s':>14s} {'cur samples/s':>13s} {'ratio':>6s} "
          f"{'cur params(M)':>13s} {'vision':>7s} {'head':>6s} {'prev head':>9s}")
    for name in names:
        m = {k: v for k, v in cfg["models"][name].items() if k in ("backbone", "arch", "head_width", "tokenizer")}
        prev = measure({**m, **PREVIOUS}, 8, False, args.steps, args.warmup)
        cur = measure(m, batch, True, args.steps, args.warmup)
        print(f"{name:16s} {prev['samples_per_s']:14.1f} {cur['samples_per_s']:13.1f} "
              f"{cur['samples_per_s'] / prev['samples_per_s']:6.2f} {cur['params_M']:13.2f} "
              f"{cur['vision']:7.0%} {cur['head']:6.0%} {prev['head']:9.0%}", flush=True)


if __name__ == "__main__":
    main()

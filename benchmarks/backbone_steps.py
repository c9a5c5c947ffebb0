"""Train steps per second of every registered backbone family (tiny scratch config).

One step = forward + loss + backward + AdamW step at batch `--batch` (224x224 frames,
instructions of mixed length, chunk 4); the first `--warmup` steps are dropped and the
median step time is reported. composed_pretrained is measured at its real size (MiniLM-L6
hidden 384 + EfficientNet-Lite0), the others at their tiny default (hidden 64, 2 layers).

    python benchmarks/backbone_steps.py [--steps 6] [--warmup 2] [--batch 8] [--threads 2]
                                        [--families qwen2_5_vl,qwen3_vl]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vlm4vla.models.backbones import known_backbones
from vlm4vla.models.losses import action_loss
from vlm4vla.models.policy import VLAPolicy

INSTRUCTIONS = ["press the button", "open the drawer", "pick up the red block and put it in the bowl",
                "push the green block onto the plate"]


def measure(family: str, steps: int, warmup: int, batch: int) -> dict:
    pol = VLAPolicy.build({"backbone": family, "init": "scratch", "freeze": []}, chunk=4, seed=0)
    pol.train()
    opt = torch.optim.AdamW([p for p in pol.parameters() if p.requires_grad], lr=1e-4, weight_decay=0)
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
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
    return {"family": family, "params_M": sum(p.numel() for p in pol.parameters()) / 1e6,
            "seq_len": len(pol.backbone.prompt_ids(max(instr, key=len))) + 1,
            "s_per_step": step, "steps_per_s": 1.0 / step}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--families", default=",".join(known_backbones()))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, threads {args.threads}, median of {args.steps} steps after {args.warmup} warm-up")
    print(f"{'family':22s} {'params(M)':>9s} {'seq':>5s} {'s/step':>8s} {'steps/s':>8s}")
    for family in args.families.split(","):
        r = measure(family, args.steps, args.warmup, args.batch)
        print(f"{r['family']:22s} {r['params_M']:9.2f} {r['seq_len']:5d} {r['s_per_step']:8.3f} "
              f"{r['steps_per_s']:8.2f}", flush=True)


if __name__ == "__main__":
    main()

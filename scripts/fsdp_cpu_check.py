#!/usr/bin/env python3
"""FSDP2 sharding of a tiny VLAPolicy across CPU processes (gloo), checked against one
process. Launch with 2 processes:

    python -m torch.distributed.run --standalone --nproc_per_node 2 \\
        scripts/fsdp_cpu_check.py --family qwen3_vl_moe

Why not through the training loop: accelerate (1.16) selects FSDP only for GPU-type
processes (a CPU run becomes plain multi-CPU DDP), and `accelerate launch --cpu
--num_processes 2` starts a single process unless it is given an MPI hostfile. So torchrun
starts the processes and this script applies torch's FSDP2 `fully_shard` itself, with the
wrap units named in profiles/accelerate/fsdp_<family>.yaml (what accelerate would wrap on
GPUs): each decoder layer and vision block is its own unit, the rest (embeddings, merger,
ActionQuery, head) the root unit. One step on each rank's half of a batch of 4 must give
the gradients one process computes for the mean of the two half-batch losses (not of the
whole batch: under vla_forward official the query's 1-D position is the padded length,
so, as in the official code, a sample's output depends on the longest prompt beside it); then a sharded AdamW step with gradient
clipping runs and the optimizer state is checked to be sharded. Prints one JSON line
(rank 0) and exits non-zero on any mismatch.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="qwen3_vl_moe")
    ap.add_argument("--atol", type=float, default=2e-5)
    args = ap.parse_args()

    import numpy as np
    import torch
    import torch.distributed as dist
    import yaml
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    from vlm4vla.models.losses import action_loss
    from vlm4vla.models.policy import VLAPolicy

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    profile = yaml.safe_load((REPO / "profiles" / "accelerate" / f"fsdp_{args.family}.yaml").read_text())
    wrap = set(profile["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"].split(","))

    policy = VLAPolicy.build({"backbone": args.family, "init": "scratch"}, chunk=4, seed=0)
    with torch.no_grad():
        policy.action_query.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    reference = copy.deepcopy(policy)
    n = 4
    rng = np.random.RandomState(0)
    frames = rng.randint(0, 256, (n, 224, 224, 3), dtype=np.uint8)
    texts = ["press the button", "open the drawer then push the green block onto the plate",
             "pick up the red cup", "close the door"]
    target = torch.from_numpy(rng.uniform(-1, 1, (n, 4, 7)).astype(np.float32))
    target[..., 6] = (target[..., 6] > 0).float()

    def loss_of(model, idx):
        arm, grip = model(frames[idx], [texts[i] for i in idx])
        return action_loss(arm, grip, target[idx], torch.ones(len(idx), 4))["loss"]

    # the ranks' half-batches in one process: FSDP averages the ranks' gradients
    reference.train()
    halves = [list(range(r, n, world)) for r in range(world)]
    (sum(loss_of(reference, idx) for idx in halves) / world).backward()
    want = {k: p.grad.detach().clone() for k, p in reference.named_parameters()}

    # FSDP2: wrap units as the profile names them, then the root
    mesh = init_device_mesh("cpu", (world,))
    units = [m for m in policy.modules() if type(m).__name__ in wrap]
    found = {type(m).__name__ for m in units}
    if found != wrap:
        raise SystemExit(f"wrap classes {sorted(wrap - found)} not in the {args.family} policy")
    for m in units:
        fully_shard(m, mesh=mesh)
    fully_shard(policy, mesh=mesh)
    policy.train()
    loss_of(policy, list(range(rank, n, world))).backward()  # FSDP averages over ranks

    worst, sharded, local, full = 0.0, 0, 0, 0
    for k, p in policy.named_parameters():
        assert isinstance(p, DTensor), k
        g = p.grad.full_tensor()
        err = float((g - want[k]).abs().max())
        worst = max(worst, err)
        if err > args.atol + 1e-3 * float(want[k].abs().max()):
            raise SystemExit(f"rank {rank}: gradient of {k} differs by {err:.3g}")
        local += p.to_local().numel()
        full += p.numel()
        sharded += p.to_local().numel() < p.numel()

    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3, weight_decay=0.0)
    norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    ref_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
    before = {k: p.full_tensor().clone() for k, p in policy.named_parameters()}
    opt.step()
    moved = sum(int(not torch.equal(p.full_tensor(), before[k])) for k, p in policy.named_parameters())
    state_local = sum(s["exp_avg"].to_local().numel() for s in opt.state.values())
    norm = float(norm.full_tensor() if isinstance(norm, DTensor) else norm)
    if abs(norm - float(ref_norm)) > 1e-4 * max(1.0, float(ref_norm)):
        raise SystemExit(f"grad norm {norm} != {float(ref_norm)}")
    out = {"family": args.family, "world": world, "units": len(units), "wrap": sorted(wrap),
           "params": full, "local_params": local, "sharded_tensors": sharded,
           "max_grad_err": worst, "grad_norm": norm, "ref_grad_norm": float(ref_norm),
           "params_moved": moved, "n_params": len(before), "adam_state_local": state_local}
    gathered = [None] * world
    dist.all_gather_object(gathered, out)
    if rank == 0:
        print(json.dumps({"ranks": gathered}))
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()

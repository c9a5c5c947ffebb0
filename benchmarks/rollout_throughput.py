"""How much does the evaluation loop cost on top of the simulator itself?

Prints, measured in this one run on one core:
  - ms per rendered frame with MuJoCo's default visual settings and with the fast ones;
  - env steps/s stepping unrendered, and stepping + rendering a frame every
    `execute_chunk` steps (what a rollout needs: one frame per executed chunk);
  - env steps/s of vlm4vla.eval.rollout.evaluate (workers=1) with a constant policy,
    and its ratio to the bare stepping + rendering rate (1.0 = no loop overhead); the
    evaluate() call also builds its env, which is timed separately and reported.

With --policy DIR (a trained policy folder, e.g. results/vla/metaworld/qwen25vl_tiny) it
also measures the issue's target: env steps/s of evaluate() with that policy in the loop at
--workers N, against N processes of bare stepping + rendering (same episodes, same frame
schedule) in the same run; cost ratio = bare rate / policy-loop rate (target <= 1.5).

Usage: python benchmarks/rollout_throughput.py [--task pick-place-v3] [--episodes 4]
       python benchmarks/rollout_throughput.py --policy results/vla/metaworld/qwen25vl_tiny --workers 2
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import tempfile
import time

import numpy as np

from vlm4vla.eval.rollout import evaluate
from vlm4vla.sim import render
from vlm4vla.sim.registry import get_benchmark


class ConstantPolicy:
    """Cheapest possible policy: a fixed chunk, so the loop's own cost shows."""

    def __init__(self, chunk: int = 4):
        self.chunk = chunk
        self._chunk = np.tile(np.array([0.2, 0.1, 0.0, 0, 0, 0, -1], np.float32), (chunk, 1))

    def act(self, frames, instructions):
        return np.broadcast_to(self._chunk, (len(frames), self.chunk, 7))


def _bare_worker(args) -> int:
    """One process of bare stepping, rendering once per executed chunk; returns steps."""
    task, size, seeds, max_steps, every = args
    import torch

    torch.set_num_threads(1)
    env = get_benchmark("metaworld").make_env(task, size)
    action = np.array([0.2, 0.1, 0.0, 0, 0, 0, -1], np.float32)
    for seed in seeds:
        env.reset(seed)
        for t in range(max_steps):
            if t % every == 0:
                env.render()
            env.step(action)
    env.close()
    return len(seeds) * max_steps


def policy_vs_bare(args) -> None:
    from vlm4vla.train.vla import load_policy

    seeds = list(range(args.episodes))
    ctx = multiprocessing.get_context("spawn")
    shards = [(args.task, args.image_size, seeds[i::args.workers], args.max_steps,
               args.execute_chunk) for i in range(args.workers)]
    start = time.perf_counter()
    with ctx.Pool(args.workers) as pool:
        n = sum(pool.map(_bare_worker, shards))
    bare_rate = n / (time.perf_counter() - start)
    bench_cfg = {"plugin": "metaworld", "tasks": [args.task], "image_size": args.image_size,
                 "max_steps": args.max_steps, "eval_episodes_per_task": args.episodes,
                 "eval_seed_offset": 0}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        evaluate(functools.partial(load_policy, args.policy), bench_cfg,
                 {"execute_chunk": args.execute_chunk}, 0, out, workers=args.workers)
        elapsed = time.perf_counter() - start
        with open(f"{out}/episodes.jsonl") as f:
            steps = sum(json.loads(line)["steps"] for line in f)
    loop_rate = steps / elapsed
    print(f"[{args.workers} workers] bare stepping+rendering: {bare_rate:7.1f} steps/s   "
          f"policy in the loop: {loop_rate:7.1f} steps/s   "
          f"cost ratio (bare / loop): {bare_rate / loop_rate:.2f}  (target <= 1.5; both include "
          f"process start-up and env builds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="pick-place-v3")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--execute-chunk", type=int, default=4)
    ap.add_argument("--policy", help="trained policy folder: also measure policy-in-the-loop")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.policy:
        policy_vs_bare(args)
        return
    bench = get_benchmark("metaworld")
    steps = args.episodes * args.max_steps

    # Frame cost, default vs fast settings, on the same state (default first: the fast
    # settings change the model for good).
    env = bench.make_env(args.task, args.image_size)
    env.reset(0)
    model, data = env._env.model, env._env.data
    model.vis.quality.offsamples = 4  # MuJoCo's default (the env set 0)
    slow = render.ms_per_frame(model, data, args.image_size, env._renderer.camera, fast=False)
    fast = render.ms_per_frame(model, data, args.image_size, env._renderer.camera, fast=True)
    print(f"ms/frame  default settings: {slow:7.1f}   fast settings: {fast:6.1f}   "
          f"speed-up x{slow / fast:.1f}")

    action = np.array([0.2, 0.1, 0.0, 0, 0, 0, -1], np.float32)

    def bare(render_every: int | None) -> float:
        start = time.perf_counter()
        for e in range(args.episodes):
            env.reset(e)
            for t in range(args.max_steps):
                if render_every and t % render_every == 0:
                    env.render()
                env.step(action)
        return steps / (time.perf_counter() - start)

    unrendered = bare(None)
    rendered = bare(args.execute_chunk)
    env.close()
    print(f"bare env steps/s  unrendered: {unrendered:7.1f}   "
          f"rendering every {args.execute_chunk} steps: {rendered:6.1f}")

    bench_cfg = {"plugin": "metaworld", "tasks": [args.task], "image_size": args.image_size,
                 "max_steps": args.max_steps, "eval_episodes_per_task": args.episodes,
                 "eval_seed_offset": 0}
    start = time.perf_counter()
    bench.make_env(args.task, args.image_size).close()
    build = time.perf_counter() - start

    def loop(episodes: int) -> tuple[float, int]:
        cfg = {**bench_cfg, "eval_episodes_per_task": episodes}
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            evaluate(ConstantPolicy, cfg, {"execute_chunk": args.execute_chunk}, 0, out,
                     workers=1)
            elapsed = time.perf_counter() - start
            with open(f"{out}/episodes.jsonl") as f:
                return elapsed, sum(json.loads(line)["steps"] for line in f)

    cold, n = loop(args.episodes)  # first call also pays one-off imports (torch)
    warm, n = loop(args.episodes)
    print(f"rollout loop steps/s (workers=1, constant policy): first call {n / cold:6.1f}, "
          f"second call {n / warm:6.1f} (includes building the env, {build:.2f} s); "
          f"excluding the env build {n / (warm - build):6.1f}")
    print(f"ratio rollout loop / bare stepping+rendering: {n / (warm - build) / rendered:.2f} "
          f"(excluding env build), {n / warm / rendered:.2f} (including it)")

if __name__ == "__main__":
    main()

"""How much does the evaluation loop cost on top of the simulator itself?

Prints, measured in this one run on one core:
  - ms per rendered frame with MuJoCo's default visual settings and with the fast ones;
  - env steps/s stepping unrendered, and stepping + rendering a frame every
    `execute_chunk` steps (what a rollout needs: one frame per executed chunk);
  - env steps/s of vlm4vla.eval.rollout.evaluate (workers=1) with a constant policy,
    and its ratio to the bare stepping + rendering rate (1.0 = no loop overhead); the
    evaluate() call also builds its envs, which is timed separately and reported.

With --policy DIR (a trained policy folder, e.g. results/vla/metaworld/qwen25vl_tiny) it
measures the issue's target instead: env steps/s with that policy in the loop at --workers N
against N processes of bare stepping + rendering, in the same run, on the same episodes
(the same inference batches, evaluate.batch_envs = --batch-envs, handed round-robin to the
same workers) with the same frame schedule (each env rendered once per executed chunk).
Both run in the same worker processes on the same envs: every worker first starts up
(imports), loads the policy and builds its envs; then, --repeats times, batch by batch, a
bare phase and a policy phase alternate, each started by all workers together at a barrier
and timed from its release to the last worker's end (start-up and loading are reported
separately, CPU time per step too, which other load on the machine disturbs less than wall
time). cost ratio = bare rate / policy-loop rate (target <= 1.5). Then one end-to-end
evaluate() call (start-up included) checks that the timed loop gave exactly evaluate()'s
records.

Usage: python benchmarks/rollout_throughput.py [--task pick-place-v3] [--episodes 4]
       python benchmarks/rollout_throughput.py --policy results/vla/metaworld/qwen25vl_tiny
           --workers 2 --episodes 16 --max-steps 150
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import tempfile
import time

import numpy as np

from vlm4vla.eval.rollout import Runner, eval_batches, evaluate
from vlm4vla.sim import render
from vlm4vla.sim.registry import get_benchmark

ACTION = np.array([0.2, 0.1, 0.0, 0, 0, 0, -1], np.float32)


class ConstantPolicy:
    """Cheapest possible policy: a fixed chunk, so the loop's own cost shows."""

    def __init__(self, chunk: int = 4):
        self.chunk = chunk
        self._chunk = np.tile(ACTION, (chunk, 1))

    def act(self, frames, instructions):
        return np.broadcast_to(self._chunk, (len(frames), self.chunk, 7))


def _bare_batches(bench_cfg: dict, eval_cfg: dict, batches: list, envs: list) -> list[dict]:
    """Bare stepping + rendering of `batches` with a constant action, in the policy loop's
    lock-step and frame schedule: each env renders once per `execute_chunk` steps."""
    every, max_steps = int(eval_cfg["execute_chunk"]), int(bench_cfg["max_steps"])
    records = []
    for batch in batches:
        for env, job in zip(envs, batch):
            env.reset(job["seed"])
        for t in range(0, max_steps, every):
            for env in envs[:len(batch)]:
                env.render()
                for _ in range(min(every, max_steps - t)):
                    env.step(ACTION)
        records += [{**job, "steps": max_steps} for job in batch]
    return records


def _timed_worker(policy_dir, bench_cfg: dict, eval_cfg: dict, batches: list, repeats: int,
                  barrier, queue) -> None:
    """One worker process: start up, load the policy, build its envs; then `repeats` times,
    for each of its batches (a round; [] = wait out the round), a bare phase and a policy
    phase on the same envs, each started at a barrier together with the other workers and
    timed (wall clock and this process's CPU time)."""
    born = time.perf_counter()
    import torch

    from vlm4vla.train.vla import load_policy

    torch.set_num_threads(1)
    runner = Runner(functools.partial(load_policy, policy_dir), bench_cfg, eval_cfg)
    envs = runner.envs_for(bench_cfg["tasks"][0], max(len(b) for b in batches))
    queue.put({"setup": time.perf_counter() - born})
    for rep in range(repeats):
        for rnd, batch in enumerate(batches):
            for kind in ("bare", "policy"):
                barrier.wait()
                start, cpu = time.perf_counter(), time.process_time()
                if not batch:
                    records = []
                elif kind == "bare":
                    records = _bare_batches(bench_cfg, eval_cfg, [batch], envs)
                else:
                    records = runner.run(batch)
                queue.put({"rep": rep, "round": rnd, "kind": kind, "start": start,
                           "end": time.perf_counter(), "cpu": time.process_time() - cpu,
                           "records": records})
    runner.close()


def _timed(args, bench_cfg: dict, eval_cfg: dict, batches: list) -> dict:
    """Run `batches` round-robin on args.workers spawned processes, bare and policy phases
    alternating batch by batch, args.repeats times; rates exclude start-up, policy loading
    and env builds. Short alternating phases share the machine's conditions."""
    ctx = multiprocessing.get_context("spawn")
    rounds = -(-len(batches) // args.workers)
    shards = [batches[w::args.workers] for w in range(args.workers)]
    shards = [s + [[]] * (rounds - len(s)) for s in shards]
    barrier, queue = ctx.Barrier(args.workers), ctx.Queue()
    procs = [ctx.Process(target=_timed_worker, args=(args.policy, bench_cfg, eval_cfg, shard,
                                                      args.repeats, barrier, queue))
             for shard in shards]
    for p in procs:
        p.start()
    msgs = [queue.get() for _ in range(args.workers * (1 + 2 * args.repeats * rounds))]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"worker exited with {p.exitcode}")
    phases = {}
    for m in msgs:
        if "rep" in m:
            phases.setdefault((m["rep"], m["kind"]), {}).setdefault(m["round"], []).append(m)
    out = {"setup": max(m["setup"] for m in msgs if "setup" in m), "phases": []}
    for rep in range(args.repeats):
        row = {}
        for kind in ("bare", "policy"):
            by_round = phases[rep, kind]
            ms = [m for r in by_round.values() for m in r]
            records = sorted((r for m in ms for r in m["records"]),
                             key=lambda r: (r["task"], r["episode"]))
            steps = sum(r["steps"] for r in records)
            elapsed = sum(max(m["end"] for m in r) - min(m["start"] for m in r)
                          for r in by_round.values())
            row[kind] = {"rate": steps / elapsed, "steps": steps, "elapsed": elapsed,
                         "cpu_ms": 1e3 * sum(m["cpu"] for m in ms) / steps, "records": records}
        out["phases"].append(row)
    return out


def policy_vs_bare(args) -> None:
    from vlm4vla.train.vla import load_policy

    bench_cfg = {"plugin": "metaworld", "tasks": [args.task], "image_size": args.image_size,
                 "max_steps": args.max_steps, "eval_episodes_per_task": args.episodes,
                 "eval_seed_offset": 0}
    eval_cfg = {"execute_chunk": args.execute_chunk, "batch_envs": args.batch_envs}
    batches = eval_batches(bench_cfg, eval_cfg, 0)
    res = _timed(args, bench_cfg, eval_cfg, batches)
    print(f"[{args.workers} workers, {args.episodes} episodes x {args.max_steps} steps, "
          f"batch_envs {args.batch_envs}, execute_chunk {args.execute_chunk}; start-up + "
          f"policy load + env builds before the clock: {res['setup']:.2f} s]")
    ratios, cpu_ratios = [], []
    for rep, row in enumerate(res["phases"]):
        b, p = row["bare"], row["policy"]
        ratios.append(b["rate"] / p["rate"])
        cpu_ratios.append(p["cpu_ms"] / b["cpu_ms"])
        print(f"repeat {rep}: bare stepping+rendering {b['rate']:7.1f} steps/s "
              f"({b['steps']} steps, {b['elapsed']:.2f} s, {b['cpu_ms']:.2f} CPU ms/step)   "
              f"policy in the loop {p['rate']:7.1f} steps/s ({p['steps']} steps, "
              f"{p['elapsed']:.2f} s, {p['cpu_ms']:.2f} CPU ms/step)   "
              f"ratio {ratios[-1]:.2f}")
    total = {k: sum(row[k]["steps"] for row in res["phases"]) /
             sum(row[k]["elapsed"] for row in res["phases"]) for k in ("bare", "policy")}
    print(f"all repeats: bare {total['bare']:7.1f} steps/s, policy in the loop "
          f"{total['policy']:7.1f} steps/s, cost ratio (bare / loop) "
          f"{total['bare'] / total['policy']:.2f}; median over repeats {np.median(ratios):.2f} "
          f"(target <= 1.5); CPU-time ratio (median) {np.median(cpu_ratios):.2f}")
    loop_records = res["phases"][0]["policy"]["records"]
    same = all(row["policy"]["records"] == loop_records for row in res["phases"])

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        evaluate(functools.partial(load_policy, args.policy), bench_cfg, eval_cfg, 0, out,
                 workers=args.workers)
        elapsed = time.perf_counter() - start
        with open(f"{out}/episodes.jsonl") as f:
            records = [json.loads(line) for line in f]
    steps = sum(r["steps"] for r in records)
    print(f"end-to-end evaluate() incl. process start-up and policy loading: "
          f"{steps / elapsed:7.1f} steps/s ({elapsed:.2f} s); timed loop's records identical "
          f"across repeats: {same}, and to evaluate()'s: {records == loop_records}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="pick-place-v3")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--execute-chunk", type=int, default=4)
    ap.add_argument("--policy", help="trained policy folder: also measure policy-in-the-loop")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-envs", type=int, default=4, help="evaluate.batch_envs")
    ap.add_argument("--repeats", type=int, default=3,
                    help="with --policy: bare / policy phases alternated this many times")
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

    action = ACTION

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
    eval_cfg = {"execute_chunk": args.execute_chunk, "batch_envs": args.batch_envs}
    start = time.perf_counter()
    bench.make_env(args.task, args.image_size).close()
    build = (time.perf_counter() - start) * min(args.batch_envs, args.episodes)  # envs built

    def loop(episodes: int) -> tuple[float, int]:
        cfg = {**bench_cfg, "eval_episodes_per_task": episodes}
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            evaluate(ConstantPolicy, cfg, eval_cfg, 0, out, workers=1)
            elapsed = time.perf_counter() - start
            with open(f"{out}/episodes.jsonl") as f:
                return elapsed, sum(json.loads(line)["steps"] for line in f)

    cold, n = loop(args.episodes)  # first call also pays one-off imports (torch)
    warm, n = loop(args.episodes)
    print(f"rollout loop steps/s (workers=1, constant policy): first call {n / cold:6.1f}, "
          f"second call {n / warm:6.1f} (includes building the envs, {build:.2f} s); "
          f"excluding the env build {n / (warm - build):6.1f}")
    print(f"ratio rollout loop / bare stepping+rendering: {n / (warm - build) / rendered:.2f} "
          f"(excluding env build), {n / warm / rendered:.2f} (including it)")


if __name__ == "__main__":
    main()

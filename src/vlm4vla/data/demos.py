"""Scripted-expert demonstrations, written as an episode store.

What one demo step holds: the frame rendered BEFORE the action, and the 7-D action taken
from it, [dx, dy, dz, 0, 0, 0, g]. The expert's grip command is binarised by the plugin to
g = +1 (close) or -1 (open) (Meta-World: see metaworld_env.GRIP_EFFORT) and the binarised
action is what the simulator executes, so a stored episode replays exactly and the policy
learns the same open/close target the paper's gripper head predicts.

Where an episode ends: at the first step the benchmark reports success (that step's action
is the last one kept). Evaluation also stops at the first success, so what happens after
it is never scored, and idle post-success steps would only teach the policy to stall.
Episodes that do not succeed within bench_cfg["max_steps"] are dropped: the store holds
successful demonstrations only.

Seeds: each task has its own seed stream, task_seed(seed, task, i) = seed + h(task) + i,
with h a stable hash of the task name (sha256, not Python's salted hash()), so tasks that
share a layout space (push / pick-place) do not get the same layouts. Demos use i = 0, 1,
2, ... (more only if the expert fails); evaluation uses i >= bench_cfg["eval_seed_offset"],
so held-out evaluation states never overlap demo states as long as the attempt cap
(max_attempts) stays below that offset, which is checked.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from vlm4vla.data.episodes import Episode, write_store
from vlm4vla.sim.registry import get_benchmark

ACTION_SPACE_DOC = ("7-D float32: [dx, dy, dz] end-effector position delta in [-1, 1], "
                    "[droll, dpitch, dyaw] rotation delta (0 on benchmarks without rotation), "
                    "gripper +1 = close / -1 = open (binarised from the expert's command); "
                    "frame t is rendered before action t")


def task_seed(seed: int, task: str, index: int) -> int:
    """The `index`-th initial-state seed of `task` (deterministic across processes)."""
    offset = int.from_bytes(hashlib.sha256(task.encode()).digest()[:4], "big")
    return int(seed) + offset + int(index)


def max_attempts(demos_per_task: int) -> int:
    """Seeds tried per task before giving up (the experts fail rarely, so this is generous)."""
    return demos_per_task + 10


def expert_episode(env, seed: int, max_steps: int, render: bool
                   ) -> tuple[bool, list[np.ndarray], list[np.ndarray]]:
    """Roll the scripted expert from `seed`; returns (success, frames, actions).
    With render=False no frames are made."""
    env.reset(seed)
    frames, actions = [], []
    for _ in range(max_steps):
        if render:
            frames.append(env.render())
        action = env.expert_action()
        actions.append(action)
        if env.step(action).success:
            return True, frames, actions
    return False, frames, actions


def check_heldout(bench, bench_cfg: dict, seed: int) -> None:
    """Fail if evaluation could start from an initial state a demo was recorded from.

    Seeds are disjoint by construction (demo attempts < eval_seed_offset), but a plugin
    with a finite list of official initial states (LIBERO: 50 per task) maps seed -> state
    modulo that number, so the *states* must be checked too."""
    n_states = getattr(bench, "num_initial_states", None)
    if not n_states or "eval_episodes_per_task" not in bench_cfg or "demos_per_task" not in bench_cfg:
        return  # unbounded states; demo collection (its spec leaves out eval-only keys); no demos
    offset, n_eval = int(bench_cfg["eval_seed_offset"]), int(bench_cfg["eval_episodes_per_task"])
    cap = max_attempts(int(bench_cfg["demos_per_task"]))
    for task in sorted(bench_cfg["tasks"]):
        demo = {task_seed(seed, task, i) % n_states for i in range(cap)}
        ev = {task_seed(seed, task, offset + j) % n_states for j in range(n_eval)}
        if demo & ev:
            raise ValueError(
                f"benchmark '{bench.name}' has {n_states} official initial states per task; with "
                f"eval_seed_offset={offset} the {n_eval} evaluation episodes of {task!r} would reuse "
                f"states that demo collection may use (up to {cap} attempts). Choose eval_seed_offset "
                f"with offset % {n_states} >= {cap} and eval_episodes_per_task <= "
                f"{n_states} - offset % {n_states} (e.g. {100000 + cap})")


def collect_demos(bench_cfg: dict, out_dir, seed: int, progress: bool | None = None) -> dict:
    """Collect bench_cfg["demos_per_task"] successful expert episodes for every task in
    bench_cfg["tasks"] and write them as an episode store at `out_dir`.

    Returns {"tasks": {task: {"tried", "kept", "seeds", "steps"}}, "episodes", "steps"}.
    Raises RuntimeError naming the task if its expert keeps failing.
    """
    bench = get_benchmark(bench_cfg["plugin"])
    tasks = sorted(bench_cfg["tasks"])
    per_task, max_steps = int(bench_cfg["demos_per_task"]), int(bench_cfg["max_steps"])
    size = int(bench_cfg["image_size"])
    cap = max_attempts(per_task)
    if cap > int(bench_cfg["eval_seed_offset"]):
        raise ValueError(f"eval_seed_offset {bench_cfg['eval_seed_offset']} must be >= the "
                         f"demo attempt cap {cap}, or demo and evaluation seeds could overlap")
    check_heldout(bench, bench_cfg, seed)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks) * per_task, desc="demos", unit="ep", file=sys.stderr)

    episodes, stats = [], {}
    for task in tasks:
        start = time.perf_counter()
        env = bench.make_env(task, size)
        if not hasattr(env, "expert_action"):
            env.close()
            raise RuntimeError(f"benchmark {bench.name!r} has no scripted expert "
                               f"(its Env lacks expert_action()); cannot collect demos")
        kept, tried = [], 0
        try:
            while len(kept) < per_task:
                if tried == cap:
                    raise RuntimeError(
                        f"scripted expert for {task!r} succeeded on only {len(kept)} of {cap} "
                        f"seeds within max_steps={max_steps}; raise max_steps or drop the task")
                s = task_seed(seed, task, tried)
                tried += 1
                # One rendered pass; a failed episode's frames are dropped. An unrendered
                # pass first would pay the physics twice to save rendering on failures only,
                # a loss when failures are rarer than P / (R + P) of the seeds (P, R: physics
                # and render cost per step; measured ~9% Meta-World, ~20% LIBERO, against
                # failure rates of 2/122 and 0/20: docs/learning.md section 7).
                ok, frames, actions = expert_episode(env, s, max_steps, render=True)
                if not ok:
                    continue
                kept.append(Episode(task=task, seed=s, frames=np.stack(frames),
                                    actions=np.stack(actions).astype(np.float32)))
                if bar is not None:
                    bar.update(1)
        finally:
            env.close()
        episodes.extend(kept)
        stats[task] = {"tried": tried, "kept": len(kept), "seeds": [ep.seed for ep in kept],
                       "steps": int(sum(len(ep.actions) for ep in kept))}
        if bar is None:
            print(f"[demos] {task}: kept {len(kept)} of {tried} seeds, "
                  f"{stats[task]['steps']} steps, {time.perf_counter() - start:.1f} s",
                  file=sys.stderr, flush=True)
    if bar is not None:
        bar.close()

    write_store(out_dir, episodes, {t: bench.instruction(t) for t in tasks}, bench.name,
                extra_meta={"action_space": ACTION_SPACE_DOC,
                            "camera": getattr(bench, "camera", None),
                            "image_size": size, "max_steps": max_steps, "seed": int(seed),
                            "demo_stats": {t: {"tried": v["tried"], "kept": v["kept"]}
                                           for t, v in stats.items()}})
    return {"tasks": stats, "episodes": len(episodes),
            "steps": int(sum(v["steps"] for v in stats.values()))}

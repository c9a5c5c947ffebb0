"""Closed-loop evaluation of a policy on held-out initial states, spread over processes.

The policy sees only what the paper's policy sees: one upright third-person frame and the
instruction. It predicts a chunk of actions; the first eval_cfg["execute_chunk"] of them run
open-loop, then a new frame is rendered (frames nobody looks at are never rendered).

Reproducibility is the design constraint: results must be byte-identical across runs and
across worker counts. Hence
- every episode's initial state comes from its own seed (task_seed(seed, task,
  eval_seed_offset + i)), never from a worker's history; environments reset completely;
- the policy is called with batch size 1, always: batching episodes together would make
  floating-point results depend on which episodes happen to share a batch;
- torch runs one thread per worker (in-process too): CPU kernels may sum in a different
  order with a different thread count;
- outputs are sorted by (task, episode) and written with sorted keys, no times or paths.
Output files are written to a temporary name and renamed, episodes.jsonl first and
summary.json ("complete": true) last, so a crashed run is never taken for a finished one.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.util
import os
import tempfile
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vlm4vla.data.demos import check_heldout, task_seed
from vlm4vla.eval.metrics import summarise
from vlm4vla.sim.registry import get_benchmark

MAX_CACHED_ENVS = 4  # envs kept per worker (episodes arrive grouped by task, so few needed)


class FatalEvalError(RuntimeError):
    """A configuration error that makes every episode meaningless: abort the evaluation."""


def eval_jobs(bench_cfg: dict, seed: int) -> list[dict]:
    """All evaluation episodes, sorted by (task, episode index), with their seeds."""
    offset, n = int(bench_cfg["eval_seed_offset"]), int(bench_cfg["eval_episodes_per_task"])
    return [{"task": t, "episode": i, "seed": task_seed(seed, t, offset + i)}
            for t in sorted(bench_cfg["tasks"]) for i in range(n)]


def run_episode(env, policy, instruction: str, seed: int, max_steps: int,
                execute_chunk: int, frames: list | None = None) -> tuple[bool, int]:
    """One closed-loop episode; returns (success, env steps taken). If `frames` is a list,
    every observation the policy saw is appended to it (for videos)."""
    env.reset(seed)
    if hasattr(policy, "reset"):  # policies with internal state start every episode fresh
        policy.reset()
    steps = 0
    while steps < max_steps:
        frame = env.render()
        if frames is not None:
            frames.append(frame)
        chunk = np.asarray(policy.act(frame[None], [instruction]))
        if chunk.shape != (1, policy.chunk, 7) or not np.all(np.isfinite(chunk)):
            raise ValueError(f"policy.act returned shape {chunk.shape} (want (1, "
                             f"{policy.chunk}, 7)) or non-finite values")
        for action in chunk[0, :execute_chunk]:
            result = env.step(action)
            steps += 1
            if result.success:
                return True, steps
            if result.done or steps >= max_steps:
                return False, steps
    return False, steps


@contextmanager
def _torch_threads(n: int):
    """Run torch with n intra-op threads inside the block (restored afterwards)."""
    try:
        import torch
    except ImportError:  # policies without torch are fine too
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Runner:
    """Per-process state: one policy, the benchmark, and a few cached environments."""

    def __init__(self, policy_factory, bench_cfg: dict, eval_cfg: dict, video_dir=None):
        self.policy = policy_factory()
        self.videos = int(eval_cfg.get("videos_per_task", 0))
        self.video_dir = Path(video_dir) if video_dir is not None else None
        self.bench = get_benchmark(bench_cfg["plugin"])
        self.size = int(bench_cfg["image_size"])
        self.max_steps = int(bench_cfg["max_steps"])
        self.execute_chunk = int(eval_cfg["execute_chunk"])
        if not 1 <= self.execute_chunk <= int(self.policy.chunk):
            raise FatalEvalError(f"evaluate.execute_chunk={self.execute_chunk} must be in "
                                 f"[1, policy chunk {self.policy.chunk}]")
        self.envs: OrderedDict = OrderedDict()

    def _env(self, task: str):
        if task in self.envs:
            self.envs.move_to_end(task)
        else:
            if len(self.envs) >= MAX_CACHED_ENVS:
                self.envs.popitem(last=False)[1].close()
            self.envs[task] = self.bench.make_env(task, self.size)
        return self.envs[task]

    def _drop_env(self, task: str) -> None:
        env = self.envs.pop(task, None)
        if env is not None:
            try:
                env.close()
            except Exception:
                pass

    def run(self, job: dict) -> dict:
        """Run one episode, retrying once on a crash (with a fresh env, in case the crash
        left it broken); a second crash is recorded with its error, never dropped."""
        error = None
        for _attempt in range(2):
            frames = [] if self.video_dir is not None and job["episode"] < self.videos else None
            try:
                success, steps = run_episode(self._env(job["task"]), self.policy,
                                             self.bench.instruction(job["task"]), job["seed"],
                                             self.max_steps, self.execute_chunk, frames)
                if frames:
                    save_gif(frames, self.video_dir / f"{job['task'].replace('/', '_')}"
                                                      f"_ep{job['episode']:03d}.gif")
                return {**job, "success": success, "steps": steps, "error": None}
            except FatalEvalError:
                raise
            except Exception as e:  # noqa: BLE001 - any crash is recorded, not fatal
                error = f"{type(e).__name__}: {e}"
                self._drop_env(job["task"])
        return {**job, "success": False, "steps": 0, "error": error}

    def close(self) -> None:
        for task in list(self.envs):
            self._drop_env(task)


_RUNNER: _Runner | None = None  # the worker process's runner


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the evaluating process dies (killed job, Ctrl-C),
    instead of lingering with a policy and a GL context in memory."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_init(policy_factory, bench_cfg: dict, eval_cfg: dict, video_dir=None) -> None:
    global _RUNNER
    _die_with_parent()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    _RUNNER = _Runner(policy_factory, bench_cfg, eval_cfg, video_dir)
    # Close the GL contexts before the worker exits (pool workers skip atexit handlers).
    multiprocessing.util.Finalize(None, _RUNNER.close, exitpriority=10)


def _worker_run(job: dict) -> dict:
    return _RUNNER.run(job)


def save_gif(frames: list, path: Path, fps: int = 10) -> None:
    """Animated GIF of uint8 (H, W, 3) frames, written atomically."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def evaluate(policy_factory, bench_cfg: dict, eval_cfg: dict, seed: int, out_dir,
             workers: int) -> dict:
    """Evaluate the policy built by `policy_factory` (picklable, zero-argument) on
    bench_cfg["eval_episodes_per_task"] held-out episodes per task.

    Writes out_dir/episodes.jsonl and out_dir/summary.json; returns the summary dict.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").unlink(missing_ok=True)  # "finished" only once rewritten
    check_heldout(get_benchmark(bench_cfg["plugin"]), bench_cfg, seed)
    jobs = eval_jobs(bench_cfg, seed)
    # Videos (GIF of the frames the policy saw, first N episodes per task): for people to
    # look at, not results - they are not among the rule's declared outputs.
    video_dir = out_dir / "videos" if int(eval_cfg.get("videos_per_task", 0)) > 0 else None
    if video_dir is not None:
        video_dir.mkdir(exist_ok=True)
    workers = max(1, min(int(workers), len(jobs)))

    if workers == 1:
        with _torch_threads(1):
            runner = _Runner(policy_factory, bench_cfg, eval_cfg, video_dir)
            try:
                records = [runner.run(job) for job in jobs]
            finally:
                runner.close()
    else:
        # spawn: a forked child would inherit the parent's GL/torch thread state.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_worker_init,
                                 initargs=(policy_factory, bench_cfg, eval_cfg, video_dir)) as pool:
            records = list(pool.map(_worker_run, jobs, chunksize=1))

    records.sort(key=lambda r: (r["task"], r["episode"]))
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    _write_atomic(out_dir / "episodes.jsonl", lines)
    summary = {"benchmark": bench_cfg["plugin"], "seed": int(seed),
               "episodes_per_task": int(bench_cfg["eval_episodes_per_task"]),
               "max_steps": int(bench_cfg["max_steps"]),
               "execute_chunk": int(eval_cfg["execute_chunk"]),
               **summarise(records), "complete": True}
    _write_atomic(out_dir / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary

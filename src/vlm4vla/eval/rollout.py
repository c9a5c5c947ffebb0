"""Closed-loop evaluation of a policy on held-out initial states, spread over processes.

The policy sees only what the paper's policy sees: one upright third-person frame and the
instruction. It predicts a chunk of actions; the first eval_cfg["execute_chunk"] of them run
open-loop, then a new frame is rendered (frames nobody looks at are never rendered).

Episodes run in inference batches: the episodes of one task, in index order, are cut into
fixed groups of eval_cfg["batch_envs"] (the last one may be smaller). A worker steps the
group's environments in lock-step and makes one batched policy call per chunk for every
environment still running (all of them need a new frame at the same step); an episode that
ends (success, the simulator's own termination or max_steps) leaves the batch, so later
calls are smaller. A batch is the unit of work handed to a worker.

Reproducibility is the design constraint: results must be byte-identical across runs and
across worker counts. Hence
- every episode's initial state comes from its own seed (task_seed(seed, task,
  eval_seed_offset + i)), never from a worker's history; environments reset completely;
- which episodes share an inference batch is a pure function of the config (batch_envs,
  tasks, episodes per task), never of the worker count or of scheduling: floating-point
  results of a batched forward may depend on the batch's size and content, so the same
  episodes must always meet in the same batch. The batch's composition at every call then
  follows deterministically from the episodes' own outcomes;
- torch runs one thread per worker (in-process too): CPU kernels may sum in a different
  order with a different thread count;
- a crash (of an environment or of the policy) re-runs the whole batch once with fresh
  environments, so a retried episode shares its policy calls with its own batch-mates
  again, never with a smaller ad-hoc group; the crashed episodes take the retry's outcome,
  and those that crash again are recorded with their error (steps 0), never dropped. A
  policy call that raises counts as a crash of every episode in that call;
- policies with internal state (a `reset()` method) are reset at the start of every batch
  and see its frames in episode order;
- outputs are sorted by (task, episode) and written with sorted keys, no times or paths.
Output files are written to a temporary name and renamed, episodes.jsonl first and
summary.json ("complete": true) last, so a crashed run is never taken for a finished one.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vlm4vla.config import schema_default
from vlm4vla.data.demos import check_heldout, task_seed
from vlm4vla.eval.metrics import summarise
from vlm4vla.io import atomic_path, write_json, write_jsonl
from vlm4vla.sim.registry import get_benchmark

MAX_CACHED_ENVS = 4  # envs kept per worker, at least one batch's (batches come grouped by task)


class FatalEvalError(RuntimeError):
    """A configuration error that makes every episode meaningless: abort the evaluation."""


def eval_jobs(bench_cfg: dict, seed: int) -> list[dict]:
    """All evaluation episodes, sorted by (task, episode index), with their seeds."""
    offset, n = int(bench_cfg["eval_seed_offset"]), int(bench_cfg["eval_episodes_per_task"])
    return [{"task": t, "episode": i, "seed": task_seed(seed, t, offset + i)}
            for t in sorted(bench_cfg["tasks"]) for i in range(n)]


def batch_envs(eval_cfg: dict) -> int:
    """evaluate.batch_envs (default: the schema's), checked."""
    n = eval_cfg["batch_envs"] if "batch_envs" in eval_cfg else schema_default("evaluate", "batch_envs")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise FatalEvalError(f"evaluate.batch_envs={n!r} must be an integer >= 1")
    return n


def videos_per_task(eval_cfg: dict) -> int:
    """evaluate.videos_per_task (default: the schema's)."""
    return int(eval_cfg.get("videos_per_task", schema_default("evaluate", "videos_per_task")))


def eval_batches(bench_cfg: dict, eval_cfg: dict, seed: int) -> list[list[dict]]:
    """eval_jobs cut into inference batches: per task, episodes [0, B), [B, 2B), ... with
    B = eval_cfg["batch_envs"]. A pure function of the config (see the module docstring)."""
    size = batch_envs(eval_cfg)
    batches: list[list[dict]] = []
    for job in eval_jobs(bench_cfg, seed):
        if job["episode"] % size == 0:
            batches.append([])
        batches[-1].append(job)
    return batches


class _Episode:
    """One episode of a batch being run: its env slot, progress and outcome."""

    def __init__(self, job: dict, slot: int, record_frames: bool):
        self.job, self.slot = job, slot
        self.steps, self.success, self.error = 0, False, None
        self.frames: list | None = [] if record_frames else None

    def crash(self, e: Exception) -> None:
        self.error = f"{type(e).__name__}: {e}"


def run_batch(envs: list, policy, instruction: str, jobs: list[dict], max_steps: int,
              execute_chunk: int, videos: int = 0) -> list[_Episode]:
    """Run the episodes `jobs` (one task) in lock-step, envs[i] running jobs[i]; one
    batched policy call per chunk over the episodes still running. Returns one _Episode per
    job (success, steps, error; `frames`: the observations of episodes with index <
    `videos`). Crashes are caught per episode (a raising policy call: every episode in it)."""
    if hasattr(policy, "reset"):  # policies with internal state start every batch fresh
        policy.reset()
    episodes = [_Episode(job, i, job["episode"] < videos) for i, job in enumerate(jobs)]
    running = []
    for ep in episodes:
        try:
            envs[ep.slot].reset(ep.job["seed"])
            if max_steps > 0:
                running.append(ep)
        except Exception as e:  # noqa: BLE001 - recorded per episode
            ep.crash(e)
    while running:
        observed, frames = [], []
        for ep in running:
            try:
                frame = envs[ep.slot].render()
            except Exception as e:  # noqa: BLE001
                ep.crash(e)
                continue
            if ep.frames is not None:
                ep.frames.append(frame)
            observed.append(ep)
            frames.append(frame)
        if not observed:
            break
        try:
            chunk = np.asarray(policy.act(np.stack(frames), [instruction] * len(frames)))
            if chunk.shape != (len(frames), policy.chunk, 7):
                raise ValueError(f"policy.act returned shape {chunk.shape} (want "
                                 f"({len(frames)}, {policy.chunk}, 7))")
        except Exception as e:  # noqa: BLE001 - which episode is to blame is unknown
            for ep in observed:
                ep.crash(e)
            break
        running = []
        for ep, actions in zip(observed, chunk):
            if not np.all(np.isfinite(actions)):
                ep.crash(ValueError("policy.act returned non-finite values"))
                continue
            try:
                for action in actions[:execute_chunk]:
                    result = envs[ep.slot].step(action)
                    ep.steps += 1
                    if result.success:
                        ep.success = True
                        break
                    if result.done or ep.steps >= max_steps:
                        break
                else:
                    running.append(ep)  # chunk done, episode goes on: needs a new frame
            except Exception as e:  # noqa: BLE001
                ep.crash(e)
    return episodes


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


class Runner:
    """One worker's state: one policy (built once, before any episode), the benchmark, and
    cached environments (one batch's worth per task, a few tasks). run(batch) -> records.
    Used by evaluate() in-process or in each worker process (and by
    benchmarks/rollout_throughput.py)."""

    def __init__(self, policy_factory, bench_cfg: dict, eval_cfg: dict, video_dir=None):
        self.batch_envs = batch_envs(eval_cfg)
        self.policy = policy_factory()
        self.videos = videos_per_task(eval_cfg) if video_dir is not None else 0
        self.video_dir = Path(video_dir) if video_dir is not None else None
        self.bench = get_benchmark(bench_cfg["plugin"])
        if hasattr(self.bench, "configure"):  # a plugin's own evaluation options
            self.bench.configure(bench_cfg)
        # frames are rendered at render_size (official LIBERO: 256), then the policy's eval
        # crop resizes them to its training image_size (eval/libero/libero_evaluator.py:137)
        self.size = int(bench_cfg.get("render_size") or bench_cfg["image_size"])
        self.max_steps = int(bench_cfg["max_steps"])
        self.execute_chunk = int(eval_cfg["execute_chunk"])
        if not 1 <= self.execute_chunk <= int(self.policy.chunk):
            raise FatalEvalError(f"evaluate.execute_chunk={self.execute_chunk} must be in "
                                 f"[1, policy chunk {self.policy.chunk}]")
        self.max_cached = max(MAX_CACHED_ENVS, self.batch_envs)
        self.envs: OrderedDict[str, list] = OrderedDict()  # task -> env slots (None: dropped)

    def envs_for(self, task: str, n: int) -> list:
        """n environments of `task` (built on first use, reused across batches)."""
        slots = self.envs.pop(task, [])
        self.envs[task] = slots  # most recently used last
        slots.extend([None] * (n - len(slots)))
        for i in range(n):
            if slots[i] is None:
                slots[i] = self.bench.make_env(task, self.size)
        while sum(len(v) for v in self.envs.values()) > self.max_cached and len(self.envs) > 1:
            for env in self.envs.popitem(last=False)[1]:
                _close(env)
        return slots[:n]

    def _drop_env(self, task: str, slot: int) -> None:
        slots = self.envs.get(task, [])
        if slot < len(slots) and slots[slot] is not None:
            _close(slots[slot])
            slots[slot] = None

    def _attempt(self, batch: list[dict]) -> list[_Episode]:
        task = batch[0]["task"]
        try:
            envs = self.envs_for(task, len(batch))
        except Exception as e:  # noqa: BLE001 - an env that cannot be built is a crash too
            episodes = [_Episode(job, i, False) for i, job in enumerate(batch)]
            for ep in episodes:
                ep.crash(e)
            return episodes
        episodes = run_batch(envs, self.policy, self.bench.instruction(task), batch,
                             self.max_steps, self.execute_chunk, self.videos)
        for ep in episodes:
            if ep.error is not None:  # the crash may have left the env broken
                self._drop_env(task, ep.slot)
        return episodes

    def run(self, batch: list[dict]) -> list[dict]:
        """Run one batch (episodes of one task). If any episode crashes, the whole batch
        runs again with fresh envs for the crashed ones - the same batch-mates as without
        the crash - and the crashed episodes take the retry's outcome; a second crash is
        recorded with its error, never dropped."""
        first = self._attempt(batch)
        final = first
        if any(ep.error is not None for ep in first):
            retry = self._attempt(batch)
            final = [r if f.error is not None else f for f, r in zip(first, retry)]
        records = []
        for ep in final:
            if ep.error is None and ep.frames:
                save_gif(ep.frames, self.video_dir / f"{ep.job['task'].replace('/', '_')}"
                                                     f"_ep{ep.job['episode']:03d}.gif")
            records.append({**ep.job, "success": ep.success if ep.error is None else False,
                            "steps": ep.steps if ep.error is None else 0, "error": ep.error})
        return records

    def close(self) -> None:
        for task in list(self.envs):
            for env in self.envs.pop(task):
                _close(env)


def _close(env) -> None:
    if env is not None:
        try:
            env.close()
        except Exception:  # noqa: BLE001 - a broken env may fail to close; nothing to keep
            pass


_RUNNER: Runner | None = None  # the worker process's runner


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
    _RUNNER = Runner(policy_factory, bench_cfg, eval_cfg, video_dir)
    # Close the GL contexts before the worker exits (pool workers skip atexit handlers).
    multiprocessing.util.Finalize(None, _RUNNER.close, exitpriority=10)


def _worker_run(batch: list[dict]) -> list[dict]:
    return _RUNNER.run(batch)


def save_gif(frames: list, path: Path, fps: int = 10) -> None:
    """Animated GIF of uint8 (H, W, 3) frames, written atomically."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(1000 / fps), loop=0)


def evaluate(policy_factory, bench_cfg: dict, eval_cfg: dict, seed: int, out_dir,
             workers: int) -> dict:
    """Evaluate the policy built by `policy_factory` (picklable, zero-argument) on
    bench_cfg["eval_episodes_per_task"] held-out episodes per task.

    Writes out_dir/episodes.jsonl and out_dir/summary.json; returns the summary dict.
    """
    if getattr(get_benchmark(bench_cfg["plugin"]), "chains", False):  # CALVIN's protocol
        from vlm4vla.eval.chains import evaluate_chains
        return evaluate_chains(policy_factory, bench_cfg, eval_cfg, seed, out_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").unlink(missing_ok=True)  # "finished" only once rewritten
    check_heldout(get_benchmark(bench_cfg["plugin"]), bench_cfg, seed)
    batches = eval_batches(bench_cfg, eval_cfg, seed)
    # Videos (GIF of the frames the policy saw, first N episodes per task): for people to
    # look at, not results - they are not among the rule's declared outputs.
    video_dir = out_dir / "videos" if videos_per_task(eval_cfg) > 0 else None
    if video_dir is not None:
        video_dir.mkdir(exist_ok=True)
    workers = max(1, min(int(workers), len(batches)))

    if workers == 1:
        with _torch_threads(1):
            runner = Runner(policy_factory, bench_cfg, eval_cfg, video_dir)
            try:
                records = [r for batch in batches for r in runner.run(batch)]
            finally:
                runner.close()
    else:
        # spawn: a forked child would inherit the parent's GL/torch thread state.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_worker_init,
                                 initargs=(policy_factory, bench_cfg, eval_cfg, video_dir)) as pool:
            records = [r for rs in pool.map(_worker_run, batches, chunksize=1) for r in rs]

    records.sort(key=lambda r: (r["task"], r["episode"]))
    write_jsonl(out_dir / "episodes.jsonl", records)
    summary = {"benchmark": bench_cfg["plugin"], "seed": int(seed),
               "episodes_per_task": int(bench_cfg["eval_episodes_per_task"]),
               "max_steps": int(bench_cfg["max_steps"]),
               "execute_chunk": int(eval_cfg["execute_chunk"]),
               "batch_envs": batch_envs(eval_cfg),
               **summarise(records), "complete": True}
    write_json(out_dir / "summary.json", summary)
    return summary

"""Closed-loop evaluation: output schema, determinism across worker counts, crash records,
batched inference (fixed batches, early-finishing episodes leave, rows never mix)."""

import functools
import hashlib
import json
import os

import numpy as np
import pytest

from vlm4vla.eval import rollout
from vlm4vla.eval.rollout import FatalEvalError, eval_batches, eval_jobs, evaluate
from vlm4vla.sim.base import StepResult
from vlm4vla.sim.registry import get_benchmark

BENCH = {"plugin": "metaworld", "tasks": ["reach-v3", "button-press-v3"], "image_size": 48,
         "demos_per_task": 2, "max_steps": 24, "chunk": 4, "eval_episodes_per_task": 2,
         "eval_seed_offset": 100000}
EVAL = {"workers": 1, "execute_chunk": 3}


# Test policies live at module level so "spawn" workers can unpickle them.
class ConstantPolicy:
    """Always the same chunk; the arm drifts, so episodes fail (or crash, see below)."""

    def __init__(self, action=(0.3, 0.2, 0.1, 0, 0, 0, -1), chunk=4, crash_on=None):
        self.chunk = chunk
        self.action = np.asarray(action, dtype=np.float32)
        self.crash_on = crash_on  # instruction that makes act() raise

    def act(self, frames, instructions):
        assert frames.dtype == np.uint8 and frames.shape[1:] == (48, 48, 3)
        if instructions[0] == self.crash_on:
            raise RuntimeError("policy exploded")
        # Depend on the frame so that a wrong frame would change the outcome.
        action = self.action * (1.0 + frames.mean() / 1e4)
        return np.broadcast_to(action, (len(frames), self.chunk, 7)).astype(np.float32)


class ReplayPolicy:
    """Replays a fixed action list (an expert episode recorded on the same seed)."""

    def __init__(self, actions, chunk=4):
        self.actions, self.chunk, self.t = np.asarray(actions, np.float32), chunk, 0

    def reset(self):
        self.t = 0

    def act(self, frames, instructions):
        idx = np.minimum(np.arange(self.t, self.t + self.chunk), len(self.actions) - 1)
        self.t += EVAL["execute_chunk"]
        return self.actions[idx][None]


def _read(out):
    return (out / "episodes.jsonl").read_text(), (out / "summary.json").read_text()


def test_summary_schema(tmp_path):
    summary = evaluate(functools.partial(ConstantPolicy), BENCH, EVAL, 123, tmp_path, workers=1)
    lines, text = _read(tmp_path)
    assert json.loads(text) == summary and summary["complete"] is True
    records = [json.loads(x) for x in lines.splitlines()]
    assert [(r["task"], r["episode"]) for r in records] == [
        ("button-press-v3", 0), ("button-press-v3", 1), ("reach-v3", 0), ("reach-v3", 1)]
    for r in records:
        assert set(r) == {"task", "episode", "seed", "success", "steps", "error"}
        assert r["error"] is None and r["steps"] == BENCH["max_steps"] and not r["success"]
        assert r["seed"] >= 123 + BENCH["eval_seed_offset"]
    assert [r["seed"] for r in records] == [j["seed"] for j in eval_jobs(BENCH, 123)]
    for group in [*summary["tasks"].values(), summary["overall"]]:
        assert set(group) == {"n", "successes", "errors", "success_rate",
                              "wilson_low", "wilson_high"}
    assert summary["overall"]["n"] == 4 and summary["tasks"]["reach-v3"]["n"] == 2
    assert summary["overall"]["wilson_high"] == pytest.approx(0.4899, abs=1e-4)  # 0 of 4


def test_replayed_expert_succeeds(tmp_path):
    bench_cfg = {**BENCH, "tasks": ["reach-v3"], "eval_episodes_per_task": 1, "max_steps": 80}
    job = eval_jobs(bench_cfg, 5)[0]
    env = get_benchmark("metaworld").make_env("reach-v3", 48)
    env.reset(job["seed"])
    actions = []
    while not actions or not env.step(actions[-1]).success:
        actions.append(env.expert_action())
    env.close()
    factory = functools.partial(ReplayPolicy, actions)
    summary = evaluate(factory, bench_cfg, EVAL, 5, tmp_path, workers=1)
    record = json.loads((tmp_path / "episodes.jsonl").read_text())
    assert record["success"] and record["steps"] == len(actions)
    assert summary["overall"]["success_rate"] == 1.0


def test_crashed_episodes_are_recorded(tmp_path):
    bench = get_benchmark("metaworld")
    factory = functools.partial(ConstantPolicy, crash_on=bench.instruction("reach-v3"))
    summary = evaluate(factory, BENCH, EVAL, 123, tmp_path, workers=1)
    records = [json.loads(x) for x in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    crashed = [r for r in records if r["task"] == "reach-v3"]
    assert len(crashed) == 2 and all(r["error"] == "RuntimeError: policy exploded"
                                     and not r["success"] for r in crashed)
    assert summary["tasks"]["reach-v3"]["errors"] == 2 and summary["overall"]["errors"] == 2
    assert summary["tasks"]["button-press-v3"]["errors"] == 0


def test_bad_execute_chunk_aborts_without_summary(tmp_path):
    (tmp_path / "summary.json").write_text("{}")  # a stale result must not survive
    with pytest.raises(FatalEvalError):
        evaluate(ConstantPolicy, BENCH, {**EVAL, "execute_chunk": 5}, 123, tmp_path, workers=1)
    assert not (tmp_path / "summary.json").exists()


class RecordingPolicy(ConstantPolicy):
    """ConstantPolicy whose actions depend on the whole batch (as a batched float forward
    may), logging every call - instruction, batch size, hash of the frames - per process,
    with a "reset" line at the start of each batch."""

    def __init__(self, log_dir, **kw):
        super().__init__(**kw)
        self.log = os.path.join(log_dir, f"calls-{os.getpid()}.jsonl")

    def _write(self, row):
        with open(self.log, "a") as f:
            f.write(json.dumps(row) + "\n")

    def reset(self):
        self._write("reset")

    def act(self, frames, instructions):
        self._write([instructions[0], len(frames), hashlib.sha1(frames.tobytes()).hexdigest()])
        chunk = super().act(frames, instructions).copy()
        chunk[..., :3] *= 1.0 + len(frames) / 10 + frames.mean() / 1e3  # the whole batch's mean
        return chunk


def _batches_called(log_dir):
    """Every batch's sequence of policy calls, over all processes, sorted."""
    batches = []
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name)) as f:
            for row in map(json.loads, f):
                if row == "reset":
                    batches.append([])
                else:
                    batches[-1].append(row)
    return sorted(batches)


def test_eval_batches_are_fixed_groups_per_task():
    bench_cfg = {**BENCH, "eval_episodes_per_task": 3}
    groups = [[(j["task"], j["episode"]) for j in b]
              for b in eval_batches(bench_cfg, {**EVAL, "batch_envs": 2}, 7)]
    assert groups == [[("button-press-v3", 0), ("button-press-v3", 1)], [("button-press-v3", 2)],
                      [("reach-v3", 0), ("reach-v3", 1)], [("reach-v3", 2)]]
    assert [j for b in eval_batches(bench_cfg, {**EVAL, "batch_envs": 5}, 7) for j in b] == \
        eval_jobs(bench_cfg, 7)
    assert len(eval_batches(bench_cfg, EVAL, 7)) == 2  # default: 4 per batch
    for bad in (0, True, 2.0):
        with pytest.raises(FatalEvalError, match="batch_envs"):
            eval_batches(bench_cfg, {**EVAL, "batch_envs": bad}, 7)


def test_identical_across_worker_counts_and_runs(tmp_path):
    """Batches of 2 (and a last one of 1) per task; the policy's output depends on its batch
    and it crashes on one task: records, summaries and the very policy calls made are the
    same with 1 and 2 workers and in a second run."""
    bench_cfg = {**BENCH, "eval_episodes_per_task": 3}
    eval_cfg = {**EVAL, "batch_envs": 2}
    crash = get_benchmark("metaworld").instruction("button-press-v3")
    results, calls = {}, {}
    for name, workers in (("w1", 1), ("w2", 2), ("w1again", 1)):
        logs = tmp_path / f"calls-{name}"
        logs.mkdir()
        factory = functools.partial(RecordingPolicy, str(logs), crash_on=crash)
        evaluate(factory, bench_cfg, eval_cfg, 9, tmp_path / name, workers=workers)
        results[name], calls[name] = _read(tmp_path / name), _batches_called(logs)
    assert results["w1"] == results["w2"] == results["w1again"]
    assert calls["w1"] == calls["w2"] == calls["w1again"]
    records = [json.loads(x) for x in results["w1"][0].splitlines()]
    assert [r["error"] for r in records] == ["RuntimeError: policy exploded"] * 3 + [None] * 3
    assert json.loads(results["w1"][1])["batch_envs"] == 2
    # reach-v3: batch [0, 1] then [2], 8 calls each (24 steps, 3 per chunk); button-press:
    # both its batches crash at their first call and are retried once.
    sizes = sorted(tuple(c[1] for c in b) for b in calls["w1"])
    assert sizes == [(1,), (1,), (1,) * 8, (2,), (2,), (2,) * 8]


# A fake simulator, to watch the lock-step loop exactly (in-process only: workers=1).
class FakeEnv:
    """Frames are filled with the episode's code; an action must carry the code of the env
    it is sent to (so rows of a batch can never be mixed up); an episode succeeds after
    LENGTHS[seed] steps, and CRASHES[seed] = (step, attempts) makes step() raise at that
    step during the first `attempts` attempts of its batch."""

    LENGTHS: dict = {}
    CRASHES: dict = {}
    log: list = []

    def __init__(self, task):
        self.task, self.seed = task, None

    def reset(self, seed):
        self.seed, self.t = seed, 0
        self.code = list(self.LENGTHS).index(seed) + 1
        FakeEnv.log.append(("reset", seed))

    def render(self):
        FakeEnv.log.append(("render", self.seed))
        return np.full((48, 48, 3), self.code, np.uint8)

    def step(self, action):
        assert action[0] == self.code, "an env got another env's action"
        self.t += 1
        step, attempts = self.CRASHES.get(self.seed, (None, 0))
        if self.t == step and sum(e == ("reset", self.seed) for e in FakeEnv.log) <= attempts:
            raise RuntimeError("sim exploded")
        success = self.t >= self.LENGTHS[self.seed]
        return StepResult(success=success, done=success, info={})

    def close(self):
        pass


class FakeBenchmark:
    name = "fake"

    def instruction(self, task):
        return f"do {task}"

    def make_env(self, task, image_size):
        return FakeEnv(task)


class CodePolicy:
    """Sends every env its own code (read from its frame) as action[0]; logs call sizes."""

    chunk = 4

    def __init__(self):
        self.sizes = []

    def act(self, frames, instructions):
        self.sizes.append(len(frames))
        chunk = np.zeros((len(frames), self.chunk, 7), np.float32)
        chunk[:, :, 0] = frames[:, 0, 0, 0][:, None]
        return chunk


@pytest.fixture
def fake(monkeypatch):
    real = rollout.get_benchmark
    monkeypatch.setattr(rollout, "get_benchmark",
                        lambda name: FakeBenchmark() if name == "fake" else real(name))
    FakeEnv.log = []
    bench_cfg = {"plugin": "fake", "tasks": ["a"], "image_size": 48, "max_steps": 12,
                 "eval_episodes_per_task": 3, "eval_seed_offset": 0}
    jobs = eval_jobs(bench_cfg, 1)
    # episode 0 succeeds at step 2, episode 1 at step 7, episode 2 hits max_steps (12)
    monkeypatch.setattr(FakeEnv, "LENGTHS", {j["seed"]: n for j, n in zip(jobs, (2, 7, 13))})
    monkeypatch.setattr(FakeEnv, "CRASHES", {})
    return bench_cfg, [j["seed"] for j in jobs]


def _records(out):
    return [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]


def test_finished_episodes_leave_the_batch(fake, tmp_path):
    bench_cfg, seeds = fake
    policy = CodePolicy()
    evaluate(lambda: policy, bench_cfg, {"execute_chunk": 3, "batch_envs": 3}, 1, tmp_path, 1)
    assert [(r["success"], r["steps"], r["error"]) for r in _records(tmp_path)] == \
        [(True, 2, None), (True, 7, None), (False, 12, None)]
    # one call per chunk over the running envs: all 3 at t=0; episode 0 has left at t=3
    # and t=6; episode 1 (done at 7) has left at t=9; episode 2 stops at 12 without a call.
    assert policy.sizes == [3, 2, 2, 1]
    renders = [s for kind, s in FakeEnv.log if kind == "render"]
    assert [renders.count(s) for s in seeds] == [1, 3, 4]  # frames only when needed


def test_envs_render_at_render_size_and_plugins_get_their_options(fake, tmp_path, monkeypatch):
    """benchmarks.<b>.render_size: envs are built at it (official LIBERO renders 256 for a
    224 policy); a plugin with configure() receives the benchmark config first."""
    bench_cfg, _ = fake
    built, configured = [], []
    monkeypatch.setattr(FakeBenchmark, "make_env",
                        lambda self, task, size: built.append(size) or FakeEnv(task), raising=False)
    monkeypatch.setattr(FakeBenchmark, "configure", lambda self, cfg: configured.append(cfg), raising=False)
    evaluate(lambda: CodePolicy(), {**bench_cfg, "render_size": 64}, {"execute_chunk": 3}, 1, tmp_path, 1)
    assert set(built) == {64} and configured and configured[0]["render_size"] == 64
    built.clear()
    evaluate(lambda: CodePolicy(), bench_cfg, {"execute_chunk": 3}, 1, tmp_path / "b", 1)
    assert set(built) == {48}


def test_batch_of_one_runs_each_episode_alone(fake, tmp_path):
    bench_cfg, _ = fake
    policy = CodePolicy()
    evaluate(lambda: policy, bench_cfg, {"execute_chunk": 3, "batch_envs": 1}, 1, tmp_path, 1)
    assert [(r["success"], r["steps"]) for r in _records(tmp_path)] == \
        [(True, 2), (True, 7), (False, 12)]
    assert policy.sizes == [1] + [1] * 3 + [1] * 4


def test_crash_reruns_the_batch_then_records_the_error(fake, tmp_path, monkeypatch):
    bench_cfg, seeds = fake
    # episode 1 crashes at step 5 in both attempts; episode 2 at step 4 in the first only
    monkeypatch.setattr(FakeEnv, "CRASHES", {seeds[1]: (5, 2), seeds[2]: (4, 1)})
    policy = CodePolicy()
    evaluate(lambda: policy, bench_cfg, {"execute_chunk": 3, "batch_envs": 3}, 1, tmp_path, 1)
    assert [(r["success"], r["steps"], r["error"]) for r in _records(tmp_path)] == \
        [(True, 2, None), (False, 0, "RuntimeError: sim exploded"), (False, 12, None)]
    # attempt 1: [3, 2] (episode 0 done, then episodes 1 and 2 crash in the second chunk);
    # attempt 2 (the whole batch again): [3, 2], episode 1 crashes, episode 2 runs on alone.
    assert policy.sizes == [3, 2, 3, 2, 1, 1]
    assert [e for e in FakeEnv.log if e[0] == "reset"] == [("reset", s) for s in seeds] * 2


def test_real_policy_batched_rows_match_single_env_predictions(tmp_path):
    """A tiny real VLA policy in the batched loop: each env's chunk is (to float tolerance)
    what the policy predicts for that env's frame alone."""
    from vlm4vla.data.normalize import ActionNormalizer
    from vlm4vla.models.policy import VLAPolicy
    from vlm4vla.train.vla import LoadedPolicy

    cfg = {"backbone": "qwen2_5_vl", "init": "scratch",
           "arch": {"hidden_size": 64, "num_hidden_layers": 2}, "freeze": []}
    loaded = LoadedPolicy(VLAPolicy.build(cfg, chunk=4, seed=0).eval(),
                          ActionNormalizer.fixed(-0.5, 0.5), {})
    calls = []

    class Recorder:
        chunk = loaded.chunk

        def act(self, frames, instructions):
            out = loaded.act(frames, instructions)
            calls.append((frames.copy(), list(instructions), out))
            return out

    bench_cfg = {"plugin": "metaworld", "tasks": ["reach-v3"], "image_size": 224,
                 "max_steps": 8, "eval_episodes_per_task": 3, "eval_seed_offset": 100000}
    evaluate(Recorder, bench_cfg, {"execute_chunk": 4, "batch_envs": 2}, 3, tmp_path, 1)
    assert [len(f) for f, _, _ in calls] == [2, 2, 1, 1]
    for frames, instructions, out in calls:
        assert out.shape == (len(frames), 4, 7)
        for i in range(len(frames)):
            alone = loaded.act(frames[i:i + 1], instructions[i:i + 1])
            np.testing.assert_allclose(out[i], alone[0], atol=1e-5, rtol=0)
    assert not np.array_equal(calls[0][0][0], calls[0][0][1])  # two different episodes


def test_videos_of_first_episodes_do_not_change_results(tmp_path):
    from PIL import Image

    plain = evaluate(functools.partial(ConstantPolicy), BENCH, EVAL, 123, tmp_path / "a", workers=1)
    with_videos = evaluate(functools.partial(ConstantPolicy), BENCH, {**EVAL, "videos_per_task": 1},
                           123, tmp_path / "b", workers=1)
    assert plain == with_videos
    gifs = sorted(p.name for p in (tmp_path / "b" / "videos").iterdir())
    assert gifs == ["button-press-v3_ep000.gif", "reach-v3_ep000.gif"]
    with Image.open(tmp_path / "b" / "videos" / gifs[0]) as im:
        assert im.size == (48, 48) and im.n_frames == BENCH["max_steps"] // EVAL["execute_chunk"]
    assert not (tmp_path / "a" / "videos").exists()


class _StepLogEnv:
    """Records every executed action; never succeeds (episodes run to max_steps)."""

    def __init__(self):
        self.executed = []

    def reset(self, seed):
        self.t = 0

    def render(self):
        return np.full((8, 8, 3), self.t, np.uint8)

    def step(self, action):
        self.executed.append(np.asarray(action).copy())
        self.t += 1
        return StepResult(success=False, done=False, info={})


class _ChunkIndexPolicy:
    """Row k of each chunk says (call number, k): which prediction an executed action is."""

    chunk = 4

    def __init__(self):
        self.calls = 0

    def act(self, frames, instructions):
        self.calls += 1
        out = np.zeros((len(frames), self.chunk, 7), np.float32)
        out[:, :, 0] = self.calls
        out[:, :, 1] = np.arange(self.chunk)
        return out


@pytest.mark.parametrize("execute_chunk,calls", [(1, 10), (4, 3)])
def test_execute_chunk_one_is_the_official_execute_step_one(execute_chunk, calls):
    """Official execute_step 1 (LIBERO's default, eval/libero/run_libero_eval.py:57) calls
    ensemble_action, whose history keeps one chunk (max_len = 1,
    eval/calvin/model_wrapper.py:170-190): every step a new prediction and its FIRST action,
    no averaging over past chunks. execute_chunk 1 does exactly that; execute_chunk 4 runs
    each chunk open-loop (execute_step 4)."""
    env, policy = _StepLogEnv(), _ChunkIndexPolicy()
    rollout.run_batch([env], policy, "x", [{"seed": 0, "episode": 0}], max_steps=10,
                      execute_chunk=execute_chunk)
    done = np.array(env.executed)[:, :2]
    assert policy.calls == calls and len(done) == 10
    want = [(1 + t // execute_chunk, t % execute_chunk) for t in range(10)]
    assert [tuple(map(int, row)) for row in done] == want

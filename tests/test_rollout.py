"""Closed-loop evaluation: output schema, determinism across worker counts, crash records."""

import functools
import json

import numpy as np
import pytest

from vlm4vla.eval.rollout import FatalEvalError, eval_jobs, evaluate
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


def test_identical_across_worker_counts(tmp_path):
    factory = functools.partial(ConstantPolicy, crash_on=get_benchmark("metaworld")
                                .instruction("button-press-v3"))
    evaluate(factory, BENCH, EVAL, 9, tmp_path / "w1", workers=1)
    evaluate(factory, BENCH, EVAL, 9, tmp_path / "w2", workers=2)
    assert _read(tmp_path / "w1") == _read(tmp_path / "w2")


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

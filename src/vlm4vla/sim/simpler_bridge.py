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

Actions: ours are [dx, dy, dz, droll, dpitch, dyaw, gripper] with gripper +1 close / -1
open. ManiSkill's Bridge WidowX (control mode
arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos, as SimplerEnv uses) takes the
arm delta unchanged and a gripper of +1 open / -1 close, so the gripper sign is flipped.
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


def _check(task: str) -> None:
    if task not in ENV_IDS:
        raise ValueError(f"unknown SimplerEnv-Bridge task {task!r}; known: {sorted(ENV_IDS)}")


class SimplerBridgeEnv:
    """One ManiSkill 3 Bridge task (single env, CPU simulation)."""

    def __init__(self, task: str, image_size: int = 224):
        _check(task)
        try:
            import gymnasium as gym
            import mani_skill.envs  # noqa: F401  (registers the environments)
        except ImportError as e:
            raise ImportError(f"{_INSTALL}: {e}") from e
        self.task = task
        self.image_size = int(image_size)
        self._env = gym.make(ENV_IDS[task], obs_mode="rgb+segmentation", num_envs=1,
                             control_mode=CONTROL_MODE, sim_backend="cpu")
        self._obs = None

    def reset(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self._obs, _ = self._env.reset(seed=int(seed),
                                       options={"episode_id": int(seed) % EPISODES_PER_TASK})

    def render(self) -> np.ndarray:
        from PIL import Image

        rgb = self._obs["sensor_data"][CAMERA]["rgb"]
        rgb = np.asarray(rgb.cpu() if hasattr(rgb, "cpu") else rgb)[0].astype(np.uint8)
        img = Image.fromarray(rgb).resize((self.image_size, self.image_size), Image.BICUBIC)
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))

    def step(self, action: np.ndarray) -> StepResult:
        action = checked_action(action, started=self._obs is not None)
        a = action.copy()
        a[6] = -1.0 if action[6] > 0 else 1.0  # ours +1 close -> ManiSkill Bridge -1 close
        self._obs, reward, terminated, truncated, info = self._env.step(a[None])
        success = bool(np.asarray(info["success"]).reshape(-1)[0])
        reward = float(np.asarray(reward).reshape(-1)[0])
        return StepResult(success=success, done=success, info={"reward": reward})

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

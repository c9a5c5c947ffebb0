"""What the two simulator VQA generators (metaworld_gen, libero_gen) share: the task names,
the pinhole camera model, mask erosion and the quota bookkeeping of the driver."""

from __future__ import annotations

import numpy as np

from vlm4vla.sim import render as _render  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)

import mujoco  # noqa: E402  (after vlm4vla.sim.render)

GEN_TASKS = ("pointing", "depth", "embodied_qa", "general_vqa")


class CameraModel:
    """Pinhole model of a MuJoCo camera for a square (size x size) frame, optionally
    rolled by 180 degrees as vlm4vla.sim.render does. Coordinates are of the frame as
    stored: pixel centres at (col + 0.5, row + 0.5)."""

    def __init__(self, model, data, camera: str, size: int, rotate180: bool = True):
        cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cid < 0:
            raise ValueError(f"camera {camera!r} is not in the model")
        self.size = size
        self.rotate180 = rotate180
        self.f = 0.5 * size / np.tan(np.deg2rad(model.cam_fovy[cid]) / 2)
        self.pos = np.array(data.cam_xpos[cid], dtype=np.float64)
        self.rot = np.array(data.cam_xmat[cid], dtype=np.float64).reshape(3, 3)  # cols = axes

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> (pixel (N, 2) as (u, v) in the stored frame, z-depth (N,))."""
        c = (np.atleast_2d(points) - self.pos) @ self.rot  # = R^T (p - t) row-wise
        z = -c[:, 2]
        half = self.size / 2
        u = half + self.f * c[:, 0] / z
        v = half - self.f * c[:, 1] / z
        if self.rotate180:
            u, v = self.size - u, self.size - v
        return np.stack([u, v], axis=1), z

    def normalised(self, points: np.ndarray) -> np.ndarray:
        return self.project(points)[0] / self.size

    def ray_dirs(self) -> np.ndarray:
        """Unit world-space ray direction through every pixel centre of the stored frame (H, W, 3)."""
        c = np.arange(self.size) + 0.5 - self.size / 2
        x = c[None, :] / self.f * np.ones((self.size, 1))
        y = -c[:, None] / self.f * np.ones((1, self.size))
        if self.rotate180:
            x, y = -x, -y
        d = np.stack([x, y, -np.ones_like(x)], axis=-1) @ self.rot.T
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def range_factor(self) -> np.ndarray:
        """(H, W) factor turning z-depth into distance along the pixel's ray."""
        c = (np.arange(self.size) + 0.5 - self.size / 2) / self.f
        return np.sqrt(1.0 + c[None, :] ** 2 + c[:, None] ** 2)


def erode(mask: np.ndarray, r: int) -> np.ndarray:
    """`mask` shrunk by r pixels (4-neighbourhood); the border is never kept."""
    out = mask.copy()
    for _ in range(r):
        m = out.copy()
        m[1:] &= out[:-1]
        m[:-1] &= out[1:]
        m[:, 1:] &= out[:, :-1]
        m[:, :-1] &= out[:, 1:]
        m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = False
        out = m
    return out


def task_quotas(tasks_cfg: dict) -> tuple[dict, int, int]:
    """tasks_cfg -> ({task: {train: N, eval: M}}, frames_per_scene, per_frame), checked."""
    opts = {"frames_per_scene": 3, "per_frame": 3}
    quotas = {}
    # Sorted: the tasks draw from one RNG in this order, so the records must not depend on
    # the order the config's keys arrive in (a Snakemake overlay merge keeps config.yaml's
    # order, a single file its own - the DVC and Snakemake runs once differed only by this).
    for key, val in sorted(tasks_cfg.items()):
        if key in opts:
            opts[key] = int(val)
        elif key in GEN_TASKS:
            if not isinstance(val, dict) or set(val) - {"train", "eval"}:
                raise ValueError(f"tasks_cfg[{key!r}] must be {{train: N, eval: M}}, got {val!r}")
            quotas[key] = {s: int(val.get(s, 0)) for s in ("train", "eval")}
        else:
            raise ValueError(f"unknown VQA task {key!r} in tasks_cfg; known: {GEN_TASKS} "
                             f"and options {sorted(opts)}")
    if not quotas:
        raise ValueError(f"tasks_cfg names no VQA task; known: {GEN_TASKS}")
    return quotas, opts["frames_per_scene"], opts["per_frame"]


def split_evenly(total: int, n: int) -> list[int]:
    """`total` cut into n near-equal parts, the larger ones first."""
    return [total // n + (1 if i < total % n else 0) for i in range(n)]

"""Fast, reusable off-screen MuJoCo rendering on a CPU-only machine.

Why this module exists: with MuJoCo's default visual settings a 224x224 frame costs
hundreds of milliseconds under Mesa's llvmpipe, because the off-screen buffer is rendered
with 4x multisampling and every frame draws shadow maps and floor reflections. Turning
multisampling off (`model.vis.quality.offsamples = 0`) and the shadow / reflection scene
flags off gives the same picture without shadows at a fraction of the cost (measured by
`ms_per_frame`, see benchmarks/rollout_throughput.py).

MUJOCO_GL picks MuJoCo's OpenGL backend and is read when `mujoco` is first imported, so it
is set here, before `import mujoco`. EGL works head-less (Mesa's EGL falls back to
llvmpipe); an explicit MUJOCO_GL chosen by the user (e.g. "osmesa") is respected.
"""

from __future__ import annotations

import os
import sys
import time

if "mujoco" in sys.modules and "MUJOCO_GL" not in os.environ:  # too late to choose
    import warnings

    warnings.warn("mujoco was imported before vlm4vla.sim.render set MUJOCO_GL=egl; "
                  "off-screen rendering may fail on a machine without a display")
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402  (must follow the MUJOCO_GL choice above)
import numpy as np  # noqa: E402


def apply_fast_settings(model: mujoco.MjModel) -> None:
    """No multisampling in the off-screen buffer. Must run BEFORE the renderer is built,
    because the buffer's sample count is fixed when its GL context is made."""
    model.vis.quality.offsamples = 0


class FrameRenderer:
    """One off-screen renderer for one model and one fixed camera, reused for every frame.

    Building a renderer makes a GL context and buffers (slow), so an environment makes
    exactly one and keeps it for all its resets. `rotate180` turns a camera that is mounted
    upside down (its "up" axis points at the floor, as Meta-World's corner cameras are)
    the right way up: a 180-degree roll, not a mirror flip, so left and right stay true.
    """

    def __init__(self, model: mujoco.MjModel, size: int, camera: str,
                 fast: bool = True, rotate180: bool = False):
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(f"camera {camera!r} is not in the model; it has {names}")
        if fast:
            apply_fast_settings(model)
        self.camera = camera
        self.rotate180 = rotate180
        self._renderer = mujoco.Renderer(model, height=size, width=size)
        if fast:
            # Scene flags live in the mjvScene and survive update_scene(), so set them once.
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """uint8 (size, size, 3) RGB frame of the current state (a fresh, contiguous copy)."""
        self._renderer.update_scene(data, camera=self.camera)
        frame = self._renderer.render()
        if self.rotate180:
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def close(self) -> None:
        # Free the GL context now: leaving it to the garbage collector at interpreter exit
        # makes EGL print errors after its library is already unloaded.
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __del__(self):  # best effort; close() is the supported path
        try:
            self.close()
        except Exception:
            pass


def ms_per_frame(model: mujoco.MjModel, data: mujoco.MjData, size: int, camera: str,
                 fast: bool, frames: int = 20) -> float:
    """Mean wall-clock milliseconds per rendered frame (after one warm-up frame).

    Note: `fast=True` sets offsamples=0 on `model` permanently; measure the default first.
    """
    renderer = FrameRenderer(model, size, camera, fast=fast)
    try:
        renderer.render(data)  # warm-up: first frame uploads textures and meshes
        start = time.perf_counter()
        for _ in range(frames):
            renderer.render(data)
        return 1000.0 * (time.perf_counter() - start) / frames
    finally:
        renderer.close()

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


class _SharedRenderer:
    """A mujoco.Renderer (GL context + MjrContext: meshes and textures uploaded once) and the
    number of FrameRenderers drawing with it."""

    def __init__(self, model: mujoco.MjModel, size: int, fast: bool):
        self.renderer = mujoco.Renderer(model, height=size, width=size)
        if fast:
            # Scene flags live in the mjvScene and survive mjv_updateScene, so set them once.
            self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self.users = 0


_SHARED: dict[tuple, _SharedRenderer] = {}


class FrameRenderer:
    """One off-screen renderer for one model and one fixed camera, reused for every frame.

    Building a renderer makes a GL context and uploads every mesh and texture (0.3 s for a
    Meta-World scene, about 1 s for a LIBERO one), so an environment makes one and keeps it
    for all its resets. Environments built from the same scene file hold the same meshes and
    textures, so they may share one: pass the same `share` key (e.g. the task name) and all
    but the first skip the upload. The scene itself (poses, colours, sites) is always built
    from this renderer's own `model` and the data passed in, so a shared renderer draws the
    same pixels as a private one (tested). `rotate180` turns a camera that is mounted
    upside down (its "up" axis points at the floor, as Meta-World's corner cameras are)
    the right way up: a 180-degree roll, not a mirror flip, so left and right stay true.
    """

    def __init__(self, model: mujoco.MjModel, size: int, camera: str,
                 fast: bool = True, rotate180: bool = False, share=None,
                 option: mujoco.MjvOption | None = None):
        cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(f"camera {camera!r} is not in the model; it has {names}")
        if fast:
            apply_fast_settings(model)
        self.camera = camera
        self.rotate180 = rotate180
        self._model = model
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._cam.fixedcamid = cam_id
        self._opt = option if option is not None else mujoco.MjvOption()
        self._key = None if share is None else (share, size, fast)
        shared = _SHARED.get(self._key) if self._key is not None else None
        if shared is None:
            shared = _SharedRenderer(model, size, fast)
            if self._key is not None:
                _SHARED[self._key] = shared
        shared.users += 1
        self._shared: _SharedRenderer | None = shared

    @property
    def _renderer(self) -> mujoco.Renderer:
        if self._shared is None:
            raise RuntimeError("render() after close()")
        return self._shared.renderer

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """uint8 (size, size, 3) RGB frame of the current state (a fresh, contiguous copy)."""
        renderer = self._renderer
        mujoco.mjv_updateScene(self._model, data, self._opt, None, self._cam,
                               mujoco.mjtCatBit.mjCAT_ALL, renderer.scene)
        frame = renderer.render()
        if self.rotate180:
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def close(self) -> None:
        # Free the GL context now (when the last sharer closes): leaving it to the garbage
        # collector at interpreter exit makes EGL print errors after its library is unloaded.
        shared, self._shared = self._shared, None
        if shared is None:
            return
        shared.users -= 1
        if shared.users == 0:
            if self._key is not None and _SHARED.get(self._key) is shared:
                del _SHARED[self._key]
            shared.renderer.close()

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

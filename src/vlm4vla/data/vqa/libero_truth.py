"""Ground truth of one captured LIBERO state (FrameTruth): item masks, centroids, visible
distances, pointing answers, gripper state, what is held and the expert's next step. Every
answer comes from the simulator, never from the pixels (vlm4vla.data.vqa.libero_gen)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlm4vla.data.vqa.common import erode
from vlm4vla.data.vqa.libero_scene import (GEOM_OBJ, SITE_OBJ, AgentviewCamera, ItemGeometry,
                                           LiberoAuxRenderer, SceneItem)

MIN_PIXELS = 20  # an item with fewer visible pixels counts as not visible
SURFACE_TOL = 0.015  # metres; a surface point is seen if the depth buffer agrees this well
MAX_POINTS = 3
POINT_SEPARATION = 0.02  # normalised; closer answer points are merged
OPEN_GAP = 0.07  # metres between the Panda's finger joints (fully open ~0.08)
REST_SPEED = 0.02  # finger joint speed below which the fingers are at rest
DIRECTIONS = {(0, 1): "forward", (0, -1): "backward", (1, 1): "left", (1, -1): "right",
              (2, 1): "up", (2, -1): "down"}
STOP = "stop, the task is done"


# ----------------------------------------------------------------------------- one frame


@dataclass
class FrameTruth:
    """Everything the question writers need about one captured state."""

    image: np.ndarray
    depth: np.ndarray  # metric z-depth
    range: np.ndarray  # metric distance along each pixel's ray
    seg: np.ndarray
    cam: AgentviewCamera
    items: tuple[SceneItem, ...]
    pixels: dict[str, int]  # instance -> visible pixel count (every item)
    masks: dict[str, np.ndarray]  # instance -> visible mask (visible items only)
    centroid: dict[str, tuple[float, float]]  # normalised mask centroid
    centre: dict[str, tuple[float, float]]  # normalised projection of the geometric centre
    centre_z: dict[str, float]  # camera-frame z of the geometric centre
    points: dict[str, list[tuple[float, float]]]  # pointing answers (on the mask)
    distance: dict[str, float]  # median visible-surface distance, metres
    surface_mask: np.ndarray
    gripper: str | None  # "open" / "closed" / None (in motion)
    holding: str | None  # instance held by the gripper, "" for nothing, None if unclear
    next_action: str | None  # None without an expert


def _pointing(cam, world, mask, depth, size) -> list[tuple[float, float]]:
    """Up to MAX_POINTS pixels where the item's projected geometry is seen (see the module
    docstring), as normalised pixel centres: the very samples the renderer drew the mask
    and depth from (a vertex itself may sit on a silhouette or a sub-pixel slot)."""
    inner = erode(mask, 2)
    if inner.sum() < 0.25 * mask.sum():
        inner = erode(mask, 1)
    if inner.sum() < 4:
        inner = mask
    pix, z = cam.project(world)
    col = np.floor(pix[:, 0]).astype(int)
    row = np.floor(pix[:, 1]).astype(int)
    idx = np.flatnonzero((z > 0) & (col >= 0) & (col < size) & (row >= 0) & (row < size))
    idx = idx[inner[row[idx], col[idx]]]
    idx = idx[np.abs(depth[row[idx], col[idx]] - z[idx]) < SURFACE_TOL]
    if not len(idx):
        return []
    flat = np.unique(row[idx] * size + col[idx])  # each seen pixel once, in raster order
    cand = np.round(np.stack([flat % size + 0.5, flat // size + 0.5], axis=1) / size, 3)
    rows, cols = np.nonzero(mask)
    centroid = np.array([(cols.mean() + 0.5) / size, (rows.mean() + 0.5) / size])
    chosen = [int(np.argmin(np.abs(cand - centroid).sum(1)))]
    dist = np.abs(cand - cand[chosen[0]]).sum(1)
    while len(chosen) < MAX_POINTS:
        far = int(np.argmax(dist))
        if dist[far] <= POINT_SEPARATION:
            break
        chosen.append(far)
        dist = np.minimum(dist, np.abs(cand - cand[far]).sum(1))
    return [(float(cand[i][0]), float(cand[i][1])) for i in chosen]


def _gripper_state(env, last_grip: float) -> str | None:
    robot = env._env.robots[0]
    d = env.sim.data._data
    q = d.qpos[robot._ref_gripper_joint_pos_indexes]
    qd = d.qvel[robot._ref_gripper_joint_vel_indexes]
    gap = float(q[0] - q[1])
    if last_grip <= 0 and gap >= OPEN_GAP:
        return "open"
    if last_grip > 0 and float(np.abs(qd).max()) < REST_SPEED:
        return "closed"
    return None


def _holding(env, items, gripper: str | None) -> str | None:
    inner = env._env
    held = [i.instance for i in items if i.kind == "object"
            and inner._check_grasp(gripper=inner.robots[0].gripper,
                                   object_geoms=inner.objects_dict[i.instance])]
    if len(held) == 1 and gripper == "closed":
        return held[0]
    if not held and gripper == "open":
        return ""
    return None


def next_action(action: np.ndarray | None, phase: str | None, done: bool,
                gripper: str | None) -> str | None:
    """The expert's next step at a state, in words (see the module docstring); None when
    there is no expert, or when it is still closing / opening a gripper that already is."""
    if done:
        return STOP
    if action is None:
        return None
    if phase in ("close", "open"):
        return None if gripper == ("closed" if phase == "close" else "open") else \
            f"{phase} the gripper"
    axis = int(np.argmax(np.abs(action[:3])))
    if abs(action[axis]) < 0.05:
        return "hold the gripper still"
    return f"move the gripper {DIRECTIONS[(axis, 1 if action[axis] > 0 else -1)]}"


def frame_truth(env, aux: LiberoAuxRenderer, items, geometry: ItemGeometry, surface: int | None,
                action: np.ndarray | None, phase: str | None, done: bool,
                last_grip: float) -> FrameTruth:
    model, data = env._model, env.sim.data._data
    image = env.render()
    size = image.shape[0]
    depth = aux.depth(data)
    seg = aux.segmentation(data)
    cam = AgentviewCamera(model, data, aux.camera, size)
    rng_map = depth * cam.range_factor()
    is_geom, is_site = seg[..., 1] == GEOM_OBJ, seg[..., 1] == SITE_OBJ
    pixels, masks, centroid, centre, centre_z, points, distance = {}, {}, {}, {}, {}, {}, {}
    for item in items:
        mask = is_geom & np.isin(seg[..., 0], item.geoms)
        if item.sites:
            mask |= is_site & np.isin(seg[..., 0], item.sites)
        pixels[item.instance] = int(mask.sum())
        if pixels[item.instance] < MIN_PIXELS:
            continue
        key = item.instance
        masks[key] = mask
        rows, cols = np.nonzero(mask)
        centroid[key] = (float((cols.mean() + 0.5) / size), float((rows.mean() + 0.5) / size))
        c_pix, c_z = cam.project(np.mean([data.geom_xpos[g] for g in item.geoms], axis=0)[None])
        centre[key] = (float(c_pix[0, 0] / size), float(c_pix[0, 1] / size))
        centre_z[key] = float(c_z[0])
        distance[key] = float(np.median(rng_map[mask]))
        pts = _pointing(cam, geometry.world(data, item), mask, depth, size)
        if pts:
            points[key] = pts
    if surface is not None:
        surface_mask = is_geom & np.isin(seg[..., 0], np.flatnonzero(model.geom_bodyid == surface))
    else:
        surface_mask = np.zeros(seg.shape[:2], dtype=bool)
    gripper = _gripper_state(env, last_grip)
    return FrameTruth(image=image, depth=depth, range=rng_map, seg=seg, cam=cam,
                      items=tuple(items), pixels=pixels, masks=masks, centroid=centroid,
                      centre=centre, centre_z=centre_z, points=points, distance=distance,
                      surface_mask=surface_mask, gripper=gripper,
                      holding=_holding(env, items, gripper),
                      next_action=next_action(action, phase, done, gripper))

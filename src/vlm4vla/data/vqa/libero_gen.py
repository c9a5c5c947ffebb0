"""Auxiliary VQA records from LIBERO simulator ground truth, in the policy's own view.

Same record format and interface as vlm4vla.data.vqa.metaworld_gen:
generate_vqa(bench_cfg, tasks_cfg, out_dir, seed) -> stats, generate_records(bench_cfg,
tasks_cfg, seed, stats) -> records, tasks "pointing", "depth", "embodied_qa", "general_vqa".

Frames. Every record's image is exactly the policy's observation, LiberoEnv.render():
camera "agentview", the bench image size, collision geoms hidden, robosuite's observation
rotated 180 degrees - which is MuJoCo's (top-row-first) render mirrored left-right. A second
off-screen renderer of the same model, camera and size renders depth and segmentation with
the same scene options (collision geoms hidden) and the same mirror, so masks and depth are
pixel-aligned with the frame; transparent sites (most of LIBERO's: regions, grip sites),
which the frame does not show but segmentation would label, are moved to a hidden group
while it draws, while visible ones (a stove's burner glow) stay and count as part of their
item. This is checked once per task: that renderer's RGB image must equal env.render()
byte for byte, or generation stops.

Camera model. common.CameraModel (pinhole: f = (H / 2) / tan(fovy / 2), pose from
cam_xpos / cam_xmat) without its 180-degree roll, then mirrored: a physical pixel (u, v)
is (W - u, v) in the stored frame. Normalised answers are (u / W, v / H): x right, y down.
Depth: mujoco.Renderer's depth mode gives metric z-depth along the optical axis; distance
along a pixel's ray is z * sqrt(1 + ((u - cx) / f)^2 + ((v - cy) / f)^2).

Scene items: the BDDL problem's objects (movable) and fixtures (cabinets, stoves, racks;
the table / floor is the surface, not an item), each the subtree of its root body, plus
the robot's gripper; its pixels are those of the geoms the frame draws (groups 1-2) and
of its non-transparent sites. Names are human readable ("alphabet_soup_1" -> "alphabet
soup", "akita_black_bowl" -> "black bowl", see READABLE); an item whose name is not unique
in the scene (LIBERO-Spatial's two black bowls) is never named in a question, only
counted.

Answers come from the simulator, never from the pixels:
- Pointing ("Point to the {item}."): RoboPoint-style "[(x, y), ...]". Candidate 3-D points
  are the item's surface geometry - mesh vertices (strided to at most VERTS_PER_GEOM per
  geom), primitive geoms' face centres - projected through the camera; the pixel a
  candidate lands in is kept only if it lies on the item's segmentation mask eroded by 2 px
  (1 px for thin masks) and the depth buffer there agrees with the point's own z-depth
  within SURFACE_TOL (the point itself is seen, not something in front of it). Up to 3
  kept pixels are chosen by farthest-point selection starting next to the mask centroid;
  answers are their centres (the renderer's own samples). The record stores the item's
  visible mask. Free space: points on the surface (table /
  floor) mask eroded by FREE_SPACE_ERODE px.
- Depth: an item's distance is the median ray distance over its visible pixels (its
  visible surface). "Which is closer to the camera, the A or the B?" is asked only when the
  distances differ by at least DEPTH_MARGIN and the camera-frame z of the two items'
  geometric centres orders them the same way; "How far is the A from the camera, in
  meters?" answers the distance ("0.87 m").
- Embodied QA: presence ("Is there any {item} in the image?": visible items -> "yes";
  LIBERO items absent from the scene -> "no"), "In the image, is the A to the left of the
  B?" (mask centroids and projected centres must agree, by more than REL_MARGIN), "Is the
  gripper open or closed?" (open: last command open and fingers apart; closed: last
  command close and fingers at rest, on an object or shut), "What is the robot holding?"
  (robosuite's finger-pad contact check), and "The robot must <instruction>. What should
  the robot do next?" read off the privileged expert (vlm4vla.sim.libero_expert) at that
  very state: "close the gripper" / "open the gripper" in its close / open phases (unless
  the gripper already is), "stop, the task is done" once LIBERO's success check holds,
  else "move the gripper {dir}" for the dominant xyz component of the expert's action in
  the robot's frame (the Panda faces +x: forward +x, left +y, up +z).
- General VQA: how many objects can be seen, robot and furniture aside (asked only when
  every movable object is either clearly visible or not visible at all), which object is
  furthest left / right in the image, whether the gripper is open, and an item's colour
  when its LIBERO name states it ("red mug" -> "What color is the mug?", only if it is the
  scene's only mug). LIBERO's objects are textured meshes without a ground-truth colour
  otherwise.

Scenes and splits. LIBERO has 50 official initial states per task and LiberoEnv.reset(seed)
loads state seed % 50; with s = task_seed(seed, T, 0) the policy's evaluation episode j of
task T starts from state (s + eval_seed_offset + j) % 50, i.e. relative index
(offset % 50 + j) % 50, and its demo attempts from relative indices 0, 1, ... (see
vlm4vla.data.demos.check_heldout). Relative indices offset % 50 .. 49 (all that evaluation
may use) and the configured evaluation episodes, when bench_cfg names
eval_episodes_per_task, are reserved for the policy; of the rest, the last fifth are VQA
eval scenes and the others VQA train scenes (scene_split). So VQA eval scenes never meet
VQA train scenes and neither meets an initial state the policy is evaluated from; with the
default eval_seed_offset 100025 VQA uses relative states 0-19 (train) and 20-24 (eval).
From each scene the expert is rolled out from that state (exactly as demo collection
does) and `frames_per_scene` states are captured at seeded steps below max_steps; the
rollout stops at success (evaluation ends there too), capturing that state once. If the
quotas are not met after one pass over a split's scenes, further passes capture other
steps (at most MAX_PASSES). Tasks the expert cannot solve (goals that are not one in/on
predicate) contribute their settled initial states only, without the next-action question.
Everything is seeded, so the same arguments give a byte-identical store; that includes
the fixtures' placements, which LIBERO draws from numpy's global RNG at every reset
(reset_scene pins that RNG per task). vlm4vla.sim.libero_env does not pin it, so in suites
with fixtures (not LIBERO-Object) the policy's own env places them within their BDDL
regions differently in each process; the objects' initial states are the official ones
either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlm4vla.data.demos import task_seed
from vlm4vla.data.vqa.common import GEN_TASKS, CameraModel, erode, split_evenly, task_quotas
from vlm4vla.data.vqa.records import VQARecord, format_points, write_vqa_store
from vlm4vla.sim import render as _render  # sets MUJOCO_GL before mujoco is imported

import mujoco  # noqa: E402  (after vlm4vla.sim.render)

__all__ = ["GEN_TASKS", "READABLE", "AgentviewCamera", "LiberoAuxRenderer", "FrameTruth",
           "SceneItem", "frame_truth", "generate_records", "generate_vqa", "make_env",
           "readable_name", "reset_scene", "scene_items", "scene_split"]

MIN_PIXELS = 20  # an item with fewer visible pixels counts as not visible
CLEAR_PIXELS = 60  # "clearly visible" (counting questions)
REL_MARGIN = 0.05  # normalised image distance below which left/right is not asked
DEPTH_MARGIN = 0.05  # metres; closer-than questions need at least this gap
SURFACE_TOL = 0.015  # metres; a surface point is seen if the depth buffer agrees this well
VERTS_PER_GEOM = 3000  # mesh vertices projected per geom (strided)
MAX_POINTS = 3
POINT_SEPARATION = 0.02  # normalised; closer answer points are merged
FREE_SPACE_ERODE = 4
EVAL_FRACTION = 5  # 1 / EVAL_FRACTION of the free initial states are VQA eval scenes
MAX_PASSES = 8
OPEN_GAP = 0.07  # metres between the Panda's finger joints (fully open ~0.08)
REST_SPEED = 0.02  # finger joint speed below which the fingers are at rest
_GEOM, _SITE = int(mujoco.mjtObj.mjOBJ_GEOM), int(mujoco.mjtObj.mjOBJ_SITE)
_MESH, _BOX = int(mujoco.mjtGeom.mjGEOM_MESH), int(mujoco.mjtGeom.mjGEOM_BOX)
DIRECTIONS = {(0, 1): "forward", (0, -1): "backward", (1, 1): "left", (1, -1): "right",
              (2, 1): "up", (2, -1): "down"}
STOP = "stop, the task is done"

# LIBERO's object and fixture categories (all five suites) -> the names people use; the
# rest read as their category with spaces ("alphabet_soup" -> "alphabet soup").
READABLE = {
    "akita_black_bowl": "black bowl", "chefmate_8_frypan": "frying pan",
    "cookies": "cookie box", "glazed_rim_porcelain_ramekin": "ramekin",
    "new_salad_dressing": "salad dressing", "porcelain_mug": "white mug",
    "red_coffee_mug": "red mug", "white_yellow_mug": "yellow and white mug",
    "flat_stove": "stove", "wooden_two_layer_shelf": "wooden shelf",
}
CATEGORIES = (  # for "Is there any ... in the image?" -> "no"
    "akita_black_bowl", "alphabet_soup", "basket", "bbq_sauce", "black_book", "butter",
    "chefmate_8_frypan", "chocolate_pudding", "cookies", "cream_cheese",
    "glazed_rim_porcelain_ramekin", "ketchup", "milk", "moka_pot", "new_salad_dressing",
    "orange_juice", "plate", "porcelain_mug", "red_coffee_mug", "salad_dressing",
    "tomato_sauce", "white_bowl", "white_yellow_mug", "wine_bottle", "wooden_tray",
    "yellow_book", "desk_caddy", "flat_stove", "microwave", "white_cabinet", "wine_rack",
    "wooden_cabinet", "wooden_two_layer_shelf")
COLOUR_WORDS = ("black", "red", "white", "yellow")
SURFACES = ("table", "floor")  # body names of the support surface, in order of preference


def readable_name(category: str) -> str:
    return READABLE.get(category, category.replace("_", " "))


ABSENT_NAMES = sorted({readable_name(c) for c in CATEGORIES})


# ----------------------------------------------------------------------------- camera


class AgentviewCamera(CameraModel):
    """The pinhole model of LiberoEnv's frames: the physical agentview image mirrored
    left-right (robosuite's observation rotated 180 degrees)."""

    def __init__(self, model, data, camera: str, size: int):
        super().__init__(model, data, camera, size, rotate180=False)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pix, z = super().project(points)
        pix[:, 0] = self.size - pix[:, 0]
        return pix, z

    def ray_dirs(self) -> np.ndarray:
        return np.ascontiguousarray(super().ray_dirs()[:, ::-1])


class LiberoAuxRenderer:
    """RGB / depth / segmentation of LiberoEnv's camera, pixel-aligned with env.render()."""

    def __init__(self, env):
        from vlm4vla.sim.libero_env import CAMERA

        model = env._model
        _render.apply_fast_settings(model)
        self.model, self.camera, self.size = model, CAMERA, env.image_size
        self.opt = mujoco.MjvOption()
        self.opt.geomgroup[0] = 0  # collision geoms off, as in the policy's frames
        # transparent sites (most of LIBERO's) do not show in the frame, but segmentation
        # would label them: they move to a hidden group while this renderer draws
        shown = np.flatnonzero(np.asarray(self.opt.sitegroup))
        self._clear_sites = np.flatnonzero((model.site_rgba[:, 3] == 0)
                                           & np.isin(model.site_group, shown))
        self._hidden_group = int(np.flatnonzero(np.asarray(self.opt.sitegroup) == 0)[0])
        self._r = mujoco.Renderer(model, height=self.size, width=self.size)
        self._r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def _render(self, data, mode: str) -> np.ndarray:
        self._r.disable_depth_rendering()
        self._r.disable_segmentation_rendering()
        if mode == "depth":
            self._r.enable_depth_rendering()
        elif mode == "seg":
            self._r.enable_segmentation_rendering()
        groups = self.model.site_group[self._clear_sites].copy()
        try:
            self.model.site_group[self._clear_sites] = self._hidden_group
            self._r.update_scene(data, camera=self.camera, scene_option=self.opt)
        finally:
            self.model.site_group[self._clear_sites] = groups
        out = self._r.render()
        self._r.disable_depth_rendering()
        self._r.disable_segmentation_rendering()
        return np.ascontiguousarray(out[:, ::-1])  # the frame's left-right mirror

    def rgb(self, data) -> np.ndarray:
        return self._render(data, "rgb").astype(np.uint8)

    def depth(self, data) -> np.ndarray:
        """float64 (H, W) metric z-depth along the optical axis."""
        z = self._render(data, "depth").astype(np.float64)
        near = self.model.vis.map.znear * self.model.stat.extent
        if z.max() <= 1.0 or z.min() < near * 0.999:
            raise RuntimeError(f"depth buffer looks normalised or invalid (range {z.min():.4f}.."
                               f"{z.max():.4f}, near plane {near:.4f} m)")
        return z

    def segmentation(self, data) -> np.ndarray:
        """int32 (H, W, 2): (object id, mjtObj type) per pixel, -1 for background."""
        return self._render(data, "seg")

    def close(self) -> None:
        if self._r is not None:
            self._r.close()
            self._r = None


# ----------------------------------------------------------------------------- scene items


@dataclass(frozen=True)
class SceneItem:
    name: str  # readable
    instance: str  # LIBERO's name ("alphabet_soup_1"), or "gripper"
    kind: str  # "object" (movable) | "fixture" | "gripper"
    geoms: tuple[int, ...]  # the geoms the frame draws
    unique: bool  # its readable name is the only one of its kind in the scene
    colour: str | None = None
    base: str | None = None  # the name without its colour word ("red mug" -> "mug"), if any
    sites: tuple[int, ...] = ()  # the (non-transparent) sites the frame draws


def _subtree(model, root: int) -> set[int]:
    bodies = {root}
    for b in range(model.nbody):  # parents come first
        if b and model.body_parentid[b] in bodies:
            bodies.add(b)
    return bodies


def _drawn_geoms(model, bodies) -> tuple[int, ...]:
    return tuple(int(g) for g in range(model.ngeom) if model.geom_bodyid[g] in bodies
                 and 1 <= model.geom_group[g] <= 2 and model.geom_rgba[g][3] > 0)


def _drawn_sites(model, bodies) -> tuple[int, ...]:
    """Sites the frame shows (groups 0-2, not transparent; e.g. a stove's burner glow)."""
    return tuple(int(i) for i in range(model.nsite) if model.site_bodyid[i] in bodies
                 and model.site_group[i] <= 2 and model.site_rgba[i][3] > 0)


def scene_items(env) -> tuple[tuple[SceneItem, ...], int | None]:
    """The named items of env's scene (objects, fixtures, gripper) and the body id of the
    support surface (table or floor; None if neither is in the model)."""
    model, inner, problem = env._model, env._env, env.problem
    category = {inst: cat for key in ("objects", "fixtures")
                for cat, insts in problem[key].items() for inst in insts}
    kinds = {**{i: "fixture" for insts in problem["fixtures"].values() for i in insts},
             **{i: "object" for insts in problem["objects"].values() for i in insts}}
    entries = []
    for inst in sorted(inner.obj_body_id):
        if inst not in category or category[inst] in SURFACES or "table" in category[inst]:
            continue
        bodies = _subtree(model, inner.obj_body_id[inst])
        geoms = _drawn_geoms(model, bodies)
        if geoms:
            entries.append((readable_name(category[inst]), inst, kinds[inst], geoms,
                            _drawn_sites(model, bodies)))
    grip = {b for b in range(model.nbody) if model.body(b).name.startswith("gripper0_")}
    entries.append(("gripper", "gripper", "gripper", _drawn_geoms(model, grip),
                    _drawn_sites(model, grip)))
    names = [e[0] for e in entries]
    nouns = [n.split()[-1] for n in names]
    items = []
    for name, inst, kind, geoms, sites in entries:
        words = name.split()
        # "red mug" -> colour "red" of "the mug", if no other mug (of any kind) is in the scene
        coloured = len(words) == 2 and words[0] in COLOUR_WORDS and nouns.count(words[1]) == 1
        items.append(SceneItem(name, inst, kind, geoms, unique=names.count(name) == 1,
                               colour=words[0] if coloured else None,
                               base=words[1] if coloured else None, sites=sites))
    surface = None
    for s in SURFACES:
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, s)
        if bid >= 0:
            surface = bid
            break
    return tuple(items), surface


def _half_extents(gtype: int, size) -> np.ndarray:
    """Half extents along the geom's own axes of a primitive geom."""
    r, b = float(size[0]), float(size[1])
    if gtype in (_BOX, int(mujoco.mjtGeom.mjGEOM_ELLIPSOID)):
        return np.array(size[:3], dtype=np.float64)
    if gtype == int(mujoco.mjtGeom.mjGEOM_CYLINDER):
        return np.array([r, r, b])
    if gtype == int(mujoco.mjtGeom.mjGEOM_CAPSULE):
        return np.array([r, r, b + r])
    return np.array([r, r, r])  # sphere (planes are never scene items)


class _Geometry:
    """Candidate 3-D surface points of every item (mesh vertices, primitive face centres) in
    geom-local coordinates, precomputed once per model."""

    def __init__(self, model, items):
        self.local = {}
        for item in items:
            per_geom = []
            for g in item.geoms:
                if model.geom_type[g] == _MESH:
                    mid = model.geom_dataid[g]
                    adr, n = model.mesh_vertadr[mid], model.mesh_vertnum[mid]
                    step = max(1, -(-n // VERTS_PER_GEOM))
                    verts = np.array(model.mesh_vert[adr:adr + n:step], dtype=np.float64)
                else:
                    half = _half_extents(int(model.geom_type[g]), model.geom_size[g])
                    verts = np.concatenate([np.diag(half), -np.diag(half)])  # face centres
                per_geom.append((g, verts))
            self.local[item.instance] = per_geom

    def world(self, data, item) -> np.ndarray:
        pts = [data.geom_xpos[g] + v @ data.geom_xmat[g].reshape(3, 3).T
               for g, v in self.local[item.instance]]
        return np.concatenate(pts) if pts else np.zeros((0, 3))


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


def frame_truth(env, aux: LiberoAuxRenderer, items, geometry: _Geometry, surface: int | None,
                action: np.ndarray | None, phase: str | None, done: bool,
                last_grip: float) -> FrameTruth:
    model, data = env._model, env.sim.data._data
    image = env.render()
    size = image.shape[0]
    depth = aux.depth(data)
    seg = aux.segmentation(data)
    cam = AgentviewCamera(model, data, aux.camera, size)
    rng_map = depth * cam.range_factor()
    is_geom, is_site = seg[..., 1] == _GEOM, seg[..., 1] == _SITE
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


# ----------------------------------------------------------------------------- questions


def _text(*answers: str) -> dict:
    return {"kind": "text", "answers": list(answers)}


def questions(ft: FrameTruth, instruction: str, has_fixtures: bool, surface_word: str,
              rng: np.random.Generator) -> dict:
    """Candidate (question, answer, target, mask, about, kind) tuples per VQA task for one
    frame; `about` lists the LIBERO instances the question names (stored as
    extra["objects"]), `kind` the question template (records are drawn evenly over kinds)."""
    out = {t: [] for t in GEN_TASKS}
    named = [i for i in ft.items if i.unique and i.instance in ft.masks]
    by_inst = {i.instance: i for i in ft.items}

    def add(task, kind, question, answer, target, mask=None, about=()):
        out[task].append((question, answer, target, mask, list(about), kind))

    # pointing
    for it in named:
        if it.instance in ft.points:
            pts = ft.points[it.instance]
            add("pointing", "object", f"Point to the {it.name}.", format_points(pts),
                {"kind": "points", "points": [list(p) for p in pts], "object": it.name},
                ft.masks[it.instance], [it.instance])
    free = erode(ft.surface_mask, FREE_SPACE_ERODE)
    if free.sum() >= 50:
        rows, cols = np.nonzero(free)
        pick = np.sort(rng.choice(len(rows), size=3, replace=False))
        pts = [(round((int(cols[i]) + 0.5) / free.shape[1], 3),
                round((int(rows[i]) + 0.5) / free.shape[0], 3)) for i in pick]
        add("pointing", "free", f"Point to three spots of free space on the {surface_word}.",
            format_points(pts), {"kind": "points", "points": [list(p) for p in pts],
                                 "object": f"free {surface_word} space"}, free, [surface_word])

    # depth
    for n, a in enumerate(named):
        da = ft.distance[a.instance]
        add("depth", "distance", f"How far is the {a.name} from the camera, in meters?",
            f"{da:.2f} m", {"kind": "distance", "value": round(da, 4), "unit": "m"},
            ft.masks[a.instance], [a.instance])
        for b in named[n + 1:]:
            db = ft.distance[b.instance]
            dz = ft.centre_z[a.instance] - ft.centre_z[b.instance]
            if abs(da - db) < DEPTH_MARGIN or np.sign(dz) != np.sign(da - db):
                continue
            first, second = (a, b) if rng.random() < 0.5 else (b, a)
            near = a if da < db else b
            choices = [first.name, second.name]
            add("depth", "closer", f"Which is closer to the camera, the {first.name} or the "
                f"{second.name}?", near.name,
                {"kind": "choice", "choices": choices, "index": choices.index(near.name)},
                None, [first.instance, second.instance])

    # embodied QA
    in_scene = {i.name for i in ft.items}
    absent = [n for n in ABSENT_NAMES if n not in in_scene]
    for it in named:
        if it.kind != "gripper":
            add("embodied_qa", "presence", f"Is there any {it.name} in the image?", "yes",
                _text("yes"), about=[it.instance])
    for n in sorted(rng.choice(absent, size=min(2, len(absent)), replace=False).tolist()):
        add("embodied_qa", "presence", f"Is there any {n} in the image?", "no", _text("no"))
    for n, a in enumerate(named):
        for b in named[n + 1:]:
            if rng.random() < 0.5:
                a, b = b, a
            dx = ft.centroid[a.instance][0] - ft.centroid[b.instance][0]
            dc = ft.centre[a.instance][0] - ft.centre[b.instance][0]
            if abs(dx) > REL_MARGIN and abs(dc) > REL_MARGIN and np.sign(dx) == np.sign(dc):
                ans = "yes" if dx < 0 else "no"
                add("embodied_qa", "left",
                    f"In the image, is the {a.name} to the left of the {b.name}?", ans,
                    _text(ans), about=[a.instance, b.instance])
    if ft.gripper is not None:
        add("embodied_qa", "gripper", "Is the gripper open or closed?", ft.gripper,
            {"kind": "choice", "choices": ["open", "closed"],
             "index": ["open", "closed"].index(ft.gripper)}, about=["gripper"])
    if ft.holding == "":
        add("embodied_qa", "holding", "What is the robot holding?", "nothing",
            _text("nothing", "0"), about=["gripper"])
    elif ft.holding is not None and by_inst[ft.holding].unique:
        name = by_inst[ft.holding].name
        add("embodied_qa", "holding", "What is the robot holding?", name, _text(name),
            about=["gripper", ft.holding])
    if ft.next_action is not None:
        add("embodied_qa", "next", f"The robot must {instruction}. What should the robot do next?",
            ft.next_action, _text(ft.next_action), about=["gripper"])

    # general VQA
    px = {i.instance: ft.pixels[i.instance] for i in ft.items if i.kind == "object"}
    if all(p == 0 or p >= CLEAR_PIXELS for p in px.values()):
        seen = sorted(i for i, p in px.items() if p > 0)
        extra = " and the furniture" if has_fixtures else ""
        add("general_vqa", "count", f"How many objects can you see, not counting the robot{extra}?",
            str(len(seen)), _text(str(len(seen))), about=seen)
    # every visible item takes part (an unnamed one too: it just cannot be the answer)
    side = sorted((ft.centroid[i.instance][0], i.instance) for i in ft.items
                  if i.kind != "gripper" and i.instance in ft.masks)
    if len(side) >= 2:
        for word, (x0, inst), (x1, _) in (("left", side[0], side[1]),
                                          ("right", side[-1], side[-2])):
            if abs(x1 - x0) > REL_MARGIN and by_inst[inst].unique:
                name = by_inst[inst].name
                add("general_vqa", "side", f"Which object is furthest to the {word} in the "
                    "image?", name, _text(name), about=[inst])
    for it in named:
        if it.colour:
            add("general_vqa", "colour", f"What color is the {it.base}?", it.colour,
                _text(it.colour), ft.masks[it.instance], [it.instance])
    if ft.gripper is not None:
        ans = "yes" if ft.gripper == "open" else "no"
        add("general_vqa", "gripper", "Is the gripper open?", ans, _text(ans), about=["gripper"])
    return out


# ----------------------------------------------------------------------------- scenes


def scene_split(bench_cfg: dict, task: str, seed: int) -> dict[str, list[int]]:
    """Initial-state seeds of the VQA scenes of one task: {"train": [...], "eval": [...],
    "reserved": [...]} where reserved are the relative state indices kept for the policy's
    evaluation (see the module docstring). LiberoEnv.reset(s) loads official state s % 50."""
    from vlm4vla.sim.libero_env import NUM_INIT_STATES as n

    if "eval_seed_offset" not in bench_cfg:
        raise ValueError(f"{task}: LIBERO VQA generation needs the benchmark's eval_seed_offset, "
                         "to keep the policy's evaluation initial states out of its scenes")
    r = int(bench_cfg["eval_seed_offset"]) % n
    n_eval = int(bench_cfg.get("eval_episodes_per_task", 0))
    reserved = {(r + j) % n for j in range(max(n - r, n_eval))}
    pool = [i for i in range(n) if i not in reserved]
    if len(pool) < 2:
        raise ValueError(
            f"{task}: LIBERO has {n} official initial states per task and evaluation may use "
            f"{len(reserved)} of them (eval_seed_offset={bench_cfg['eval_seed_offset']}, "
            f"offset % {n} = {r}); VQA needs at least 2 others for disjoint train and eval "
            f"scenes: choose eval_seed_offset with offset % {n} >= 2 (e.g. 100025)")
    k = max(1, len(pool) // EVAL_FRACTION)
    seeds = [task_seed(seed, task, i) for i in pool]
    return {"train": seeds[:-k], "eval": seeds[-k:], "reserved": sorted(reserved)}


def _pinned_rng(task: str):
    """numpy's global RNG seeded per task for the duration of a with-block, then restored."""
    import contextlib

    @contextlib.contextmanager
    def pinned():
        saved = np.random.get_state()
        try:
            np.random.seed(task_seed(0, task, 0) % 2**32)
            yield
        finally:
            np.random.set_state(saved)

    return pinned()


def make_env(task: str, size: int):
    """LiberoEnv(task, size), built with the fixtures' placements pinned (see reset_scene)."""
    from vlm4vla.sim.libero_env import LiberoEnv

    with _pinned_rng(task):
        return LiberoEnv(task, size)


def reset_scene(env, seed: int) -> None:
    """env.reset(seed) with numpy's global RNG pinned per task: LIBERO re-samples the
    fixtures' placements (cabinets, stoves, racks: bodies without joints, which the official
    initial states do not cover) from that RNG at every reset, so an unpinned reset places
    them differently in each process."""
    with _pinned_rng(env.task):
        env.reset(seed)


def _has_expert(env) -> bool:
    from vlm4vla.sim.libero_expert import PickPlaceExpert

    try:
        PickPlaceExpert(env)
    except NotImplementedError:
        return False
    return True


def _check_alignment(env, aux: LiberoAuxRenderer) -> None:
    frame, mine = env.render(), aux.rgb(env.sim.data._data)
    if not np.array_equal(frame, mine):
        raise RuntimeError(f"{env.task}: the depth/segmentation renderer does not reproduce the "
                           f"policy's frame ({int((frame != mine).any(-1).sum())} pixels differ); "
                           "masks would not be pixel-aligned")


# ----------------------------------------------------------------------------- driver


def generate_records(bench_cfg: dict, tasks_cfg: dict, seed: int,
                     stats: dict | None = None) -> list[VQARecord]:
    """The records generate_vqa writes (in memory); see the module docstring."""
    from vlm4vla.sim.libero_env import NUM_INIT_STATES, parse_task

    if bench_cfg.get("plugin") != "libero":
        raise ValueError(f"libero_gen generates VQA for the libero plugin, got "
                         f"{bench_cfg.get('plugin')!r}")
    quotas, frames_per_scene, per_frame = task_quotas(tasks_cfg)
    bench_tasks = sorted(bench_cfg["tasks"])
    for t in bench_tasks:
        parse_task(t)
    splits = {t: scene_split(bench_cfg, t, seed) for t in bench_tasks}
    stats = stats if stats is not None else {}
    stats.update(scenes=0, frames=0, passes=0, no_expert=[],
                 init_states={t: {s: sorted({x % NUM_INIT_STATES for x in splits[t][s]})
                                  for s in ("train", "eval")} for t in bench_tasks})
    records: list[VQARecord] = []
    for ti, bt in enumerate(bench_tasks):
        scene = _TaskScene(bt, int(bench_cfg["image_size"]))
        try:
            if not scene.expert:
                stats["no_expert"].append(bt)
            for si, split in enumerate(("train", "eval")):
                need = {t: split_evenly(q[split], len(bench_tasks))[ti] for t, q in quotas.items()}
                records += scene.fill(split, splits[bt][split], need, seed, (si, ti),
                                      int(bench_cfg["max_steps"]), frames_per_scene, per_frame,
                                      stats)
        finally:
            scene.close()
    return records


class _TaskScene:
    """One LIBERO task's env, aux renderer and scene catalogue, reused for all its scenes."""

    def __init__(self, task: str, size: int):
        self.task = task
        self.env = make_env(task, size)
        self.aux = LiberoAuxRenderer(self.env)
        self.items, self.surface = scene_items(self.env)
        self.geometry = _Geometry(self.env._model, self.items)
        model = self.env._model
        on_table = self.surface is not None and model.body(self.surface).name == "table"
        self.surface_word = "table" if on_table else "floor"
        self.has_fixtures = any(i.kind == "fixture" for i in self.items)
        self.expert = _has_expert(self.env)
        self._checked = False

    def close(self) -> None:
        self.aux.close()
        self.env.close()

    def fill(self, split, scene_seeds, need, seed, key, max_steps, frames_per_scene,
             per_frame, stats) -> list[VQARecord]:
        """Records of one split until `need` (records per VQA task) is met: passes over
        the split's scenes, `frames_per_scene` seeded steps of the expert's episode each."""
        from vlm4vla.sim.libero_env import NUM_INIT_STATES

        records, used, tag = [], set(), self.task.replace("/", "-")
        for p in range(MAX_PASSES):
            if not any(need.values()):
                break
            stats["passes"] += 1
            before = sum(need.values())
            for j, scene_seed in enumerate(scene_seeds):
                if not any(need.values()):
                    break
                rng = np.random.default_rng([seed, *key, j, p])
                steps = (sorted(int(s) for s in rng.choice(
                    max_steps, size=min(frames_per_scene, max_steps), replace=False))
                         if self.expert else [0])
                reset_scene(self.env, scene_seed)
                if not self._checked:
                    _check_alignment(self.env, self.aux)
                    self._checked = True
                stats["scenes"] += 1
                state = scene_seed % NUM_INIT_STATES
                for step, ft in _rollout(self.env, self.aux, self.items, self.geometry,
                                         self.surface, steps, self.expert):
                    stats["frames"] += 1
                    cands = questions(ft, self.env.instruction, self.has_fixtures,
                                      self.surface_word, rng)
                    for vt in need:
                        fresh = [c for c in cands[vt] if (scene_seed, step, c[0]) not in used]
                        k = min(per_frame, need[vt], len(fresh))
                        if k == 0:
                            continue
                        for n, c in enumerate(_pick([c[5] for c in fresh], k, rng)):
                            q, a, target, mask, about, _ = fresh[c]
                            used.add((scene_seed, step, q))
                            records.append(VQARecord(
                                image=ft.image, question=q, answer=a, task=vt, split=split,
                                target=target, mask=mask,
                                source=f"libero:{self.task}:init={state}:step={step}",
                                id=f"lb-{split}-{tag}-{j}-p{p}-{step}-{vt}-{n}",
                                extra={"bench_task": self.task, "seed": scene_seed,
                                       "init_state": state, "step": step, "objects": about}))
                        need[vt] -= k
                    if not any(need.values()):
                        break
            if sum(need.values()) == before:  # nothing new to ask in these scenes
                break
        short = {t: n for t, n in need.items() if n}
        if short:
            raise RuntimeError(f"{self.task}: {split} quota not met in its {len(scene_seeds)} "
                               f"scenes (missing {short}); lower the vqa quotas or add "
                               "benchmark tasks")
        return records


def _pick(kinds: list[str], k: int, rng: np.random.Generator) -> list[int]:
    """k candidate indices drawn evenly over question kinds (in a seeded order of kinds,
    one seeded candidate of each kind per round), so templates with many instances (pair
    relations) do not crowd out the one-per-frame ones (gripper state, next action)."""
    left = {kind: [i for i, x in enumerate(kinds) if x == kind] for kind in sorted(set(kinds))}
    order = [sorted(left)[int(i)] for i in rng.permutation(len(left))]
    picked: list[int] = []
    while len(picked) < k:
        for kind in order:
            if left[kind] and len(picked) < k:
                picked.append(left[kind].pop(int(rng.integers(len(left[kind])))))
    return sorted(picked)


def _rollout(env, aux, items, geometry, surface, steps, expert: bool):
    """Yield (step, FrameTruth) at the given steps of the expert's episode from the current
    (just reset) state; the expert is asked exactly once per state, so the trajectory is
    the one demo collection records. Ends at success, yielding that state once."""
    t, done, last_grip, pending = 0, False, -1.0, None  # reset() ends with open-gripper waits
    for step in steps:
        while t < step and not done:
            a = pending if pending is not None else env.expert_action()
            pending = None
            done = env.step(a).success
            last_grip = float(a[6])
            t += 1
        if not done and expert and pending is None:
            pending = env.expert_action()
        phase = env._expert.phase if expert and env._expert is not None else None
        yield t, frame_truth(env, aux, items, geometry, surface, None if done else pending,
                             phase, done, last_grip)
        if done:
            return


def generate_vqa(bench_cfg: dict, tasks_cfg: dict, out_dir, seed: int) -> dict:
    """Generate auxiliary VQA records for every task of a LIBERO benchmark config and write
    them as one VQA store (both splits) at `out_dir`.

    tasks_cfg: {vqa_task: {"train": N, "eval": M}, ...} for vqa_task in GEN_TASKS, plus
    optional "frames_per_scene" (default 3) and "per_frame" (max records of one VQA task
    taken from one frame, default 3). Quotas are spread evenly over the benchmark tasks.
    Returns stats: records per task and split, scenes, frames, passes, the official initial
    states used per task and split, seconds, records_per_s.
    """
    start = time.perf_counter()
    stats: dict = {}
    records = generate_records(bench_cfg, tasks_cfg, seed, stats)
    write_vqa_store(out_dir, records, extra_meta={
        "generator": "vlm4vla.data.vqa.libero_gen", "seed": int(seed),
        "bench_tasks": sorted(bench_cfg["tasks"]), "image_size": int(bench_cfg["image_size"]),
        "camera": "agentview (robosuite observation rotated 180 degrees)",
        "init_states": stats["init_states"], "tasks_cfg": tasks_cfg})
    seconds = time.perf_counter() - start
    counts: dict = {}
    for r in records:
        counts.setdefault(r.task, {"train": 0, "eval": 0})[r.split] += 1
    stats.update(records=len(records), counts=counts, seconds=round(seconds, 3),
                 records_per_s=round(len(records) / seconds, 2), path=str(Path(out_dir)))
    return stats

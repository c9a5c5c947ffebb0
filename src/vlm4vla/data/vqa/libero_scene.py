"""LIBERO scenes as the VQA generator sees them: the policy's camera (AgentviewCamera), a
depth / segmentation renderer pixel-aligned with its frames (LiberoAuxRenderer), the named
items of a scene and their surface geometry, and the initial states VQA may use
(scene_split). The conventions are in vlm4vla.data.vqa.libero_gen's docstring."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlm4vla.data.demos import task_seed
from vlm4vla.data.vqa.common import CameraModel
from vlm4vla.sim import render as _render  # sets MUJOCO_GL before mujoco is imported

import mujoco  # noqa: E402  (after vlm4vla.sim.render)

VERTS_PER_GEOM = 3000  # mesh vertices projected per geom (strided)
EVAL_FRACTION = 5  # 1 / EVAL_FRACTION of the free initial states are VQA eval scenes
GEOM_OBJ, SITE_OBJ = int(mujoco.mjtObj.mjOBJ_GEOM), int(mujoco.mjtObj.mjOBJ_SITE)  # seg types
_MESH, _BOX = int(mujoco.mjtGeom.mjGEOM_MESH), int(mujoco.mjtGeom.mjGEOM_BOX)

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


class ItemGeometry:
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


def has_expert(env) -> bool:
    from vlm4vla.sim.libero_expert import PickPlaceExpert

    try:
        PickPlaceExpert(env)
    except NotImplementedError:
        return False
    return True


def check_alignment(env, aux: LiberoAuxRenderer) -> None:
    frame, mine = env.render(), aux.rgb(env.sim.data._data)
    if not np.array_equal(frame, mine):
        raise RuntimeError(f"{env.task}: the depth/segmentation renderer does not reproduce the "
                           f"policy's frame ({int((frame != mine).any(-1).sum())} pixels differ); "
                           "masks would not be pixel-aligned")

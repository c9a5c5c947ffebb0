"""Auxiliary VQA records from Meta-World simulator ground truth, in the policy's own view.

Every record's image is the exact frame the policy sees (MetaWorldEnv.render(): camera
"corner3", bench image size, rotated 180 degrees to be upright). Answers come from the
simulator, never from the pixels:
- Camera model. MuJoCo's perspective camera: focal length f = (H / 2) / tan(fovy / 2) in
  pixels (square pixels, principal point at the image centre), pose from data.cam_xpos /
  cam_xmat (camera looks along its -z axis, +y is up). A world point p maps to camera
  coordinates c = R^T (p - t) and to pixel (u, v) = (W/2 + f c_x / -c_z, H/2 - f c_y / -c_z)
  of the GL image; the 180-degree roll of the frame maps (u, v) -> (W - u, H - v).
  Normalised answers are (u / W, v / H) of the upright frame: x right, y down.
- Masks. A second off-screen renderer of the same camera and size renders MuJoCo's
  segmentation (geom / site id per pixel) and depth; both get the same 180-degree roll, so
  they are pixel-aligned with the frame. An object's mask = pixels of its bodies' geoms
  (and its sites, e.g. the goal marker).
- Depth. MuJoCo >= 3 renders with reversed Z; mujoco.Renderer's depth mode undoes the
  projection with the near/far planes (znear, zfar times model.stat.extent) and returns
  metric depth ALONG THE OPTICAL AXIS. Distance from the camera is the length of the ray
  through the pixel: range = z * sqrt(1 + ((u - cx)/f)^2 + ((v - cy)/f)^2). An object's
  distance is the median range over its visible pixels (its visible surface). A buffer
  that still looks normalised (all values in [0, 1]) is rejected.
- Pointing ("Point to the {object}"): RoboPoint-style answer "[(x, y), ...]": the
  projected centres of the object's visual geoms that land on its visible mask (up to 3,
  de-duplicated), so occluded parts are never pointed at; an object with no such point is
  not asked about. Free table space: points sampled from the table mask eroded by 4 px.
- "What should the robot do next?": read off the scripted expert at that state: "stop,
  the task is done" after success; "close/open the gripper" when the expert's grip
  command differs from the fingers' state; else "move the gripper {dir}" for the expert's
  dominant xyz direction in the robot's frame (+y forward, +x right, +z up).

Scenes and splits: scene j of benchmark task T uses the initial state
task_seed(seed, T, base + j) (vlm4vla.data.demos), base = 0 for train and
eval_seed_offset // 2 for eval, so VQA eval scenes are held out from VQA train scenes and
neither meets the policy's evaluation states (indices >= eval_seed_offset). From each
scene the expert is rolled out and `frames_per_scene` states are captured at seeded steps.
Everything is seeded, so the same arguments give a byte-identical store.
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

MIN_PIXELS = 8  # an object with fewer visible pixels counts as not visible
REL_MARGIN = 0.05  # normalised image distance below which left/right/above is not asked
DEPTH_MARGIN = 0.05  # metres; closer-than questions need at least this depth gap
FREE_SPACE_ERODE = 4  # px kept clear of anything that is not the table


@dataclass(frozen=True)
class SceneObject:
    name: str
    colour: str | None
    bodies: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    countable: bool = True  # counted in "how many objects are on the table"
    joint: str | None = None  # open/closed state: joint and |q| thresholds
    closed_below: float = 0.0
    open_above: float = 0.0


GRIPPER = SceneObject("gripper", None, ("hand", "rightclaw", "rightpad", "leftclaw", "leftpad"),
                      countable=False)
TABLE_COLOUR, ARM_COLOUR = "brown", "red"
TASK_OBJECTS: dict[str, tuple[SceneObject, ...]] = {
    "button-press-v3": (SceneObject("button", "red", ("button",), countable=False),
                        SceneObject("button box", "yellow", ("buttonbox",))),
    "button-press-topdown-v3": (SceneObject("button", "red", ("button",), countable=False),
                                SceneObject("button box", "yellow", ("buttonbox",))),
    # one body holds the handle and its housing (geoms of one body share one mask); the
    # window's frame and sash are its two bodies. Colours not asked: their materials mix.
    "handle-press-v3": (SceneObject("handle press", None, ("hdlprs",)),),
    "window-open-v3": (SceneObject("window", None, ("windowb_a", "windowb_b")),),
    "door-open-v3": (SceneObject("door", "gray", ("door_link",), joint="doorjoint",
                                 closed_below=0.05, open_above=0.35),
                     SceneObject("goal marker", "green", sites=("goal",), countable=False)),
    "drawer-open-v3": (SceneObject("drawer", "green", ("drawer_link", "drawercase_link"), joint="goal_slidey",
                                   closed_below=0.01, open_above=0.04),
                       SceneObject("goal marker", "green", sites=("goal",), countable=False)),
    "pick-place-v3": (SceneObject("puck", "red", ("obj",)),
                      SceneObject("goal marker", "blue", sites=("goal",), countable=False)),
    "push-v3": (SceneObject("puck", "red", ("obj",)),
                SceneObject("goal marker", "green", sites=("goal",), countable=False)),
}
ALL_NAMES = sorted({o.name for objs in TASK_OBJECTS.values() for o in objs} | {"stick", "ball",
                                                                               "hammer", "mug"})
# plain ints: comparing an array with the pybind enum itself is element-wise Python (slow)
_GEOM, _SITE = int(mujoco.mjtObj.mjOBJ_GEOM), int(mujoco.mjtObj.mjOBJ_SITE)
DIRECTIONS = {(0, 1): "right", (0, -1): "left", (1, 1): "forward", (1, -1): "backward",
              (2, 1): "up", (2, -1): "down"}


def supported_tasks() -> list[str]:
    return sorted(TASK_OBJECTS)


# ----------------------------------------------------------------------------- camera


class AuxRenderer:
    """Depth and segmentation of one camera, pixel-aligned with FrameRenderer's frames."""

    def __init__(self, model, size: int, camera: str, rotate180: bool = True):
        _render.apply_fast_settings(model)
        self.camera, self.rotate180 = camera, rotate180
        self.model = model
        self._r = mujoco.Renderer(model, height=size, width=size)
        self._r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def _roll(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[::-1, ::-1] if self.rotate180 else a)

    def depth(self, data) -> np.ndarray:
        """float64 (H, W) metric z-depth (metres along the optical axis)."""
        self._r.disable_segmentation_rendering()
        self._r.enable_depth_rendering()
        self._r.update_scene(data, camera=self.camera)
        z = self._roll(self._r.render()).astype(np.float64)
        self._r.disable_depth_rendering()
        near = self.model.vis.map.znear * self.model.stat.extent
        if z.max() <= 1.0 or z.min() < near * 0.999:
            raise RuntimeError(f"depth buffer looks normalised or invalid (range "
                               f"{z.min():.4f}..{z.max():.4f}, near plane {near:.4f} m): "
                               "the renderer did not linearise it")
        return z

    def segmentation(self, data) -> np.ndarray:
        """int32 (H, W, 2): (object id, mjtObj type) per pixel, (-1, -1) for background."""
        self._r.disable_depth_rendering()
        self._r.enable_segmentation_rendering()
        self._r.update_scene(data, camera=self.camera)
        seg = self._roll(self._r.render())
        self._r.disable_segmentation_rendering()
        return seg

    def close(self) -> None:
        if self._r is not None:
            self._r.close()
            self._r = None


def object_mask(model, seg: np.ndarray, obj: SceneObject) -> np.ndarray:
    """bool (H, W): pixels showing one of obj's bodies' geoms or obj's sites."""
    mask = np.zeros(seg.shape[:2], dtype=bool)
    if obj.bodies:
        body_ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in obj.bodies]
        geoms = np.flatnonzero(np.isin(model.geom_bodyid, [b for b in body_ids if b >= 0]))
        mask |= (seg[..., 1] == _GEOM) & np.isin(seg[..., 0], geoms)
    if obj.sites:
        sites = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, s) for s in obj.sites]
        mask |= (seg[..., 1] == _SITE) & np.isin(seg[..., 0], sites)
    return mask


def anchor_points(model, data, obj: SceneObject) -> np.ndarray:
    """World positions (N, 3) of obj's rendered geoms' centres (visible groups 0-2) and sites."""
    pts = []
    for b in obj.bodies:
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b)
        for g in np.flatnonzero(model.geom_bodyid == bid):
            if model.geom_group[g] <= 2 and model.geom_rgba[g][3] > 0:
                pts.append(data.geom_xpos[g])
    for s in obj.sites:
        pts.append(data.site_xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, s)])
    return np.array(pts, dtype=np.float64).reshape(-1, 3)


# ----------------------------------------------------------------------------- one frame


@dataclass
class FrameTruth:
    """Everything the question writers need about one captured state."""

    image: np.ndarray
    depth: np.ndarray  # metric z-depth
    range: np.ndarray  # metric distance along each pixel's ray
    seg: np.ndarray
    cam: CameraModel
    masks: dict[str, np.ndarray]  # visible objects only
    anchor: dict[str, tuple[float, float]]  # normalised projected anchor of visible objects
    points: dict[str, list[tuple[float, float]]]  # pointing answers (on the mask)
    distance: dict[str, float]  # median visible-surface range, metres
    state: dict[str, str]  # "open" / "closed" where unambiguous
    gripper: str | None  # "open" / "closed" / None (ambiguous)
    next_action: str
    objects: tuple[SceneObject, ...]
    table_mask: np.ndarray


def _gripper_state(model, data) -> tuple[str | None, float]:
    left = data.xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "leftpad")]
    right = data.xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "rightpad")]
    gap = float(np.linalg.norm(left - right))
    return ("open" if gap > 0.07 else "closed" if gap < 0.05 else None), gap


def _next_action(action: np.ndarray, gripper: str | None, done: bool) -> str:
    if done:
        return "stop, the task is done"
    if action[6] > 0 and gripper == "open":
        return "close the gripper"
    if action[6] <= 0 and gripper == "closed":
        return "open the gripper"
    axis = int(np.argmax(np.abs(action[:3])))
    if abs(action[axis]) < 0.05:
        return "hold the gripper still"
    return f"move the gripper {DIRECTIONS[(axis, 1 if action[axis] > 0 else -1)]}"


def frame_truth(env, aux: AuxRenderer, objects, action: np.ndarray, done: bool) -> FrameTruth:
    model, data = env._env.model, env._env.data
    image = env.render()
    size = image.shape[0]
    depth = aux.depth(data)
    seg = aux.segmentation(data)
    cam = CameraModel(model, data, aux.camera, size, aux.rotate180)
    rng_map = depth * cam.range_factor()
    masks, anchor, points, distance, state = {}, {}, {}, {}, {}
    for obj in objects:
        mask = object_mask(model, seg, obj)
        if mask.sum() < MIN_PIXELS:
            continue
        masks[obj.name] = mask
        world = anchor_points(model, data, obj)
        anchor[obj.name] = tuple(float(c) for c in cam.normalised(world.mean(0, keepdims=True))[0])
        pix = cam.project(world)[0]
        on = []
        for (u, v) in pix:
            r, c = int(np.floor(v)), int(np.floor(u))
            if 0 <= r < size and 0 <= c < size and mask[r, c]:
                p = (round(float(u) / size, 3), round(float(v) / size, 3))
                if all(abs(p[0] - q[0]) + abs(p[1] - q[1]) > 0.02 for q in on):
                    on.append(p)
        if on:
            points[obj.name] = on[:3]
        distance[obj.name] = float(np.median(rng_map[mask]))
        if obj.joint:
            jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, obj.joint)
            q = abs(float(data.qpos[model.jnt_qposadr[jid]]))
            if q < obj.closed_below:
                state[obj.name] = "closed"
            elif q > obj.open_above:
                state[obj.name] = "open"
    gripper, _ = _gripper_state(model, data)
    table = SceneObject("table", TABLE_COLOUR, ("tablelink",), countable=False)
    return FrameTruth(image=image, depth=depth, range=rng_map, seg=seg, cam=cam, masks=masks,
                      anchor=anchor, points=points, distance=distance, state=state,
                      gripper=gripper, next_action=_next_action(action, gripper, done),
                      objects=tuple(objects), table_mask=object_mask(model, seg, table))


# ----------------------------------------------------------------------------- questions


def _text(answer: str) -> dict:
    return {"kind": "text", "answers": [answer]}


def questions(ft: FrameTruth, task: str, instruction: str, rng: np.random.Generator) -> dict:
    """Candidate (question, answer, target, mask) tuples per VQA task for one frame."""
    out = {t: [] for t in GEN_TASKS}
    names = [o.name for o in ft.objects if o.name in ft.masks]
    by_name = {o.name: o for o in ft.objects}

    # pointing
    for name in names:
        if name in ft.points:
            pts = ft.points[name]
            out["pointing"].append((f"Point to the {name}.", format_points(pts),
                                    {"kind": "points", "points": [list(p) for p in pts],
                                     "object": name}, ft.masks[name]))
    free = erode(ft.table_mask, FREE_SPACE_ERODE)
    if free.sum() >= 50:
        rows, cols = np.nonzero(free)
        pick = np.sort(rng.choice(len(rows), size=3, replace=False))
        pts = [(round((int(cols[i]) + 0.5) / free.shape[1], 3),
                round((int(rows[i]) + 0.5) / free.shape[0], 3))
               for i in pick]
        out["pointing"].append(("Point to three spots of free space on the table.",
                                format_points(pts),
                                {"kind": "points", "points": [list(p) for p in pts],
                                 "object": "free table space"}, free))

    # depth
    deep = [n for n in names]  # every visible object (the table is not one of them)
    for i, a in enumerate(deep):
        out["depth"].append((f"How far is the {a} from the camera, in meters?",
                             f"{ft.distance[a]:.2f} m",
                             {"kind": "distance", "value": round(ft.distance[a], 4), "unit": "m"},
                             ft.masks[a]))
        for b in deep[i + 1:]:
            if abs(ft.distance[a] - ft.distance[b]) < DEPTH_MARGIN:
                continue
            first, second = (a, b) if rng.random() < 0.5 else (b, a)
            near = first if ft.distance[first] < ft.distance[second] else second
            out["depth"].append((f"Which is closer to the camera, the {first} or the {second}?",
                                 near, {"kind": "choice", "choices": [first, second],
                                        "index": [first, second].index(near)}, None))

    # embodied QA
    present = [n for n in names]
    absent = [n for n in ALL_NAMES if n not in by_name]
    for n in present:
        out["embodied_qa"].append((f"Is there a {n} in the image?", "yes", _text("yes"), None))
    for n in sorted(rng.choice(absent, size=min(2, len(absent)), replace=False).tolist()):
        out["embodied_qa"].append((f"Is there a {n} in the image?", "no", _text("no"), None))
    for n in present:
        if by_name[n].colour:
            out["embodied_qa"].append((f"What color is the {n}?", by_name[n].colour,
                                       _text(by_name[n].colour), ft.masks[n]))
    for n, s in ft.state.items():
        out["embodied_qa"].append((f"Is the {n} open or closed?", s,
                                   {"kind": "choice", "choices": ["open", "closed"],
                                    "index": ["open", "closed"].index(s)}, None))
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            if rng.random() < 0.5:
                a, b = b, a
            dx = ft.anchor[a][0] - ft.anchor[b][0]
            dy = ft.anchor[a][1] - ft.anchor[b][1]
            if abs(dx) > REL_MARGIN:
                ans = "yes" if dx < 0 else "no"
                out["embodied_qa"].append((f"In the image, is the {a} to the left of the {b}?",
                                           ans, _text(ans), None))
            if abs(dy) > REL_MARGIN:
                ans = "yes" if dy < 0 else "no"
                out["embodied_qa"].append((f"In the image, is the {a} above the {b}?",
                                           ans, _text(ans), None))
    out["embodied_qa"].append((f"The robot must {instruction}. What should the robot do next?",
                               ft.next_action, _text(ft.next_action), None))

    # general VQA
    count = sum(1 for o in ft.objects if o.countable and o.name in ft.masks)
    out["general_vqa"].append(("How many objects are on the table, not counting the robot?",
                               str(count), _text(str(count)), None))
    out["general_vqa"].append(("What color is the table?", TABLE_COLOUR, _text(TABLE_COLOUR), None))
    out["general_vqa"].append(("What color is the robot arm?", ARM_COLOUR, _text(ARM_COLOUR), None))
    if ft.gripper is not None:
        ans = "yes" if ft.gripper == "open" else "no"
        out["general_vqa"].append(("Is the gripper open?", ans, _text(ans), None))
    return out


# ----------------------------------------------------------------------------- driver


def generate_records(bench_cfg: dict, tasks_cfg: dict, seed: int,
                     stats: dict | None = None) -> list[VQARecord]:
    """The records generate_vqa writes (in memory); see the module docstring."""
    from vlm4vla.sim.metaworld_env import INSTRUCTIONS, MetaWorldEnv

    if bench_cfg.get("plugin") != "metaworld":
        raise ValueError(f"VQA generation supports the metaworld plugin, got {bench_cfg.get('plugin')!r}")
    quotas, frames_per_scene, per_frame = task_quotas(tasks_cfg)
    bench_tasks = sorted(bench_cfg["tasks"])
    missing = [t for t in bench_tasks if t not in TASK_OBJECTS]
    if missing:
        raise ValueError(f"no VQA object catalogue for {missing}; supported: {supported_tasks()} "
                         "(add entries to TASK_OBJECTS)")
    size, max_steps = int(bench_cfg["image_size"]), int(bench_cfg["max_steps"])
    eval_base = int(bench_cfg.get("eval_seed_offset", 100000)) // 2
    stats = stats if stats is not None else {}
    stats.update(scenes=0, frames=0)
    records: list[VQARecord] = []
    for ti, bt in enumerate(bench_tasks):
        env = MetaWorldEnv(bt, size)
        aux = AuxRenderer(env._env.model, size, env._renderer.camera)
        objects = (*TASK_OBJECTS[bt], GRIPPER)
        try:
            for si, split in enumerate(("train", "eval")):
                need = {t: split_evenly(q[split], len(bench_tasks))[ti] for t, q in quotas.items()}
                base = 0 if split == "train" else eval_base
                j = 0
                while any(need.values()):
                    if j >= eval_base:
                        raise RuntimeError(f"{bt}: {split} quota not met within {eval_base} scenes")
                    scene_seed = task_seed(seed, bt, base + j)
                    rng = np.random.default_rng([seed, si, ti, j])
                    steps = sorted(int(s) for s in rng.choice(max_steps, size=min(
                        frames_per_scene, max_steps), replace=False))
                    env.reset(scene_seed)
                    done, t = False, 0
                    stats["scenes"] += 1
                    for step in steps:
                        while t < step:
                            done |= env.step(env.expert_action()).success
                            t += 1
                        ft = frame_truth(env, aux, objects, env.expert_action(), done)
                        stats["frames"] += 1
                        cands = questions(ft, bt, INSTRUCTIONS[bt], rng)
                        for vt in quotas:
                            k = min(per_frame, need[vt], len(cands[vt]))
                            if k == 0:
                                continue
                            for n, c in enumerate(sorted(rng.choice(len(cands[vt]), size=k,
                                                                    replace=False))):
                                q, a, target, mask = cands[vt][int(c)]
                                records.append(VQARecord(
                                    image=ft.image, question=q, answer=a, task=vt, split=split,
                                    target=target, mask=mask,
                                    source=f"metaworld:{bt}:seed={scene_seed}:step={step}",
                                    id=f"mw-{split}-{bt}-{j}-{step}-{vt}-{n}",
                                    extra={"bench_task": bt, "seed": scene_seed, "step": step}))
                            need[vt] -= k
                        if not any(need.values()):
                            break
                    j += 1
        finally:
            aux.close()
            env.close()
    return records


def generate_vqa(bench_cfg: dict, tasks_cfg: dict, out_dir, seed: int) -> dict:
    """Generate auxiliary VQA records for every task of a Meta-World benchmark config and
    write them as one VQA store (both splits) at `out_dir`.

    tasks_cfg: {vqa_task: {"train": N, "eval": M}, ...} for vqa_task in GEN_TASKS, plus
    optional "frames_per_scene" (default 3) and "per_frame" (max records of one VQA task
    taken from one frame, default 3). Quotas are spread evenly over the benchmark tasks.
    Returns stats: records per task and split, scenes, frames, seconds, records_per_s.
    """
    start = time.perf_counter()
    stats: dict = {}
    records = generate_records(bench_cfg, tasks_cfg, seed, stats)
    write_vqa_store(out_dir, records, extra_meta={
        "generator": "vlm4vla.data.vqa.metaworld_gen", "seed": int(seed),
        "bench_tasks": sorted(bench_cfg["tasks"]), "image_size": int(bench_cfg["image_size"]),
        "camera": "corner3 (rotated 180 degrees)", "tasks_cfg": tasks_cfg})
    seconds = time.perf_counter() - start
    counts: dict = {}
    for r in records:
        counts.setdefault(r.task, {"train": 0, "eval": 0})[r.split] += 1
    stats.update(records=len(records), counts=counts, seconds=round(seconds, 3),
                 records_per_s=round(len(records) / seconds, 2), path=str(Path(out_dir)))
    return stats

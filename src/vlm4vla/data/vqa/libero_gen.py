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
from pathlib import Path

import numpy as np

from vlm4vla.data.vqa.common import GEN_TASKS, split_evenly, task_quotas
from vlm4vla.data.vqa.libero_questions import questions
from vlm4vla.data.vqa.libero_scene import (ItemGeometry, LiberoAuxRenderer, check_alignment,
                                           has_expert, make_env, reset_scene, scene_items,
                                           scene_split)
from vlm4vla.data.vqa.libero_truth import frame_truth
from vlm4vla.data.vqa.records import VQARecord, write_vqa_store

# The generator's parts: libero_scene (camera, aligned renderer, items, initial states),
# libero_truth (one state's ground truth), libero_questions (templates); this module drives.
__all__ = ["GEN_TASKS", "generate_records", "generate_vqa"]

MAX_PASSES = 8


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
        self.geometry = ItemGeometry(self.env._model, self.items)
        model = self.env._model
        on_table = self.surface is not None and model.body(self.surface).name == "table"
        self.surface_word = "table" if on_table else "floor"
        self.has_fixtures = any(i.kind == "fixture" for i in self.items)
        self.expert = has_expert(self.env)
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
                    check_alignment(self.env, self.aux)
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

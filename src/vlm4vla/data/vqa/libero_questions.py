"""The question templates of the LIBERO VQA tasks: every candidate question of one frame,
written from its FrameTruth (vlm4vla.data.vqa.libero_gen's docstring lists them)."""

from __future__ import annotations

import numpy as np

from vlm4vla.data.vqa.common import GEN_TASKS, erode
from vlm4vla.data.vqa.libero_scene import ABSENT_NAMES
from vlm4vla.data.vqa.libero_truth import FrameTruth
from vlm4vla.data.vqa.records import format_points

CLEAR_PIXELS = 60  # "clearly visible" (counting questions)
REL_MARGIN = 0.05  # normalised image distance below which left/right is not asked
DEPTH_MARGIN = 0.05  # metres; closer-than questions need at least this gap
FREE_SPACE_ERODE = 4


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

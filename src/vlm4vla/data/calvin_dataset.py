"""CALVIN's released dataset (e.g. task_ABC_D) -> our episode store, one language-annotated
segment per episode.

Layout read (mees/calvin dataset/README.md, "Data Structure" and "Language Annotations"):
    <root>/<split>/                         split = training (ABC) | validation (D)
        episode_<7-digit step>.npz          one file per recorded step, keys include
            rgb_static   uint8 (200, 200, 3)   the static (third-person) camera
            rel_actions  float32 (7,)          tcp xyz delta (x50, clipped to [-1, 1]), euler
                                               delta (x20, clipped), gripper (close = -1, open = 1)
            (also actions, robot_obs, scene_obs, rgb_gripper, depth_*: not read)
        lang_annotations/auto_lang_ann.npy  a pickled dict:
            ["info"]["indx"]       [(start, end), ...] inclusive step ranges, one per annotation
            ["language"]["task"]   the subtask id of each annotation (CALVIN's 34 tasks)
            ["language"]["ann"]    its instruction (paraphrases of a task vary)
            ["language"]["emb"]    precomputed MiniLM embeddings (not read)

What the official VLM4VLA CALVIN training does and this loader mirrors (CladernyJorn/VLM4VLA
vlm4vla/data/calvin_dataset.py): it trains on the language-annotated segments only
(_build_file_indices_lang, 596-655: every step of each (start, end) range starts a sample
whose action chunk runs on from it, padded and masked past `end`), on the static camera
(`rgb_obs: [rgb_static]`, 60) and the relative actions (`actions: [rel_actions]`, 63), with
each annotation's own text. Here each annotation becomes one episode (its frames and
rel_actions from start to end, its own instruction); the chunk dataset masks actions past
the episode's end the same way. The normalisation (`fixed` +-0.65, calvin_dataset.py:689-692)
and the random-shift augmentation (pad 10) are the benchmark's `action_norm` / `augment`.

Conventions: the gripper is flipped to ours (+1 close / -1 open; CALVIN's +1 is open), frames
are resized to image_size (bicubic; the paper feeds 224). The store is written streaming:
task_ABC_D's ~18k annotations x 65 steps do not fit in memory.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from vlm4vla.data.episodes import Episode, write_store_streaming

ANNOTATIONS = Path("lang_annotations") / "auto_lang_ann.npy"
ACTION_SPACE_DOC = ("7-D float32: CALVIN rel_actions [dx, dy, dz (x50), droll, dpitch, dyaw (x20), "
                    "clipped to [-1, 1]], gripper +1 close / -1 open (CALVIN's sign flipped); frame t "
                    "(rgb_static) is observed before action t")


def read_annotations(split_dir: str | Path) -> list[tuple[int, int, str, str]]:
    """[(start, end, task, instruction)] of a split, in the file's order."""
    path = Path(split_dir) / ANNOTATIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no CALVIN language annotations. Expected the released "
                                "layout <root>/<split>/lang_annotations/auto_lang_ann.npy (download "
                                "task_ABC_D with CALVIN's dataset/download_data.sh ABC)")
    data = np.load(path, allow_pickle=True).item()
    try:
        indx, tasks, anns = data["info"]["indx"], data["language"]["task"], data["language"]["ann"]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not CALVIN's annotation format (missing {e})") from None
    if not len(indx) == len(tasks) == len(anns):
        raise ValueError(f"{path}: {len(indx)} ranges, {len(tasks)} tasks, {len(anns)} texts")
    return [(int(s), int(e), str(t), str(a)) for (s, e), t, a in zip(indx, tasks, anns)]


def step_file_pattern(split_dir: str | Path) -> tuple[str, int]:
    """("episode_", digits) of the split's step files (CALVIN names them episode_0000123.npz)."""
    for p in sorted(Path(split_dir).glob("*.npz")):
        m = re.fullmatch(r"(.*?)(\d+)\.npz", p.name)
        if m:
            return m.group(1), len(m.group(2))
    raise FileNotFoundError(f"{split_dir}: no episode_<step>.npz files (CALVIN's step files)")


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.shape[:2] == (size, size):
        return np.ascontiguousarray(frame, dtype=np.uint8)
    return np.asarray(Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).resize(
        (size, size), Image.BICUBIC), dtype=np.uint8)


def select(annotations, tasks: list[str] | None, per_task: int | None):
    """The annotations of `tasks` (None: all), at most `per_task` each, in file order."""
    counts: dict[str, int] = {}
    out = []
    for a in annotations:
        if tasks is not None and a[2] not in tasks:
            continue
        if per_task is not None and counts.get(a[2], 0) >= per_task:
            continue
        counts[a[2]] = counts.get(a[2], 0) + 1
        out.append(a)
    return out


def convert_calvin(root: str | Path, out_dir, split: str = "training", image_size: int = 224,
                   tasks: list[str] | None = None, per_task: int | None = None) -> dict:
    """Convert a CALVIN split's annotated segments into an episode store at out_dir.
    Returns {"tasks": {task: episodes}, "episodes": n, "steps": n}."""
    from vlm4vla.sim.calvin import INSTRUCTIONS

    split_dir = Path(root) / split
    anns = select(read_annotations(split_dir), tasks, per_task)
    if not anns:
        raise ValueError(f"{split_dir}: no annotation of the configured tasks {tasks}")
    prefix, digits = step_file_pattern(split_dir)

    def episode(i: int) -> Episode:
        start, end, task, text = anns[i]
        frames, actions = [], []
        for step in range(start, end + 1):
            f = split_dir / f"{prefix}{step:0{digits}d}.npz"
            if not f.is_file():
                raise FileNotFoundError(f"{f}: step {step} of annotation {i} ({task}, {start}..{end}) "
                                        "is missing: the CALVIN download is incomplete")
            with np.load(f) as npz:
                frames.append(_resize(npz["rgb_static"], image_size))
                actions.append(np.asarray(npz["rel_actions"], dtype=np.float32))
        actions = np.stack(actions)
        actions[:, 6] = np.where(actions[:, 6] > 0, -1.0, 1.0)  # CALVIN +1 open -> ours -1 open
        return Episode(task=task, seed=start, frames=np.stack(frames), actions=actions, instruction=text)

    # the task's instruction is CALVIN's evaluation phrasing (each episode keeps its own text)
    instructions = {t: INSTRUCTIONS.get(t, t.replace("_", " ")) for t in sorted({a[2] for a in anns})}
    counts: dict[str, int] = {}
    for a in anns:
        counts[a[2]] = counts.get(a[2], 0) + 1
    lengths = [e - s + 1 for s, e, _, _ in anns]
    write_store_streaming(out_dir, lengths, (image_size, image_size, 3), episode, instructions, "calvin",
                          extra_meta={"action_space": ACTION_SPACE_DOC, "camera": "rgb_static",
                                      "image_size": int(image_size), "source": f"CALVIN {Path(root).name}/{split}"})
    return {"tasks": counts, "episodes": len(anns), "steps": int(sum(lengths))}

"""Official LIBERO demonstration files (robomimic-style hdf5) -> our episode store.

Schema read (as LIBERO's released datasets, e.g. libero_10/<task>_demo.hdf5):
    data/                       attrs: "problem_info" (JSON with "language_instruction"),
                                       optionally "bddl_file_name", "env_args"
    data/demo_<i>/actions       float (T, 7): OSC_POSE deltas in [-1, 1] + gripper
                                (-1 open, +1 close: already our convention)
    data/demo_<i>/obs/agentview_rgb   uint8 (T, H, W, 3): robosuite's raw agent view
                                      (upside down; 128x128 in the release)
Frames are rotated 180 degrees (`img[::-1, ::-1]`, exactly what vlm4vla.sim.libero_env's
render() shows) and resized to image_size (bicubic, as the paper's 224 preprocessing);
the gripper is binarised to +1 / -1. Demos are taken in numeric order (demo_2 < demo_10).

No-op steps are dropped (drop_noops, the default), as in OpenVLA's `libero_*_no_noops`
datasets that the official VLM4VLA runs train on (openvla/experiments/robot/libero/
regenerate_libero_dataset.py:46-68 `is_noop`, applied at 137-143): a step whose arm action has
norm < 1e-4 and whose gripper command equals the previous KEPT step's is removed with its
frame (in the released files the robot barely moves during such a step, so the next frame
is the same scene). Not reproduced from that script: its 256 px re-render (the released
files are 128 px; frames are resized to image_size) and its replay filter that keeps only
demos that still succeed when replayed (it needs a simulator replay of every demo).

Task names: "<suite>/<index>" of vlm4vla.sim.libero_env when the file name (minus "_demo")
is a LIBERO task name and LIBERO is installed, else the file's stem; the instruction is
the file's language instruction. Needs h5py (`pip install h5py`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from vlm4vla.data.episodes import Episode, write_store

ACTION_SPACE_DOC = ("7-D float32: LIBERO OSC_POSE deltas [dx, dy, dz, droll, dpitch, dyaw] in "
                    "[-1, 1] (0.05 m, 0.5 rad per unit), gripper +1 close / -1 open; frame t "
                    "is observed before action t (official LIBERO demonstrations)")


NOOP_THRESHOLD = 1e-4  # regenerate_libero_dataset.py:46


def keep_steps(actions: np.ndarray, threshold: float = NOOP_THRESHOLD) -> np.ndarray:
    """Boolean mask of the steps OpenVLA's no-op filter keeps (see the module docstring)."""
    keep = np.zeros(len(actions), dtype=bool)
    prev = None
    for t, a in enumerate(np.asarray(actions, dtype=np.float64)):
        still = np.linalg.norm(a[:-1]) < threshold
        keep[t] = not (still and (prev is None or a[-1] == prev[-1]))
        if keep[t]:
            prev = a
    return keep


def upright(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) raw robosuite frames -> rotated 180 degrees, resized to size x size."""
    frames = np.asarray(frames, dtype=np.uint8)[:, ::-1, ::-1]
    if frames.shape[1:3] == (size, size):
        return np.ascontiguousarray(frames)
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(f)).resize(
        (size, size), Image.BICUBIC), dtype=np.uint8) for f in frames])


def _demo_keys(group) -> list[str]:
    keys = [k for k in group.keys() if re.fullmatch(r"demo_\d+", k)]
    return sorted(keys, key=lambda k: int(k.split("_")[1]))


def file_instruction(f) -> str:
    info = f["data"].attrs.get("problem_info")
    if info is not None:
        if isinstance(info, bytes):
            info = info.decode()
        lang = json.loads(info).get("language_instruction")
        if lang:
            return " ".join(lang) if isinstance(lang, list) else str(lang)
    for key in ("language_instruction", "instruction"):
        if key in f["data"].attrs:
            v = f["data"].attrs[key]
            return v.decode() if isinstance(v, bytes) else str(v)
    raise ValueError(f"{f.filename}: no language instruction in data.attrs['problem_info']")


def task_for_file(path: str | Path) -> str:
    """Our task name for an official demo file (see the module docstring)."""
    stem = Path(path).stem
    name = stem[:-5] if stem.endswith("_demo") else stem
    try:
        from vlm4vla.sim.libero_env import SUITES, _suite

        for suite in SUITES:
            b = _suite(suite)
            for i in range(b.get_num_tasks()):
                if b.get_task(i).name == name:
                    return f"{suite}/{i}"
    except ImportError:
        pass
    return name


def load_libero_hdf5(path: str | Path, image_size: int = 224, max_demos: int | None = None,
                     task: str | None = None, drop_noops: bool = True) -> tuple[list[Episode], str, str]:
    """Read one LIBERO demo file; returns (episodes, task name, instruction)."""
    import h5py

    path = Path(path)
    task = task or task_for_file(path)
    episodes = []
    with h5py.File(path, "r") as f:
        instruction = file_instruction(f)
        for n, key in enumerate(_demo_keys(f["data"])):
            if max_demos is not None and n >= max_demos:
                break
            demo = f["data"][key]
            actions = np.asarray(demo["actions"], dtype=np.float32)
            frames = np.asarray(demo["obs"]["agentview_rgb"])
            if actions.ndim != 2 or actions.shape[1] != 7 or len(actions) != len(frames):
                raise ValueError(f"{path}:{key}: actions {actions.shape} / frames "
                                 f"{frames.shape} do not match the LIBERO schema")
            if drop_noops:  # on the raw actions, as the official filter
                keep = keep_steps(actions)
                actions, frames = actions[keep], frames[keep]
            actions = actions.copy()
            actions[:, 6] = np.where(actions[:, 6] > 0, 1.0, -1.0)
            episodes.append(Episode(task=task, seed=int(key.split("_")[1]),
                                    frames=upright(frames, image_size), actions=actions))
    if not episodes:
        raise ValueError(f"{path}: no data/demo_<i> groups")
    return episodes, task, instruction


def convert_libero_hdf5(paths, out_dir, image_size: int = 224,
                        max_demos_per_file: int | None = None, drop_noops: bool = True) -> dict:
    """Convert official LIBERO demo files into one episode store at out_dir.
    Returns {"tasks": {task: demos}, "episodes": n, "steps": n}."""
    episodes, instructions, counts = [], {}, {}
    for p in sorted(Path(p) for p in paths):
        eps, task, instruction = load_libero_hdf5(p, image_size, max_demos_per_file, drop_noops=drop_noops)
        if task in instructions and instructions[task] != instruction:
            raise ValueError(f"{p}: task {task!r} has two instructions: "
                             f"{instructions[task]!r} and {instruction!r}")
        instructions[task] = instruction
        episodes.extend(eps)
        counts[task] = counts.get(task, 0) + len(eps)
    write_store(out_dir, episodes, instructions, "libero",
                extra_meta={"action_space": ACTION_SPACE_DOC, "camera": "agentview",
                            "image_size": int(image_size), "source": "official LIBERO hdf5",
                            "no_noops": bool(drop_noops),
                            "files": [Path(p).name for p in sorted(Path(p) for p in paths)]})
    return {"tasks": counts, "episodes": len(episodes),
            "steps": int(sum(len(e.actions) for e in episodes))}

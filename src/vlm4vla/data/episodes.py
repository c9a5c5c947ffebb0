"""The on-disk episode store: demonstrations as a folder of flat numpy arrays.

Layout of a store folder (all arrays are row-aligned over N steps):
    frames.npy         uint8   (N, H, W, 3)  one third-person RGB frame per step
    actions.npy        float32 (N, 7)        xyz delta, rotation delta (3), gripper
    episode_index.npy  int32   (N,)          which episode a step belongs to
    meta.json          tasks + instructions, episode table (an episode may carry its own
                       instruction), sha256/shape/dtype per array

Why this shape: `np.load(mmap_mode="r")` gives a DataLoader random access to single frames
without reading the whole file, uint8 frames keep it compact, and a checksum per array lets
a corrupt or truncated file fail loudly with its name instead of training on garbage.
Stores are written to a temporary sibling folder and renamed into place, so a killed job
never leaves a half-written store behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlm4vla.data.folder_store import CorruptStoreError, read_meta, sha256_file, verify_files, write_meta
from vlm4vla.io import atomic_dir

FORMAT_VERSION = 1
ARRAYS = ("frames", "actions", "episode_index")
FIX = "Delete the store folder and rerun `snakemake prepare_demos` (or the rule that made it)."

__all__ = ["CorruptStoreError", "Episode", "EpisodeStore", "write_store", "write_store_streaming"]


@dataclass(frozen=True)
class Episode:
    """One demonstration, as produced by a scripted expert or read from a dataset."""

    task: str  # benchmark task name, e.g. "pick-place-v3"
    seed: int  # seed of the initial state the episode started from (or the dataset's index)
    frames: np.ndarray  # uint8 (T, H, W, 3)
    actions: np.ndarray  # float32 (T, 7)
    # this episode's own instruction where a dataset annotates each one (CALVIN's language
    # annotations paraphrase a task); None: the task's instruction
    instruction: str | None = None


def _check(ep: Episode, instructions: dict[str, str]) -> None:
    if ep.task not in instructions:
        raise ValueError(f"episode task {ep.task!r} has no instruction")
    if len(ep.frames) != len(ep.actions) or len(ep.frames) == 0:
        raise ValueError(f"episode of {ep.task!r} (seed {ep.seed}) has "
                         f"{len(ep.frames)} frames and {len(ep.actions)} actions")
    if ep.frames.ndim != 4 or ep.frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3), got {ep.frames.shape}")
    if ep.actions.ndim != 2 or ep.actions.shape[1] != 7:
        raise ValueError(f"actions must be (N, 7), got {ep.actions.shape}")


def write_store(path: str | Path, episodes: list[Episode], instructions: dict[str, str],
                benchmark: str, extra_meta: dict | None = None) -> Path:
    """Write `episodes` as a store at `path` atomically (temp folder + rename)."""
    path = Path(path)
    if not episodes:
        raise ValueError(f"refusing to write an empty episode store at {path}")
    for ep in episodes:
        _check(ep, instructions)
    return write_store_streaming(path, [len(ep.frames) for ep in episodes],
                                 tuple(episodes[0].frames.shape[1:]), lambda i: episodes[i],
                                 instructions, benchmark, extra_meta)


def write_store_streaming(path: str | Path, lengths: list[int], frame_shape: tuple, episode,
                          instructions: dict[str, str], benchmark: str,
                          extra_meta: dict | None = None) -> Path:
    """Write a store whose episodes are made one at a time (`episode(i)` -> Episode of
    `lengths[i]` steps): frames go straight into memory-mapped .npy files, so a dataset far
    larger than memory (CALVIN ABC: about a million frames) converts in one pass. The files
    are byte for byte what `np.save` of the whole arrays writes."""
    path = Path(path)
    n = int(sum(lengths))
    if n == 0:
        raise ValueError(f"refusing to write an empty episode store at {path}")
    table, start = [], 0
    with atomic_dir(path) as tmp:
        out = {"frames": np.lib.format.open_memmap(tmp / "frames.npy", "w+", np.uint8, (n, *frame_shape)),
               "actions": np.lib.format.open_memmap(tmp / "actions.npy", "w+", np.float32, (n, 7)),
               "episode_index": np.lib.format.open_memmap(tmp / "episode_index.npy", "w+", np.int32, (n,))}
        for i, length in enumerate(lengths):
            ep = episode(i)
            _check(ep, instructions)
            if len(ep.frames) != length or tuple(ep.frames.shape[1:]) != tuple(frame_shape):
                raise ValueError(f"episode {i} of {ep.task!r}: {ep.frames.shape} frames, expected "
                                 f"{length} x {tuple(frame_shape)}")
            out["frames"][start:start + length] = ep.frames
            out["actions"][start:start + length] = ep.actions
            out["episode_index"][start:start + length] = i
            row = {"index": i, "task": ep.task, "seed": int(ep.seed), "start": start, "length": length}
            if ep.instruction is not None:
                row["instruction"] = ep.instruction
            table.append(row)
            start += length
        for arr in out.values():
            arr.flush()
        del arr, out  # close the memory maps before hashing and the rename
        entries = {}
        for name in ARRAYS:
            a = np.load(tmp / f"{name}.npy", mmap_mode="r")
            entries[name] = {"sha256": sha256_file(tmp / f"{name}.npy"), "shape": list(a.shape),
                             "dtype": str(a.dtype)}
            del a
        tasks = sorted(instructions)
        write_meta(tmp, {"format_version": FORMAT_VERSION, "benchmark": benchmark,
                         "tasks": [{"name": t, "instruction": instructions[t]} for t in tasks],
                         "episodes": table, "arrays": entries, **(extra_meta or {})})
    return path


class EpisodeStore:
    """Read-only view of a store folder. Arrays are memory-mapped (cheap to open)."""

    def __init__(self, path: str | Path, verify: bool = True):
        self.path = Path(path)
        self.meta = read_meta(self.path, FORMAT_VERSION, "an episode store", FIX)
        if verify:
            self.verify()
        arrays = {}
        for name in ARRAYS:
            try:
                arrays[name] = np.load(self.path / f"{name}.npy", mmap_mode="r")
            except (OSError, ValueError) as e:
                raise CorruptStoreError(f"{self.path / (name + '.npy')} cannot be read ({e}). {FIX}") from e
            want = self.meta["arrays"][name]
            if list(arrays[name].shape) != want["shape"] or str(arrays[name].dtype) != want["dtype"]:
                raise CorruptStoreError(f"{self.path / (name + '.npy')} has shape/dtype "
                                        f"{arrays[name].shape}/{arrays[name].dtype}, meta.json "
                                        f"says {want['shape']}/{want['dtype']}")
        self.frames = arrays["frames"]
        self.actions = arrays["actions"]
        self.episode_index = arrays["episode_index"]
        self.benchmark: str = self.meta["benchmark"]
        self.episodes: list[dict] = self.meta["episodes"]
        self.instructions: dict[str, str] = {t["name"]: t["instruction"] for t in self.meta["tasks"]}

    def verify(self) -> None:
        """Recompute every array's sha256; raise CorruptStoreError naming the bad file."""
        verify_files(self.path, {f"{n}.npy": self.meta["arrays"][n] for n in ARRAYS}, FIX)

    def __len__(self) -> int:
        return len(self.actions)

    def episode_of(self, step: int) -> dict:
        return self.episodes[int(self.episode_index[step])]

    def instruction_of(self, step: int) -> str:
        ep = self.episode_of(step)
        return ep.get("instruction") or self.instructions[ep["task"]]

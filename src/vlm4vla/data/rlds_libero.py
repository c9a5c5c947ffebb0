"""OpenVLA's modified LIBERO RLDS sets (`libero_10_no_noops`, ...) -> our episode store,
read without TensorFlow: the very data the official VLM4VLA LIBERO runs train on.

The official LIBERO-10 configs read `data_mix: libero_10_no_noops` from
`<data_root_dir>/modified_libero_rlds` (CladernyJorn/VLM4VLA at 20fedc9,
configs/oxe_training/libero10/finetune_qwen25vl-3b_libero10.json:114-118, the same in every
libero10 config), through OpenVLA's RLDS pipeline (openvla/prismatic/vla/datasets/rlds/oxe/
mixtures.py:209-210). That set is OpenVLA's regeneration of the official LIBERO demos
(openvla/experiments/robot/libero/regenerate_libero_dataset.py): re-rendered at 256 px, no-op
steps removed, demos that fail on replay dropped (downloaded with `git clone
git@hf.co:datasets/openvla/modified_libero_rlds`, openvla/README.md:521-530). Reading it is how this project gets all three of those steps exactly; the raw-hdf5
source (vlm4vla.data.libero_hdf5) reproduces only the no-op filter.

Layout read (a TFDS prepared dataset, vlm4vla.data.tfds_records):
    <root>/<suite>_no_noops/<version>/                  root may also be the dataset or version
        dataset_info.json, features.json                folder; suite of the configured tasks
        <builder>-train.tfrecord-XXXXX-of-YYYYY         builder name as TFDS spells it, e.g.
                                                        liber_o10 for LIBERO-10 (any name is read)

Keys read (each record is one episode; the builder stores, per demo step i,
`images[i][::-1, ::-1]` - the robosuite agentview rotated 180 degrees, i.e. upright - with the
demo's raw action):
    steps/observation/image        bytes x T   JPEG, 256x256 RGB agentview, upright (OpenVLA's
                                               "primary" view: oxe/configs.py:668-673)
    steps/action                   float x 7T  raw LIBERO action: OSC_POSE deltas in [-1, 1] +
                                               gripper -1 open / +1 close
    steps/language_instruction     bytes x T   the task's instruction (from the demo file's name)
    steps/is_first, steps/is_last  int64 x T   checked when present
    episode_metadata/file_path     bytes x 1   the source demo file, e.g. .../LIVING_ROOM_SCENE2_
                                               put_both_..._basket_demo.hdf5: names the task
(also wrist_image, state, joint_state, reward, discount, is_terminal: not read.)

What the official training does with it, and this loader mirrors:
  - libero_dataset_transform (oxe/transforms.py:827-841): arm action as stored; gripper
    clip(g, 0, 1) then inverted to 1 = open / 0 = close. Ours keeps the raw sign (+1 close /
    -1 open, the project's convention), the same binary gripper with the opposite label;
    the plugins map it back to robosuite's +1 close, as the official LIBERO wrapper inverts
    its 1 = open.
  - no further relabelling or step dropping for LIBERO (no bridge-style first-step drop);
    every step is a (frame, action) pair.
Not here: the normalisation (q01/q99 then +-0.65: the benchmark's `action_norm`,
data/normalize.py) and the resize filter (frames are resized bicubic to image_size, as the
project's other loaders). No flip: the frames are stored upright, the orientation
vlm4vla.sim.libero_env renders.

Tasks: an episode's task is "<suite>/<index>" of vlm4vla.sim.libero_env, found from its
file_path's stem (minus "_demo"), else from its instruction; only the configured `tasks` are
kept, at most `per_task` episodes each in record order; seed = the record's index in the
split (shard order), so a seed names its source record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlm4vla.data import tfds_records as tr
from vlm4vla.data.episodes import Episode, write_store_streaming
from vlm4vla.data.libero_hdf5 import ACTION_SPACE_DOC

DOWNLOAD = ("OpenVLA's modified LIBERO RLDS sets: git clone git@hf.co:datasets/openvla/"
            "modified_libero_rlds (openvla/README.md:529), then point demos.path at it")
DATASET = "OpenVLA's modified LIBERO RLDS set (libero_*_no_noops)"
BENCHMARK = "libero"

IMAGE_KEY = "steps/observation/image"
ACTION_KEY = "steps/action"
LANGUAGE_KEY = "steps/language_instruction"
IS_FIRST_KEY = "steps/is_first"
IS_LAST_KEY = "steps/is_last"
FILE_KEY = "episode_metadata/file_path"


def dataset_names(tasks) -> tuple[str, ...]:
    """The RLDS set of each configured task's suite: libero_10/3 -> libero_10_no_noops."""
    return tuple(sorted({f"{t.partition('/')[0]}_no_noops" for t in tasks}))


def _fix(names) -> str:
    return (f"Expected {DATASET} as <root>/{names[0]}/<version>/<builder>-train.tfrecord-XXXXX-"
            f"of-YYYYY (dataset_info.json beside them); download {DOWNLOAD}")


def _task_lookup(tasks) -> tuple[dict, dict]:
    """{LIBERO task name: task} and {instruction: task} of the configured tasks."""
    from vlm4vla.sim.libero_env import _suite, parse_task

    by_name, by_text = {}, {}
    for t in tasks:
        suite, i = parse_task(t)
        task = _suite(suite).get_task(i)
        by_name[task.name] = t
        by_text.setdefault(task.language, t)
    return by_name, by_text


@dataclass(frozen=True)
class _Kept:
    shard: int
    offset: int
    index: int  # the record's index in the split (its seed)
    length: int
    task: str


def _scan(path: Path, shard: int, first_index: int, lookup, per_task: int | None,
          kept: list, counts: dict, instructions: dict, skipped: dict) -> int:
    """First pass over one shard: append the kept records; return the records read."""
    by_name, by_text = lookup
    n = 0
    for offset, data in tr.iter_tfrecord(path):
        where = f"{path} (record {n}, byte offset {offset})"
        n += 1
        feats = tr.parse_example(data, where)
        actions = tr.values(feats, ACTION_KEY, "float_list", where, dataset=DATASET)
        if len(actions) % 7:
            raise ValueError(f"{where}: {ACTION_KEY} has {len(actions)} values, not 7 per step")
        t = len(actions) // 7
        texts = tr.values(feats, LANGUAGE_KEY, "bytes_list", where, dataset=DATASET)
        lens = {IMAGE_KEY: len(tr.values(feats, IMAGE_KEY, "bytes_list", where, dataset=DATASET)),
                LANGUAGE_KEY: len(texts)}
        for key in (IS_FIRST_KEY, IS_LAST_KEY):
            flags = tr.values(feats, key, "int64_list", where, required=False)
            if flags is not None:
                lens[key] = len(flags)
                if t and not flags[0 if key == IS_FIRST_KEY else -1]:
                    raise ValueError(f"{where}: {key} is not set on the episode's "
                                     f"{'first' if key == IS_FIRST_KEY else 'last'} step")
        bad = {k: v for k, v in lens.items() if v != t}
        if bad:
            raise ValueError(f"{where}: {t} steps in {ACTION_KEY} but {bad} (values per key)")
        if t == 0:
            skipped["empty"] += 1
            continue
        if len(set(texts)) != 1:
            raise ValueError(f"{where}: the steps carry different instructions {sorted(set(texts))[:3]}")
        text = texts[0].decode("utf-8", errors="strict")
        files = tr.values(feats, FILE_KEY, "bytes_list", where, required=False)
        stem = Path(files[0].decode()).stem if files else ""
        name = stem[:-5] if stem.endswith("_demo") else stem
        task = by_name.get(name) or by_text.get(text)
        if task is None:
            skipped["other_task"] += 1
            continue
        if task in instructions and instructions[task] != text:
            raise ValueError(f"{where}: task {task!r} has two instructions: "
                             f"{instructions[task]!r} and {text!r}")
        instructions[task] = text
        if per_task is not None and counts.get(task, 0) >= per_task:
            skipped["over_per_task"] += 1
            continue
        counts[task] = counts.get(task, 0) + 1
        kept.append(_Kept(shard, offset, first_index + n - 1, t, task))
    return n


def convert_libero_rlds(root: str | Path, out_dir, tasks, image_size: int = 224,
                        per_task: int | None = None, split: str = "train") -> dict:
    """Convert the configured LIBERO `tasks` of a modified LIBERO RLDS set into an episode
    store at out_dir (at most `per_task` episodes per task, None: all).
    Returns {"tasks": {task: episodes}, "episodes": n, "steps": n, "skipped": {...}}."""
    image_size = int(image_size)
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    tasks = sorted(tasks)
    if not tasks:
        raise ValueError("no LIBERO tasks to convert (benchmarks.<b>.tasks is empty)")
    lookup = _task_lookup(tasks)  # validates the task names first
    names = dataset_names(tasks)
    version_dir = tr.find_version_dir(root, names, _fix(names))
    shards = tr.shard_files(version_dir, split, DOWNLOAD)
    lengths = tr.shard_lengths(version_dir, split)
    if lengths is not None and len(lengths) != len(shards):
        raise ValueError(f"{version_dir / 'dataset_info.json'}: {len(lengths)} {split} shard lengths "
                         f"for {len(shards)} shard files (a different release? re-download it)")
    kept: list[_Kept] = []
    counts: dict[str, int] = {}
    instructions: dict[str, str] = {}
    skipped = {"other_task": 0, "over_per_task": 0, "empty": 0}
    read, first = [], 0
    for s, path in enumerate(shards):
        n = _scan(path, s, first, lookup, per_task, kept, counts, instructions, skipped)
        if lengths is not None and n != lengths[s]:
            raise ValueError(f"{path}: {n} records, the dataset_info.json next to it says "
                             f"{lengths[s]} (truncated at a record boundary, or a different "
                             "release; re-download it)")
        read.append({"file": path.name, "records_read": n})
        first += n
    missing = [t for t in tasks if t not in counts]
    if missing:
        raise ValueError(f"{version_dir}: no episode of task(s) {missing} in split {split!r} "
                         f"(episodes of other tasks: {skipped['other_task']}); is this the set "
                         f"of their suite ({', '.join(names)})?")

    reader = tr.ShardReader()

    def episode(i: int) -> Episode:
        k = kept[i]
        feats, where = reader.features(shards[k.shard], k.offset)
        jpegs = tr.values(feats, IMAGE_KEY, "bytes_list", where, dataset=DATASET)
        actions = np.asarray(tr.values(feats, ACTION_KEY, "float_list", where, dataset=DATASET),
                             np.float32).reshape(k.length, 7).copy()
        actions[:, 6] = np.where(actions[:, 6] > 0, 1.0, -1.0)  # raw sign: +1 close / -1 open
        frames = np.stack([tr.jpeg_frame(jpegs[j], image_size, f"{where} step {j}", IMAGE_KEY)
                           for j in range(k.length)])
        return Episode(task=k.task, seed=k.index, frames=frames, actions=actions)

    try:
        write_store_streaming(
            out_dir, [k.length for k in kept], (image_size, image_size, 3), episode,
            {t: instructions[t] for t in tasks}, BENCHMARK,
            extra_meta={"action_space": ACTION_SPACE_DOC, "camera": "agentview (image)",
                        "image_size": image_size, "split": split, "skipped": skipped,
                        "source": f"modified LIBERO RLDS {version_dir.parent.name}/{version_dir.name}",
                        "no_noops": True,
                        "seed": "index of the episode's record in the split (shard order)",
                        "shards": read})
    finally:
        reader.close()
    return {"tasks": {t: counts[t] for t in tasks}, "episodes": len(kept),
            "steps": int(sum(k.length for k in kept)), "skipped": skipped}

"""BridgeData V2's RLDS release (TFDS `bridge_dataset`, OpenVLA's `bridge_orig`) -> our
episode store, read without TensorFlow.

Layout read (a TFDS prepared-dataset folder; the release is
https://rail.eecs.berkeley.edu/datasets/bridge_release/data/tfds/bridge_dataset/, which
OpenVLA's README (CladernyJorn/VLM4VLA openvla/README.md:168-171) downloads and renames to
`bridge_orig/`; both folder names are accepted):
    <root>/bridge_dataset/<version>/              root may also be the dataset or version folder
        dataset_info.json                          TFDS DatasetInfo as JSON; per split
                                                   `shardLengths` (records per shard,
                                                   tensorflow_datasets/core/proto/dataset_info.proto
                                                   SplitInfo.shard_lengths): cross-checked when present
        features.json                              the feature schema (not read)
        bridge_dataset-<split>.tfrecord-XXXXX-of-YYYYY   split = train | val (1024 / 128 shards
                                                   in the hosted release, per public downloaders)

TFRecord framing, tf.train.Example and the shard layout: vlm4vla.data.tfds_records. Each
record is one episode, the TFDS serialization of the builder's FeaturesDict
(kpertsch/bridge_rlds_builder bridge_dataset/bridge_dataset_dataset_builder.py at f0d16c5,
_info 93-195, _parse_examples 17-72).

Keys read:
    steps/observation/image_0      bytes x T   JPEG, 256x256 RGB, the fixed third-person camera
                                               (OpenVLA's "primary" view of bridge_orig:
                                               oxe/configs.py:81-94 image_obs_keys primary = image_0)
    steps/observation/state        float x 7T  EEF [x, y, z, roll, pitch, yaw, gripper]
    steps/action                   float x 7T  [dxyz, drpy, gripper absolute (1 open, 0 closed)];
                                               used for its gripper column only (below)
    steps/language_instruction     bytes x T   the episode's instruction, repeated per step
                                               ("" where the episode has none)
    steps/is_first, steps/is_last  int64 x T   checked when present (first / last step flags)
    episode_metadata/has_image_0   int64 x 1   counted when present (0: image_0 is a dummy)
(also image_1..3, language_embedding, reward, discount, is_terminal, episode_metadata/
file_path, episode_id, has_*: not read.)

What the official VLM4VLA Bridge training does and this loader mirrors (CladernyJorn/VLM4VLA
at 20fedc9; its `data_mix: bridge` = [("bridge_orig", 1.0)], openvla/prismatic/vla/datasets/
rlds/oxe/mixtures.py:13-16, configs/oxe_training/bridge/*.json):
  - bridge_orig_dataset_transform (oxe/transforms.py:61-84, also registered for
    "bridge_dataset", :856): drop step 0 of everything ("the first timestep has an all-zero
    action"); gripper = binarize_gripper_actions(action[:, 6]) (rlds/utils/data_utils.py:
    106-134: 1 if > 0.95, 0 if < 0.05, an in-between value takes the state reached after it
    by a backward scan whose initial carry is the last raw value); then relabel_bridge_actions
    (data_utils.py:166-172): the arm action is the REACHED state delta
    state[t+1, :6] - state[t, :6] (Euler differences as is, not wrapped), and the last step is
    dropped. An episode of T recorded steps gives T - 2 (frame, action) pairs: frames
    image_0[1 .. T-2], action t = (state[t+1] - state[t])[:6] + binarized gripper[t].
  - VLM4VLA then maps the gripper to {1 open, 0 closed} by `!= 1 -> 0`
    (vlm4vla/data/base_action_prediction_dataset.py:56-73, called at 121-122), so a trailing
    in-between value (left by the binarizer) counts as closed. Ours: -1 (open) where the
    binarized gripper == 1, else +1 (close) -- the project's +1 close / -1 open.
  - episodes whose instructions are all "" are skipped (skip_unlabeled=True,
    vlm4vla/data/base_openvla_dataset.py:93; the filter, rlds/dataset.py:296-300), as are
    episodes left with no step (window_size 1 <= len(action), rlds/dataset.py:308-309).
  - split: the release's own `train` / `val` (rlds/dataset.py:226-229 uses them when a "val"
    split exists).
Not reproduced here: the normalisation (OpenVLA BOUNDS_Q99 then +-0.65, the benchmark's
`action_norm`, data/normalize.py) and the resize filter (dlimp's lanczos3; frames here are
resized bicubic to image_size, as the project's other loaders). No flip: Bridge JPEGs are
stored upright (OpenVLA decodes them as is, rlds/obs_transforms.py:65-75).

Store: one Episode per kept record, in shard order then record order. task = "bridge" for
all (the release's instructions are free-form, often misspelt text -- 2,919 distinct strings in
the official openvla/dataset_stats/bridge_orig.json -- and OpenVLA samples the whole split
without per-task balancing); each episode keeps its own instruction
(its decoded text, verbatim); seed = the record's index in the split (every record of every
shard counted in shard order, skipped ones included), so a seed names its source record;
meta.json lists the shards read. Two passes over the shards: the first parses every record
(lengths, instructions, framing and optional data CRCs) and remembers its byte offset, the
second decodes the kept ones into the memory-mapped store (write_store_streaming).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlm4vla.data import tfds_records as tr
from vlm4vla.data.episodes import Episode, write_store_streaming
# the format primitives, shared with the LIBERO RLDS loader (re-exported for callers)
from vlm4vla.data.tfds_records import (crc32c, crc32c_python, example_classes,  # noqa: F401
                                       frame_record, iter_tfrecord, masked_crc32c,
                                       parse_example, read_tfrecord_at, shard_lengths)

DATASET_NAMES = ("bridge_dataset", "bridge_orig")  # the release's name, OpenVLA's rename
DOWNLOAD_URL = "https://rail.eecs.berkeley.edu/datasets/bridge_release/data/tfds/bridge_dataset/"
BENCHMARK = "simpler_bridge"
TASK = "bridge"
TASK_INSTRUCTION = "a BridgeData V2 task (each episode carries its own instruction)"

IMAGE_KEY = "steps/observation/image_0"
STATE_KEY = "steps/observation/state"
ACTION_KEY = "steps/action"
LANGUAGE_KEY = "steps/language_instruction"
IS_FIRST_KEY = "steps/is_first"
IS_LAST_KEY = "steps/is_last"
HAS_IMAGE_KEY = "episode_metadata/has_image_0"

ACTION_SPACE_DOC = ("7-D float32: BridgeData V2 reached-state deltas (OpenVLA bridge_orig relabel): "
                    "state[t+1] - state[t] of EEF [x, y, z (m), roll, pitch, yaw (rad, not wrapped)], "
                    "gripper +1 close / -1 open (OpenVLA-binarized commanded gripper, open iff == 1); "
                    "frame t (image_0) is observed before action t; recorded step 0 and the last "
                    "step are dropped")


_FIX = (f"Expected the BridgeData V2 RLDS release (TFDS dataset bridge_dataset, OpenVLA's "
        f"bridge_orig) as <root>/bridge_dataset/<version>/bridge_dataset-<split>.tfrecord-"
        f"XXXXX-of-YYYYY; download it from {DOWNLOAD_URL}")
_DATASET = "BridgeData V2's RLDS release (bridge_dataset)"


def find_version_dir(root: str | Path) -> Path:
    """The TFDS version folder at or under `root`: root itself, <root>/<version> or
    <root>/{bridge_dataset,bridge_orig}/<version> (the newest version)."""
    return tr.find_version_dir(root, DATASET_NAMES, _FIX)


def shard_files(version_dir: str | Path, split: str) -> list[Path]:
    return tr.shard_files(version_dir, split, DOWNLOAD_URL)


def _values(features, key: str, kind: str, where: str, required: bool = True):
    return tr.values(features, key, kind, where, required, _DATASET)


# --- the episode transform --------------------------------------------------------------------

def binarize_gripper(g: np.ndarray) -> np.ndarray:
    """OpenVLA's binarize_gripper_actions (data_utils.py:106-134) in numpy: 1.0 where g > 0.95,
    0.0 where g < 0.05; an in-between value takes the value found after it (scanning
    backwards from the last raw value, which a trailing in-between run keeps)."""
    g = np.asarray(g, dtype=np.float32)
    out = np.empty_like(g)
    carry = g[-1] if len(g) else np.float32(0)
    for i in range(len(g) - 1, -1, -1):
        if g[i] > 0.95:
            carry = np.float32(1.0)
        elif g[i] < 0.05:
            carry = np.float32(0.0)
        out[i] = carry
    return out


def bridge_actions(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """(T, 7) recorded state and action -> (T - 2, 7) ours for steps 1 .. T-2 (the module
    docstring: bridge_orig_dataset_transform + relabel_bridge_actions, gripper to +1 close)."""
    state = np.asarray(state, dtype=np.float32)[1:]
    grip = binarize_gripper(np.asarray(action, dtype=np.float32)[1:, 6])
    out = np.empty((max(len(state) - 1, 0), 7), dtype=np.float32)
    out[:, :6] = state[1:, :6] - state[:-1, :6]
    out[:, 6] = np.where(grip[:-1] == 1.0, -1.0, 1.0)  # VLM4VLA: == 1 open, else closed
    return out


@dataclass(frozen=True)
class _Kept:
    shard: int
    offset: int
    index: int  # the record's index in the split (its seed)
    length: int  # steps kept (T - 2)
    instruction: str


def _scan(path: Path, shard: int, first_index: int, verify_data_crc: bool, expected: int | None,
          limit: int | None, kept: list, skipped: dict) -> int:
    """First pass over one shard: append its kept records to `kept`; return the records read."""
    n = 0
    for offset, data in iter_tfrecord(path, verify_data_crc):
        if limit is not None and len(kept) >= limit:
            return n
        where = f"{path} (record {n}, byte offset {offset})"
        feats = parse_example(data, where)
        actions = _values(feats, ACTION_KEY, "float_list", where)
        if len(actions) % 7:
            raise ValueError(f"{where}: {ACTION_KEY} has {len(actions)} values, not 7 per step")
        t = len(actions) // 7
        lens = {IMAGE_KEY: len(_values(feats, IMAGE_KEY, "bytes_list", where)),
                STATE_KEY: len(_values(feats, STATE_KEY, "float_list", where)) / 7,
                LANGUAGE_KEY: len(_values(feats, LANGUAGE_KEY, "bytes_list", where))}
        for key in (IS_FIRST_KEY, IS_LAST_KEY):
            flags = _values(feats, key, "int64_list", where, required=False)
            if flags is not None:
                lens[key] = len(flags)
                if t and not flags[0 if key == IS_FIRST_KEY else -1]:
                    raise ValueError(f"{where}: {key} is not set on the episode's "
                                     f"{'first' if key == IS_FIRST_KEY else 'last'} step")
        bad = {k: v for k, v in lens.items() if v != t}
        if bad:
            raise ValueError(f"{where}: {t} steps in {ACTION_KEY} but {bad} (values per key)")
        n += 1
        if t < 3:  # nothing left after dropping the first step and relabelling
            skipped["too_short"] += 1
            continue
        texts = set(_values(feats, LANGUAGE_KEY, "bytes_list", where)[1:t - 1])
        if texts == {b""}:  # OpenVLA's skip_unlabeled: every kept step's instruction is ""
            skipped["unlabeled"] += 1
            continue
        if len(texts) != 1:
            raise ValueError(f"{where}: the steps carry different instructions {sorted(texts)[:3]}")
        try:
            text = texts.pop().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{where}: {LANGUAGE_KEY} is not UTF-8 ({e})") from None
        has_image = _values(feats, HAS_IMAGE_KEY, "int64_list", where, required=False)
        if has_image is not None and len(has_image) and not has_image[0]:
            skipped["image_0_dummy_kept"] += 1  # OpenVLA trains on them too (no filter)
        kept.append(_Kept(shard, offset, first_index + n - 1, t - 2, text))
    if expected is not None and n != expected:
        raise ValueError(f"{path}: {n} records, the dataset_info.json next to it says {expected} "
                         "(truncated at a record boundary, or a different release; re-download it)")
    return n


def _frame(jpeg: bytes, size: int, where: str) -> np.ndarray:
    return tr.jpeg_frame(jpeg, size, where, IMAGE_KEY)


def convert_bridge_rlds(root: str | Path, out_dir, image_size: int = 224, split: str = "train",
                        max_episodes: int | None = None, verify_data_crc: bool = False) -> dict:
    """Convert a split of BridgeData V2's RLDS release into an episode store at out_dir
    (benchmark "simpler_bridge"): the first `max_episodes` kept episodes (None: all).
    Returns {"tasks": {"bridge": episodes}, "episodes": n, "steps": n, "skipped": {...}}."""
    image_size = int(image_size)
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    if max_episodes is not None and int(max_episodes) < 1:
        raise ValueError(f"max_episodes must be >= 1 or None, got {max_episodes}")
    version_dir = find_version_dir(root)
    shards = shard_files(version_dir, split)
    lengths = shard_lengths(version_dir, split)
    if lengths is not None and len(lengths) != len(shards):
        raise ValueError(f"{version_dir / 'dataset_info.json'}: {len(lengths)} {split} shard lengths "
                         f"for {len(shards)} shard files (a different release? re-download it)")

    kept: list[_Kept] = []
    skipped = {"unlabeled": 0, "too_short": 0, "image_0_dummy_kept": 0}
    read, first = [], 0
    for s, path in enumerate(shards):
        limit = None if max_episodes is None else int(max_episodes)
        if limit is not None and len(kept) >= limit:
            break
        n = _scan(path, s, first, verify_data_crc, None if lengths is None else lengths[s],
                  limit, kept, skipped)
        read.append({"file": path.name, "records_read": n})
        first += n
    if not kept:
        raise ValueError(f"{version_dir}: no episode of split {split!r} with an instruction and "
                         f">= 3 steps (skipped: {skipped})")

    reader = tr.ShardReader()

    def episode(i: int) -> Episode:
        k = kept[i]
        feats, where = reader.features(shards[k.shard], k.offset)
        t = k.length + 2
        jpegs = _values(feats, IMAGE_KEY, "bytes_list", where)
        state = np.asarray(_values(feats, STATE_KEY, "float_list", where), np.float32).reshape(t, 7)
        action = np.asarray(_values(feats, ACTION_KEY, "float_list", where), np.float32).reshape(t, 7)
        frames = np.stack([_frame(jpegs[j], image_size, f"{where} step {j}") for j in range(1, t - 1)])
        return Episode(task=TASK, seed=k.index, frames=frames, actions=bridge_actions(state, action),
                       instruction=k.instruction)

    try:
        write_store_streaming(
            out_dir, [k.length for k in kept], (image_size, image_size, 3), episode,
            {TASK: TASK_INSTRUCTION}, BENCHMARK,
            extra_meta={"action_space": ACTION_SPACE_DOC, "camera": "image_0",
                        "image_size": image_size, "split": split, "skipped": skipped,
                        "source": f"BridgeData V2 RLDS {version_dir.parent.name}/{version_dir.name}",
                        "seed": "index of the episode's record in the split (shard order)",
                        "shards": read})
    finally:
        reader.close()
    return {"tasks": {TASK: len(kept)}, "episodes": len(kept),
            "steps": int(sum(k.length for k in kept)), "skipped": skipped}

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

TFRecord framing (https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details;
tensorflow/docs site/en/api_guides/python/python_io.md "TFRecords Format Details"): records
are concatenated, each
    uint64 length (little endian) | uint32 masked_crc32c(length) | data[length] | uint32 masked_crc32c(data)
    masked_crc = ((crc >> 15) | (crc << 17)) + 0xa282ead8, crc = CRC-32C (Castagnoli).
The length CRC is always verified; the data CRC (pure Python here: slow on the ~2 MB
records of the release) only with verify_data_crc. A truncated record or a bad CRC raises a
ValueError naming the file and the record's byte offset.

Each record is one episode: a serialized `tf.train.Example` (tensorflow/core/example/
example.proto + feature.proto; the message classes are built here at runtime from that
schema, `example_classes()`), the TFDS serialization of the builder's FeaturesDict
(kpertsch/bridge_rlds_builder bridge_dataset/bridge_dataset_dataset_builder.py at f0d16c5,
_info 93-195, _parse_examples 17-72): nested keys joined with "/", every per-step
feature flattened across the T steps, bools as int64 (tensorflow/datasets
tensorflow_datasets/core/example_serializer.py, `_dict_to_tf_example` / `_item_to_tf_feature`).
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

import io
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vlm4vla.data.episodes import Episode, write_store_streaming

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

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_SHARD = r"(?P<name>.+)-{split}\.tfrecord-(?P<index>\d+)-of-(?P<count>\d+)"
_VERSION = re.compile(r"\d+(\.\d+)*")


# --- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) ---------------------------------

def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c_python(data: bytes, crc: int = 0) -> int:
    """CRC-32C of `data` (continuing `crc`), table driven, pure Python (a few MB/s)."""
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for b in memoryview(data).cast("B"):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:  # a compiled CRC-32C when one is installed (not a dependency); same values
    import google_crc32c as _fast_crc  # type: ignore

    def crc32c(data: bytes) -> int:
        return int(_fast_crc.value(bytes(data)))
except ImportError:  # pragma: no cover - depends on the environment
    def crc32c(data: bytes) -> int:
        return crc32c_python(data)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, mod 2**32."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# --- TFRecord framing -----------------------------------------------------------------------

def frame_record(data: bytes) -> bytes:
    """One TFRecord record (header, data, footer) holding `data` (the writer side)."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + bytes(data) + \
        struct.pack("<I", masked_crc32c(data))


def _read_record(f, path: Path, offset: int, verify_data_crc: bool) -> bytes | None:
    """The record at byte `offset` of the open file `f` (positioned there); None at the
    clean end of the file."""
    header = f.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise ValueError(f"{path}: truncated TFRecord at byte offset {offset}: {len(header)} of "
                         f"{_HEADER.size} header bytes (an incomplete download? re-download this shard)")
    length, length_crc = _HEADER.unpack(header)
    if masked_crc32c(header[:8]) != length_crc:
        raise ValueError(f"{path}: corrupt TFRecord at byte offset {offset}: the length CRC does not "
                         "match (not a TFRecord file, or damaged; re-download this shard)")
    data = f.read(length)
    footer = f.read(_FOOTER.size)
    if len(data) < length or len(footer) < _FOOTER.size:
        raise ValueError(f"{path}: truncated TFRecord at byte offset {offset}: the record needs "
                         f"{_HEADER.size + length + _FOOTER.size} bytes, the file ends after "
                         f"{_HEADER.size + len(data) + len(footer)} (an incomplete download? "
                         "re-download this shard)")
    if verify_data_crc and masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
        raise ValueError(f"{path}: corrupt TFRecord at byte offset {offset}: the data CRC does not "
                         f"match ({length} bytes; re-download this shard)")
    return data


def iter_tfrecord(path: str | Path, verify_data_crc: bool = False):
    """Yield (byte offset, data) of every record of a TFRecord file, in order."""
    path = Path(path)
    with open(path, "rb") as f:
        offset = 0
        while True:
            data = _read_record(f, path, offset, verify_data_crc)
            if data is None:
                return
            yield offset, data
            offset += _HEADER.size + len(data) + _FOOTER.size


def read_tfrecord_at(path: str | Path, offset: int, verify_data_crc: bool = False, f=None) -> bytes:
    """The record starting at byte `offset` of `path` (`f`: that file, already open)."""
    path = Path(path)
    if f is None:
        with open(path, "rb") as fh:
            return read_tfrecord_at(path, offset, verify_data_crc, fh)
    f.seek(offset)
    data = _read_record(f, path, offset, verify_data_crc)
    if data is None:
        raise ValueError(f"{path}: no TFRecord at byte offset {offset} (the file is shorter: it "
                         "changed during the conversion?)")
    return data


# --- tf.train.Example, built from its public schema ------------------------------------------

_CLASSES: dict | None = None


def _schema_files():
    """FileDescriptorProtos of tensorflow/core/example/{feature,example}.proto (proto3)."""
    from google.protobuf import descriptor_pb2

    F = descriptor_pb2.FieldDescriptorProto
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED

    def field(msg, name, number, type_, label=opt, type_name=None, packed=False, oneof=None):
        fd = msg.field.add(name=name, number=number, type=type_, label=label)
        if type_name:
            fd.type_name = type_name
        if packed:
            fd.options.packed = True
        if oneof is not None:
            fd.oneof_index = oneof
        fd.json_name = re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)
        return fd

    feature = descriptor_pb2.FileDescriptorProto(name="tensorflow/core/example/feature.proto",
                                                 package="tensorflow", syntax="proto3")
    msg = feature.message_type.add(name="BytesList")
    field(msg, "value", 1, F.TYPE_BYTES, rep)
    msg = feature.message_type.add(name="FloatList")
    field(msg, "value", 1, F.TYPE_FLOAT, rep, packed=True)
    msg = feature.message_type.add(name="Int64List")
    field(msg, "value", 1, F.TYPE_INT64, rep, packed=True)
    msg = feature.message_type.add(name="Feature")
    msg.oneof_decl.add(name="kind")
    field(msg, "bytes_list", 1, F.TYPE_MESSAGE, type_name=".tensorflow.BytesList", oneof=0)
    field(msg, "float_list", 2, F.TYPE_MESSAGE, type_name=".tensorflow.FloatList", oneof=0)
    field(msg, "int64_list", 3, F.TYPE_MESSAGE, type_name=".tensorflow.Int64List", oneof=0)
    msg = feature.message_type.add(name="Features")
    entry = msg.nested_type.add(name="FeatureEntry")  # map<string, Feature> feature = 1
    entry.options.map_entry = True
    field(entry, "key", 1, F.TYPE_STRING)
    field(entry, "value", 2, F.TYPE_MESSAGE, type_name=".tensorflow.Feature")
    field(msg, "feature", 1, F.TYPE_MESSAGE, rep, type_name=".tensorflow.Features.FeatureEntry")

    example = descriptor_pb2.FileDescriptorProto(name="tensorflow/core/example/example.proto",
                                                 package="tensorflow", syntax="proto3",
                                                 dependency=[feature.name])
    msg = example.message_type.add(name="Example")
    field(msg, "features", 1, F.TYPE_MESSAGE, type_name=".tensorflow.Features")
    return feature, example


def example_classes() -> dict:
    """{"Example", "Features", "Feature", "BytesList", "FloatList", "Int64List"}: message
    classes of tf.train.Example, from a private descriptor pool (no clash with TensorFlow's
    own registration if it is imported too)."""
    global _CLASSES
    if _CLASSES is None:
        from google.protobuf import descriptor_pool, message_factory

        pool = descriptor_pool.DescriptorPool()
        for fdp in _schema_files():
            pool.AddSerializedFile(fdp.SerializeToString())

        def cls(name):
            desc = pool.FindMessageTypeByName(f"tensorflow.{name}")
            if hasattr(message_factory, "GetMessageClass"):
                return message_factory.GetMessageClass(desc)
            return message_factory.MessageFactory(pool).GetPrototype(desc)  # protobuf < 4.22

        _CLASSES = {n: cls(n) for n in ("Example", "Features", "Feature", "BytesList",
                                        "FloatList", "Int64List")}
    return _CLASSES


def parse_example(data: bytes, where: str):
    """The feature map (key -> Feature) of a serialized tf.train.Example; `where` names the
    record in errors."""
    from google.protobuf.message import DecodeError

    ex = example_classes()["Example"]()
    try:
        ex.ParseFromString(bytes(data))
    except DecodeError as e:
        raise ValueError(f"{where}: not a tf.train.Example ({e}); the shard is damaged or not "
                         "an RLDS/TFDS record (re-download it)") from None
    return ex.features.feature


def _values(features, key: str, kind: str, where: str, required: bool = True):
    if key not in features:
        if not required:
            return None
        raise ValueError(f"{where}: no feature {key!r} (keys: {sorted(features)}). Not BridgeData "
                         "V2's RLDS release (bridge_dataset)?")
    feat = features[key]
    have = feat.WhichOneof("kind")
    if have != kind and not (have is None and not required):
        raise ValueError(f"{where}: feature {key!r} is a {have}, expected a {kind}")
    return getattr(feat, kind).value


# --- dataset folder ----------------------------------------------------------------------------

def _has_shards(folder: Path) -> bool:
    return any(folder.glob("*.tfrecord-*-of-*"))


def _version_key(p: Path):
    return tuple(int(x) for x in p.name.split("."))


def find_version_dir(root: str | Path) -> Path:
    """The TFDS version folder (holding the shards) at or under `root`: root itself, or
    <root>/<version>, or <root>/{bridge_dataset,bridge_orig}/<version> (the newest version)."""
    root = Path(root)
    fix = (f"Expected the BridgeData V2 RLDS release (TFDS dataset bridge_dataset, OpenVLA's "
           f"bridge_orig) as <root>/bridge_dataset/<version>/bridge_dataset-<split>.tfrecord-"
           f"XXXXX-of-YYYYY; download it from {DOWNLOAD_URL}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder. {fix}")
    if _has_shards(root):
        return root
    for folder in [root / n for n in DATASET_NAMES] + [root]:
        if not folder.is_dir():
            continue
        versions = [d for d in folder.iterdir()
                    if d.is_dir() and _VERSION.fullmatch(d.name) and _has_shards(d)]
        if versions:
            return max(versions, key=_version_key)
    raise FileNotFoundError(f"{root}: no TFRecord shards there. {fix}")


def shard_files(version_dir: str | Path, split: str) -> list[Path]:
    """The split's shards in index order; all of 00000..YYYYY-1 must be present."""
    version_dir = Path(version_dir)
    pattern = re.compile(_SHARD.format(split=re.escape(split)))
    found = {}
    for p in version_dir.iterdir():
        m = pattern.fullmatch(p.name)
        if m and p.is_file():
            found[int(m.group("index"))] = (p, int(m.group("count")))
    if not found:
        splits = sorted({m.group("split") for p in version_dir.iterdir()
                         if (m := re.fullmatch(r".+-(?P<split>[^-.]+)\.tfrecord-\d+-of-\d+", p.name))})
        raise FileNotFoundError(f"{version_dir}: no shards of split {split!r} "
                                f"(<name>-{split}.tfrecord-XXXXX-of-YYYYY); splits there: {splits}")
    counts = {c for _, c in found.values()}
    if len(counts) != 1:
        raise ValueError(f"{version_dir}: {split} shards disagree on their count (-of-{sorted(counts)})")
    count = counts.pop()
    if max(found) >= count:
        raise ValueError(f"{version_dir}: {split} shard {found[max(found)][0].name} has an index "
                         f"beyond its count {count}")
    missing = [i for i in range(count) if i not in found]
    if missing:
        name = next(iter(found.values()))[0].name
        stem = name[:name.rindex(".tfrecord-")]
        names = [f"{stem}.tfrecord-{i:05d}-of-{count:05d}" for i in missing[:3]]
        raise FileNotFoundError(f"{version_dir}: {len(missing)} of {count} {split} shards are missing "
                                f"(e.g. {', '.join(names)}): the download is incomplete; fetch them "
                                f"from {DOWNLOAD_URL}")
    return [found[i][0] for i in range(count)]


def shard_lengths(version_dir: str | Path, split: str) -> list[int] | None:
    """Records per shard of `split` from dataset_info.json (None: no file or no lengths)."""
    path = Path(version_dir) / "dataset_info.json"
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        for s in info.get("splits", []):
            if s.get("name") == split and s.get("shardLengths"):
                return [int(n) for n in s["shardLengths"]]
    except (ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a TFDS dataset_info.json ({e}); re-download it") from None
    return None


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
    if not jpeg:  # OpenVLA's padding image (obs_transforms.py:65-68)
        return np.zeros((size, size, 3), np.uint8)
    try:
        img = Image.open(io.BytesIO(jpeg))
        img = img.convert("RGB")
    except (OSError, ValueError) as e:
        raise ValueError(f"{where}: {IMAGE_KEY} cannot be decoded ({e}); re-download the shard") from None
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


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

    handle: dict = {}

    def episode(i: int) -> Episode:
        k = kept[i]
        path = shards[k.shard]
        if handle.get("path") != path:
            if handle.get("file"):
                handle["file"].close()
            handle.update(path=path, file=open(path, "rb"))
        where = f"{path} (record at byte offset {k.offset})"
        feats = parse_example(read_tfrecord_at(path, k.offset, f=handle["file"]), where)
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
        if handle.get("file"):
            handle["file"].close()
    return {"tasks": {TASK: len(kept)}, "episodes": len(kept),
            "steps": int(sum(k.length for k in kept)), "skipped": skipped}

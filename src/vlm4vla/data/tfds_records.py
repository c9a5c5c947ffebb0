"""TFDS prepared datasets (RLDS releases) read without TensorFlow: TFRecord framing,
tf.train.Example, the shard layout. Shared by the RLDS loaders (vlm4vla.data.rlds_bridge,
vlm4vla.data.rlds_libero); each loader names its dataset and download in the errors.

TFRecord framing (https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details;
tensorflow/docs site/en/api_guides/python/python_io.md "TFRecords Format Details"): records
are concatenated, each
    uint64 length (little endian) | uint32 masked_crc32c(length) | data[length] | uint32 masked_crc32c(data)
    masked_crc = ((crc >> 15) | (crc << 17)) + 0xa282ead8, crc = CRC-32C (Castagnoli).
The length CRC is always verified; the data CRC (pure Python here: slow on records of a few
MB) only with verify_data_crc. A truncated record or a bad CRC raises a ValueError naming
the file and the record's byte offset.

Each record of an RLDS dataset is one episode: a serialized `tf.train.Example`
(tensorflow/core/example/example.proto + feature.proto; the message classes are built here
at runtime from that schema, `example_classes()`), TFDS's serialization of the builder's
FeaturesDict: nested keys joined with "/", every per-step feature flattened across the T
steps, bools as int64 (tensorflow/datasets tensorflow_datasets/core/example_serializer.py,
`_dict_to_tf_example` / `_item_to_tf_feature`).

Folder layout (a TFDS prepared dataset):
    <dataset>/<version>/dataset_info.json     per split `shardLengths` (records per shard,
                                              tensorflow_datasets/core/proto/dataset_info.proto
                                              SplitInfo.shard_lengths): cross-checked when present
    <dataset>/<version>/features.json         the feature schema (not read)
    <dataset>/<version>/<name>-<split>.tfrecord-XXXXX-of-YYYYY
"""

from __future__ import annotations

import io
import json
import re
import struct
from pathlib import Path

import numpy as np
from PIL import Image

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


class ShardReader:
    """Random access to records of several shards in turn, one file open at a time (a
    second pass over records found by a first one; use as a context manager)."""

    def __init__(self):
        self._path, self._file = None, None

    def features(self, path: Path, offset: int):
        """(feature map of the record at `offset` of `path`, its name for errors)."""
        if self._path != path:
            self.close()
            self._path, self._file = path, open(path, "rb")
        where = f"{path} (record at byte offset {offset})"
        return parse_example(read_tfrecord_at(path, offset, f=self._file), where), where

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._path, self._file = None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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


def values(features, key: str, kind: str, where: str, required: bool = True,
           dataset: str = "the expected RLDS dataset"):
    """The values of feature `key` (kind: bytes_list | float_list | int64_list); None for an
    absent optional feature; errors name the record (`where`) and the `dataset` expected."""
    if key not in features:
        if not required:
            return None
        raise ValueError(f"{where}: no feature {key!r} (keys: {sorted(features)}). Not {dataset}?")
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


def find_version_dir(root: str | Path, names: tuple[str, ...], fix: str) -> Path:
    """The TFDS version folder (holding the shards) at or under `root`: root itself, or
    <root>/<version>, or <root>/<name>/<version> for a dataset name in `names` (the newest
    version). `fix` (what was expected, where to get it) ends the errors."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder. {fix}")
    if _has_shards(root):
        return root
    for folder in [root / n for n in names] + [root]:
        if not folder.is_dir():
            continue
        versions = [d for d in folder.iterdir()
                    if d.is_dir() and _VERSION.fullmatch(d.name) and _has_shards(d)]
        if versions:
            return max(versions, key=_version_key)
    raise FileNotFoundError(f"{root}: no TFRecord shards there. {fix}")


def shard_files(version_dir: str | Path, split: str, download: str) -> list[Path]:
    """The split's shards in index order; all of 00000..YYYYY-1 must be present (`download`:
    where to fetch missing ones, for the error)."""
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
                                f"from {download}")
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


# --- images -----------------------------------------------------------------------------------

def jpeg_frame(jpeg: bytes, size: int, where: str, key: str) -> np.ndarray:
    """A JPEG image feature (`key`) as (size, size, 3) uint8 RGB, resized bicubic when its
    size differs; an empty value is OpenVLA's padding image, black (rlds/obs_transforms.py:
    65-68)."""
    if not jpeg:
        return np.zeros((size, size, 3), np.uint8)
    try:
        img = Image.open(io.BytesIO(jpeg))
        img = img.convert("RGB")
    except (OSError, ValueError) as e:
        raise ValueError(f"{where}: {key} cannot be decoded ({e}); re-download the shard") from None
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)

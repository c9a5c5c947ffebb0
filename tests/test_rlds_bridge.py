"""BridgeData V2's RLDS release (bridge_dataset / bridge_orig) -> episode store, without
TensorFlow: on a small fixture written here in that exact format (TFRecord framing with
masked CRC-32C, one tf.train.Example per episode with TFDS's flattened "steps/..." keys,
JPEG frames), then corruption and layout errors, then a tiny training step on the store."""

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from vlm4vla.data import rlds_bridge as rb
from vlm4vla.data.episodes import EpisodeStore
from conftest import tiny_training_step

SIZE = 64  # fixture JPEG size (the release: 256)

# (shard, instruction, raw gripper per step); the first record of shard 0 has no instruction
EPISODES = [
    (0, "put the carrot on the plate", [1.0, 1.0, 0.7, 0.02, 0.02, 0.0]),
    (0, "", [1.0, 1.0, 1.0, 1.0, 1.0]),
    (1, "Open the drawer.", [0.0, 0.01, 0.3, 0.97, 1.0, 0.6, 0.8]),
    (1, "fold the cloth", [1.0, 1.0, 1.0, 1.0]),
]
# ours (+1 close / -1 open) after OpenVLA's drop-first + binarize + relabel (drop-last):
#   ep 0: [1, .7, .02, .02, 0] -> binarized [1, 0, 0, 0, 0] (0.7 takes the closed state after it)
#   ep 2: [.01, .3, .97, 1, .6, .8] -> [0, 1, 1, 1, .8, .8]; the trailing .8 is "not 1" = closed
EXPECTED_GRIPPER = {0: [-1, 1, 1, 1], 2: [1, -1, -1, -1, 1], 3: [-1, -1]}
KEPT = [0, 2, 3]  # record indices (= seeds) of the episodes converted


def jpeg(step: int) -> bytes:
    img = np.full((SIZE, SIZE, 3), 20 + 30 * step, np.uint8)  # grey level marks the step
    img[: SIZE // 4] = (255, 0, 0)  # red band at the TOP
    img[SIZE // 4:, : SIZE // 4] = (0, 255, 0)  # green band on the LEFT below it
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def episode_example(i: int, text: str, gripper: list[float], drop: str | None = None) -> bytes:
    """One RLDS episode as TFDS serializes it (bridge_dataset's features, flattened)."""
    t = len(gripper)
    rng = np.random.default_rng(i)
    state = rng.uniform(-0.5, 0.5, (t, 7)).astype(np.float32)
    action = rng.uniform(-0.05, 0.05, (t, 7)).astype(np.float32)
    action[:, 6] = gripper
    ex = rb.example_classes()["Example"]()
    f = ex.features.feature
    f["steps/observation/image_0"].bytes_list.value.extend([jpeg(s) for s in range(t)])
    f["steps/observation/image_1"].bytes_list.value.extend([jpeg(0)] * t)
    f["steps/observation/state"].float_list.value.extend(state.ravel().tolist())
    f["steps/action"].float_list.value.extend(action.ravel().tolist())
    f["steps/language_instruction"].bytes_list.value.extend([text.encode()] * t)
    f["steps/language_embedding"].float_list.value.extend([0.0] * (4 * t))
    f["steps/is_first"].int64_list.value.extend([int(s == 0) for s in range(t)])
    f["steps/is_last"].int64_list.value.extend([int(s == t - 1) for s in range(t)])
    f["steps/is_terminal"].int64_list.value.extend([int(s == t - 1) for s in range(t)])
    f["steps/reward"].float_list.value.extend([float(s == t - 1) for s in range(t)])
    f["steps/discount"].float_list.value.extend([1.0] * t)
    f["episode_metadata/file_path"].bytes_list.value.append(f"/raw/traj{i}.npy".encode())
    f["episode_metadata/episode_id"].int64_list.value.append(i)
    f["episode_metadata/has_image_0"].int64_list.value.append(1)
    f["episode_metadata/has_language"].int64_list.value.append(int(bool(text)))
    if drop:
        del f[drop]
    return ex.SerializeToString()


def write_bridge(root, name="bridge_dataset", drop=None):
    """<root>/<name>/1.0.0 with 2 train shards + dataset_info.json + features.json; returns
    (version folder, {record index: (shard path, byte offset, record size)})."""
    vdir = root / name / "1.0.0"
    vdir.mkdir(parents=True)
    where, lengths = {}, [0, 0]
    blobs = [b"", b""]
    for i, (shard, text, grip) in enumerate(EPISODES):
        rec = rb.frame_record(episode_example(i, text, grip, drop))
        where[i] = (shard, len(blobs[shard]), len(rec))
        blobs[shard] += rec
        lengths[shard] += 1
    paths = [vdir / f"bridge_dataset-train.tfrecord-{s:05d}-of-00002" for s in range(2)]
    for p, blob in zip(paths, blobs):
        p.write_bytes(blob)
    (vdir / "dataset_info.json").write_text(json.dumps({
        "name": "bridge_dataset", "version": "1.0.0", "fileFormat": "tfrecord",
        "splits": [{"name": "train", "numBytes": str(sum(map(len, blobs))),
                    "shardLengths": [str(n) for n in lengths],
                    "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}]}))
    (vdir / "features.json").write_text(json.dumps({"featuresDict": {"features": {}}}))
    return vdir, {i: (paths[s], off, n) for i, (s, off, n) in where.items()}


# --- the format primitives ------------------------------------------------------------------

def test_crc32c_and_tfrecord_framing():
    assert rb.crc32c_python(b"123456789") == 0xE3069283  # CRC-32C check value
    assert rb.crc32c(b"123456789") == 0xE3069283
    crc = 0xE3069283
    assert rb.masked_crc32c(b"123456789") == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF)
                                              + 0xA282EAD8) & 0xFFFFFFFF
    rec = rb.frame_record(b"hello")
    assert rec[:8] == struct.pack("<Q", 5) and rec[12:17] == b"hello" and len(rec) == 8 + 4 + 5 + 4
    assert struct.unpack("<I", rec[8:12])[0] == rb.masked_crc32c(struct.pack("<Q", 5))


def test_example_wire_format_matches_the_public_schema():
    """Hand-encoded protobuf wire bytes of feature.proto / example.proto (field numbers:
    Example.features 1, Features.feature 1 (map entry key 1 / value 2), Feature.bytes_list 1,
    float_list 2, int64_list 3, *List.value 1 packed) parse and serialize identically."""
    C = rb.example_classes()
    cases = {
        b"\x0a\x0c\x0a\x0a\x0a\x01a\x12\x05\x1a\x03\x0a\x01\x01": ("a", "int64_list", [1]),
        b"\x0a\x0f\x0a\x0d\x0a\x01b\x12\x08\x12\x06\x0a\x04\x00\x00\xc0\x3f": ("b", "float_list", [1.5]),
        b"\x0a\x0c\x0a\x0a\x0a\x01c\x12\x05\x0a\x03\x0a\x01x": ("c", "bytes_list", [b"x"]),
    }
    for wire, (key, kind, values) in cases.items():
        feats = rb.parse_example(wire, "test")
        assert feats[key].WhichOneof("kind") == kind and list(getattr(feats[key], kind).value) == values
        ex = C["Example"]()
        getattr(ex.features.feature[key], kind).value.extend(values)
        assert ex.SerializeToString() == wire


def test_binarize_gripper_is_openvlas():
    np.testing.assert_array_equal(rb.binarize_gripper([0.01, 0.3, 0.97, 1.0, 0.6, 0.8]),
                                  np.float32([0, 1, 1, 1, 0.8, 0.8]))
    np.testing.assert_array_equal(rb.binarize_gripper([1.0, 0.7, 0.02, 0.5]), np.float32([1, 0, 0, 0.5]))


# --- conversion -------------------------------------------------------------------------------

def test_convert_reads_episodes_and_converts_actions(tmp_path):
    vdir, where = write_bridge(tmp_path / "data")
    stats = rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store", image_size=32,
                                   verify_data_crc=True)
    lengths = [len(EPISODES[i][2]) - 2 for i in KEPT]
    assert stats == {"tasks": {"bridge": 3}, "episodes": 3, "steps": sum(lengths),
                     "skipped": {"unlabeled": 1, "too_short": 0, "image_0_dummy_kept": 0}}
    store = EpisodeStore(tmp_path / "store")
    assert store.benchmark == "simpler_bridge" and store.frames.shape == (sum(lengths), 32, 32, 3)
    assert [(e["task"], e["seed"], e["length"], e["instruction"]) for e in store.episodes] == \
        [("bridge", i, len(EPISODES[i][2]) - 2, EPISODES[i][1]) for i in KEPT]
    assert store.meta["camera"] == "image_0" and store.meta["split"] == "train"
    assert [s["records_read"] for s in store.meta["shards"]] == [2, 2]
    for ep in store.episodes:
        i, t = ep["seed"], len(EPISODES[ep["seed"]][2])
        frames = store.frames[ep["start"]:ep["start"] + ep["length"]]
        # upright, not mirrored: red at the top, green on the left, at 32 x 32
        assert (frames[:, 2, 16, 0] > 200).all() and (frames[:, 2, 16, 1:] < 60).all()
        assert (frames[:, 20, 2, 1] > 200).all() and (frames[:, 20, 2, [0, 2]] < 60).all()
        # recorded steps 1 .. T-2 (step 0 and the last one are dropped)
        grey = frames[:, 24, 24].astype(int)
        np.testing.assert_allclose(grey, np.repeat([[20 + 30 * s] for s in range(1, t - 1)], 3, 1), atol=6)
        # arm = reached-state deltas state[t+1] - state[t] of steps 1 .. T-2, float32-exact
        state = np.random.default_rng(i).uniform(-0.5, 0.5, (t, 7)).astype(np.float32)
        acts = store.actions[ep["start"]:ep["start"] + ep["length"]]
        np.testing.assert_array_equal(acts[:, :6], state[2:, :6] - state[1:-1, :6])
        assert list(acts[:, 6]) == EXPECTED_GRIPPER[i]
        assert store.instruction_of(ep["start"]) == EPISODES[i][1]


def test_root_may_be_the_version_or_dataset_folder_and_bridge_orig(tmp_path):
    vdir, _ = write_bridge(tmp_path / "a")
    ref = rb.convert_bridge_rlds(tmp_path / "a", tmp_path / "s0", image_size=16)
    for i, root in enumerate([vdir, vdir.parent]):
        assert rb.convert_bridge_rlds(root, tmp_path / f"s{i + 1}", image_size=16) == ref
    write_bridge(tmp_path / "b", name="bridge_orig")  # OpenVLA's rename
    assert rb.convert_bridge_rlds(tmp_path / "b", tmp_path / "s3", image_size=16) == ref
    np.testing.assert_array_equal(EpisodeStore(tmp_path / "s3").actions, EpisodeStore(tmp_path / "s0").actions)


def test_max_episodes_takes_the_first_kept_ones(tmp_path):
    write_bridge(tmp_path / "data")
    stats = rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store", image_size=16, max_episodes=2)
    assert stats["episodes"] == 2 and stats["steps"] == 4 + 5
    assert [e["seed"] for e in EpisodeStore(tmp_path / "store").episodes] == [0, 2]


# --- errors ----------------------------------------------------------------------------------

def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_data_is_named_with_file_and_offset(tmp_path):
    _, where = write_bridge(tmp_path / "data")
    path, off, n = where[1]  # second record of shard 0
    flip(path, off + 12 + (n - 16) // 2)  # a byte in the middle of its data
    with pytest.raises(ValueError, match=rf"{path.name}: corrupt TFRecord at byte offset {off}: "
                                         "the data CRC does not match"):
        rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store", image_size=16, verify_data_crc=True)
    assert not (tmp_path / "store").exists()


def test_corrupt_length_is_caught_without_data_crc(tmp_path):
    _, where = write_bridge(tmp_path / "data")
    path, off, _ = where[3]
    flip(path, off + 2)
    with pytest.raises(ValueError, match=rf"{path.name}: corrupt TFRecord at byte offset {off}: "
                                         "the length CRC"):
        rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store", image_size=16)


def test_truncated_files_are_named(tmp_path):
    _, where = write_bridge(tmp_path / "data")
    path, off, n = where[3]  # last record of shard 1
    blob = path.read_bytes()
    path.write_bytes(blob[:off + n // 2])  # cut inside the record
    with pytest.raises(ValueError, match=rf"{path.name}: truncated TFRecord at byte offset {off}"):
        rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store", image_size=16)
    path.write_bytes(blob[:off + 5])  # cut inside its header
    with pytest.raises(ValueError, match=rf"{path.name}: truncated TFRecord at byte offset {off}"):
        rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store", image_size=16)
    path.write_bytes(blob[:off])  # a whole record missing: dataset_info.json's shardLengths
    with pytest.raises(ValueError, match=rf"{path.name}: 1 records, the dataset_info.json .* says 2"):
        rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store", image_size=16)
    assert not (tmp_path / "store").exists()


def test_missing_folder_shards_split_and_keys_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere: not a folder\. .*bridge_dataset"):
        rb.convert_bridge_rlds(tmp_path / "nowhere", tmp_path / "store")
    (tmp_path / "empty" / "bridge_dataset" / "1.0.0").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"empty: no TFRecord shards there\. .*bridge_dataset"):
        rb.convert_bridge_rlds(tmp_path / "empty", tmp_path / "store")
    vdir, _ = write_bridge(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match=r"no shards of split 'val' .*splits there: \['train'\]"):
        rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store", split="val")
    (vdir / "bridge_dataset-train.tfrecord-00001-of-00002").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 train shards are missing \(e\.g\. "
                                                r"bridge_dataset-train\.tfrecord-00001-of-00002\)"):
        rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "store")
    write_bridge(tmp_path / "nostate", drop="steps/observation/state")
    with pytest.raises(ValueError, match=r"tfrecord-00000-of-00002 \(record 0, byte offset 0\): no "
                                         r"feature 'steps/observation/state'"):
        rb.convert_bridge_rlds(tmp_path / "nostate", tmp_path / "store")
    assert not (tmp_path / "store").exists()


# --- training on the converted store -------------------------------------------------------------

def test_a_training_step_runs_on_it(tmp_path):

    write_bridge(tmp_path / "data")
    rb.convert_bridge_rlds(tmp_path / "data", tmp_path / "demos", image_size=56)
    info = tiny_training_step(tmp_path / "demos", tmp_path)
    assert info["norm_stats"]["kind"] == "q01_q99_clip0.65" and (tmp_path / "pol" / "policy.json").is_file()


def test_demos_source_bridge_rlds_dispatches_and_names_a_missing_dataset(tmp_path):
    from vlm4vla.data.sources import build_demos

    write_bridge(tmp_path / "data")
    bench = {"demos": {"source": "bridge_rlds", "path": str(tmp_path / "data")}, "image_size": 16}
    stats = build_demos(bench, tmp_path / "store", seed=0)
    assert stats["episodes"] == len(KEPT) and EpisodeStore(tmp_path / "store").frames.shape[1:] == (16, 16, 3)
    bench["demos"]["path"] = str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"absent: not a folder\. Expected the BridgeData V2 RLDS"):
        build_demos(bench, tmp_path / "store2", seed=0)
    assert not (tmp_path / "store2").exists()

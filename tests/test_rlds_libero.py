"""OpenVLA's modified LIBERO RLDS set (libero_10_no_noops) -> episode store, without
TensorFlow: on a fixture written here in that set's exact layout (TFDS folder, TFRecord shards
of tf.train.Example episodes with the builder's keys, upright 180-degree-rotated JPEG frames,
raw LIBERO actions), checked against the raw-hdf5 loader on the same demo, then errors and a
tiny training step on the store."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from vlm4vla.data import rlds_libero as rl
from vlm4vla.data import tfds_records as tr
from vlm4vla.data.episodes import EpisodeStore
from vlm4vla.sim.libero_env import _suite
from conftest import tiny_training_step

SIZE = 64  # fixture JPEG size (the set: 256)
SUITE = _suite("libero_10")
NAME = {i: SUITE.get_task(i).name for i in (0, 1, 5)}
LANG = {i: SUITE.get_task(i).language for i in (0, 1, 5)}
TASKS = ["libero_10/0", "libero_10/1"]

# (shard, task index, steps, file_path given?): record 3 is a task not configured; record 4
# names no LIBERO file, so its task comes from its instruction
EPISODES = [(0, 0, 5, True), (0, 1, 4, True), (0, 0, 3, True), (1, 5, 4, True), (1, 1, 6, False)]


def jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def upright_frame(step: int) -> np.ndarray:
    """What the builder stores: the upright scene (red band at the top, green on the left)."""
    img = np.full((SIZE, SIZE, 3), 20 + 25 * step, np.uint8)  # grey level marks the step
    img[: SIZE // 4] = (255, 0, 0)
    img[SIZE // 4:, : SIZE // 4] = (0, 255, 0)
    return img


def raw_actions(i: int, t: int) -> np.ndarray:
    a = np.random.default_rng(i).uniform(-1, 1, (t, 7)).astype(np.float32)
    a[:, 6] = np.where(np.arange(t) % 2, 1.0, -1.0)  # LIBERO: -1 open / +1 close
    return a


def episode_example(i, task, frames, actions, file_path=True, drop=None) -> bytes:
    """One episode as the builder writes it (TFDS's flattened "steps/..." keys)."""
    t = len(actions)
    ex = tr.example_classes()["Example"]()
    f = ex.features.feature
    f["steps/observation/image"].bytes_list.value.extend([jpeg(fr) for fr in frames])
    f["steps/observation/wrist_image"].bytes_list.value.extend([jpeg(frames[0])] * t)
    f["steps/observation/state"].float_list.value.extend([0.0] * (8 * t))
    f["steps/observation/joint_state"].float_list.value.extend([0.0] * (7 * t))
    f["steps/action"].float_list.value.extend(np.asarray(actions, np.float32).ravel().tolist())
    f["steps/language_instruction"].bytes_list.value.extend([LANG[task].encode()] * t)
    f["steps/is_first"].int64_list.value.extend([int(s == 0) for s in range(t)])
    f["steps/is_last"].int64_list.value.extend([int(s == t - 1) for s in range(t)])
    f["steps/is_terminal"].int64_list.value.extend([int(s == t - 1) for s in range(t)])
    f["steps/reward"].float_list.value.extend([float(s == t - 1) for s in range(t)])
    f["steps/discount"].float_list.value.extend([1.0] * t)
    path = f"/data/libero_10_no_noops/{NAME[task]}_demo.hdf5" if file_path else f"/data/demo{i}.hdf5"
    f["episode_metadata/file_path"].bytes_list.value.append(path.encode())
    if drop:
        del f[drop]
    return ex.SerializeToString()


def write_set(root, records, name="libero_10_no_noops", lengths_in_info=None):
    """<root>/<name>/1.0.0 with train shards of `records` [(shard, bytes)] as TFDS lays them."""
    vdir = root / name / "1.0.0"
    vdir.mkdir(parents=True)
    shards = 1 + max(s for s, _ in records)
    blobs, counts = [b""] * shards, [0] * shards
    for s, rec in records:
        blobs[s] += tr.frame_record(rec)
        counts[s] += 1
    for s, blob in enumerate(blobs):
        (vdir / f"liber_o10-train.tfrecord-{s:05d}-of-{shards:05d}").write_bytes(blob)
    (vdir / "dataset_info.json").write_text(json.dumps({
        "name": "liber_o10", "version": "1.0.0", "fileFormat": "tfrecord",
        "splits": [{"name": "train", "shardLengths": [str(n) for n in (lengths_in_info or counts)]}]}))
    (vdir / "features.json").write_text("{}")
    return vdir


def fixture(root, **kw):
    recs = [(s, episode_example(i, task, [upright_frame(k) for k in range(t)], raw_actions(i, t), fp))
            for i, (s, task, t, fp) in enumerate(EPISODES)]
    return write_set(root, recs, **kw)


def test_convert_reads_the_configured_tasks(tmp_path):
    fixture(tmp_path / "rlds")
    stats = rl.convert_libero_rlds(tmp_path / "rlds", tmp_path / "store", TASKS, image_size=32)
    assert stats == {"tasks": {"libero_10/0": 2, "libero_10/1": 2}, "episodes": 4, "steps": 5 + 4 + 3 + 6,
                     "skipped": {"other_task": 1, "over_per_task": 0, "empty": 0}}
    store = EpisodeStore(tmp_path / "store")
    assert store.benchmark == "libero" and store.frames.shape == (18, 32, 32, 3)
    # record order; seed = the record's index in the split; record 4's task from its instruction
    assert [(e["task"], e["seed"], e["length"]) for e in store.episodes] == \
        [("libero_10/0", 0, 5), ("libero_10/1", 1, 4), ("libero_10/0", 2, 3), ("libero_10/1", 4, 6)]
    assert store.instructions == {"libero_10/0": LANG[0], "libero_10/1": LANG[1]}
    assert store.meta["no_noops"] is True and [s["records_read"] for s in store.meta["shards"]] == [3, 2]
    for ep in store.episodes:
        i = ep["seed"]
        frames = store.frames[ep["start"]:ep["start"] + ep["length"]]
        # stored upright, kept as is: red at the top, green on the left (no second rotation)
        assert (frames[:, 2, 16, 0] > 200).all() and (frames[:, 2, 16, 1:] < 60).all()
        assert (frames[:, 20, 2, 1] > 200).all() and (frames[:, 20, 2, [0, 2]] < 60).all()
        grey = frames[:, 24, 24].astype(int)  # every step, none dropped
        np.testing.assert_allclose(grey, np.repeat([[20 + 25 * s] for s in range(ep["length"])], 3, 1), atol=6)
        # raw LIBERO actions, float32-exact; gripper already ours (+1 close / -1 open)
        np.testing.assert_array_equal(store.actions[ep["start"]:ep["start"] + ep["length"]],
                                      raw_actions(i, ep["length"]))


def test_per_task_keeps_the_first_records_and_root_may_be_any_level(tmp_path):
    vdir = fixture(tmp_path / "rlds")
    for root in (tmp_path / "rlds", vdir.parent, vdir):
        out = tmp_path / f"store_{root.name}"
        stats = rl.convert_libero_rlds(root, out, ["libero_10/0"], image_size=16, per_task=1)
        assert stats["tasks"] == {"libero_10/0": 1} and stats["skipped"]["over_per_task"] == 1
        assert [e["seed"] for e in EpisodeStore(out).episodes] == [0]


def test_same_store_as_the_hdf5_loader_of_the_demo_it_was_made_from(tmp_path):
    """The set is OpenVLA's regeneration of a raw demo: no-op steps removed, frames rotated
    180 degrees. Reading the raw demo with the hdf5 loader (no-op filter on) and its RLDS
    record with this loader gives the same actions, and the same frames up to JPEG."""
    h5py = pytest.importorskip("h5py")
    from vlm4vla.data.libero_hdf5 import convert_libero_hdf5, keep_steps

    t = 9
    actions = raw_actions(7, t).astype(np.float64)
    for k in (3, 4, 7):  # still arm, gripper as before: OpenVLA's no-ops
        actions[k, :6] = 1e-6
        actions[k, 6] = actions[k - 1, 6]
    raw = np.stack([upright_frame(k)[::-1, ::-1] for k in range(t)])  # robosuite's raw view
    h5 = tmp_path / "hdf5" / f"{NAME[0]}_demo.hdf5"
    h5.parent.mkdir()
    with h5py.File(h5, "w") as f:
        f.create_group("data").attrs["problem_info"] = json.dumps({"language_instruction": LANG[0]})
        g = f["data"].create_group("demo_0")
        g.create_dataset("actions", data=actions)
        g.create_group("obs").create_dataset("agentview_rgb", data=raw)
    keep = keep_steps(actions)
    assert keep.sum() == t - 3
    rec = episode_example(0, 0, raw[keep][:, ::-1, ::-1], actions[keep].astype(np.float32))
    write_set(tmp_path / "rlds", [(0, rec)])
    convert_libero_hdf5([h5], tmp_path / "a", image_size=32)
    rl.convert_libero_rlds(tmp_path / "rlds", tmp_path / "b", ["libero_10/0"], image_size=32)
    a, b = EpisodeStore(tmp_path / "a"), EpisodeStore(tmp_path / "b")
    assert [e["task"] for e in a.episodes] == [e["task"] for e in b.episodes] == ["libero_10/0"]
    np.testing.assert_array_equal(a.actions, b.actions)
    assert a.frames.shape == b.frames.shape
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 3  # JPEG only


def test_errors_name_the_dataset_task_and_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere: not a folder\. Expected OpenVLA's modified "
                                                r"LIBERO RLDS set .*libero_10_no_noops.*modified_libero_rlds"):
        rl.convert_libero_rlds(tmp_path / "nowhere", tmp_path / "store", TASKS)
    fixture(tmp_path / "rlds")
    with pytest.raises(ValueError, match=r"no episode of task\(s\) \['libero_10/3'\] .*libero_10_no_noops"):
        rl.convert_libero_rlds(tmp_path / "rlds", tmp_path / "store", ["libero_10/0", "libero_10/3"])
    fixture(tmp_path / "short", lengths_in_info=[4, 2])
    with pytest.raises(ValueError, match=r"tfrecord-00000-of-00002: 3 records, the dataset_info\.json "
                                         r"next to it says 4"):
        rl.convert_libero_rlds(tmp_path / "short", tmp_path / "store", TASKS)
    rec = episode_example(0, 0, [upright_frame(0)] * 2, raw_actions(0, 2), drop="steps/observation/image")
    write_set(tmp_path / "noimg", [(0, rec)])
    with pytest.raises(ValueError, match=r"\(record 0, byte offset 0\): no feature 'steps/observation/image'"
                                         r".*Not OpenVLA's modified LIBERO RLDS set"):
        rl.convert_libero_rlds(tmp_path / "noimg", tmp_path / "store", TASKS)
    with pytest.raises(ValueError, match=r"LIBERO task names look like"):
        rl.convert_libero_rlds(tmp_path / "rlds", tmp_path / "store", ["libero10/0"])
    assert not (tmp_path / "store").exists()


def test_demos_source_libero_rlds_and_a_training_step(tmp_path):
    from vlm4vla.data.sources import build_demos

    fixture(tmp_path / "modified_libero_rlds")
    bench = {"plugin": "libero", "tasks": TASKS, "image_size": 56, "demos_per_task": 50,
             "demos": {"source": "libero_rlds", "path": str(tmp_path / "modified_libero_rlds")}}
    assert build_demos(bench, tmp_path / "demos", seed=0)["episodes"] == 4
    info = tiny_training_step(tmp_path / "demos", tmp_path)
    assert info["norm_stats"]["kind"] == "q01_q99_clip0.65" and (tmp_path / "pol" / "policy.json").is_file()
    bench["demos"]["path"] = str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"absent: not a folder\. Expected OpenVLA's modified"):
        build_demos(bench, tmp_path / "demos2", seed=0)
    assert not (tmp_path / "demos2").exists()

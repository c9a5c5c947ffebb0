"""LeRobotDataset v3.0 (parquet + mp4 chunks) -> episode store: on a small fixture written
here in that exact layout with pyarrow and PyAV (meta/info.json, meta/tasks.parquet,
meta/episodes/chunk-000/file-00N.parquet, data/chunk-000/file-00N.parquet,
videos/<key>/chunk-000/file-00N.mp4 with two episodes concatenated in file-000), then the
image-in-parquet variant, each layout error, the demos-source dispatch, a tiny training step
on the store and the config schema."""

import io
import json
import os
import sys
from fractions import Fraction

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from PIL import Image

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

from vlm4vla.data import lerobot_v3 as lr  # noqa: E402
from vlm4vla.data.episodes import EpisodeStore  # noqa: E402
from conftest import tiny_training_step  # noqa: E402

FPS = 10
SIZE = 32  # fixture frame side (LeRobot's LIBERO ports: 256)
CAM = "observation.images.image"
WRIST = "observation.images.wrist_image"
TASKS = ["put the bowl on the plate", "open the top drawer of the cabinet"]
# per episode: (task index, raw gripper per step (LIBERO: -1 open, +1 close), data/video file)
EPISODES = [
    (0, [-1.0, -1.0, 1.0, 1.0], 0),
    (1, [1.0, -1.0, -1.0], 0),  # shares data file-000 and video file-000 with episode 0
    (0, [-1.0, 1.0, 1.0, 1.0, -1.0], 1),
]
TOL = 8  # grey levels that survive lossy coding (flat areas, crf 10)


def level(k: int) -> int:
    """Grey level of the k-th frame of the whole dataset: distinct from every other frame."""
    return 20 + 15 * k


def image(k: int, band=(255, 0, 0)) -> np.ndarray:
    img = np.full((SIZE, SIZE, 3), level(k), np.uint8)
    img[: SIZE // 4] = band  # a colour band at the TOP (main camera red, wrist blue)
    img[SIZE // 4:, : SIZE // 4] = (0, 255, 0)  # green band on the LEFT below it
    return img


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def actions_of(i: int, dim: int = 7) -> np.ndarray:
    grip = EPISODES[i][1]
    a = np.random.default_rng(i).uniform(-1, 1, (len(grip), dim)).astype(np.float32)
    if dim == 7:
        a[:, 6] = grip
    return a


def encode(path, frames: list[np.ndarray]) -> None:
    """An mp4 of `frames` at FPS (pts = frame number, time base 1/FPS), yuv420p."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = SIZE, SIZE, "yuv420p"
        s.thread_count = 1
        if codec == "libx264":
            s.options = {"crf": "10", "g": "2", "threads": "1"}
        else:
            s.bit_rate = 4_000_000
        for n, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = n, Fraction(1, FPS)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def write_lerobot(root, images_in_parquet=False, action_dim=7, info_action_dim=None, version="v3.0"):
    """The fixture dataset at `root`; returns {episode: [global frame numbers]}."""
    root.mkdir(parents=True)
    cams = [CAM, WRIST]
    dtype = "image" if images_in_parquet else "video"
    feat_cam = {"dtype": dtype, "shape": [SIZE, SIZE, 3], "names": ["height", "width", "channels"]}
    if not images_in_parquet:
        feat_cam["info"] = {"video.height": SIZE, "video.width": SIZE, "video.codec": "h264",
                            "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": FPS,
                            "video.channels": 3, "has_audio": False}
    features = {
        CAM: feat_cam, WRIST: dict(feat_cam),
        "observation.state": {"dtype": "float32", "shape": [8], "names": {"motors": list("xyzabcgh")}},
        "action": {"dtype": "float32", "shape": [info_action_dim or action_dim],
                   "names": {"motors": ["x", "y", "z", "roll", "pitch", "yaw", "gripper"][:action_dim]}},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    total = sum(len(e[1]) for e in EPISODES)
    info = {"codebase_version": version, "robot_type": "panda", "total_episodes": len(EPISODES),
            "total_frames": total, "total_tasks": len(TASKS), "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": FPS,
            "splits": {"train": f"0:{len(EPISODES)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": None if images_in_parquet else
            "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": features}
    (root / "meta").mkdir()
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))

    import pandas as pd

    pd.DataFrame({"task_index": range(len(TASKS))},
                 index=pd.Index(TASKS, name="task")).to_parquet(root / "meta" / "tasks.parquet")

    frames_of, k, g = {}, 0, 0
    files: dict[int, list[int]] = {}
    for i, (_, grip, f) in enumerate(EPISODES):
        frames_of[i] = list(range(k, k + len(grip)))
        k += len(grip)
        files.setdefault(f, []).append(i)
    meta_rows = []
    for f, eps in files.items():
        rows, vids, t0 = [], {c: [] for c in cams}, 0.0
        for i in eps:
            task, grip, _ = EPISODES[i]
            a = actions_of(i, action_dim)
            for t, kk in enumerate(frames_of[i]):
                row = {"action": a[t].tolist(), "observation.state": [float(t)] * 8,
                       "timestamp": np.float32(t / FPS), "frame_index": t, "episode_index": i,
                       "index": kk, "task_index": task}
                if images_in_parquet:
                    row[CAM] = {"bytes": png(image(kk)), "path": f"frame_{kk:06d}.png"}
                    row[WRIST] = {"bytes": png(image(kk, (0, 0, 255))), "path": f"frame_{kk:06d}.png"}
                rows.append(row)
                vids[CAM].append(image(kk))
                vids[WRIST].append(image(kk, (0, 0, 255)))
            n = len(grip)
            m = {"episode_index": i, "tasks": [TASKS[task]], "length": n,
                 "dataset_from_index": frames_of[i][0], "dataset_to_index": frames_of[i][0] + n,
                 "data/chunk_index": 0, "data/file_index": f,
                 "meta/episodes/chunk_index": 0, "meta/episodes/file_index": min(i, 1),
                 "stats/action/mean": a.mean(0).tolist()}
            if not images_in_parquet:
                for c in cams:
                    m.update({f"videos/{c}/chunk_index": 0, f"videos/{c}/file_index": f,
                              f"videos/{c}/from_timestamp": t0, f"videos/{c}/to_timestamp": t0 + n / FPS})
            t0 += n / FPS
            meta_rows.append(m)
        if f == 1:
            rows = rows[::-1]  # rows out of frame order: the reader sorts by frame_index
        img_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        fields = [("action", pa.list_(pa.float32()) if f == 0 else pa.list_(pa.float32(), action_dim)),
                  ("observation.state", pa.list_(pa.float32())), ("timestamp", pa.float32()),
                  ("frame_index", pa.int64()), ("episode_index", pa.int64()), ("index", pa.int64()),
                  ("task_index", pa.int64())]
        if images_in_parquet:
            fields += [(CAM, img_type), (WRIST, img_type)]
        schema = pa.schema(fields)
        table = pa.Table.from_pylist(rows, schema=schema)
        (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / "data" / "chunk-000" / f"file-{f:03d}.parquet")
        if not images_in_parquet:
            for c in cams:
                encode(root / "videos" / c / "chunk-000" / f"file-{f:03d}.mp4", vids[c])
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    for mf in (0, 1):
        part = [m for m in meta_rows if m["meta/episodes/file_index"] == mf]
        pq.write_table(pa.Table.from_pylist(part),
                       root / "meta" / "episodes" / "chunk-000" / f"file-{mf:03d}.parquet")
    return frames_of


def edit_episodes(root, fn) -> None:
    """Apply fn(row) to every row of the episodes tables (rewritten in place)."""
    for p in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        t = pq.read_table(p)
        rows = t.to_pylist()
        for r in rows:
            fn(r)
        pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), p)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot") / "libero_lerobot"
    return root, write_lerobot(root)


def copy_of(dataset, tmp_path):
    import shutil

    dst = tmp_path / "ds"
    shutil.copytree(dataset[0], dst)
    return dst


# --- the fixture is what it claims ---------------------------------------------------------

def test_fixture_is_the_v3_layout_and_colours_survive_the_codec(dataset):
    root, frames_of = dataset
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["features"][CAM]["dtype"] == "video"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet",
        "meta/episodes/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-001.parquet",
        "meta/info.json", "meta/tasks.parquet",
        f"videos/{CAM}/chunk-000/file-000.mp4", f"videos/{CAM}/chunk-000/file-001.mp4",
        f"videos/{WRIST}/chunk-000/file-000.mp4", f"videos/{WRIST}/chunk-000/file-001.mp4"]
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pandas()
    assert list(tasks.index) == TASKS and tasks.index.name == "task" and list(tasks.task_index) == [0, 1]
    with av.open(str(root / "videos" / CAM / "chunk-000" / "file-000.mp4")) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == len(frames_of[0]) + len(frames_of[1])  # two episodes in one file
    for k, img in enumerate(decoded):
        assert np.abs(img.astype(int) - image(k)).mean() < 3
        assert abs(int(img[20, 20, 0]) - level(k)) <= TOL


# --- conversion --------------------------------------------------------------------------------

def check_frames(frames: np.ndarray, ks: list[int], band=(255, 0, 0)) -> None:
    assert frames.shape == (len(ks), SIZE, SIZE, 3) and frames.dtype == np.uint8
    for f, k in zip(frames, ks):
        assert abs(int(np.median(f[SIZE // 2:, SIZE // 2:, 0])) - level(k)) <= TOL  # in order
        top = f[1: SIZE // 4 - 1, SIZE // 2:].reshape(-1, 3).mean(0)  # upright: band on top
        assert np.abs(top - band).max() < 25
        left = f[SIZE // 4 + 1:, 1: SIZE // 4 - 1].reshape(-1, 3).mean(0)
        assert np.abs(left - (0, 255, 0)).max() < 25


def test_convert_reads_frames_actions_and_instructions(dataset, tmp_path):
    root, frames_of = dataset
    stats = lr.convert_lerobot_v3(root, tmp_path / "store", image_size=SIZE)
    lengths = [len(e[1]) for e in EPISODES]
    assert stats == {"tasks": {"lerobot": 3}, "episodes": 3, "steps": sum(lengths), "camera": CAM,
                     "gripper_threshold": 0.0}
    store = EpisodeStore(tmp_path / "store")
    assert store.benchmark == "libero" and store.meta["camera"] == CAM
    assert store.meta["gripper"] == {"convention": "close_positive", "threshold": 0.0,
                                     "ours": "+1 close / -1 open"}
    assert [e["length"] for e in store.episodes] == lengths
    assert [e["seed"] for e in store.episodes] == [0, 1, 2]
    assert [e["task"] for e in store.episodes] == ["lerobot"] * 3
    assert [store.instruction_of(e["start"]) for e in store.episodes] == [TASKS[0], TASKS[1], TASKS[0]]
    for i, e in enumerate(store.episodes):
        s = slice(e["start"], e["start"] + e["length"])
        check_frames(np.asarray(store.frames[s]), frames_of[i])
        want = actions_of(i)
        np.testing.assert_allclose(store.actions[s][:, :6], want[:, :6], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(store.actions[s][:, 6], EPISODES[i][1])  # LIBERO's: +1 close
    assert store.meta["files"] == ["data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet",
                                   f"videos/{CAM}/chunk-000/file-000.mp4",
                                   f"videos/{CAM}/chunk-000/file-001.mp4"]


def test_wrist_camera_open_positive_resize_and_max_episodes(dataset, tmp_path):
    root, frames_of = dataset
    stats = lr.convert_lerobot_v3(root, tmp_path / "store", image_size=16, image_key=WRIST,
                                  max_episodes=2, gripper="open_positive", benchmark="x")
    assert stats["episodes"] == 2 and stats["camera"] == WRIST
    store = EpisodeStore(tmp_path / "store")
    assert store.frames.shape == (7, 16, 16, 3) and store.benchmark == "x"
    top = np.asarray(store.frames[0, :3]).reshape(-1, 3).mean(0)
    assert top[2] > 200 and top[0] < 40  # the wrist camera's blue band, still on top
    np.testing.assert_array_equal(store.actions[:4, 6], -np.float32(EPISODES[0][1]))  # flipped


def test_gripper_binarisation_and_threshold():
    raw = np.zeros((4, 7), np.float32)
    raw[:, 6] = [0.0, 1.0, 0.3, 0.9]  # Bridge-like: 1 open, 0 closed
    t = lr.auto_gripper_threshold([raw])
    assert t == 0.5
    np.testing.assert_array_equal(lr.to_ours(raw, "open_positive", t)[:, 6], [1, -1, 1, -1])
    raw[:, 6] = [-1.0, 1.0, 0.2, -0.7]  # LIBERO-like: -1 open, +1 close
    t = lr.auto_gripper_threshold([raw])
    assert t == 0.0
    np.testing.assert_array_equal(lr.to_ours(raw, "close_positive", t)[:, 6], [-1, 1, 1, -1])
    with pytest.raises(ValueError, match=r"gripper must be one of \['close_positive', 'open_positive'\]"):
        lr.convert_lerobot_v3("anywhere", "out", gripper="open")


def test_images_stored_in_parquet(tmp_path):
    root = tmp_path / "ds"
    frames_of = write_lerobot(root, images_in_parquet=True)
    assert not (root / "videos").exists()
    stats = lr.convert_lerobot_v3(root, tmp_path / "store", image_size=SIZE)
    assert stats["episodes"] == 3 and stats["camera"] == CAM
    store = EpisodeStore(tmp_path / "store")
    for i, e in enumerate(store.episodes):
        f = np.asarray(store.frames[e["start"]: e["start"] + e["length"]])
        np.testing.assert_array_equal(f, np.stack([image(k) for k in frames_of[i]]))  # PNG: exact
    assert [store.instruction_of(e["start"]) for e in store.episodes] == [TASKS[0], TASKS[1], TASKS[0]]


# --- errors ------------------------------------------------------------------------------------

def test_missing_folder_and_info(tmp_path, dataset):
    with pytest.raises(FileNotFoundError, match=r"absent: not a folder\. Expected a LeRobotDataset v3\.0"):
        lr.convert_lerobot_v3(tmp_path / "absent", tmp_path / "store")
    root = copy_of(dataset, tmp_path)
    (root / "meta" / "info.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta/info\.json: missing\. Expected a LeRobotDataset"):
        lr.convert_lerobot_v3(root, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_v21_is_refused_with_the_conversion_hint(tmp_path, dataset):
    root = copy_of(dataset, tmp_path)
    info = json.loads((root / "meta" / "info.json").read_text())
    info["codebase_version"] = "v2.1"
    (root / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"codebase_version 'v2\.1', this reader needs 'v3\.0'.*"
                                         r"lerobot\.scripts\.convert_dataset_v21_to_v30"):
        lr.convert_lerobot_v3(root, tmp_path / "store")


def test_missing_camera_lists_the_available_ones(dataset, tmp_path):
    want = r"no camera feature 'observation\.images\.top'; available: \[" + \
        r"'observation\.images\.image', 'observation\.images\.wrist_image'\]"
    with pytest.raises(ValueError, match=want):
        lr.convert_lerobot_v3(dataset[0], tmp_path / "store", image_key="observation.images.top")


def test_missing_data_parquet_and_mp4_are_named(dataset, tmp_path):
    root = copy_of(dataset, tmp_path)
    (root / "data" / "chunk-000" / "file-001.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"data/chunk-000/file-001\.parquet: missing \(the data "
                                                r"file of episode 2"):
        lr.convert_lerobot_v3(root, tmp_path / "store")
    root = copy_of(dataset, tmp_path / "b")
    (root / "videos" / CAM / "chunk-000" / "file-000.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"videos/observation\.images\.image/chunk-000/file-000\.mp4"
                                                r": missing \(the 'observation\.images\.image' video of "
                                                r"episode 0"):
        lr.convert_lerobot_v3(root, tmp_path / "store")
    lr.convert_lerobot_v3(root, tmp_path / "store", image_key=WRIST)  # the other camera is whole
    (root / "meta" / "tasks.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta/tasks\.parquet: missing"):
        lr.convert_lerobot_v3(root, tmp_path / "store2", image_key=WRIST)


def test_frame_count_mismatches(dataset, tmp_path):
    root = copy_of(dataset, tmp_path)

    def longer(r):
        if r["episode_index"] == 1:
            r["length"], r["dataset_to_index"] = 4, r["dataset_from_index"] + 4

    edit_episodes(root, longer)
    with pytest.raises(ValueError, match=r"file-000\.parquet: episode frame count mismatch: episode 1 has "
                                         r"3 rows here, the episodes table .* says length 4"):
        lr.convert_lerobot_v3(root, tmp_path / "store")

    root = copy_of(dataset, tmp_path / "b")
    edit_episodes(root, lambda r: r.update({"length": 9}) if r["episode_index"] == 0 else None)
    with pytest.raises(ValueError, match=r"episode 0\): episode frame count mismatch: length 9 but "
                                         r"dataset_to_index - dataset_from_index = 4"):
        lr.convert_lerobot_v3(root, tmp_path / "store")

    root = copy_of(dataset, tmp_path / "c")

    def short_video(r):
        if r["episode_index"] == 0:
            r[f"videos/{CAM}/to_timestamp"] = 0.3

    edit_episodes(root, short_video)
    with pytest.raises(ValueError, match=r"file-000\.mp4 \('observation\.images\.image', episode 0, "
                                         r"\[0\.0000, 0\.3000\) s\): episode frame count mismatch: 3 video "
                                         r"frames in the episode's window, the episodes table says length 4"):
        lr.convert_lerobot_v3(root, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_actions_must_be_7d(tmp_path):
    root = tmp_path / "ds6"
    write_lerobot(root, images_in_parquet=True, action_dim=6)
    with pytest.raises(ValueError, match=r"info\.json: feature 'action' has shape \[6\], expected \[7\]"):
        lr.convert_lerobot_v3(root, tmp_path / "store")
    root = tmp_path / "ds6b"
    write_lerobot(root, images_in_parquet=True, action_dim=6, info_action_dim=7)
    with pytest.raises(ValueError, match=r"data/chunk-000/file-000\.parquet: column 'action' has 6 values "
                                         r"per row, expected 7"):
        lr.convert_lerobot_v3(root, tmp_path / "store")


def test_missing_packages_name_the_install(dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"needs PyAV: pip install pyarrow av"):
        lr.convert_lerobot_v3(dataset[0], tmp_path / "store")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"needs pyarrow: pip install pyarrow av"):
        lr.convert_lerobot_v3(dataset[0], tmp_path / "store")


# --- the demos source, training, the config ------------------------------------------------------

def test_demos_source_lerobot_v3_dispatches_and_names_a_missing_dataset(dataset, tmp_path):
    from vlm4vla.data.sources import build_demos

    bench = {"plugin": "libero", "image_size": 16,
             "demos": {"source": "lerobot_v3", "path": str(dataset[0]), "image_key": WRIST,
                       "gripper": "open_positive"}}
    stats = build_demos(bench, tmp_path / "store", seed=0)
    store = EpisodeStore(tmp_path / "store")
    assert stats["episodes"] == 3 and store.frames.shape[1:] == (16, 16, 3)
    assert store.meta["camera"] == WRIST and store.benchmark == "libero"
    np.testing.assert_array_equal(store.actions[:4, 6], -np.float32(EPISODES[0][1]))
    bench["demos"] = {"source": "lerobot_v3", "path": str(tmp_path / "absent")}
    with pytest.raises(FileNotFoundError, match=r"absent: not a folder\. Expected a LeRobotDataset v3\.0"):
        build_demos(bench, tmp_path / "store2", seed=0)
    assert not (tmp_path / "store2").exists()
    bench["demos"] = {"source": "lerobot_v2"}
    with pytest.raises(ValueError, match=r"unknown demos\.source 'lerobot_v2' .*lerobot_v3"):
        build_demos(bench, tmp_path / "store3", seed=0)


def test_a_training_step_runs_on_it(dataset, tmp_path):

    lr.convert_lerobot_v3(dataset[0], tmp_path / "demos", image_size=56)
    info = tiny_training_step(tmp_path / "demos", tmp_path)
    assert info["norm_stats"]["kind"] == "q01_q99_clip0.65" and (tmp_path / "pol" / "policy.json").is_file()


def test_config_accepts_the_lerobot_v3_source():
    from conftest import REPO
    from vlm4vla.config import ConfigError, read_config_files, validate_config

    cfg = read_config_files([REPO / "config" / "config.yaml"])
    cfg["benchmarks"]["libero"]["demos"] = {"source": "lerobot_v3", "path": "data/libero_lerobot",
                                            "image_key": CAM, "gripper": "close_positive"}
    validate_config(cfg)
    cfg["benchmarks"]["libero"]["demos"]["gripper"] = "open"
    with pytest.raises(ConfigError, match=r"benchmarks\.libero\.demos\.gripper"):
        validate_config(cfg)

"""A local LeRobotDataset v3.0 folder (parquet + mp4 chunks) -> our episode store.

Many users hold LIBERO and Bridge in this format (LeRobot's own ports: lerobot/libero and
HuggingFaceVLA/libero, 1,693 episodes / 40 tasks; community Open-X ports of bridge_orig).
The reader here is our own, written against the layout as huggingface/lerobot defines it
(read at commit 7427f31801f944f5ec9ce53cda02862ce7d1638b):
  src/lerobot/datasets/utils.py:89-100,144-147   DEFAULT_CHUNK_SIZE 1000 files per chunk,
        INFO_PATH "meta/info.json", CHUNK_FILE_PATTERN "chunk-{chunk_index:03d}/file-{file_index:03d}",
        DEFAULT_TASKS_PATH, DEFAULT_EPISODES_PATH, DEFAULT_DATA_PATH, DEFAULT_VIDEO_PATH
  src/lerobot/datasets/utils.py:156-190          DatasetInfo, the fields of meta/info.json
  src/lerobot/datasets/io_utils.py:63-83 load_nested_dataset (every */*.parquet under a folder,
        sorted), 178-188 write_tasks / load_tasks (index named "task"), 212-219 load_episodes
        (drops the stats/* columns)
  src/lerobot/datasets/dataset_metadata.py:60    CODEBASE_VERSION = "v3.0";
        :310-358 get_data_file_path / get_video_file_path (an episode's data/... and
        videos/<key>/... chunk and file indices into the path templates); :386-393 image_keys /
        video_keys (features of dtype "image" / "video"); :550 the tasks DataFrame
  src/lerobot/datasets/dataset_writer.py:225     timestamp = frame_index / fps;
        :520-582 an episode's mp4 is appended to the current file (concatenate_video_files), its
        from_timestamp = the file's duration so far, to_timestamp = from + the episode's duration
  src/lerobot/datasets/dataset_reader.py:295-310 _query_videos: a frame's video time is
        videos/<key>/from_timestamp + its `timestamp`
  src/lerobot/datasets/video_utils.py:107-200    decode_video_frames_pyav: seek to the keyframe
        at or before the first query, decode forward, take the nearest frame within a tolerance
  src/lerobot/scripts/convert_dataset_v21_to_v30.py (older releases kept it at
        src/lerobot/datasets/v30/convert_dataset_v21_to_v30.py): 100-140 the old -> new layout
        table, 182-188 convert_tasks, 313-380 convert_videos_of_camera
        (episodes concatenated per file, from/to timestamps = running durations), 442-462
        convert_info ("codebase_version": "v3.0", data_path / video_path templates)

Layout read:
    <root>/meta/info.json        codebase_version "v3.0" (a v2.x folder is refused: convert it
                                 with lerobot's `python -m lerobot.scripts.convert_dataset_v21_to_v30`),
                                 fps, features {key: {dtype, shape, names, info}} (dtype "video",
                                 "image", "float32", "int64", ...), data_path / video_path templates
                                 (defaults below when absent), chunks_size, *_files_size_in_mb,
                                 total_episodes / total_frames / total_tasks, robot_type
    <root>/meta/tasks.parquet    one row per task: the task string is the (pandas) index, named
                                 "task", column task_index
    <root>/meta/episodes/chunk-XXX/file-XXX.parquet   one row per episode: episode_index,
                                 tasks (list of strings), length, dataset_from_index /
                                 dataset_to_index (global frame `index` range), data/chunk_index,
                                 data/file_index, per video key videos/<key>/chunk_index,
                                 /file_index, /from_timestamp, /to_timestamp, meta/episodes/*,
                                 stats/* (not read)
    <root>/data/chunk-XXX/file-XXX.parquet   frame rows of several episodes: action (list of
                                 float), observation.state, timestamp (s from the episode's start),
                                 frame_index, episode_index, index, task_index; an image feature
                                 (dtype "image") is a struct column {bytes: PNG/JPEG, path}
    <root>/videos/<key>/chunk-XXX/file-XXX.mp4   several episodes concatenated; an episode's
                                 frames are those with presentation times in
                                 [from_timestamp, to_timestamp) (LeRobot's encoder default is
                                 libsvtav1 yuv420p; any codec PyAV decodes is read)

What this loader does:
  - camera: `image_key` (absent: the first feature of dtype "video" or "image" in info.json's
    order, e.g. observation.images.image = LIBERO's agentview in LeRobot's LIBERO ports). A
    video camera is decoded with PyAV: per episode one seek (backward, to the keyframe at or
    before from_timestamp) and a forward decode to to_timestamp; the frames in the window must
    number `length`, and the frame for row t is the one nearest from_timestamp + timestamp[t],
    within 1 / (2 fps). An image camera is decoded from the parquet's bytes (PIL).
  - frames are kept as stored (no flip: LeRobot's LIBERO ports store them upright, which is
    why lerobot's LiberoProcessorStep, src/lerobot/processor/env_processor.py:45-59, rotates
    the simulator's raw frames by 180 degrees to match them) and resized to image_size (PIL
    bicubic) when they differ.
  - actions: the `action` feature must be 7-D (xyz delta, rotation delta, gripper) in info.json
    and in every data row. The gripper is binarised to ours, +1 close / -1 open (the store's
    convention; CALVIN's +1 open is flipped the same way in data/calvin_dataset.py):
      gripper="close_positive" (default)  a larger value closes: ours = +1 where g > threshold
      gripper="open_positive"             a larger value opens: ours = -1 where g > threshold
    threshold (absent: automatic) = 0.5 when every gripper value of the converted episodes lies
    in [0, 1] (a 0/1 gripper, e.g. Bridge's absolute 1 open / 0 closed: open_positive), else 0
    (a -1/+1 gripper).
    LeRobot's LIBERO ports keep LIBERO's -1 open / +1 close (close_positive, the default):
    lerobot's LIBERO env passes a policy's 7-D action to LIBERO's env.step untouched
    (src/lerobot/envs/libero.py:366-374; no action processor touches the gripper), its no-op
    action is [0, 0, 0, 0, 0, 0, -1] with -1 = open (libero.py:90-92), and the action space is
    Box(-1, 1, (7,)) "6D end-effector delta + 1D gripper" (docs/source/libero.mdx:127).
  - instruction: each episode's task string: the meta/tasks.parquet string of its frames'
    task_index (one per episode), which must be among the episode's `tasks`; without a
    task_index column, the episode's single `tasks` entry.
Store: one Episode per episode in episode_index order (the first `max_episodes`), task
"lerobot" for all (each episode keeps its own instruction), seed = episode_index. Two passes:
the first reads the episodes table and the non-image columns of the data files (lengths,
actions, timestamps, instructions, every check but the frames'), the second decodes the frames
into the memory-mapped store (write_store_streaming). Needs pyarrow and av (`pip install
pyarrow av`), imported only here.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vlm4vla.data.episodes import Episode, write_store_streaming

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DEFAULT_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
CONVERT_HINT = ("convert it with lerobot's script (python -m lerobot.scripts.convert_dataset_v21_to_v30 "
                "--repo-id=<repo id> --root=<this folder> --push-to-hub=false; older lerobot releases: "
                "src/lerobot/datasets/v30/convert_dataset_v21_to_v30.py)")
ACTION_KEY = "action"
CAMERA_DTYPES = ("video", "image")
GRIPPER_CONVENTIONS = ("close_positive", "open_positive")
BENCHMARK = "libero"
TASK = "lerobot"
TASK_INSTRUCTION = "a LeRobotDataset task (each episode carries its own instruction)"
INSTALL = "pip install pyarrow av"

ACTION_SPACE_DOC = ("7-D float32: the LeRobotDataset's `action` [xyz delta, rotation delta (3)] as "
                    "stored, gripper binarised to +1 close / -1 open; frame t (the camera) is "
                    "observed before action t")


def _pq():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"reading a LeRobotDataset needs pyarrow: {INSTALL}") from None
    return pq


def _av():
    try:
        import av
    except ImportError:
        raise ImportError(f"decoding a LeRobotDataset's videos needs PyAV: {INSTALL}") from None
    return av


# --- meta/ -----------------------------------------------------------------------------------

def read_info(root: str | Path) -> dict:
    """meta/info.json of the v3.0 dataset at `root` (checked: folder, file, version, fps)."""
    root = Path(root)
    fix = (f"Expected a LeRobotDataset v3.0 folder: <root>/{INFO_PATH}, meta/tasks.parquet, "
           "meta/episodes/, data/, videos/ (e.g. `huggingface-cli download --repo-type dataset "
           "lerobot/libero --local-dir <root>`)")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder. {fix}")
    path = root / INFO_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing. {fix}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e}); re-download the dataset's meta/") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: not a LeRobotDataset info.json (a JSON object expected)")
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        hint = (CONVERT_HINT if isinstance(version, str) and version.startswith("v2")
                else "only LeRobotDataset v3.0 is read")
        raise ValueError(f"{path}: codebase_version {version!r}, this reader needs {CODEBASE_VERSION!r} "
                         f"(per-episode files of v2.x are a different layout): {hint}")
    if not isinstance(info.get("features"), dict):
        raise ValueError(f"{path}: no `features` object")
    try:
        fps = float(info["fps"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: `fps` missing or not a number ({info.get('fps')!r})") from None
    if fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    return info


def camera_keys(info: dict) -> list[str]:
    """The features stored as videos or images, in info.json's order."""
    return [k for k, ft in info["features"].items()
            if isinstance(ft, dict) and ft.get("dtype") in CAMERA_DTYPES]


def choose_camera(info: dict, image_key: str | None, where: Path) -> str:
    keys = camera_keys(info)
    if not keys:
        raise ValueError(f"{where}: no feature of dtype 'video' or 'image' (features: "
                         f"{sorted(info['features'])}): the dataset has no camera to train on")
    if image_key is None:
        return keys[0]
    if image_key not in keys:
        raise ValueError(f"{where}: no camera feature {image_key!r}; available: {keys} "
                         "(set demos.image_key / image_key to one of them)")
    return image_key


def check_action_feature(info: dict, where: Path) -> None:
    ft = info["features"].get(ACTION_KEY)
    if not isinstance(ft, dict):
        raise ValueError(f"{where}: no feature {ACTION_KEY!r} (features: {sorted(info['features'])}); "
                         "a 7-D action (xyz delta, rotation delta, gripper) is needed")
    shape = list(ft.get("shape") or [])
    if shape != [7]:
        raise ValueError(f"{where}: feature {ACTION_KEY!r} has shape {shape}, expected [7] (xyz delta, "
                         "rotation delta, gripper): a dataset with another action space cannot be "
                         "trained on as is")


def read_tasks(root: Path) -> dict[int, str]:
    """{task_index: task string} of meta/tasks.parquet (the string is the pandas index)."""
    path = root / TASKS_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the dataset's task strings); re-download meta/")
    table = _pq().read_table(path)
    names = table.column_names
    text_col = "task" if "task" in names else None
    if text_col is None:
        index_cols = [c for c in ((table.schema.pandas_metadata or {}).get("index_columns") or [])
                      if isinstance(c, str) and c in names]
        if not index_cols and "__index_level_0__" in names:  # an unnamed pandas index
            index_cols = ["__index_level_0__"]
        text_col = index_cols[0] if index_cols else None
    if text_col is None or "task_index" not in names:
        raise ValueError(f"{path}: expected the task strings as index 'task' and a column task_index, "
                         f"got columns {names}")
    texts = table.column(text_col).to_pylist()
    indices = table.column("task_index").to_pylist()
    return {int(i): str(t) for i, t in zip(indices, texts)}


def episode_files(root: Path) -> list[Path]:
    folder = root / EPISODES_DIR
    files = sorted(folder.glob("*/*.parquet"))
    if not files:
        raise FileNotFoundError(f"{folder}: no chunk-XXX/file-XXX.parquet (the episodes table); "
                                "re-download the dataset's meta/")
    return files


def _episode_columns(camera: str, is_video: bool) -> list[str]:
    cols = ["episode_index", "length", "data/chunk_index", "data/file_index"]
    if is_video:
        cols += [f"videos/{camera}/{c}"
                 for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    return cols


def read_episodes(root: Path, camera: str, is_video: bool) -> list[dict]:
    """The episodes table (the columns read here), sorted by episode_index."""
    pq = _pq()
    need = _episode_columns(camera, is_video)
    optional = ["tasks", "dataset_from_index", "dataset_to_index"]
    rows = []
    for path in episode_files(root):
        names = pq.read_schema(path).names
        missing = [c for c in need if c not in names]
        if missing:
            raise ValueError(f"{path}: the episodes table lacks {missing} (columns: "
                             f"{[n for n in names if not n.startswith('stats/')]})"
                             + (f"; camera {camera!r} is not a video of this dataset?" if is_video else ""))
        table = pq.read_table(path, columns=need + [c for c in optional if c in names])
        for row in table.to_pylist():
            row["_file"] = path
            rows.append(row)
    rows.sort(key=lambda r: int(r["episode_index"]))
    seen = set()
    for r in rows:
        if r["episode_index"] in seen:
            raise ValueError(f"{r['_file']}: episode {r['episode_index']} appears twice in "
                             f"{root / EPISODES_DIR}")
        seen.add(r["episode_index"])
    return rows


# --- data/ -----------------------------------------------------------------------------------

def _matrix(column, where: str) -> np.ndarray:
    """An arrow list / fixed-size-list column of numbers -> (rows, width) float32."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
            or pa.types.is_fixed_size_list(col.type)):
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            return col.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, 1)
        raise ValueError(f"{where}: a list of numbers per row expected, got {col.type}")
    if col.null_count:
        raise ValueError(f"{where}: {col.null_count} null rows")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    if len(lengths) and lengths.min() != lengths.max():
        raise ValueError(f"{where}: rows hold {int(lengths.min())} to {int(lengths.max())} values")
    width = int(lengths[0]) if len(lengths) else 0
    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return values.reshape(len(col), width)


@dataclass
class _Ep:
    index: int  # episode_index (the seed)
    length: int
    data_file: Path
    rows: np.ndarray  # row numbers of its frames in data_file, in frame order
    timestamps: np.ndarray  # float64 (length,), seconds from the episode's start
    actions: np.ndarray  # float32 (length, 7), raw
    instruction: str
    video: tuple[Path, float, float] | None  # (mp4, from_timestamp, to_timestamp)


def _data_path(root: Path, info: dict, ep: dict) -> Path:
    template = info.get("data_path") or DEFAULT_DATA_PATH
    return root / template.format(chunk_index=int(ep["data/chunk_index"]),
                                  file_index=int(ep["data/file_index"]))


def _video_path(root: Path, info: dict, ep: dict, camera: str) -> Path:
    template = info.get("video_path") or DEFAULT_VIDEO_PATH
    return root / template.format(video_key=camera, chunk_index=int(ep[f"videos/{camera}/chunk_index"]),
                                  file_index=int(ep[f"videos/{camera}/file_index"]))


def _read_data(path: Path, columns: list[str], optional: list[str], ep_index: int):
    pq = _pq()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the data file of episode {ep_index}, named by its "
                                "data/chunk_index and data/file_index); the download is incomplete: "
                                "re-download the dataset's data/")
    names = pq.read_schema(path).names
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing} (columns: {names})")
    return pq.read_table(path, columns=columns + [c for c in optional if c in names])


def _instruction(ep: dict, task_indices, tasks: dict[int, str], where: str) -> str:
    listed = [str(t) for t in (ep.get("tasks") or [])]
    if task_indices is not None:
        found = sorted(set(int(i) for i in task_indices))
        if len(found) != 1:
            raise ValueError(f"{where}: the frames carry {len(found)} task_index values {found[:5]}; "
                             "one instruction per episode is supported")
        if found[0] not in tasks:
            raise ValueError(f"{where}: task_index {found[0]} is not in meta/tasks.parquet "
                             f"(task indices there: {sorted(tasks)[:10]})")
        text = tasks[found[0]]
        if listed and text not in listed:
            raise ValueError(f"{where}: task_index {found[0]} ({text!r}) is not among the episode's "
                             f"tasks {listed} in the episodes table")
        return text
    if len(set(listed)) != 1:
        raise ValueError(f"{where}: no task_index column and the episode lists {len(set(listed))} tasks "
                         f"{listed[:3]}; one instruction per episode is needed")
    return listed[0]


def _scan(root: Path, info: dict, camera: str, is_video: bool, rows: list[dict],
          tasks: dict[int, str]) -> list[_Ep]:
    """First pass: every check that needs no frame, per episode."""
    out, cache = [], {}
    for ep in rows:
        idx = int(ep["episode_index"])
        length = int(ep["length"])
        where = f"{ep['_file']} (episode {idx})"
        if length < 1:
            raise ValueError(f"{where}: length {length}")
        if ep.get("dataset_from_index") is not None and ep.get("dataset_to_index") is not None:
            span = int(ep["dataset_to_index"]) - int(ep["dataset_from_index"])
            if span != length:
                raise ValueError(f"{where}: episode frame count mismatch: length {length} but "
                                 f"dataset_to_index - dataset_from_index = {span}")
        path = _data_path(root, info, ep)
        if cache.get("path") != path:
            table = _read_data(path, ["episode_index", ACTION_KEY],
                               ["timestamp", "frame_index", "task_index"], idx)
            ep_col = table.column("episode_index").to_numpy(zero_copy_only=False)
            cache = {"path": path, "table": table, "episode_index": ep_col}
        table, ep_col = cache["table"], cache["episode_index"]
        sel = np.flatnonzero(ep_col == idx)
        if len(sel) != length:
            raise ValueError(f"{path}: episode frame count mismatch: episode {idx} has {len(sel)} rows here, "
                             f"the episodes table ({ep['_file']}) says length {length} (a partial download "
                             "or a mixed-up data file?)")
        names = table.column_names
        if "frame_index" in names:
            frame_index = table.column("frame_index").to_numpy(zero_copy_only=False)[sel]
            sel = sel[np.argsort(frame_index, kind="stable")]
        actions = _matrix(table.column(ACTION_KEY).take(sel),
                          f"{path}: column {ACTION_KEY!r} (episode {idx})")
        if actions.shape[1] != 7:
            raise ValueError(f"{path}: column {ACTION_KEY!r} has {actions.shape[1]} values per row, "
                             "expected 7 (xyz delta, rotation delta, gripper)")
        if not np.isfinite(actions).all():
            raise ValueError(f"{path}: column {ACTION_KEY!r} of episode {idx} has non-finite values")
        fps = float(info["fps"])
        if "timestamp" in names:
            ts = table.column("timestamp").to_numpy(zero_copy_only=False)[sel].astype(np.float64)
        else:  # dataset_writer.py:225: timestamp = frame_index / fps
            ts = np.arange(length, dtype=np.float64) / fps
        task_indices = (table.column("task_index").to_numpy(zero_copy_only=False)[sel]
                        if "task_index" in names else None)
        instruction = _instruction(ep, task_indices, tasks, f"{path} (episode {idx})")
        video = None
        if is_video:
            video = (_video_path(root, info, ep, camera), float(ep[f"videos/{camera}/from_timestamp"]),
                     float(ep[f"videos/{camera}/to_timestamp"]))
            if not video[0].is_file():
                raise FileNotFoundError(f"{video[0]}: missing (the {camera!r} video of episode {idx}); the "
                                        "download is incomplete: re-download the dataset's videos/")
        out.append(_Ep(idx, length, path, sel, ts, actions, instruction, video))
    return out


# --- frames ----------------------------------------------------------------------------------

def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.shape[:2] == (size, size):
        return np.ascontiguousarray(frame, dtype=np.uint8)
    return np.asarray(Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).resize(
        (size, size), Image.BICUBIC), dtype=np.uint8)


class _Videos:
    """Open mp4 containers, one at a time (episodes come in file order)."""

    def __init__(self):
        self.path, self.container = None, None

    def stream(self, path: Path):
        if self.path != path:
            self.close()
            av = _av()
            try:
                self.container = av.open(str(path))
            except (av.error.FFmpegError, OSError, ValueError) as e:
                raise ValueError(f"{path}: cannot be opened as a video ({e}); re-download it") from None
            self.path = path
            if not self.container.streams.video:
                raise ValueError(f"{path}: no video stream")
        return self.container, self.container.streams.video[0]

    def close(self):
        if self.container is not None:
            self.container.close()
        self.path, self.container = None, None


def video_frames(videos: _Videos, ep: _Ep, camera: str, fps: float) -> np.ndarray:
    """(length, H, W, 3) uint8 frames of `ep` from its mp4 (the module docstring)."""
    path, start, end = ep.video
    tol = 1.0 / (2.0 * fps)
    container, stream = videos.stream(path)
    where = f"{path} ({camera!r}, episode {ep.index}, [{start:.4f}, {end:.4f}) s)"
    try:
        container.seek(max(int(round((start - tol) / stream.time_base)), 0), stream=stream,
                       backward=True, any_frame=False)
        times, images = [], []
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base)
            if t < start - tol:
                continue
            if t >= end - tol:
                break
            times.append(t)
            images.append(frame.to_ndarray(format="rgb24"))
    except (_av().error.FFmpegError, OSError) as e:
        raise ValueError(f"{where}: cannot be decoded ({e}); re-download the file") from None
    if len(images) != ep.length:
        raise ValueError(f"{where}: episode frame count mismatch: {len(images)} video frames in the "
                         f"episode's window, the episodes table says length {ep.length} (a truncated "
                         "or re-encoded video? re-download videos/)")
    times = np.asarray(times)
    picked = []
    for t in start + ep.timestamps:
        j = int(np.argmin(np.abs(times - t)))
        if abs(times[j] - t) > tol:
            raise ValueError(f"{where}: no frame within {tol:.4f} s of timestamp {t - start:.4f} "
                             f"(video time {t:.4f}; nearest {times[j]:.4f})")
        picked.append(images[j])
    return np.stack(picked)


def _decode_image(value, where: str) -> np.ndarray:
    data = value.get("bytes") if isinstance(value, dict) else value
    if not data:
        raise ValueError(f"{where}: no embedded image bytes (a struct {{bytes, path}} with bytes is "
                         "expected: LeRobot's image features embed PNG bytes)")
    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise ValueError(f"{where}: the image cannot be decoded ({e}); re-download the data file") from None


# --- conversion --------------------------------------------------------------------------------

def auto_gripper_threshold(actions: list[np.ndarray]) -> float:
    """0.5 when every gripper value lies in [0, 1] (a 0/1 gripper), else 0 (a -1/+1 gripper)."""
    g = np.concatenate([a[:, 6] for a in actions])
    return 0.5 if g.min() >= 0.0 and g.max() <= 1.0 else 0.0


def to_ours(actions: np.ndarray, gripper: str, threshold: float) -> np.ndarray:
    """Raw 7-D actions -> ours: the gripper binarised to +1 close / -1 open."""
    out = np.array(actions, dtype=np.float32)
    above = out[:, 6] > threshold
    if gripper == "close_positive":
        out[:, 6] = np.where(above, 1.0, -1.0)
    else:
        out[:, 6] = np.where(above, -1.0, 1.0)
    return out


def convert_lerobot_v3(root: str | Path, out_dir, image_size: int = 224, image_key: str | None = None,
                       max_episodes: int | None = None, benchmark: str = BENCHMARK,
                       gripper: str = "close_positive", gripper_threshold: float | None = None) -> dict:
    """Convert the LeRobotDataset v3.0 at `root` into an episode store at out_dir: the first
    `max_episodes` episodes (None: all), camera `image_key` (None: the first camera feature).
    gripper: "close_positive" (LeRobot's LIBERO ports) | "open_positive"; gripper_threshold:
    the binarisation threshold (None: automatic, the module docstring).
    Returns {"tasks": {"lerobot": episodes}, "episodes": n, "steps": n, "camera": key,
    "gripper_threshold": t}."""
    image_size = int(image_size)
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    if max_episodes is not None and int(max_episodes) < 1:
        raise ValueError(f"max_episodes must be >= 1 or None, got {max_episodes}")
    if gripper not in GRIPPER_CONVENTIONS:
        raise ValueError(f"gripper must be one of {list(GRIPPER_CONVENTIONS)}, got {gripper!r} "
                         "(close_positive: a larger value closes, as LIBERO's -1 open / +1 close)")
    root = Path(root)
    info = read_info(root)
    info_path = root / INFO_PATH
    _pq()  # name the missing package before anything else is read
    camera = choose_camera(info, image_key, info_path)
    is_video = info["features"][camera]["dtype"] == "video"
    if is_video:
        _av()
    check_action_feature(info, info_path)
    tasks = read_tasks(root)
    rows = read_episodes(root, camera, is_video)
    if max_episodes is not None:
        rows = rows[:int(max_episodes)]
    eps = _scan(root, info, camera, is_video, rows, tasks)
    if not eps:
        raise ValueError(f"{root / EPISODES_DIR}: the episodes table has no episode")
    threshold = auto_gripper_threshold([e.actions for e in eps]) if gripper_threshold is None \
        else float(gripper_threshold)
    fps = float(info["fps"])

    videos = _Videos()
    cache: dict = {}

    def episode(i: int) -> Episode:
        ep = eps[i]
        if is_video:
            raw = video_frames(videos, ep, camera, fps)
        else:
            if cache.get("path") != ep.data_file:
                cache.clear()
                cache.update(path=ep.data_file, table=_read_data(ep.data_file, [camera], [], ep.index))
            col = cache["table"].column(camera).take(ep.rows).to_pylist()
            raw = [_decode_image(v, f"{ep.data_file}: column {camera!r}, episode {ep.index} frame {t}")
                   for t, v in enumerate(col)]
        frames = np.stack([_resize(f, image_size) for f in raw])
        return Episode(task=TASK, seed=ep.index, frames=frames,
                       actions=to_ours(ep.actions, gripper, threshold), instruction=ep.instruction)

    files = sorted({str(e.data_file.relative_to(root)) for e in eps}
                   | {str(e.video[0].relative_to(root)) for e in eps if e.video})
    try:
        write_store_streaming(
            out_dir, [e.length for e in eps], (image_size, image_size, 3), episode,
            {TASK: TASK_INSTRUCTION}, benchmark,
            extra_meta={"action_space": ACTION_SPACE_DOC, "camera": camera, "image_size": image_size,
                        "source": f"LeRobotDataset {CODEBASE_VERSION} {root.name}",
                        "robot_type": info.get("robot_type"), "fps": fps,
                        "gripper": {"convention": gripper, "threshold": threshold,
                                    "ours": "+1 close / -1 open"},
                        "seed": "the episode's episode_index", "files": files})
    finally:
        videos.close()
    return {"tasks": {TASK: len(eps)}, "episodes": len(eps), "steps": int(sum(e.length for e in eps)),
            "camera": camera, "gripper_threshold": threshold}

"""Where a benchmark's demonstrations come from, chosen by `benchmarks.<b>.demos.source`:

    scripted     (embedded default) roll out the plugin's privileged scripted expert
    calvin       (paper scale) convert CALVIN's released dataset at `demos.path` (the
                 task_ABC_D folder), split `demos.split` (default training = envs A, B, C):
                 its language-annotated segments of the benchmark's `tasks`, at most
                 `demos_per_task` each (vlm4vla.data.calvin_dataset)
    bridge_rlds  (paper scale) read BridgeData V2's RLDS release (TFRecord shards of
                 tf.train.Example episodes, without TensorFlow) at `demos.path`
                 (vlm4vla.data.rlds_bridge)
    libero_rlds  (paper scale) read OpenVLA's modified LIBERO RLDS set at `demos.path`
                 (e.g. modified_libero_rlds/libero_10_no_noops: re-rendered at 256 px, no-op
                 steps and failed replays removed), the data the official LIBERO runs train
                 on: the benchmark's `tasks`, at most `demos_per_task` each
                 (vlm4vla.data.rlds_libero)
    libero_hdf5  (paper scale) convert the official LIBERO demonstration files found in
                 `demos.path` (*.hdf5), at most `demos_per_task` demos per file, no-op
                 steps dropped as in the official runs' data (`demos.drop_noops`)
    lerobot_v3   (paper scale) convert a local LeRobotDataset v3.0 folder at `demos.path`
                 (meta/info.json, parquet + mp4 chunks; e.g. LeRobot's LIBERO or a Bridge
                 port): every episode, camera `demos.image_key` (absent: the first camera
                 feature), gripper convention `demos.gripper` (absent: close_positive, LIBERO's
                 -1 open / +1 close) (vlm4vla.data.lerobot_v3)
"""

from __future__ import annotations

from pathlib import Path


def build_demos(bench_cfg: dict, out_dir, seed: int) -> dict:
    demos = bench_cfg.get("demos", {"source": "scripted"})
    source = demos["source"]
    if source == "scripted":
        from vlm4vla.data.demos import collect_demos

        return collect_demos(bench_cfg, out_dir, seed=seed)
    if source == "calvin":
        from vlm4vla.data.calvin_dataset import convert_calvin

        root = Path(demos["path"])
        if not root.is_dir():
            raise FileNotFoundError(
                f"demos.path {root}: not a folder. Download CALVIN's task_ABC_D (CALVIN's "
                "dataset/download_data.sh ABC) there, or set demos.source: scripted")
        return convert_calvin(root, out_dir, split=demos.get("split", "training"),
                              image_size=int(bench_cfg["image_size"]), tasks=list(bench_cfg["tasks"]),
                              per_task=int(bench_cfg["demos_per_task"]))
    if source == "bridge_rlds":
        from vlm4vla.data.rlds_bridge import convert_bridge_rlds

        return convert_bridge_rlds(demos["path"], out_dir, image_size=int(bench_cfg["image_size"]),
                                   split=demos.get("split", "train"))
    if source == "libero_rlds":
        from vlm4vla.data.rlds_libero import convert_libero_rlds

        return convert_libero_rlds(demos["path"], out_dir, tasks=list(bench_cfg["tasks"]),
                                   image_size=int(bench_cfg["image_size"]),
                                   per_task=int(bench_cfg["demos_per_task"]),
                                   split=demos.get("split", "train"))
    if source == "libero_hdf5":
        from vlm4vla.data.libero_hdf5 import convert_libero_hdf5

        folder = Path(demos["path"])
        files = sorted(folder.glob("*.hdf5")) if folder.is_dir() else []
        if not files:
            raise FileNotFoundError(
                f"demos.path {folder}: no *.hdf5 files there. Download the official LIBERO "
                "datasets (e.g. libero_10) into that folder, or set demos.source: scripted")
        return convert_libero_hdf5(files, out_dir, image_size=int(bench_cfg["image_size"]),
                                   max_demos_per_file=int(bench_cfg["demos_per_task"]),
                                   drop_noops=bool(demos.get("drop_noops", True)))
    if source == "lerobot_v3":
        from vlm4vla.data.lerobot_v3 import convert_lerobot_v3

        return convert_lerobot_v3(demos["path"], out_dir, image_size=int(bench_cfg["image_size"]),
                                  image_key=demos.get("image_key"),
                                  gripper=demos.get("gripper", "close_positive"),
                                  benchmark=bench_cfg.get("plugin", "libero"))
    raise ValueError(f"unknown demos.source {source!r} "
                     "(known: scripted, bridge_rlds, calvin, libero_rlds, libero_hdf5, lerobot_v3)")

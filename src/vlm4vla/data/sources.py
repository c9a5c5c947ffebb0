"""Where a benchmark's demonstrations come from, chosen by `benchmarks.<b>.demos.source`:

    scripted     (embedded default) roll out the plugin's privileged scripted expert
    libero_hdf5  (paper scale) convert the official LIBERO demonstration files found in
                 `demos.path` (*.hdf5), at most `demos_per_task` demos per file, no-op
                 steps dropped as in the official runs' data (`demos.drop_noops`)
"""

from __future__ import annotations

from pathlib import Path


def build_demos(bench_cfg: dict, out_dir, seed: int) -> dict:
    demos = bench_cfg.get("demos", {"source": "scripted"})
    source = demos["source"]
    if source == "scripted":
        from vlm4vla.data.demos import collect_demos

        return collect_demos(bench_cfg, out_dir, seed=seed)
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
    raise ValueError(f"unknown demos.source {source!r} (known: scripted, libero_hdf5)")

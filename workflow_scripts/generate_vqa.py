"""Build the auxiliary VQA store (both splits): records generated from simulator ground truth
in the scenes of every `vqa.benchmarks` benchmark (quotas `vqa.tasks` per benchmark), plus
the paper's dataset files named under `vqa.files` (paper scale; there the quotas cap the
records taken per split)."""

from vlm4vla import cli, pipeline

LOADERS = {"robopoint": "load_robopoint", "robo2vlm": "load_robo2vlm", "vica": "load_vica",
           "bridgevqa": "load_bridgevqa"}


def file_records(task: str, entry: dict, quota: dict) -> list:
    """Records of one VQA task read from the paper's dataset files, at most `quota` per split."""
    import dataclasses
    from pathlib import Path

    from vlm4vla.data.vqa import loaders

    load = getattr(loaders, LOADERS[entry["format"]])
    out = []
    for split in ("train", "eval"):
        path = Path(entry[split])
        if not path.exists():
            raise FileNotFoundError(f"config key 'vqa.files.{task}.{split}': {path} does not exist "
                                    f"(the {entry['format']} annotation file for the {split} split)")
        recs = load(path, entry.get("image_root"), split=split, limit=entry.get("limit"))
        if not recs:
            raise ValueError(f"config key 'vqa.files.{task}.{split}': {path} holds no records")
        # the file is this task's dataset: its records train and score as `task` (each is
        # still scored by its own target kind: points, choice, distance or text)
        out += [dataclasses.replace(r, task=task) for r in recs[:quota[split]]]
    return out


def generate_records_for(bench_cfg: dict, tasks_cfg: dict, seed: int, stats: dict) -> list:
    """Records from the generator of the benchmark's simulator plugin."""
    plugin = bench_cfg["plugin"]
    if plugin == "metaworld":
        from vlm4vla.data.vqa.metaworld_gen import generate_records
    elif plugin == "libero":
        from vlm4vla.data.vqa.libero_gen import generate_records
    else:
        raise ValueError(f"config key 'vqa.benchmarks': no VQA generator for plugin {plugin!r} "
                         "(generators: metaworld, libero); give that data as 'vqa.files' instead")
    return generate_records(bench_cfg, tasks_cfg, seed, stats)


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    spec = pipeline.vqa_data_spec(cli.load(args))
    vqa = spec["vqa"]

    from vlm4vla.data.vqa import write_vqa_store

    generated = {t: q for t, q in vqa["tasks"].items() if t not in vqa.get("files", {})}
    tasks_cfg = {**generated, "frames_per_scene": vqa["frames_per_scene"], "per_frame": vqa["per_frame"]}
    records, stats = [], {}
    for b in sorted(spec["bench"]) if generated else []:
        st: dict = {}
        records += generate_records_for(spec["bench"][b], tasks_cfg, spec["seed"], st)
        stats[b] = st
        print(f"[vqa] {b}: {st}", flush=True)
    for task, entry in sorted(vqa.get("files", {}).items()):
        recs = file_records(task, entry, vqa["tasks"][task])
        print(f"[vqa] {task}: {len(recs)} records from {entry['format']} files", flush=True)
        records += recs
    write_vqa_store(args.out, records, image_size=vqa["image_size"],
                    extra_meta={"seed": spec["seed"], "benchmarks": sorted(spec["bench"]),
                                "tasks": vqa["tasks"], "scenes": stats})
    print(f"[vqa] wrote {len(records)} records to {args.out}")


if __name__ == "__main__":
    cli.run(main)

"""Build the auxiliary VQA store (both splits): records generated from simulator ground truth
in the scenes of every `vqa.benchmarks` benchmark (quotas `vqa.tasks` per benchmark), plus
the paper's dataset files named under `vqa.files` (paper scale; there the quotas cap the
records taken per split)."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    spec = pipeline.vqa_data_spec(cli.load(args))
    vqa = spec["vqa"]

    from vlm4vla.data.vqa import NoGeneratorError, generate_records_for, write_vqa_store
    from vlm4vla.data.vqa.loaders import file_records

    generated = {t: q for t, q in vqa["tasks"].items() if t not in vqa.get("files", {})}
    tasks_cfg = {**generated, "frames_per_scene": vqa["frames_per_scene"], "per_frame": vqa["per_frame"]}
    records, stats = [], {}
    for b in sorted(spec["bench"]) if generated else []:
        st: dict = {}
        try:
            records += generate_records_for(spec["bench"][b], tasks_cfg, spec["seed"], st)
        except NoGeneratorError as e:
            raise NoGeneratorError(f"config key 'vqa.benchmarks' names {b!r}: {e}") from None
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

"""Fine-tune a VLM (its own language-model head) on VQA: next-token loss on answer tokens
only, the model's freeze switches. `--vlm aux_<task>`: one auxiliary task, the start of the
`<model>--aux_<task>` VLA runs; `--vlm pretrain`: the pretrain_vlm stage (the tiny VLM from
random weights on `pretrain.tasks`), where every stage of an init-pretrain_vlm model starts.
Resumes from --state."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--vlm", required=True, help=f"aux_<vqa task> | {pipeline.PRETRAIN_VLM}")
    p.add_argument("--vqa", required=True, help="VQA store folder")
    p.add_argument("--out", required=True)
    p.add_argument("--state", required=True, help="resumable state folder (not an artifact)")
    args = p.parse_args()
    cfg = cli.load(args)
    if args.vlm == pipeline.PRETRAIN_VLM:
        spec = pipeline.pretrain_spec(cfg, args.model)
    elif args.vlm.startswith(pipeline.AUX_PREFIX):
        spec = pipeline.vlm_train_spec(cfg, args.model, args.vlm)
    else:
        raise SystemExit(f"error: --vlm must be {pipeline.AUX_PREFIX}<vqa task> or "
                         f"{pipeline.PRETRAIN_VLM}, got {args.vlm!r}")

    from vlm4vla.train.vqa import train_vqa

    info = train_vqa(spec["model"], spec["train"], args.vqa, args.out, args.state, seed=spec["seed"],
                     threads=spec["threads"], tasks=spec["tasks"])
    if info:
        print(f"[vlm] {args.model}/{args.vlm}: {info.get('train_records')} train records, "
              f"{info.get('steps')} steps")


if __name__ == "__main__":
    cli.run(main)

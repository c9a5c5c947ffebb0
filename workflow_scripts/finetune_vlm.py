"""Fine-tune a VLM (its own language-model head) on one auxiliary VQA task: next-token loss
on answer tokens only, the model's freeze switches; the VLM folder it writes is where the
`<model>--aux_<task>` VLA runs start. Resumes from --state."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--vlm", required=True, help="aux_<vqa task>")
    p.add_argument("--vqa", required=True, help="VQA store folder")
    p.add_argument("--out", required=True)
    p.add_argument("--state", required=True, help="resumable state folder (not an artifact)")
    args = p.parse_args()
    if not args.vlm.startswith(pipeline.AUX_PREFIX):
        raise SystemExit(f"error: --vlm must be {pipeline.AUX_PREFIX}<vqa task>, got {args.vlm!r}")
    spec = pipeline.vlm_train_spec(cli.load(args), args.model, args.vlm)

    from vlm4vla.train.vqa import train_vqa

    info = train_vqa(spec["model"], spec["train"], args.vqa, args.out, args.state, seed=spec["seed"],
                     threads=spec["threads"], tasks=spec["tasks"])
    if info:
        print(f"[vlm] {args.model}/{args.vlm}: {info.get('train_records')} train records, "
              f"{info.get('steps')} steps")


if __name__ == "__main__":
    cli.run(main)

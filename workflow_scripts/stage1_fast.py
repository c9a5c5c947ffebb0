"""Table 4, stage 1: fine-tune the VLM to emit FAST action tokens for the demonstrations
(image + instruction -> discretised action chunk), vision encoder frozen or trained. The
VLM folder it writes is where the `<model>--fast_<stage1>` VLA runs start. Resumes from --state."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--stage1", required=True, choices=sorted(pipeline.STAGE1))
    p.add_argument("--demos", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--state", required=True, help="resumable state folder (not an artifact)")
    args = p.parse_args()
    spec = pipeline.stage1_spec(cli.load(args), args.benchmark, args.model, args.stage1)

    from vlm4vla.train.action_tokens import train_action_tokens

    info = train_action_tokens(spec["model"], spec["train"], spec["fast"], args.demos, spec["chunk"],
                               args.out, args.state, seed=spec["seed"], threads=spec["threads"],
                               action_norm=spec.get("action_norm"))
    if info:
        print(f"[stage1] {args.benchmark}/{args.model}/{args.stage1}: {info.get('steps')} steps")


if __name__ == "__main__":
    cli.run(main)

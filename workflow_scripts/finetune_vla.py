"""Fine-tune one VLA (backbone + ActionQuery + MLP head) on one benchmark's demos.
Resumes from --state if a previous run was interrupted."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--demos", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--state", required=True, help="resumable state folder (not an artifact)")
    args = p.parse_args()
    spec = pipeline.train_spec(cli.load(args), args.benchmark, args.model)

    from vlm4vla.train.vla import train_vla

    train_vla(spec["model"], spec["train"], chunk=spec["chunk"], demos_dir=args.demos,
              out_dir=args.out, state_dir=args.state, seed=spec["seed"], threads=spec["threads"],
              backbone_seed=spec.get("backbone_seed"), augment=spec.get("augment"),
              action_norm=spec.get("action_norm"))


if __name__ == "__main__":
    cli.run(main)

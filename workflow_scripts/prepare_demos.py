"""Build one benchmark's demonstrations as an episode store (scripted expert, or the
official dataset files at paper scale: `benchmarks.<b>.demos`)."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    spec = pipeline.demo_spec(cli.load(args), args.benchmark)

    from vlm4vla.data.sources import build_demos

    stats = build_demos(spec["bench"], args.out, seed=spec["seed"])
    print(stats)


if __name__ == "__main__":
    cli.run(main)

"""Figure 3 and its table: VLM general capability against normalised VLA score, a fitted
line per benchmark, Pearson / Spearman correlations with bootstrap intervals."""

from vlm4vla import cli


def main() -> None:
    p = cli.parser(__doc__)
    for opt in ("--out-csv", "--out-corr", "--out-md", "--png", "--svg"):
        p.add_argument(opt, required=True)
    args = p.parse_args()
    cfg = cli.load(args)
    exp = cfg["experiments"]["capability"]

    from vlm4vla.report import capability
    from vlm4vla.report.figures import capability_figure

    points = capability.capability_points(cfg)
    corr = capability.correlations(points, n_boot=exp["bootstrap"], seed=cfg["seed"])
    capability.write(points, corr, exp["x"], args.out_csv, args.out_corr, args.out_md,
                     tuple(exp["x_tasks"]))
    label = (f"{' + '.join(exp['x_tasks'])} accuracy of the start VLM (measured)" if exp["x"] == "measured"
             else "published general-benchmark score")
    capability_figure(points, corr, label, args.png, args.svg)


if __name__ == "__main__":
    cli.run(main)

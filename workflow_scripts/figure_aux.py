"""Figure 4 and its table: per auxiliary VQA task, the VLM's skill before and after tuning
and the success of the VLA trained from it, across seeds, against the base VLM."""

from vlm4vla import cli


def main() -> None:
    p = cli.parser(__doc__)
    for opt in ("--out-csv", "--out-md", "--png", "--svg"):
        p.add_argument(opt, required=True)
    args = p.parse_args()
    cfg = cli.load(args)

    from vlm4vla.report import aux
    from vlm4vla.report.figures import aux_figure

    df = aux.aux_table(cfg)
    aux.write(df, aux.vqa_matrix(cfg), args.out_csv, args.out_md)
    aux_figure(df, args.png, args.svg)


if __name__ == "__main__":
    cli.run(main)

"""Build one results table (main | ablation | init) from evaluation summaries."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--table", required=True, choices=sorted(pipeline.RUN_TABLES))
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    args = p.parse_args()
    cfg = cli.load(args)

    from vlm4vla.report.tables import results_table, write_table

    write_table(results_table(cfg, args.table), args.out_csv, args.out_md,
                title=pipeline.RUN_TABLES[args.table].title)


if __name__ == "__main__":
    cli.run(main)

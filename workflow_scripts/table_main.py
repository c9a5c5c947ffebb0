"""Main table: backbone x benchmark success rates with trials and 95% intervals."""

from vlm4vla import cli, pipeline


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    args = p.parse_args()
    cfg = cli.load(args)

    from vlm4vla.report.tables import main_table, write_table

    rows = main_table(cfg, pipeline.main_runs(cfg))
    write_table(rows, args.out_csv, args.out_md, title="Main results (embedded scale)")


if __name__ == "__main__":
    cli.run(main)

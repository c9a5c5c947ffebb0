"""The paper's published numbers beside this run's results tables."""

import pandas as pd

from vlm4vla import cli


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--reported", required=True, help="the paper's numbers (CSV with a source column)")
    p.add_argument("--table", action="append", default=[], metavar="NAME=CSV",
                   help="a results table of this run, e.g. main=results/tables/main.csv")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    args = p.parse_args()
    cfg = cli.load(args)

    from vlm4vla.report.paper_compare import compare, write

    tables = {}
    for item in args.table:
        name, _, path = item.partition("=")
        tables[name] = pd.read_csv(path)
    write(compare(cfg, pd.read_csv(args.reported), tables), args.out_csv, args.out_md)


if __name__ == "__main__":
    cli.run(main)

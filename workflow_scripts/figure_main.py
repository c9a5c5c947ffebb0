"""Main figure: success rate per backbone and benchmark, with Wilson 95% intervals."""

import argparse

from vlm4vla import cli


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--table", required=True)
    p.add_argument("--png", required=True)
    p.add_argument("--svg", required=True)
    args = p.parse_args()

    from vlm4vla.report.figures import main_figure

    main_figure(args.table, args.png, args.svg)


if __name__ == "__main__":
    cli.run(main)

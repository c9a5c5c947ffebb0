"""Shared plumbing for the thin CLIs in workflow_scripts/ (argument parsing, errors, logs)."""

from __future__ import annotations

import argparse
import logging
import sys

from vlm4vla.config import ConfigError, load_config


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--configfile", action="append", required=True,
                   help="config YAML; repeat to overlay files in order (as Snakemake does)")
    return p


def load(args: argparse.Namespace) -> dict:
    return load_config(args.configfile)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def run(main) -> None:
    """Run `main()`; user errors (bad config, missing/corrupt input) exit 2 with one clear
    line instead of a traceback."""
    setup_logging()
    from vlm4vla.data.episodes import CorruptStoreError

    try:
        main()
    except (ConfigError, CorruptStoreError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

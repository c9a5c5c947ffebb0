"""docs/fidelity.md from docs/fidelity.yaml (the fidelity audit, item by item).

    python scripts/fidelity_table.py            write docs/fidelity.md
    python scripts/fidelity_table.py --check    exit 1 if docs/fidelity.md is stale
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE, TARGET = REPO / "docs/fidelity.yaml", REPO / "docs/fidelity.md"
STATUSES = ("match", "faithful", "switch", "scale", "partial", "open", "unverified")
NEEDS_NOTE = ("switch", "scale", "partial", "open", "unverified")


def load(path: Path = SOURCE) -> list[dict]:
    items = yaml.safe_load(path.read_text())["items"]
    for i, it in enumerate(items):
        missing = {"item", "paper", "official", "project", "status"} - set(it)
        if missing:
            raise ValueError(f"{path.name} item {i} ({it.get('item')}): missing {sorted(missing)}")
        if it["status"] not in STATUSES:
            raise ValueError(f"{path.name} item {it['item']!r}: status {it['status']!r} "
                             f"(known: {', '.join(STATUSES)})")
        if it["status"] in NEEDS_NOTE and not it.get("note"):
            raise ValueError(f"{path.name} item {it['item']!r}: status {it['status']} needs a note (why)")
    return items


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(items: list[dict]) -> str:
    counts = Counter(it["status"] for it in items)
    lines = ["# Fidelity: the official code vs this project",
             "",
             "GENERATED from docs/fidelity.yaml by scripts/fidelity_table.py - edit the YAML.",
             "Official code: CladernyJorn/VLM4VLA at 20fedc9 (file:line). Status: match, faithful",
             "(reproduced now, pinned by a test), switch (both behaviours, the default reproduces the",
             "paper's numbers), scale (paper scale faithful, the embedded default differs for the",
             "reason given), partial, open, unverified.",
             "",
             "Summary: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]) + ".",
             "",
             "| # | item | paper | official code | this project | status | note |",
             "|---|---|---|---|---|---|---|"]
    for i, it in enumerate(items, 1):
        lines.append("| " + " | ".join([str(i), _cell(it["item"]), _cell(it["paper"]), _cell(it["official"]),
                                        f"`{_cell(it['project'])}`", f"**{it['status']}**",
                                        _cell(it.get("note", ""))]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    text = render(load())
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            sys.exit("docs/fidelity.md is stale: python scripts/fidelity_table.py")
        return
    TARGET.write_text(text)


if __name__ == "__main__":
    main()

"""What every on-disk store here shares: a folder written atomically (vlm4vla.io.atomic_dir),
a meta.json with a format version and a sha256 per file, and errors that name the bad file
and the fix. (Used by the episode store and the VQA store.)"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vlm4vla.io import dump_json, read_json


class CorruptStoreError(RuntimeError):
    """A store file is missing, truncated or does not match its recorded checksum."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_meta(folder: Path, meta: dict) -> None:
    (folder / "meta.json").write_text(dump_json(meta))


def read_meta(folder: Path, format_version: int, what: str, fix: str) -> dict:
    """meta.json of a store folder, checked for presence, JSON and format version.
    `what` names the store kind, `fix` says how to rebuild it (both go into errors)."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise CorruptStoreError(f"{meta_file} is missing: {folder} is not {what}. {fix}")
    try:
        meta = read_json(meta_file)
    except json.JSONDecodeError as e:
        raise CorruptStoreError(f"{meta_file} is not valid JSON ({e}). {fix}") from e
    if meta.get("format_version") != format_version:
        raise CorruptStoreError(f"{meta_file}: format_version {meta.get('format_version')} "
                                f"!= {format_version}. {fix}")
    return meta


def verify_files(folder: Path, expected: dict[str, dict], fix: str) -> None:
    """Recompute each file's sha256 against {file name: {"sha256": ...}}."""
    for name in sorted(expected):
        f = folder / name
        if not f.is_file():
            raise CorruptStoreError(f"{f} is missing. {fix}")
        if sha256_file(f) != expected[name]["sha256"]:
            raise CorruptStoreError(f"{f} does not match the checksum in meta.json "
                                    f"(file corrupt or edited). {fix}")

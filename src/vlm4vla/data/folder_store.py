"""What every on-disk store here shares: a folder written atomically, a meta.json with a
format version and a sha256 per file, and errors that name the bad file and the fix.
(Used by the episode store and the VQA store.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


class CorruptStoreError(RuntimeError):
    """A store file is missing, truncated or does not match its recorded checksum."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_folder(path: str | Path):
    """Yield a temporary sibling folder; on success it replaces `path`, on any error it is
    removed, so a killed or failed writer never leaves a half-written store behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_meta(folder: Path, meta: dict) -> None:
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def read_meta(folder: Path, format_version: int, what: str, fix: str) -> dict:
    """meta.json of a store folder, checked for presence, JSON and format version.
    `what` names the store kind, `fix` says how to rebuild it (both go into errors)."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise CorruptStoreError(f"{meta_file} is missing: {folder} is not {what}. {fix}")
    try:
        meta = json.loads(meta_file.read_text())
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

"""File helpers shared by every stage: atomic writes and JSON, in one place.

Atomic: every artifact is written to a temporary sibling and renamed into place, so a reader
(or Snakemake / DVC) never sees a half-written file or folder, and a killed writer leaves the
previous version intact. Files and folders get the usual mode (0o666 / 0o777 minus the umask),
whatever the writer behind them (mkstemp, safetensors) would have chosen.

JSON: artifacts are canonical text (sorted keys, fixed indentation, trailing newline), so the
same content is the same bytes. This module imports nothing heavy (no numpy, no torch).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path


def _sibling(path: Path, make) -> Path:
    """A new, uniquely named hidden sibling of `path`, created by make(tmp) (exclusive)."""
    while True:
        tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
        try:
            make(tmp)
            return tmp
        except FileExistsError:
            continue


def _new_file(tmp: Path) -> None:
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextmanager
def atomic_path(path: str | Path):
    """Yield the path of a temporary sibling file (created empty, with the umask's mode) for a
    writer that takes a path (torch.save, safetensors, PIL); on success it replaces `path`,
    on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, _new_file)
    mode = stat.S_IMODE(tmp.stat().st_mode)
    try:
        yield tmp
        os.chmod(tmp, mode)  # a writer may re-create the file owner-only (safetensors does)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary sibling folder; on success it replaces `path` (an existing folder
    there is removed first), on any error it is removed, so a killed or failed writer never
    leaves a half-written folder behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, lambda t: os.mkdir(t, 0o777))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text, written atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def dump_json(obj, **kwargs) -> str:
    """Canonical JSON text for artifacts: sorted keys, fixed indentation, trailing newline.
    kwargs go to json.dumps (e.g. default=str)."""
    return json.dumps(obj, indent=1, sort_keys=True, **kwargs) + "\n"


def dump_jsonl(rows, **kwargs) -> str:
    """One canonical JSON object per line (sorted keys), each line ending in a newline."""
    return "".join(json.dumps(r, sort_keys=True, **kwargs) + "\n" for r in rows)


def write_json(path: str | Path, obj, **kwargs) -> None:
    """dump_json(obj), written atomically."""
    atomic_write_text(path, dump_json(obj, **kwargs))


def write_jsonl(path: str | Path, rows, **kwargs) -> None:
    """dump_jsonl(rows), written atomically."""
    atomic_write_text(path, dump_jsonl(rows, **kwargs))


def read_json(path: str | Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: str | Path) -> list:
    """The rows of a JSON-lines artifact; a missing file names the rule to run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the rule that builds it "
                                f"(e.g. `snakemake --cores all {path}`)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_artifact_json(path: str | Path):
    """read_json of a pipeline artifact; a missing file names the rule to run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the rule that builds it "
                                f"(e.g. `snakemake --cores all {path}`)")
    return read_json(path)

"""vlm4vla.io, the one place for atomic writes and JSON: no temporary file is left behind,
a failed writer keeps the previous version, modes follow the umask, JSON is canonical."""

import json
import os
import stat

import pytest

from vlm4vla import io


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_writes_replace_and_leave_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.json"
    io.write_json(p, {"b": 1, "a": [1, 2]})
    assert p.read_text() == '{\n "a": [\n  1,\n  2\n ],\n "b": 1\n}\n'
    assert io.read_json(p) == {"a": [1, 2], "b": 1}
    io.write_jsonl(p, [{"z": 1, "y": "é"}], ensure_ascii=False)
    assert p.read_bytes() == '{"y": "é", "z": 1}\n'.encode()
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.json"]
    assert _mode(p) == 0o666 & ~_umask()


def test_failed_writer_keeps_the_previous_file(tmp_path):
    p = tmp_path / "x.bin"
    io.atomic_write_bytes(p, b"old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(p) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert p.read_bytes() == b"old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["x.bin"]


def test_atomic_path_restores_the_mode_a_writer_narrowed(tmp_path):
    p = tmp_path / "w.safetensors"
    with io.atomic_path(p) as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # as safetensors does
        os.write(fd, b"data")
        os.close(fd)
    assert p.read_bytes() == b"data" and _mode(p) == 0o666 & ~_umask()


def test_atomic_dir(tmp_path):
    d = tmp_path / "store"
    with io.atomic_dir(d) as tmp:
        (tmp / "f").write_text("1")
    with pytest.raises(ValueError):
        with io.atomic_dir(d) as tmp:
            (tmp / "f").write_text("2")
            raise ValueError
    assert (d / "f").read_text() == "1"
    with io.atomic_dir(d) as tmp:  # replaces the existing folder as a whole
        (tmp / "g").write_text("3")
    assert sorted(x.name for x in d.iterdir()) == ["g"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["store"]
    assert _mode(d) == 0o777 & ~_umask()


def test_read_artifact_json_names_the_rule(tmp_path):
    with pytest.raises(FileNotFoundError, match="is missing: run the rule that builds it"):
        io.read_artifact_json(tmp_path / "nope.json")
    (tmp_path / "ok.json").write_text(json.dumps({"a": 1}))
    assert io.read_artifact_json(tmp_path / "ok.json") == {"a": 1}

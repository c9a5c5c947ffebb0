"""The on-disk episode store: round trip, checksums, atomic writes, clear errors."""

import json

import numpy as np
import pytest

from vlm4vla.data.episodes import CorruptStoreError, Episode, EpisodeStore, write_store


def _episodes(rng):
    eps = []
    for i, (task, length) in enumerate([("a-task", 5), ("b-task", 3), ("a-task", 4)]):
        eps.append(Episode(task=task, seed=10 + i,
                           frames=rng.integers(0, 256, (length, 8, 8, 3), dtype=np.uint8),
                           actions=rng.standard_normal((length, 7)).astype(np.float32)))
    return eps


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    eps = _episodes(rng)
    write_store(tmp_path / "s", eps, {"a-task": "do a", "b-task": "do b"}, benchmark="toy")
    store = EpisodeStore(tmp_path / "s")
    assert len(store) == 12
    assert store.frames.dtype == np.uint8 and store.frames.shape == (12, 8, 8, 3)
    np.testing.assert_array_equal(store.frames[5:8], eps[1].frames)
    np.testing.assert_array_equal(store.actions[8:], eps[2].actions)
    assert [e["start"] for e in store.episodes] == [0, 5, 8]
    assert store.episode_of(6)["task"] == "b-task"
    assert store.instruction_of(9) == "do a"
    assert store.benchmark == "toy"


def test_write_is_byte_deterministic(tmp_path):
    for name in ("x", "y"):
        write_store(tmp_path / name, _episodes(np.random.default_rng(1)),
                    {"a-task": "do a", "b-task": "do b"}, benchmark="toy")
    for f in ("frames.npy", "actions.npy", "episode_index.npy", "meta.json"):
        assert (tmp_path / "x" / f).read_bytes() == (tmp_path / "y" / f).read_bytes()


def test_corrupt_file_is_named(tmp_path):
    write_store(tmp_path / "s", _episodes(np.random.default_rng(0)),
                {"a-task": "do a", "b-task": "do b"}, benchmark="toy")
    f = tmp_path / "s" / "actions.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="actions.npy"):
        EpisodeStore(tmp_path / "s")


def test_missing_store_and_truncated_meta(tmp_path):
    with pytest.raises(CorruptStoreError, match="meta.json is missing"):
        EpisodeStore(tmp_path / "nowhere")
    write_store(tmp_path / "s", _episodes(np.random.default_rng(0)),
                {"a-task": "do a", "b-task": "do b"}, benchmark="toy")
    (tmp_path / "s" / "meta.json").write_text('{"format_version": 1,')
    with pytest.raises(CorruptStoreError, match="not valid JSON"):
        EpisodeStore(tmp_path / "s")


def test_failed_write_leaves_nothing(tmp_path):
    bad = [Episode(task="a-task", seed=0, frames=np.zeros((2, 4, 4, 3), np.uint8),
                   actions=np.zeros((2, 6), np.float32))]
    with pytest.raises(ValueError, match=r"\(N, 7\)"):
        write_store(tmp_path / "s", bad, {"a-task": "x"}, benchmark="toy")
    assert list(tmp_path.iterdir()) == []


def test_meta_has_no_absolute_paths(tmp_path):
    write_store(tmp_path / "s", _episodes(np.random.default_rng(0)),
                {"a-task": "do a", "b-task": "do b"}, benchmark="toy")
    assert str(tmp_path) not in (tmp_path / "s" / "meta.json").read_text()
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["tasks"] == [{"instruction": "do a", "name": "a-task"},
                             {"instruction": "do b", "name": "b-task"}]

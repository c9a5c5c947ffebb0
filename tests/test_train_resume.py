"""Determinism and exact resume of train_vla, and load_policy for rollouts."""

import functools
import json
import pickle

import numpy as np
import pytest

from vlm4vla.data.dataset import ChunkDataset
from vlm4vla.data.episodes import Episode, write_store
from vlm4vla.train.vla import load_policy, train_vla

MODEL = {"backbone": "qwen2_5_vl", "init": "scratch",
         "arch": {"hidden_size": 64, "num_hidden_layers": 2}, "freeze": []}
TRAIN = {"steps": 6, "batch_size": 4, "lr": 1e-4, "warmup_steps": 2, "grad_clip": 1.0,
         "weight_decay": 0.0, "checkpoint_every": 3, "log_every": 2}
FILES = ("policy.safetensors", "policy.json", "train_log.jsonl", "train_log.csv", "tokenizer.json")


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    rs = np.random.RandomState(0)
    eps = []
    for i, (task, n) in enumerate([("a", 7), ("b", 5), ("a", 6)]):
        acts = rs.uniform(-1, 1, (n, 7)).astype(np.float32)
        acts[:, 3:6] = 0.0
        acts[:, 6] = np.sign(acts[:, 6])
        eps.append(Episode(task, i, rs.randint(0, 256, (n, 224, 224, 3), dtype=np.uint8), acts))
    path = tmp_path_factory.mktemp("demos") / "store"
    write_store(path, eps, {"a": "press the button", "b": "open the drawer"}, "synthetic")
    return path


def _train(demos, root, name):
    out, state = root / name / "out", root / name / "state"
    train_vla(MODEL, TRAIN, 3, demos, out, state, seed=123, threads=2, progress=False)
    return out, state


@pytest.fixture(scope="module")
def straight(demos, tmp_path_factory):
    return _train(demos, tmp_path_factory.mktemp("runs"), "straight")


def test_two_runs_are_byte_identical(demos, straight, tmp_path):
    again, _ = _train(demos, tmp_path, "again")
    for f in FILES:
        assert (straight[0] / f).read_bytes() == (again / f).read_bytes(), f
    log = [json.loads(line) for line in (again / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6]
    assert all(set(r) == {"step", "loss", "arm", "gripper", "lr"} for r in log)


def _die_at_batch(monkeypatch, n: int):
    """"Kill" the job (KeyboardInterrupt) while it fetches its n-th batch; returns the real
    ChunkDataset.batch, to put back before resuming."""
    calls = {"n": 0}
    real = ChunkDataset.batch

    def dying_batch(self, idx):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(self, idx)

    monkeypatch.setattr(ChunkDataset, "batch", dying_batch)
    return real


def test_killed_and_resumed_run_ends_with_the_same_weights(demos, straight, tmp_path, monkeypatch):
    real = _die_at_batch(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        _train(demos, tmp_path, "resumed")
    assert not (tmp_path / "resumed" / "out" / "policy.safetensors").exists()
    monkeypatch.setattr(ChunkDataset, "batch", real)
    out, _ = _train(demos, tmp_path, "resumed")  # resumes from the step-3 checkpoint
    for f in FILES:
        assert (straight[0] / f).read_bytes() == (out / f).read_bytes(), f


def test_checkpoint_of_another_config_is_not_resumed(demos, straight, tmp_path):
    import shutil
    state = tmp_path / "other" / "state"
    shutil.copytree(straight[1], state)
    out = tmp_path / "other" / "out"
    train_vla(MODEL, {**TRAIN, "steps": 2}, 3, demos, out, state, seed=123, threads=2, progress=False)
    log = (out / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in log] == [2]


def test_load_policy_acts_in_env_units(straight, demos):
    info = json.loads((straight[0] / "policy.json").read_text())
    assert info["chunk"] == 3 and info["steps"] == 6
    assert info["param_counts"]["trainable"] == info["param_counts"]["total"]
    make = pickle.loads(pickle.dumps(functools.partial(load_policy, straight[0])))
    pol = make()
    frames = np.random.RandomState(3).randint(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    a = pol.act(frames, ["press the button", "open the drawer"])
    assert pol.chunk == 3 and a.shape == (2, 3, 7) and a.dtype == np.float32
    assert set(np.unique(a[..., 6])) <= {-1.0, 1.0}
    np.testing.assert_array_equal(a[..., 3:6], 0.0)  # degenerate rotation dims -> low = 0
    q01, q99 = np.array(info["norm_stats"]["low"]), np.array(info["norm_stats"]["high"])
    assert np.all(a[..., :3] >= q01[:3] - 1e-6) and np.all(a[..., :3] <= q99[:3] + 1e-6)
    np.testing.assert_array_equal(a, pol.act(frames, ["press the button", "open the drawer"]))


def test_lr_schedules():
    from vlm4vla.train.loop import lr_factor
    const, cos = lr_factor("constant", 4, 20), lr_factor("cosine", 4, 20)
    # the official recipe: linear warm-up, then constant
    assert [const(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [cos(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    tail = [cos(s) for s in range(4, 20)]
    assert tail[0] == 1.0 and all(a > b for a, b in zip(tail, tail[1:])) and 0 < tail[-1] < 0.01
    assert cos(12) == pytest.approx(0.5)  # half way through the decay
    assert lr_factor("cosine", 0, 10)(0) == 1.0
    with pytest.raises(ValueError, match="lr_schedule 'cosin' is not one of constant, cosine"):
        lr_factor("cosin", 4, 20)


def test_cosine_run_logs_its_lr_and_resumes_exactly(demos, tmp_path, monkeypatch):
    train = {**TRAIN, "lr_schedule": "cosine"}

    def run(name):
        out = tmp_path / name / "out"
        train_vla(MODEL, train, 3, demos, out, tmp_path / name / "state", seed=123, threads=2,
                  progress=False)
        return out

    straight = run("straight")
    log = [json.loads(line) for line in (straight / "train_log.jsonl").read_text().splitlines()]
    # lr used by steps 2, 4, 6 (1-based): warm-up 1.0, then cos over the 4 decay steps
    assert [r["lr"] for r in log] == pytest.approx([1e-4, 1e-4 * 0.5 * (1 + np.cos(np.pi / 4)),
                                                    1e-4 * 0.5 * (1 + np.cos(3 * np.pi / 4))])
    real = _die_at_batch(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run("resumed")
    monkeypatch.setattr(ChunkDataset, "batch", real)
    resumed = run("resumed")
    for f in FILES:
        assert (straight / f).read_bytes() == (resumed / f).read_bytes(), f

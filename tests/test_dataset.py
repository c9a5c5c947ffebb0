import numpy as np
import torch

from vlm4vla.data.dataset import ChunkDataset, collate
from vlm4vla.data.episodes import Episode, EpisodeStore, write_store
from vlm4vla.data.normalize import ActionNormalizer


def make_store(path, lengths=(5, 3, 6), size=32):
    eps = []
    for i, n in enumerate(lengths):
        frames = np.full((n, size, size, 3), i, dtype=np.uint8)
        frames[:, 0, 0, 0] = np.arange(n)  # frame id inside the episode
        actions = np.zeros((n, 7), np.float32)
        actions[:, 0] = 100 * i + np.arange(n)  # recognisable action values
        actions[:, 6] = np.where(np.arange(n) % 2, 1.0, -1.0)
        eps.append(Episode("a" if i % 2 == 0 else "b", i, frames, actions))
    write_store(path, eps, {"a": "push the block", "b": "open the door"}, "synthetic")
    return EpisodeStore(path)


def test_chunks_stop_at_episode_end(tmp_path):
    store = make_store(tmp_path / "s")
    norm = ActionNormalizer.fit(np.asarray(store.actions))
    ds = ChunkDataset(store, chunk=4, normalizer=norm)
    assert len(ds) == 14
    want_norm = norm.normalize(np.asarray(store.actions))
    # step 3 of episode 0 (length 5): steps 3,4 valid, then masked (no episode-1 actions)
    frame, instr, chunk, mask = ds[3]
    assert instr == "push the block" and frame[0, 0, 0] == 3
    assert mask.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(chunk[:2], want_norm[3:5])
    np.testing.assert_array_equal(chunk[2:], 0.0)
    # first step of episode 1 (global 5, length 3): 3 valid
    _, instr, chunk, mask = ds[5]
    assert instr == "open the door" and mask.tolist() == [True, True, True, False]
    np.testing.assert_array_equal(chunk[:3], want_norm[5:8])
    # last step of the store
    assert ds[13][3].tolist() == [True, False, False, False]
    # gripper targets in {0,1}
    assert set(np.unique(ds.chunks[..., 6])) <= {0.0, 1.0}


def test_batch_matches_items_and_is_uint8(tmp_path):
    ds = ChunkDataset(make_store(tmp_path / "s"), 3, ActionNormalizer.fit(np.zeros((2, 7))))
    idx = [7, 2, 13, 2]
    b = ds.batch(idx)
    c = collate([ds[i] for i in idx])
    assert b["frames"].dtype == torch.uint8 and b["frames"].shape == (4, 32, 32, 3)
    for k in ("frames", "actions", "mask"):
        assert torch.equal(b[k], c[k])
    assert b["instructions"] == c["instructions"]

"""Training samples from an EpisodeStore: (frame, instruction, action chunk, chunk mask).

Sample i is step i of the store. Its chunk holds the normalised actions of steps
i .. i+chunk-1 of the SAME episode; steps past the episode's end are zero-filled and masked
out (mask 0), so a chunk never crosses into the next episode. Actions are normalised once
at construction (N x 7 floats, small); frames stay memory-mapped and are read per batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .episodes import EpisodeStore
from .normalize import ActionNormalizer


class ChunkDataset(Dataset):
    def __init__(self, store: EpisodeStore, chunk: int, normalizer: ActionNormalizer):
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.store, self.chunk, self.normalizer = store, int(chunk), normalizer
        n = len(store)
        norm = normalizer.normalize(np.asarray(store.actions))
        # End (exclusive) of each step's episode, from the episode table.
        ends = np.empty(n, dtype=np.int64)
        for ep in store.episodes:
            ends[ep["start"]:ep["start"] + ep["length"]] = ep["start"] + ep["length"]
        offs = np.arange(n)[:, None] + np.arange(self.chunk)[None, :]  # (N, chunk)
        self.masks = offs < ends[:, None]
        padded = np.concatenate([norm, np.zeros((self.chunk, 7), np.float32)])
        self.chunks = np.where(self.masks[..., None], padded[np.minimum(offs, n)], 0.0).astype(np.float32)
        per_episode = [ep.get("instruction") or store.instructions[ep["task"]] for ep in store.episodes]
        self.instructions = [per_episode[e] for e in np.asarray(store.episode_index)]

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int):
        return (self.store.frames[i], self.instructions[i], self.chunks[i], self.masks[i])

    def batch(self, indices) -> dict:
        """Fast path for a whole batch: one sorted memmap read instead of B small ones."""
        idx = np.asarray(indices, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        frames = np.empty((len(idx),) + self.store.frames.shape[1:], dtype=np.uint8)
        frames[order] = self.store.frames[idx[order]]
        return {"frames": torch.from_numpy(frames),
                "instructions": [self.instructions[i] for i in idx],
                "actions": torch.from_numpy(self.chunks[idx]),
                "mask": torch.from_numpy(self.masks[idx])}


def collate(samples) -> dict:
    """DataLoader collate for __getitem__ samples: frames stay uint8."""
    frames, instr, actions, masks = zip(*samples)
    return {"frames": torch.from_numpy(np.stack(frames)), "instructions": list(instr),
            "actions": torch.from_numpy(np.stack(actions)),
            "mask": torch.from_numpy(np.stack(masks))}

"""Tensor helpers shared by the families: frames as uint8 tensors at the family's size, token
rows right-padded (with or without the ActionQuery column), pixel normalisation, positions."""

from __future__ import annotations

import numpy as np
import torch

def frames_for(frames, instructions: list[str], size: int) -> torch.Tensor:
    """as_uint8_frames, after checking there is one instruction per frame."""
    frames = as_uint8_frames(frames, size)
    if len(instructions) != frames.shape[0]:
        raise ValueError(f"{frames.shape[0]} frames but {len(instructions)} instructions")
    return frames


def as_uint8_frames(frames, size: int) -> torch.Tensor:
    """(B,H,W,3) uint8 as a tensor, resized to size x size (bicubic, as the paper) if needed."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (B,H,W,3), got {tuple(frames.shape)} {frames.dtype}")
    if frames.shape[1] != size or frames.shape[2] != size:
        from PIL import Image
        frames = torch.from_numpy(np.stack([
            np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC))
            for f in frames.cpu().numpy()]))
    return frames


def right_pad_with_query(rows: list[list[int]], pad_id: int, device=None):
    """Right-pad token rows and append one query column.

    Returns ids (B, L+1) with the pad id in the query column (its embedding is replaced),
    mask (B, L+1) = 1 on tokens and on the query, 0 on padding.
    """
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length + 1), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length + 1), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    mask[:, -1] = 1
    return ids.to(device), mask.to(device)


def right_pad(rows: list[list[int]], pad_id: int, device=None):
    """Right-pad token rows (no query column) -> ids (B, L), mask (B, L)."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids.to(device), mask.to(device)


def put_query_last(embeds: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Replace the last column of `embeds` by the query (concat keeps its gradient path)."""
    q = query.to(embeds.dtype).view(1, 1, -1).expand(embeds.shape[0], 1, -1)
    return torch.cat([embeds[:, :-1], q], dim=1)


def normalized_pixels(frames: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (B,H,W,3) -> float32 (B,3,H,W): x/255, then (x - mean) / std per channel."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)
    mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def positions_from_mask(mask: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Position ids that count only mask==1 tokens (start, start+1, ...), so the right
    padding before the query never moves the query's position; padding gets `start`."""
    pos = mask.long().cumsum(-1) - 1 + start
    return pos.masked_fill(mask == 0, start)

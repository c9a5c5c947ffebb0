"""What every backbone family provides to the policy, and shared helpers.

A backbone owns: the transformers VLM module, its tokenizer and its image preprocessing.
The policy only sees `encode(frames, instructions, query)`, which returns the last-layer
hidden states of [prompt with image tokens, right padding, ActionQuery]: the query is always
the LAST column (mask 1), so the readout is simply `hidden[:, -1]` for every row.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

FREEZE_GROUPS = ("vision", "projector", "llm", "word_embeddings")


class VLMBackbone(nn.Module):
    """Base class. Subclasses set `name`, implement `build`, `from_saved`, `groups`, `encode`."""

    name: str = ""

    def __init__(self, model: nn.Module, tokenizer, hidden_size: int):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer  # a `tokenizers.Tokenizer` (not a module: not in state_dict)
        self.hidden_size = int(hidden_size)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, model_cfg: dict) -> "VLMBackbone":
        """Random weights from the family's tiny config (+ `arch` overrides) when
        init=scratch; `from_pretrained(source)` when init=pretrained."""
        raise NotImplementedError

    @classmethod
    def from_saved(cls, backbone_config: dict, tokenizer_json: str) -> "VLMBackbone":
        """Rebuild the architecture (random weights) from `saved_config()` output, with no
        download: a trained policy folder is self-contained."""
        raise NotImplementedError

    def saved_config(self) -> dict:
        return self.model.config.to_dict()

    # --- freeze groups ------------------------------------------------------------------
    def groups(self) -> dict[str, list[nn.Parameter]]:
        """Disjoint parameter groups named as in FREEZE_GROUPS (+ "other" if any)."""
        raise NotImplementedError

    def _split_groups(self, prefixes: dict[str, str]) -> dict[str, list[nn.Parameter]]:
        """Assign each parameter to the group with the LONGEST matching module prefix, so
        e.g. `visual.merger` (projector) wins over `visual` (vision): groups are disjoint."""
        out: dict[str, list[nn.Parameter]] = {g: [] for g in prefixes}
        out["other"] = []
        for pname, p in self.model.named_parameters():
            best, best_len = "other", -1
            for group, prefix in prefixes.items():
                if (pname == prefix or pname.startswith(prefix + ".")) and len(prefix) > best_len:
                    best, best_len = group, len(prefix)
            out[best].append(p)
        if not out["other"]:
            del out["other"]
        return out

    # --- forward ------------------------------------------------------------------------
    def encode(self, frames: torch.Tensor, instructions: list[str],
               query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames uint8 (B,H,W,3); query (hidden,) -> (hidden states (B,T,hidden),
        attention mask (B,T)) with the query at column T-1 of every row."""
        raise NotImplementedError


def apply_arch_overrides(defaults: dict, arch: dict | None) -> dict:
    """Deep-copy `defaults` and apply `arch`; unknown keys fail loudly with their name."""
    cfg = copy.deepcopy(defaults)
    for key, value in (arch or {}).items():
        if key not in cfg:
            raise KeyError(f"unknown arch key {key!r}; known: {', '.join(sorted(cfg))}")
        cfg[key] = value
    return cfg


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


def put_query_last(embeds: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Replace the last column of `embeds` by the query (concat keeps its gradient path)."""
    q = query.to(embeds.dtype).view(1, 1, -1).expand(embeds.shape[0], 1, -1)
    return torch.cat([embeds[:, :-1], q], dim=1)

"""The VLA policy of VLM4VLA: backbone + ActionQuery + deterministic MLP head.

The ActionQuery is a learnable vector (backbone hidden size, zero-initialised) appended as
the last position of the sequence; the backbone's last-layer state there is the policy's
only readout. It is a parameter of the policy, not of the word-embedding table, so it keeps
training when the word embeddings are frozen.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import VLMBackbone, get_backbone
from .backbones.base import FREEZE_GROUPS


def _mlp(sizes: list[int], final: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


PAPER_HEAD_WIDTH = 1024


class ActionHead(nn.Module):
    """trunk: hidden -> hidden/2 -> ReLU -> W (as the paper writes it: no activation after
    the trunk's last layer); arm: W-W-W/2-W/4-(chunk*6), ReLU between, tanh at the end;
    gripper: same shape ending in chunk*1 logits. Xavier-uniform, zero biases.
    W = `width`: the paper's 1024 (under 1% of a 3B policy). Embedded builds narrow it so
    the head stays a small share of a tiny backbone's policy, as it is of a real one."""

    def __init__(self, hidden: int, chunk: int, width: int = PAPER_HEAD_WIDTH):
        super().__init__()
        self.chunk, self.width = int(chunk), int(width)
        if self.width < 4 or self.width % 4:
            raise ValueError(f"head width must be a multiple of 4 (>= 4), got {width}")
        w = self.width
        self.trunk = _mlp([hidden, hidden // 2, w])
        self.arm = _mlp([w, w, w // 2, w // 4, self.chunk * 6], final=nn.Tanh())
        self.gripper = _mlp([w, w, w // 2, w // 4, self.chunk])
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(h)
        return self.arm(x).view(-1, self.chunk, 6), self.gripper(x).view(-1, self.chunk)


class VLAPolicy(nn.Module):
    def __init__(self, backbone: VLMBackbone, chunk: int, freeze: list[str] | tuple = (),
                 head_width: int = PAPER_HEAD_WIDTH):
        super().__init__()
        self.backbone = backbone
        self.chunk = int(chunk)
        self.action_query = nn.Parameter(torch.zeros(backbone.hidden_size))
        self.head = ActionHead(backbone.hidden_size, chunk, head_width)
        self.freeze = sorted(freeze)
        self.apply_freeze(self.freeze)

    @classmethod
    def build(cls, model_cfg: dict, chunk: int, seed: int,
              backbone_seed: int | None = None) -> "VLAPolicy":
        """Deterministic construction: all random init happens under `seed`, in a forked RNG
        so the caller's global RNG state is left untouched. model_cfg["init"]: scratch |
        pretrained (`source`) | aux (`vlm`: a VLM folder written by train.vqa.train_vqa).
        `backbone_seed` (default `seed`) builds a random backbone under another seed than
        the head: fine-tuning seeds then share one "VLM", as pretrained models do."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed if backbone_seed is None else backbone_seed)
            if model_cfg.get("init") == "aux":
                # backbone from an aux-VQA-tuned VLM folder (model_cfg["vlm"]); its LM head
                # is dropped, the ActionQuery and the action head start fresh.
                from .vqa_head import load_vlm_backbone
                backbone = load_vlm_backbone(model_cfg)
            else:
                backbone = get_backbone(model_cfg["backbone"]).build(model_cfg)
            if backbone_seed is not None and backbone_seed != seed:
                torch.manual_seed(seed)
            backbone.set_vla_forward(model_cfg.get("vla_forward"))
            freeze = backbone.frozen_groups(model_cfg.get("freeze") or [], model_cfg.get("vision_freeze"))
            return cls(backbone, chunk, freeze, head_width=model_cfg.get("head_width") or PAPER_HEAD_WIDTH)

    def apply_freeze(self, freeze) -> None:
        unknown = set(freeze) - set(FREEZE_GROUPS)
        if unknown:
            raise ValueError(f"unknown freeze group(s) {sorted(unknown)}; "
                             f"known: {', '.join(FREEZE_GROUPS)}")
        for group, params in self.backbone.groups().items():
            for p in params:
                p.requires_grad_(group not in freeze)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = dict(self.backbone.groups())
        groups["action_query"] = [self.action_query]
        groups["head"] = list(self.head.parameters())
        return groups

    def param_counts(self) -> dict:
        """{"total", "trainable", "groups": {name: {"total", "trainable"}}, "new_fraction"}."""
        groups = {name: {"total": sum(p.numel() for p in ps),
                         "trainable": sum(p.numel() for p in ps if p.requires_grad)}
                  for name, ps in self.param_groups().items()}
        total = sum(p.numel() for p in self.parameters())
        new = groups["action_query"]["total"] + groups["head"]["total"]
        return {"total": total, "trainable": sum(p.numel() for p in self.parameters() if p.requires_grad),
                "groups": groups, "new_fraction": new / total}

    def forward(self, frames, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> arm (B, chunk, 6) in [-1, 1], gripper logits (B, chunk)."""
        hidden, mask = self.backbone.encode(frames, instructions, self.action_query)
        # encode() guarantees the query is the last column of every row.
        return self.head(hidden[:, -1].to(self.head.trunk[0].weight.dtype))

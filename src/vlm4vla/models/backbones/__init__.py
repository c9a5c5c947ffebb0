"""Registry of VLM backbone families.

Each family lives in one small module defining a `VLMBackbone` subclass; the registry maps
a config name (`models.<name>.backbone`) to "module:Class" and imports lazily, so a broken or
slow import of one family never affects the others. Adding a family = one module + one line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself imports nothing heavy (no torch, no transformers)
    from .base import VLMBackbone

_REGISTRY: dict[str, str] = {
    "qwen2_5_vl": "vlm4vla.models.backbones.qwen2_5_vl:Qwen25VLBackbone",
    "qwen3_vl": "vlm4vla.models.backbones.qwen3_vl:Qwen3VLBackbone",
    "qwen3_vl_moe": "vlm4vla.models.backbones.qwen3_vl_moe:Qwen3VLMoeBackbone",
    "paligemma": "vlm4vla.models.backbones.paligemma:PaliGemmaBackbone",
    "paligemma2": "vlm4vla.models.backbones.paligemma:PaliGemma2Backbone",
    "kosmos2": "vlm4vla.models.backbones.kosmos2:Kosmos2Backbone",
    "composed_pretrained": "vlm4vla.models.backbones.composed_pretrained:ComposedPretrainedBackbone",
    "llava": "vlm4vla.models.backbones.llava:LlavaBackbone",
    "gemma3": "vlm4vla.models.backbones.gemma3:Gemma3Backbone",
    "internvl": "vlm4vla.models.backbones.internvl:InternVLBackbone",
    "idefics3": "vlm4vla.models.backbones.idefics3:Idefics3Backbone",
}


def known_backbones() -> list[str]:
    return sorted(_REGISTRY)


def get_backbone(name: str) -> "type[VLMBackbone]":
    """The backbone class registered under `name` (call `.build(model_cfg)` on it)."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; known backbones: "
                       f"{', '.join(known_backbones())}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def __getattr__(name: str):
    if name == "VLMBackbone":
        from .base import VLMBackbone
        return VLMBackbone
    raise AttributeError(name)


__all__ = ["VLMBackbone", "get_backbone", "known_backbones"]

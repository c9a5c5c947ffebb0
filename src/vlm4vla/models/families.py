"""Backbone families as plain data: what config validation and the stage graph need to know
about a family, readable without importing it (no torch, no transformers, no family module).

`vlm4vla.config` (every Snakemake parse, every CLI start) and `vlm4vla.pipeline` read this
table; the backbone registry (`vlm4vla.models.backbones`) is built from it and imports a
class when a model is built. tests/test_families.py checks every entry against the class
itself (module, class name, `supports_vqa`): a new family is one module and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    module: str  # the module that defines the backbone class
    cls: str  # the VLMBackbone subclass in it
    supports_vqa: bool  # has the language-model-head path (VQA tuning, pretrain_vlm, stage 1)

    @property
    def target(self) -> str:
        """"module:Class", as the backbone registry spells it."""
        return f"{self.module}:{self.cls}"


_PKG = "vlm4vla.models.backbones"

FAMILIES: dict[str, Family] = {
    "qwen2_5_vl": Family(f"{_PKG}.qwen2_5_vl", "Qwen25VLBackbone", True),
    "qwen3_vl": Family(f"{_PKG}.qwen3_vl", "Qwen3VLBackbone", True),
    "qwen3_vl_moe": Family(f"{_PKG}.qwen3_vl_moe", "Qwen3VLMoeBackbone", True),
    "paligemma": Family(f"{_PKG}.paligemma", "PaliGemmaBackbone", True),
    "paligemma2": Family(f"{_PKG}.paligemma", "PaliGemma2Backbone", True),
    "kosmos2": Family(f"{_PKG}.kosmos2", "Kosmos2Backbone", True),
    "composed_pretrained": Family(f"{_PKG}.composed_pretrained", "ComposedPretrainedBackbone", False),
    "llava": Family(f"{_PKG}.llava", "LlavaBackbone", True),
    "gemma3": Family(f"{_PKG}.gemma3", "Gemma3Backbone", True),
    "internvl": Family(f"{_PKG}.internvl", "InternVLBackbone", True),
    "idefics3": Family(f"{_PKG}.idefics3", "Idefics3Backbone", True),
}


def known_families() -> list[str]:
    return sorted(FAMILIES)


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; known backbones: "
                       f"{', '.join(known_families())}") from None


def supports_vqa(name: str) -> bool:
    """Whether backbone family `name` has a language-model-head (VQA) path."""
    return family(name).supports_vqa

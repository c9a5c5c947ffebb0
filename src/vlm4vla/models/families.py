"""Backbone families as plain data: what config validation and the stage graph need to know
about a family, readable without importing it (no torch, no transformers, no family module).

`vlm4vla.config` (every Snakemake parse, every CLI start) and `vlm4vla.pipeline` read this
table; the backbone registry (`vlm4vla.models.backbones`) is built from it and imports a
class when a model is built. tests/test_families.py checks every entry against the class
itself (module, class name, `supports_vqa`): a new family is one module and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass


# The tiny builds' common architecture (the embedded scale; arch: in a model entry overrides
# any key). None -> derived from the text side (2 x hidden for MLPs, the text width and
# depth for the vision tower). A family adds its own keys with tiny_arch(...).
TINY_ARCH = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": None, "vision_hidden_size": None, "vision_depth": None,
             "vision_num_heads": 4, "vision_intermediate_size": None}


@dataclass(frozen=True)
class Family:
    module: str  # the module that defines the backbone class
    cls: str  # the VLMBackbone subclass in it
    supports_vqa: bool  # has the language-model-head path (VQA tuning, pretrain_vlm, stage 1)
    # `models.<m>.arch` keys of its tiny build beyond TINY_ARCH's; None: a fixed architecture
    # that takes no `arch`
    arch: tuple[str, ...] | None = ()

    def arch_keys(self) -> list[str] | None:
        """Every key `models.<m>.arch` may set (checked at config validation)."""
        if self.arch is None:
            return None
        return sorted({*TINY_ARCH, *self.arch})

    @property
    def target(self) -> str:
        """"module:Class", as the backbone registry spells it."""
        return f"{self.module}:{self.cls}"


_PKG = "vlm4vla.models.backbones"
_KV, _IMG = ("num_key_value_heads",), ("image_size",)  # grouped-query attention; frame side
_QWEN3 = _KV + _IMG + ("deepstack_visual_indexes",)

FAMILIES: dict[str, Family] = {
    "qwen2_5_vl": Family(f"{_PKG}.qwen2_5_vl", "Qwen25VLBackbone", True, _KV + _IMG),
    "qwen3_vl": Family(f"{_PKG}.qwen3_vl", "Qwen3VLBackbone", True, _QWEN3),
    "qwen3_vl_moe": Family(f"{_PKG}.qwen3_vl_moe", "Qwen3VLMoeBackbone", True,
                           _QWEN3 + ("moe_intermediate_size", "num_experts", "num_experts_per_tok")),
    "paligemma": Family(f"{_PKG}.paligemma", "PaliGemmaBackbone", True, _KV + _IMG),
    "paligemma2": Family(f"{_PKG}.paligemma", "PaliGemma2Backbone", True, _KV + _IMG),
    "kosmos2": Family(f"{_PKG}.kosmos2", "Kosmos2Backbone", True, _IMG + ("latent_query_num",)),
    "composed_pretrained": Family(f"{_PKG}.composed_pretrained", "ComposedPretrainedBackbone", False, None),
    "llava": Family(f"{_PKG}.llava", "LlavaBackbone", True, _KV),
    "gemma3": Family(f"{_PKG}.gemma3", "Gemma3Backbone", True, _KV),
    "internvl": Family(f"{_PKG}.internvl", "InternVLBackbone", True, _KV),
    "idefics3": Family(f"{_PKG}.idefics3", "Idefics3Backbone", True, _KV),
}


def known_families() -> list[str]:
    return sorted(FAMILIES)


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; known backbones: "
                       f"{', '.join(known_families())}") from None


def check_arch(name: str, arch: dict) -> str | None:
    """What is wrong with `arch` for family `name` (None: nothing), naming the closest key."""
    import difflib
    keys = family(name).arch_keys()
    if keys is None:
        return f"backbone {name!r} has a fixed architecture and takes no arch overrides"
    for key in sorted(map(str, arch)):
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            return (f"unknown arch key {key!r}" + (f" - did you mean {close[0]!r}?" if close else "")
                    + f" (keys of {name!r}: {', '.join(keys)})")
    return None


def supports_vqa(name: str) -> bool:
    """Whether backbone family `name` has a language-model-head (VQA) path."""
    return family(name).supports_vqa

"""The tiny builds' architecture (embedded scale) and the `arch:` overrides of a model entry."""

from __future__ import annotations

import copy
import difflib

# The tiny builds' common architecture (the embedded scale; arch: in a model entry overrides
# any key). None -> derived from the text side (2 x hidden for MLPs, the text width and
# depth for the vision tower). A family adds its own keys with tiny_arch(...).
TINY_ARCH = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": None, "vision_hidden_size": None, "vision_depth": None,
             "vision_num_heads": 4, "vision_intermediate_size": None}


def tiny_arch(**family_keys) -> dict:
    """TINY_ARCH plus a family's own keys (e.g. num_key_value_heads, image_size)."""
    return {**copy.deepcopy(TINY_ARCH), **family_keys}


def apply_arch_overrides(defaults: dict, arch: dict | None) -> dict:
    """Deep-copy `defaults` and apply `arch`; unknown keys fail loudly with their name."""
    cfg = copy.deepcopy(defaults)
    for key, value in (arch or {}).items():
        if key not in cfg:
            close = difflib.get_close_matches(str(key), sorted(cfg), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyError(f"unknown arch key {key!r}{hint}; known: {', '.join(sorted(cfg))}")
        cfg[key] = value
    return cfg

"""The tiny builds' architecture (embedded scale) and the `arch:` overrides of a model entry."""

from __future__ import annotations

import copy
import difflib

from vlm4vla.models.families import TINY_ARCH  # the common tiny architecture (plain data)


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

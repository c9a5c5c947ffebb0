"""Registry of VLM backbone families.

Each family lives in one small module defining a `VLMBackbone` subclass; the registry maps
a config name (`models.<name>.backbone`) to "module:Class" and imports lazily, so a broken or
slow import of one family never affects the others. Adding a family = one module + one line
in models/families.py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vlm4vla.models.families import FAMILIES

if TYPE_CHECKING:  # the registry itself imports nothing heavy (no torch, no transformers)
    from .base import VLMBackbone

# config name -> "module:Class", from the family table (models/families.py: plain data,
# read by config validation too), so a family is declared in one place
_REGISTRY: dict[str, str] = {name: fam.target for name, fam in FAMILIES.items()}


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

"""HFBackbone: a family that is one transformers model class + its config class (random tiny
build, real checkpoint, or a saved / published config), with its LM-head loader."""

from __future__ import annotations

import torch

from .base import VLMBackbone

def tokenizer_file(source: str) -> str:
    """tokenizer.json of a local folder or an HF repo (the repo needs network once)."""
    from pathlib import Path
    local = Path(source) / "tokenizer.json"
    if local.is_file():
        return str(local)
    from huggingface_hub import hf_hub_download
    return hf_hub_download(source, "tokenizer.json")


class HFBackbone(VLMBackbone):
    SPECIAL_TOKENS: list[str] = []  # special tokens of the runtime tokenizer
    """A family that is one transformers model class + its config class.

    Subclasses set `config_cls`, `model_cls`, `GROUPS` (group -> module prefix[es]) and
    implement `runtime_tokenizer(model_cfg)`, `tiny_config(arch, tokenizer)`, `encode`.
    """

    config_cls = None
    model_cls = None
    GROUPS: dict = {}
    attn_implementation = "sdpa"

    @classmethod
    def runtime_tokenizer(cls, model_cfg: dict):
        """Default: the small BPE built at runtime with the family's SPECIAL_TOKENS (families
        with a real vocabulary available offline, like Qwen, override this)."""
        if (model_cfg.get("tokenizer") or "runtime") != "runtime":
            raise ValueError(f"{cls.name}: only the runtime tokenizer is available")
        from .text import build_tokenizer

        return build_tokenizer(special_tokens=cls.SPECIAL_TOKENS)

    @classmethod
    def tiny_config(cls, arch: dict | None, tokenizer):
        raise NotImplementedError

    @classmethod
    def build(cls, model_cfg: dict) -> "HFBackbone":
        from tokenizers import Tokenizer
        if model_cfg.get("init", "scratch") == "pretrained":
            source = model_cfg.get("source")
            if not source:
                raise ValueError(f"{cls.name}: init: pretrained needs `source` (HF id or local folder)")
            model = cls.model_cls.from_pretrained(source, dtype=torch.float32,
                                                  attn_implementation=cls.attn_implementation)
            cls.configure(model.config, model_cfg)
            tok = Tokenizer.from_file(tokenizer_file(source))  # real vocab for real weights
            # Never shrink the embedding (Qwen pads its embedding beyond the vocabulary).
            if tok.get_vocab_size() > model.get_input_embeddings().num_embeddings:
                model.resize_token_embeddings(tok.get_vocab_size())
            return cls(model, tok)
        tok = cls.runtime_tokenizer(model_cfg)
        config = cls.tiny_config(model_cfg.get("arch"), tok)
        config._attn_implementation = cls.attn_implementation
        cls.configure(config, model_cfg)
        return cls(cls.model_cls(config), tok)

    @classmethod
    def configure(cls, config, model_cfg: dict) -> None:
        """Record model-entry settings the family reads from its config (saved with it, so a
        reloaded policy or VLM keeps them). Default: none."""

    @classmethod
    def build_pretrained_with_lm_head(cls, model_cfg: dict):
        """init=pretrained for VQA: (backbone, lm_head) from `lm_model_cls.from_pretrained`
        (the head may be tied to the input embeddings, as the checkpoint says)."""
        from tokenizers import Tokenizer
        if not cls.supports_vqa or cls.lm_model_cls is None:
            cls._no_vqa(cls)
        source = model_cfg.get("source")
        if not source:
            raise ValueError(f"{cls.name}: init: pretrained needs `source` (HF id or local folder)")
        full = cls.lm_model_cls.from_pretrained(source, dtype=torch.float32,
                                                attn_implementation=cls.attn_implementation)
        cls.configure(full.config, model_cfg)
        tok = Tokenizer.from_file(tokenizer_file(source))
        if tok.get_vocab_size() > full.get_input_embeddings().num_embeddings:
            full.resize_token_embeddings(tok.get_vocab_size())
        model, head = cls.split_lm_model(full)
        return cls(model, tok), head

    @classmethod
    def from_saved(cls, backbone_config: dict, tokenizer_json: str) -> "HFBackbone":
        from tokenizers import Tokenizer
        return cls.from_config(backbone_config, Tokenizer.from_str(tokenizer_json))

    @classmethod
    def from_config(cls, config_dict: dict, tokenizer, model_cfg: dict | None = None) -> "HFBackbone":
        """The architecture of a config dict (`saved_config()` output or a published
        config.json) with random weights and no download. Under `torch.device("meta")` this
        sizes a real checkpoint without allocating it (models/real_size.py); `model_cfg`: a
        model entry whose settings apply as `build` applies them (e.g. Qwen's min_pixels)."""
        config = cls.config_cls.from_dict(config_dict)
        config._attn_implementation = cls.attn_implementation
        if model_cfg:
            cls.configure(config, model_cfg)
        return cls(cls.model_cls(config), tokenizer)

    def groups(self):
        return self._split_groups(self.GROUPS)

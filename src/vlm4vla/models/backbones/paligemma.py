"""PaliGemma and PaliGemma-2 families: `PaliGemmaModel` = SigLIP vision tower + linear
projector + Gemma (PaliGemma) or Gemma-2 (PaliGemma-2) LLM.

Prompt (the paper's and PaliGemma's processor's): 256 <image> tokens, then BOS, the
instruction and a newline; then right padding and the ActionQuery. `token_type_ids` are 0
on that prefix -> bidirectional attention inside the prefix (PaliGemma's prefix-LM); the
query has type 1 (a "suffix" token: it sees the whole prefix causally, the prefix does not
see it). Position ids count only mask==1 tokens (1-based, as PaliGemma), so padding never
moves the query. Tiny default: hidden 64, 2 layers, 4 heads (1 KV head, head_dim 16);
SigLIP of the same width/depth, 224 px, patch 14 -> 256 image tokens; mean = std = 0.5.
"""

from __future__ import annotations

import torch

from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaModel

from .arch import apply_arch_overrides, tiny_arch
from .hf import HFBackbone
from .tensors import (as_uint8_frames, frames_for, normalized_pixels, positions_from_mask,
                      put_query_last, right_pad, right_pad_with_query)

IMAGE_SIZE = 224
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<image>"]
TINY = tiny_arch(num_key_value_heads=1, image_size=224)  # frame side (multiple of the 14 px patch); the paper's is 224


class PaliGemmaBackbone(HFBackbone):
    SPECIAL_TOKENS = SPECIAL_TOKENS
    name = "paligemma"
    text_model_type = "gemma"
    config_cls, model_cls = PaliGemmaConfig, PaliGemmaModel
    lm_model_cls = PaliGemmaForConditionalGeneration
    supports_vqa = True
    GROUPS = {"vision": "vision_tower", "projector": "multi_modal_projector",
              "llm": "language_model", "word_embeddings": "language_model.embed_tokens"}

    def __init__(self, model, tokenizer):
        super().__init__(model, tokenizer, model.config.text_config.hidden_size)
        cfg = model.config
        self.image_token_id = cfg.image_token_id
        self.bos_id = cfg.text_config.bos_token_id
        self.pad_id = cfg.text_config.pad_token_id or 0
        v = cfg.vision_config
        self.image_size = int(v.image_size)  # SigLIP's own setting (tiny: arch.image_size)
        self.n_image_tokens = (v.image_size // v.patch_size) ** 2
        self._prompt_cache: dict[str, list[int]] = {}

    @classmethod
    def text_config(cls, a: dict, vocab: dict, vocab_size: int) -> dict:
        hidden, heads = a["hidden_size"], a["num_attention_heads"]
        return {"model_type": cls.text_model_type, "vocab_size": vocab_size, "hidden_size": hidden,
                "intermediate_size": a["intermediate_size"] or 2 * hidden,
                "num_hidden_layers": a["num_hidden_layers"], "num_attention_heads": heads,
                "num_key_value_heads": a["num_key_value_heads"], "head_dim": hidden // heads,
                "max_position_embeddings": 2048, "pad_token_id": vocab["<pad>"],
                "bos_token_id": vocab["<bos>"], "eos_token_id": vocab["<eos>"]}

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        a = apply_arch_overrides(TINY, arch)
        hidden = a["hidden_size"]
        v_hidden = a["vision_hidden_size"] or hidden
        vocab = tokenizer.get_vocab()
        vision = {"model_type": "siglip_vision_model", "hidden_size": v_hidden,
                  "intermediate_size": a["vision_intermediate_size"] or 2 * v_hidden,
                  "num_hidden_layers": a["vision_depth"] or a["num_hidden_layers"],
                  "num_attention_heads": a["vision_num_heads"], "image_size": int(a["image_size"]),
                  "patch_size": 14, "projection_dim": hidden}
        return PaliGemmaConfig(vision_config=vision,
                               text_config=cls.text_config(a, vocab, tokenizer.get_vocab_size()),
                               image_token_id=vocab["<image>"], projection_dim=hidden,
                               hidden_size=hidden)

    def prompt_ids(self, instruction: str) -> list[int]:
        ids = self._prompt_cache.get(instruction)
        if ids is None:
            text = self.tokenizer.encode(instruction + "\n", add_special_tokens=False).ids
            ids = [self.image_token_id] * self.n_image_tokens + [self.bos_id] + text
            self._prompt_cache[instruction] = ids
        return ids

    def encode(self, frames, instructions, query):
        device = query.device
        frames = frames_for(frames, instructions, self.image_size)
        pixel_values = normalized_pixels(frames, (0.5,) * 3, (0.5,) * 3).to(device)
        ids, mask = right_pad_with_query([self.prompt_ids(t) for t in instructions], self.pad_id, device)
        if self.vla_forward == "official":
            # The official build uses flash-attention-2 (vlm_builder.py:17-22), with which
            # PaliGemma hands Gemma only the padding mask: plain causal attention over image,
            # prompt and query (transformers 4.51.3 modeling_paligemma.py:344-347), at
            # positions 1, 2, ... over the padded row (cache_position + 1, padding counted).
            # All tokens typed "suffix" give exactly that mask here (the untyped path of 5.x's
            # sdpa mask mishandles a padding gap before the query: measured).
            token_type_ids, position_ids = torch.ones_like(ids), None
        else:  # native: bidirectional prefix (image + prompt), the query a causal suffix
            token_type_ids = 1 - mask  # padding -> 1 (masked anyway)
            token_type_ids[:, -1] = 1
            position_ids = positions_from_mask(mask, 1)
        embeds = put_query_last(self.model.get_input_embeddings()(ids), query)
        # Image slots are found by comparing inputs_embeds with the <image> embedding.
        out = self.model(inputs_embeds=embeds, attention_mask=mask, pixel_values=pixel_values,
                         token_type_ids=token_type_ids, position_ids=position_ids, use_cache=False)
        return out.last_hidden_state, mask

    # --- language-model path (auxiliary VQA): prefix = image tokens, BOS, question, "\n"
    # (bidirectional, token type 0); suffix = answer + <eos> (causal, token type 1), as
    # PaliGemma's processor lays out prefix and suffix.
    def vqa_prompt_ids(self, question: str) -> list[int]:
        text = self.tokenizer.encode(question + "\n", add_special_tokens=False).ids
        return [self.image_token_id] * self.n_image_tokens + [self.bos_id] + text

    def vqa_answer_ids(self, answer: str) -> list[int]:
        return self.tokenizer.encode(answer, add_special_tokens=False).ids + [self.eos_id]

    @property
    def eos_id(self) -> int:
        return self.model.config.text_config.eos_token_id

    def banned_answer_ids(self) -> list[int]:
        return [self.image_token_id, self.bos_id]

    def _lm_rows_forward(self, frames, rows, prefix_lens, use_cache: bool):
        device = self.model.get_input_embeddings().weight.device
        frames = as_uint8_frames(frames, self.image_size)
        if len(rows) != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {len(rows)} token rows")
        pixel_values = normalized_pixels(frames, (0.5,) * 3, (0.5,) * 3).to(device)
        ids, mask = right_pad(rows, self.pad_id, device)
        token_type_ids = torch.ones_like(ids)  # suffix and padding (masked anyway): 1
        for i, n in enumerate(prefix_lens):
            token_type_ids[i, :n] = 0
        out = self.model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values,
                         token_type_ids=token_type_ids, position_ids=positions_from_mask(mask, 1),
                         use_cache=use_cache)
        return out, mask

    def lm_hidden(self, frames, rows, prefix_lens):
        out, mask = self._lm_rows_forward(frames, rows, prefix_lens, use_cache=False)
        return out.last_hidden_state, mask

    # KV-cache decoding: the prefill is the prompt alone (the whole prefix, bidirectional,
    # as in the full forward: prefix tokens never see the suffix); each generated token is
    # a causal suffix token (no token_type_ids: PaliGemma's plain causal mask on the cache)
    # at the 1-based position after its row's mask==1 tokens.
    supports_kv_cache = True

    def lm_prefill(self, frames, rows, prefix_lens):
        out, mask = self._lm_rows_forward(frames, rows, prefix_lens, use_cache=True)
        return out.last_hidden_state, mask, out.cache

    def lm_step(self, ids, mask, lengths, cache):
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=(lengths + 1).view(-1, 1),
                         cache=cache, use_cache=True)
        return out.last_hidden_state


class PaliGemma2Backbone(PaliGemmaBackbone):
    """PaliGemma-2: the same, with a Gemma-2 LLM (sliding-window/global layers, soft-capping)."""
    name = "paligemma2"
    text_model_type = "gemma2"
    attn_implementation = "eager"  # transformers has no SDPA path for Gemma-2 (soft-capping)

    @classmethod
    def text_config(cls, a, vocab, vocab_size):
        cfg = super().text_config(a, vocab, vocab_size)
        cfg.update({"sliding_window": 512, "query_pre_attn_scalar": a["hidden_size"] // a["num_attention_heads"]})
        return cfg

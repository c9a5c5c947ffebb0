"""Qwen3-VL family: `Qwen3VLModel` (ViT with learned position grid + patch merger + DeepStack
mergers feeding vision features into early LLM layers, Qwen3 LLM with interleaved M-RoPE).

Tiny default: text hidden 64, 2 layers, 4 heads (2 KV, head_dim 16); vision of the same
width/depth, DeepStack from the first vision block. 224x224, patch 16 -> 14x14 patches, 2x2
merge -> 49 image tokens. Images are normalised with mean = std = 0.5 (Qwen3-VL's
preprocessor). Projector group = `visual.merger` + `visual.deepstack_merger_list`.
Qwen3-VL raises without `mm_token_type_ids` and accepts only one of input_ids /
inputs_embeds, so the 3-D positions are computed here with `get_rope_index` (over mask==1
tokens only) and passed explicitly.
"""

from __future__ import annotations

import torch

from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLModel

from .arch import apply_arch_overrides, tiny_arch
from .qwen_vl import vision_token_ids, QwenVLBackbone

TINY = tiny_arch(num_key_value_heads=2, deepstack_visual_indexes=[0],
                 image_size=224)  # frame side (multiple of 32); 128 -> 8x8 patches -> 16 tokens


def mrope_section(head_dim: int) -> list[int]:
    """Qwen3-VL interleaves t/h/w over head_dim/2 frequencies as 24/20/20 of 64."""
    half = head_dim // 2
    hw = half * 20 // 64
    return [half - 2 * hw, hw, hw]


def tiny_config(arch, tokenizer) -> Qwen3VLConfig:
    a = apply_arch_overrides(TINY, arch)
    hidden, layers, heads = a["hidden_size"], a["num_hidden_layers"], a["num_attention_heads"]
    v_hidden = a["vision_hidden_size"] or hidden
    vocab = tokenizer.get_vocab()
    text = {"vocab_size": tokenizer.get_vocab_size(), "hidden_size": hidden,
            "intermediate_size": a["intermediate_size"] or 2 * hidden,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": a["num_key_value_heads"], "head_dim": hidden // heads,
            "max_position_embeddings": 2048,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0,
                                "mrope_section": mrope_section(hidden // heads),
                                "mrope_interleaved": True},
            "bos_token_id": vocab["<|endoftext|>"], "eos_token_id": vocab["<|im_end|>"],
            "pad_token_id": vocab["<|endoftext|>"]}
    depth = a["vision_depth"] or layers
    vision = {"depth": depth, "hidden_size": v_hidden,
              "intermediate_size": a["vision_intermediate_size"] or 2 * v_hidden,
              "num_heads": a["vision_num_heads"], "out_hidden_size": hidden,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
              "num_position_embeddings": (int(a["image_size"]) // 16) ** 2,
              "image_size": int(a["image_size"]),
              "deepstack_visual_indexes": list(a["deepstack_visual_indexes"])}
    return Qwen3VLConfig(text_config=text, vision_config=vision, **vision_token_ids(vocab))


class Qwen3VLBackbone(QwenVLBackbone):
    name = "qwen3_vl"
    config_cls, model_cls = Qwen3VLConfig, Qwen3VLModel
    lm_model_cls = Qwen3VLForConditionalGeneration
    image_mean = image_std = (0.5, 0.5, 0.5)
    GROUPS = {"vision": "visual",
              "projector": ("visual.merger", "visual.deepstack_merger_list"),
              "llm": "language_model", "word_embeddings": "language_model.embed_tokens"}

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        return tiny_config(arch, tokenizer)

    def official_positions(self, mask):
        # roboqwen3vl.py:222-227 (the official VLA forward): a plain arange over the padded
        # length, expanded to the three M-RoPE axes -> exactly 1-D RoPE; padding not skipped.
        b, n = mask.shape
        return torch.arange(n, device=mask.device).view(1, 1, n).expand(3, b, n)

    def encode(self, frames, instructions, query):
        ids, mask, embeds, pixel_values, grid_thw, mm = self._inputs(frames, instructions, query)
        if self.vla_forward == "official":
            position_ids = self.official_positions(mask)
        else:
            position_ids, _ = self.model.get_rope_index(ids, mm_token_type_ids=mm, image_grid_thw=grid_thw,
                                                        attention_mask=mask)
        # Image slots are found by comparing inputs_embeds with the <|image_pad|> embedding.
        out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids,
                         pixel_values=pixel_values, image_grid_thw=grid_thw,
                         mm_token_type_ids=mm, use_cache=False)
        return out.last_hidden_state, mask

    def _lm_forward(self, ids, mask, pixel_values, grid_thw, mm_token_type_ids):
        position_ids, _ = self.model.get_rope_index(ids, mm_token_type_ids=mm_token_type_ids,
                                                    image_grid_thw=grid_thw, attention_mask=mask)
        out = self.model(inputs_embeds=self.model.get_input_embeddings()(ids), attention_mask=mask,
                         position_ids=position_ids, pixel_values=pixel_values,
                         image_grid_thw=grid_thw, mm_token_type_ids=mm_token_type_ids,
                         use_cache=False)
        return out.last_hidden_state

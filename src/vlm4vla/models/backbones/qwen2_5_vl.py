"""Qwen2.5-VL family: `Qwen2_5_VLModel` (vision tower + merger + Qwen2 LLM, no LM head).

Tiny default (random weights): text hidden 64, 2 layers, 4 heads (2 KV heads); a vision
tower of the same width and depth with Qwen2.5-VL's window attention kept (window 112 px,
last block full attention). 224x224 input, patch 14 -> 16x16 patches, 2x2 merge -> 64 image
tokens. The prompt is built by hand (Qwen's processor class needs torchvision); the shared
Qwen code is in qwen_vl.py.
"""

from __future__ import annotations

from tokenizers import Tokenizer
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLModel

from .arch import apply_arch_overrides, tiny_arch
from .qwen_vl import vision_token_ids, CLIP_MEAN, CLIP_STD, PROMPT, QwenVLBackbone, patchify  # noqa: F401  (re-exported)

# Text-side keys (Qwen2_5_VLTextConfig) plus a few vision keys prefixed "vision_".
TINY = tiny_arch(num_key_value_heads=2, image_size=224)  # frame side (multiple of 28); 112 -> 8x8 patches -> 16 tokens


def mrope_section(head_dim: int) -> list[int]:
    """Qwen2.5-VL splits head_dim/2 rotary frequencies over (t, h, w) as 16/24/24 of 64;
    keep the same proportions at any head size."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def tiny_config(arch: dict | None, tokenizer: Tokenizer) -> Qwen2_5_VLConfig:
    a = apply_arch_overrides(TINY, arch)
    hidden, layers = a["hidden_size"], a["num_hidden_layers"]
    v_hidden = a["vision_hidden_size"] or hidden
    vocab = tokenizer.get_vocab()
    text = {"vocab_size": tokenizer.get_vocab_size(), "hidden_size": hidden,
            "intermediate_size": a["intermediate_size"] or 2 * hidden,
            "num_hidden_layers": layers, "num_attention_heads": a["num_attention_heads"],
            "num_key_value_heads": a["num_key_value_heads"], "max_position_embeddings": 2048,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0,
                                "mrope_section": mrope_section(hidden // a["num_attention_heads"])},
            "bos_token_id": vocab["<|endoftext|>"], "eos_token_id": vocab["<|im_end|>"],
            "pad_token_id": vocab["<|endoftext|>"]}
    depth = a["vision_depth"] or layers
    vision = {"depth": depth, "hidden_size": v_hidden,
              "intermediate_size": a["vision_intermediate_size"] or 2 * v_hidden,
              "num_heads": a["vision_num_heads"], "out_hidden_size": hidden,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
              "window_size": 112, "fullatt_block_indexes": [depth - 1],
              "image_size": int(a["image_size"])}
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **vision_token_ids(vocab))


class Qwen25VLBackbone(QwenVLBackbone):
    name = "qwen2_5_vl"
    config_cls, model_cls = Qwen2_5_VLConfig, Qwen2_5_VLModel
    lm_model_cls = Qwen2_5_VLForConditionalGeneration
    image_mean, image_std = CLIP_MEAN, CLIP_STD

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        return tiny_config(arch, tokenizer)

    def official_positions(self, mask):
        # The official forward passes inputs_embeds with no input_ids, grid or positions
        # (roboqwen25vl.py:202-210), so Qwen2_5_VLModel.get_rope_index takes its text-only
        # fallback (transformers 4.57.1 modeling_qwen2_5_vl.py:1120-1125): padding-aware 1-D
        # positions, the same on all three axes.
        pos = mask.long().cumsum(-1) - 1
        pos = pos.masked_fill(mask == 0, 1)
        return pos.unsqueeze(0).expand(3, -1, -1)

    def encode(self, frames, instructions, query):
        ids, mask, embeds, pixel_values, grid_thw, mm = self._inputs(frames, instructions, query)
        # native: mm_token_type_ids + grid -> the model's 3-D M-RoPE positions
        position_ids = self.official_positions(mask) if self.vla_forward == "official" else None
        out = self.model(input_ids=ids, inputs_embeds=embeds, attention_mask=mask,
                         pixel_values=pixel_values, image_grid_thw=grid_thw,
                         mm_token_type_ids=mm, position_ids=position_ids, use_cache=False)
        return out.last_hidden_state, mask

    def _lm_forward(self, ids, mask, pixel_values, grid_thw, mm_token_type_ids):
        out = self.model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values,
                         image_grid_thw=grid_thw, mm_token_type_ids=mm_token_type_ids,
                         use_cache=False)
        return out.last_hidden_state

"""Idefics3 / SmolVLM family: `Idefics3Model` = SigLIP-style ViT + connector (pixel shuffle,
scale 2, then linear) + Llama LLM. One 224 px image (no tiling): patch 14 -> 16x16 patches
-> 64 image tokens. Inputs: pixel_values (B,1,3,H,W) + pixel_attention_mask (B,1,H,W).
Prompt (SmolVLM chat): "<|im_start|>User:<fake_token_around_image><global-img>[64 <image>]
<fake_token_around_image>What action should the robotic arm take to {instruction}
<end_of_utterance>\\nAssistant:". Tiny: hidden 64, 2 layers, 4 heads (2 KV); mean = std = 0.5.
Auxiliary VQA (Idefics3ForConditionalGeneration names): the question in place of the action
question; the answer follows "Assistant:" after a space and ends with <end_of_utterance>.
"""

from __future__ import annotations

import torch
from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Model

from .arch import apply_arch_overrides
from .tensors import normalized_pixels
from .vqa_mixins import SplicedImageVQA
from .image_tokens import IMAGE_SIZE, QUESTION, TINY, ImageTokenBackbone, tiny_text, tiny_vision


class Idefics3Backbone(SplicedImageVQA, ImageTokenBackbone):
    name = "idefics3"
    config_cls, model_cls = Idefics3Config, Idefics3Model
    lm_model_cls = Idefics3ForConditionalGeneration
    GROUPS = {"vision": "vision_model", "projector": "connector",
              "llm": "text_model", "word_embeddings": "text_model.embed_tokens"}
    SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>",
                      "<global-img>", "<image>", "<pad>"]
    PROMPT = ("<|im_start|>User:<fake_token_around_image><global-img>{image}<fake_token_around_image>"
              + QUESTION + "<end_of_utterance>\nAssistant:")
    VQA_PROMPT = PROMPT.replace(QUESTION, "{question}")
    ANSWER_PREFIX, END_TOKEN = " ", "<end_of_utterance>"
    IMAGE_MARKERS = ("<fake_token_around_image>", "<global-img>")
    image_size = IMAGE_SIZE

    @staticmethod
    def count_image_tokens(config) -> int:
        v = config.vision_config
        return (v.image_size // v.patch_size) ** 2 // config.scale_factor ** 2

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        a = apply_arch_overrides(TINY, arch)
        return Idefics3Config(
            vision_config=tiny_vision(a, image_size=IMAGE_SIZE, patch_size=14),
            text_config={"model_type": "llama", **tiny_text(a, tokenizer, "<|im_start|>", "<end_of_utterance>",
                                                             "<pad>")},
            image_token_id=tokenizer.token_to_id("<image>"), scale_factor=2,
            pad_token_id=tokenizer.token_to_id("<pad>"))

    def pixel_inputs(self, frames):
        x = normalized_pixels(frames, self.image_mean, self.image_std).unsqueeze(1)  # (B,1,3,H,W)
        return {"pixel_values": x,
                "pixel_attention_mask": torch.ones(x.shape[0], 1, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)}

"""LLaVA family (LLaVA-1.5 layout): `LlavaModel` = CLIP ViT (features of the second-to-last
layer, CLS dropped) + 2-layer GELU MLP projector + Llama LLM. 224 px / patch 14 -> 256
image tokens. Prompt: "<s>USER: <image>\\nWhat action should the robotic arm take to
{instruction} ASSISTANT:". Tiny: hidden 64, 2 layers, 4 heads (2 KV); CLIP image statistics.
Auxiliary VQA (LlavaForConditionalGeneration names): the question in place of the action
question; the answer follows "ASSISTANT:" after a space and ends with </s> (LLaVA-1.5).
"""

from __future__ import annotations

from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaModel

from .arch import apply_arch_overrides
from .vqa_mixins import SplicedImageVQA
from .image_tokens import IMAGE_SIZE, QUESTION, TINY, ImageTokenBackbone, tiny_text, tiny_vision
from .qwen_vl import CLIP_MEAN, CLIP_STD


class LlavaBackbone(SplicedImageVQA, ImageTokenBackbone):
    name = "llava"
    config_cls, model_cls = LlavaConfig, LlavaModel
    lm_model_cls = LlavaForConditionalGeneration
    GROUPS = {"vision": "vision_tower", "projector": "multi_modal_projector",
              "llm": "language_model", "word_embeddings": "language_model.embed_tokens"}
    SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
    PROMPT = "<s>USER: {image}\n" + QUESTION + " ASSISTANT:"
    VQA_PROMPT, ANSWER_PREFIX, END_TOKEN = PROMPT.replace(QUESTION, "{question}"), " ", "</s>"
    image_size = IMAGE_SIZE
    image_mean, image_std = CLIP_MEAN, CLIP_STD

    @staticmethod
    def count_image_tokens(config) -> int:
        v = config.vision_config
        return (v.image_size // v.patch_size) ** 2  # "default" strategy drops CLS

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        a = apply_arch_overrides(TINY, arch)
        return LlavaConfig(
            vision_config={"model_type": "clip_vision_model", **tiny_vision(a, image_size=IMAGE_SIZE, patch_size=14)},
            text_config={"model_type": "llama", **tiny_text(a, tokenizer, "<s>", "</s>", "<pad>")},
            image_token_index=tokenizer.token_to_id("<image>"), image_seq_length=256)

"""InternVL family (InternVL3/3.5 layout): `InternVLModel` = InternViT + pixel-shuffle (0.5)
MLP projector + Qwen2/Qwen3 LLM. The frames are resized to the vision config's image size:
tiny 224 px / patch 14 -> 16x16 patches -> pixel shuffle -> 64 image tokens; the released
InternVL3.5 checkpoints (`OpenGVLab/InternVL3_5-4B-HF`, transformers' native layout) take
448 px -> 32x32 patches -> 256 tokens (= their `image_seq_length`), so the paper's 224 px
frames are upsampled to 448 bicubic, as the paper's code does (resize to 224, then 448).
Prompt (InternVL chat on Qwen2's template): "<|im_start|>user\\n<img>[64 or 256
<IMG_CONTEXT>]</img>\\nWhat action should the robotic arm take to {instruction}<|im_end|>\\n
<|im_start|>assistant\\n". ImageNet statistics. Tiny: hidden 64, 2 layers, 4 heads (2 KV).
Auxiliary VQA (InternVLForConditionalGeneration names): the question in place of the action
question; the answer is the assistant turn, ended by <|im_end|>.
"""

from __future__ import annotations

from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLModel

from .arch import apply_arch_overrides
from .vqa_mixins import SplicedImageVQA
from .image_tokens import IMAGE_SIZE, QUESTION, TINY, ImageTokenBackbone, tiny_text, tiny_vision


class InternVLBackbone(SplicedImageVQA, ImageTokenBackbone):
    name = "internvl"
    config_cls, model_cls = InternVLConfig, InternVLModel
    lm_model_cls = InternVLForConditionalGeneration
    GROUPS = {"vision": "vision_tower", "projector": "multi_modal_projector",
              "llm": "language_model", "word_embeddings": "language_model.embed_tokens"}
    SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]
    IMAGE_TOKEN = "<IMG_CONTEXT>"
    PAD_TOKEN = "<|endoftext|>"
    PROMPT = "<|im_start|>user\n<img>{image}</img>\n" + QUESTION + "<|im_end|>\n<|im_start|>assistant\n"
    VQA_PROMPT = PROMPT.replace(QUESTION, "{question}")
    # official VLA prompt: a system turn, no newline after </img> (data_utils.py:344-348)
    OFFICIAL_PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                       "<|im_start|>user\n<img>{image}</img>" + QUESTION + "<|im_end|>\n<|im_start|>assistant\n")
    END_TOKEN = "<|im_end|>"
    IMAGE_MARKERS = ("<img>", "</img>")
    image_size = IMAGE_SIZE
    image_mean, image_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, model, tokenizer):
        super().__init__(model, tokenizer)
        self.image_size = int(model.config.vision_config.image_size[0])  # tiny: 224; released: 448

    @staticmethod
    def count_image_tokens(config) -> int:
        return config.image_seq_length

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        a = apply_arch_overrides(TINY, arch)
        grid = IMAGE_SIZE // 14
        return InternVLConfig(
            vision_config=tiny_vision(a, image_size=[IMAGE_SIZE, IMAGE_SIZE], patch_size=[14, 14]),
            text_config={"model_type": "qwen2", **tiny_text(a, tokenizer, "<|endoftext|>", "<|im_end|>",
                                                             "<|endoftext|>")},
            image_token_id=tokenizer.token_to_id("<IMG_CONTEXT>"), downsample_ratio=0.5,
            image_seq_length=(grid // 2) ** 2)

"""Gemma3 family: `Gemma3Model` = SigLIP ViT + projector (RMS-norm, 2x2 average pooling of
the 16x16 patch grid at 224 px -> 64 image tokens, linear) + Gemma3 LLM (sliding/global).
Prompt (Gemma3 chat): "<bos><start_of_turn>user\\n<start_of_image>[64 image tokens]
<end_of_image>What action should the robotic arm take to {instruction}<end_of_turn>\\n
<start_of_turn>model\\n". `token_type_ids` 1 on image tokens -> bidirectional attention
inside the image, causal elsewhere (Gemma3's rule). Tiny: hidden 64, 2 layers, 4 heads (1 KV).
Auxiliary VQA (Gemma3ForConditionalGeneration names): the question in place of the action
question; the answer is the model turn, ended by <end_of_turn>.
"""

from __future__ import annotations

from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Model

from .arch import apply_arch_overrides
from .vqa_mixins import SplicedImageVQA
from .image_tokens import IMAGE_SIZE, QUESTION, TINY, ImageTokenBackbone, tiny_text, tiny_vision


class Gemma3Backbone(SplicedImageVQA, ImageTokenBackbone):
    name = "gemma3"
    config_cls, model_cls = Gemma3Config, Gemma3Model
    lm_model_cls = Gemma3ForConditionalGeneration
    GROUPS = {"vision": "vision_tower", "projector": "multi_modal_projector",
              "llm": "language_model", "word_embeddings": "language_model.embed_tokens"}
    SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>",
                      "<start_of_image>", "<end_of_image>", "<image_soft_token>"]
    IMAGE_TOKEN = "<image_soft_token>"
    PROMPT = ("<bos><start_of_turn>user\n<start_of_image>{image}<end_of_image>" + QUESTION
              + "<end_of_turn>\n<start_of_turn>model\n")
    VQA_PROMPT = PROMPT.replace(QUESTION, "{question}")
    END_TOKEN = "<end_of_turn>"
    IMAGE_MARKERS = ("<start_of_image>", "<end_of_image>")
    image_size = IMAGE_SIZE

    @staticmethod
    def count_image_tokens(config) -> int:
        return config.mm_tokens_per_image

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        a = apply_arch_overrides({**TINY, "num_key_value_heads": 1}, arch)
        vocab = tokenizer.get_vocab()
        text = tiny_text(a, tokenizer, "<bos>", "<eos>", "<pad>", sliding_window=512,
                         query_pre_attn_scalar=a["hidden_size"] // a["num_attention_heads"])
        return Gemma3Config(
            vision_config={"model_type": "siglip_vision_model",
                           **tiny_vision(a, image_size=IMAGE_SIZE, patch_size=14)},
            text_config={"model_type": "gemma3_text", **text}, mm_tokens_per_image=64,
            image_token_index=vocab["<image_soft_token>"], boi_token_index=vocab["<start_of_image>"],
            eoi_token_index=vocab["<end_of_image>"])

    def extra_inputs(self, ids, mask):
        return {"token_type_ids": (ids == self.image_token_id).long() * mask}

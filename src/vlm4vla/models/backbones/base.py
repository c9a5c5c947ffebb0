"""What every backbone family provides to the policy, and shared helpers.

A backbone owns: the transformers VLM module, its tokenizer and its image preprocessing.
The policy only sees `encode(frames, instructions, query)`, which returns the last-layer
hidden states of [prompt with image tokens, right padding, ActionQuery]: the query is always
the LAST column (mask 1), so the readout is simply `hidden[:, -1]` for every row.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

FREEZE_GROUPS = ("vision", "projector", "llm", "word_embeddings")


class VLMBackbone(nn.Module):
    """Base class. Subclasses set `name`, implement `build`, `from_saved`, `groups`, `encode`."""

    name: str = ""

    def __init__(self, model: nn.Module, tokenizer, hidden_size: int):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer  # a `tokenizers.Tokenizer` (not a module: not in state_dict)
        self.hidden_size = int(hidden_size)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, model_cfg: dict) -> "VLMBackbone":
        """Random weights from the family's tiny config (+ `arch` overrides) when
        init=scratch; `from_pretrained(source)` when init=pretrained."""
        raise NotImplementedError

    @classmethod
    def from_saved(cls, backbone_config: dict, tokenizer_json: str) -> "VLMBackbone":
        """Rebuild the architecture (random weights) from `saved_config()` output, with no
        download: a trained policy folder is self-contained."""
        raise NotImplementedError

    def saved_config(self) -> dict:
        return self.model.config.to_dict()

    # --- freeze groups ------------------------------------------------------------------
    def groups(self) -> dict[str, list[nn.Parameter]]:
        """Disjoint parameter groups named as in FREEZE_GROUPS (+ "other" if any)."""
        raise NotImplementedError

    def _split_groups(self, prefixes: dict[str, str | tuple[str, ...]]) -> dict[str, list[nn.Parameter]]:
        """Assign each parameter to the group with the LONGEST matching module prefix, so
        e.g. `visual.merger` (projector) wins over `visual` (vision): groups are disjoint.
        A group may list several prefixes (a tuple)."""
        out: dict[str, list[nn.Parameter]] = {g: [] for g in prefixes}
        out["other"] = []
        for pname, p in self.model.named_parameters():
            best, best_len = "other", -1
            for group, prefs in prefixes.items():
                for prefix in ((prefs,) if isinstance(prefs, str) else prefs):
                    if (pname == prefix or pname.startswith(prefix + ".")) and len(prefix) > best_len:
                        best, best_len = group, len(prefix)
            out[best].append(p)
        if not out["other"]:
            del out["other"]
        return out

    # --- forward ------------------------------------------------------------------------
    def encode(self, frames: torch.Tensor, instructions: list[str],
               query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames uint8 (B,H,W,3); query (hidden,) -> (hidden states (B,T,hidden),
        attention mask (B,T)) with the query at column T-1 of every row."""
        raise NotImplementedError

    # --- language-model path (auxiliary VQA, paper Figure 4; see models/vqa_head.py) ----
    # A family that supports it sets `supports_vqa = True`, `lm_model_cls` (its
    # ...ForConditionalGeneration class, whose `.model` is `model_cls` and whose `.lm_head`
    # maps hidden states to the vocabulary) and implements the three methods below. The
    # ActionQuery never takes part: the VQA prompt is the VLA prompt with the question in
    # place of the action question, and the answer is the assistant / suffix text.
    supports_vqa = False
    lm_model_cls = None
    # Where this family's weights sit inside `lm_model_cls`: backbone.model.<k> is
    # `lm_prefix + k` there and the LM head weight is `lm_head_key` (Kosmos-2 differs).
    lm_prefix = "model."
    lm_head_key = "lm_head.weight"

    def _no_vqa(self):
        raise NotImplementedError(
            f"backbone family {self.name!r} has no VQA / language-model-head path yet "
            "(implemented for: qwen2_5_vl, qwen3_vl, qwen3_vl_moe, paligemma, paligemma2, kosmos2, llava, "
            "gemma3, internvl, idefics3)")

    @classmethod
    def split_lm_model(cls, full: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(backbone module = `model_cls` instance, LM head) of a loaded `lm_model_cls`."""
        return full.model, full.lm_head

    def vqa_prompt_ids(self, question: str) -> list[int]:
        """Token ids of the VQA prompt (image tokens expanded) up to where the answer starts."""
        self._no_vqa()

    def vqa_answer_ids(self, answer: str) -> list[int]:
        """Token ids of the answer text followed by the family's end-of-answer token."""
        self._no_vqa()

    @property
    def eos_id(self) -> int:
        """The end-of-answer token id (greedy decoding stops there)."""
        self._no_vqa()

    def banned_answer_ids(self) -> list[int]:
        """Ids never generated (image placeholders: they would be taken for image slots)."""
        return [self.image_token_id]

    def lm_hidden(self, frames, rows: list[list[int]],
                  prefix_lens: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Last-layer hidden states (B,T,hidden) and mask (B,T) of right-padded token rows
        (each = vqa_prompt_ids + answer tokens so far); prefix_lens[i] = len(prompt of row i)."""
        self._no_vqa()

    # Optional KV-cache decoding (VQAModel.answer(use_cache=True)). The prompt rows stay
    # right-padded; each new token is appended after the padded block (mask 1) at its row's
    # own position, so a row sees exactly what the no-cache forward of its tokens sees.
    supports_kv_cache = False

    def lm_prefill(self, frames, rows: list[list[int]],
                   prefix_lens: list[int]) -> tuple[torch.Tensor, torch.Tensor, object]:
        """As lm_hidden, and the transformers KV cache of these rows: (hidden, mask, cache)."""
        raise NotImplementedError(f"backbone family {self.name!r} has no KV-cache decoding; "
                                  "decode with use_cache=False")

    def lm_step(self, ids: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor,
                cache) -> torch.Tensor:
        """One new token per row after `cache` (extended in place): ids (B,1); mask (B,T) =
        the prefill mask, then 1 for every token appended since, this one included;
        lengths (B,) = tokens of each row before this one. -> hidden states (B,1,hidden)."""
        raise NotImplementedError(f"backbone family {self.name!r} has no KV-cache decoding")

    def lm_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Post-processing of lm_head outputs (Gemma-2's final soft-capping)."""
        cap = getattr(self.model.config.get_text_config(), "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits


# The tiny builds' common architecture (the embedded scale; arch: in a model entry overrides
# any key). None -> derived from the text side (2 x hidden for MLPs, the text width and
# depth for the vision tower). A family adds its own keys with tiny_arch(...).
TINY_ARCH = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": None, "vision_hidden_size": None, "vision_depth": None,
             "vision_num_heads": 4, "vision_intermediate_size": None}


def tiny_arch(**family_keys) -> dict:
    """TINY_ARCH plus a family's own keys (e.g. num_key_value_heads, image_size)."""
    return {**copy.deepcopy(TINY_ARCH), **family_keys}


def apply_arch_overrides(defaults: dict, arch: dict | None) -> dict:
    """Deep-copy `defaults` and apply `arch`; unknown keys fail loudly with their name."""
    cfg = copy.deepcopy(defaults)
    for key, value in (arch or {}).items():
        if key not in cfg:
            raise KeyError(f"unknown arch key {key!r}; known: {', '.join(sorted(cfg))}")
        cfg[key] = value
    return cfg


def frames_for(frames, instructions: list[str], size: int) -> torch.Tensor:
    """as_uint8_frames, after checking there is one instruction per frame."""
    frames = as_uint8_frames(frames, size)
    if len(instructions) != frames.shape[0]:
        raise ValueError(f"{frames.shape[0]} frames but {len(instructions)} instructions")
    return frames


def as_uint8_frames(frames, size: int) -> torch.Tensor:
    """(B,H,W,3) uint8 as a tensor, resized to size x size (bicubic, as the paper) if needed."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (B,H,W,3), got {tuple(frames.shape)} {frames.dtype}")
    if frames.shape[1] != size or frames.shape[2] != size:
        from PIL import Image
        frames = torch.from_numpy(np.stack([
            np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC))
            for f in frames.cpu().numpy()]))
    return frames


def right_pad_with_query(rows: list[list[int]], pad_id: int, device=None):
    """Right-pad token rows and append one query column.

    Returns ids (B, L+1) with the pad id in the query column (its embedding is replaced),
    mask (B, L+1) = 1 on tokens and on the query, 0 on padding.
    """
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length + 1), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length + 1), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    mask[:, -1] = 1
    return ids.to(device), mask.to(device)


def right_pad(rows: list[list[int]], pad_id: int, device=None):
    """Right-pad token rows (no query column) -> ids (B, L), mask (B, L)."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids.to(device), mask.to(device)


def put_query_last(embeds: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Replace the last column of `embeds` by the query (concat keeps its gradient path)."""
    q = query.to(embeds.dtype).view(1, 1, -1).expand(embeds.shape[0], 1, -1)
    return torch.cat([embeds[:, :-1], q], dim=1)


def normalized_pixels(frames: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (B,H,W,3) -> float32 (B,3,H,W): x/255, then (x - mean) / std per channel."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)
    mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def positions_from_mask(mask: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Position ids that count only mask==1 tokens (start, start+1, ...), so the right
    padding before the query never moves the query's position; padding gets `start`."""
    pos = mask.long().cumsum(-1) - 1 + start
    return pos.masked_fill(mask == 0, start)


def tokenizer_file(source: str) -> str:
    """tokenizer.json of a local folder or an HF repo (the repo needs network once)."""
    from pathlib import Path
    local = Path(source) / "tokenizer.json"
    if local.is_file():
        return str(local)
    from huggingface_hub import hf_hub_download
    return hf_hub_download(source, "tokenizer.json")


class HFBackbone(VLMBackbone):
    SPECIAL_TOKENS: list[str] = []  # special tokens of the runtime tokenizer
    """A family that is one transformers model class + its config class.

    Subclasses set `config_cls`, `model_cls`, `GROUPS` (group -> module prefix[es]) and
    implement `runtime_tokenizer(model_cfg)`, `tiny_config(arch, tokenizer)`, `encode`.
    """

    config_cls = None
    model_cls = None
    GROUPS: dict = {}
    attn_implementation = "sdpa"

    @classmethod
    def runtime_tokenizer(cls, model_cfg: dict):
        """Default: the small BPE built at runtime with the family's SPECIAL_TOKENS (families
        with a real vocabulary available offline, like Qwen, override this)."""
        if (model_cfg.get("tokenizer") or "runtime") != "runtime":
            raise ValueError(f"{cls.name}: only the runtime tokenizer is available")
        from .text import build_tokenizer

        return build_tokenizer(special_tokens=cls.SPECIAL_TOKENS)

    @classmethod
    def tiny_config(cls, arch: dict | None, tokenizer):
        raise NotImplementedError

    @classmethod
    def build(cls, model_cfg: dict) -> "HFBackbone":
        from tokenizers import Tokenizer
        if model_cfg.get("init", "scratch") == "pretrained":
            source = model_cfg.get("source")
            if not source:
                raise ValueError(f"{cls.name}: init: pretrained needs `source` (HF id or local folder)")
            model = cls.model_cls.from_pretrained(source, dtype=torch.float32,
                                                  attn_implementation=cls.attn_implementation)
            tok = Tokenizer.from_file(tokenizer_file(source))  # real vocab for real weights
            # Never shrink the embedding (Qwen pads its embedding beyond the vocabulary).
            if tok.get_vocab_size() > model.get_input_embeddings().num_embeddings:
                model.resize_token_embeddings(tok.get_vocab_size())
            return cls(model, tok)
        tok = cls.runtime_tokenizer(model_cfg)
        config = cls.tiny_config(model_cfg.get("arch"), tok)
        config._attn_implementation = cls.attn_implementation
        return cls(cls.model_cls(config), tok)

    @classmethod
    def build_pretrained_with_lm_head(cls, model_cfg: dict):
        """init=pretrained for VQA: (backbone, lm_head) from `lm_model_cls.from_pretrained`
        (the head may be tied to the input embeddings, as the checkpoint says)."""
        from tokenizers import Tokenizer
        if not cls.supports_vqa or cls.lm_model_cls is None:
            cls._no_vqa(cls)
        source = model_cfg.get("source")
        if not source:
            raise ValueError(f"{cls.name}: init: pretrained needs `source` (HF id or local folder)")
        full = cls.lm_model_cls.from_pretrained(source, dtype=torch.float32,
                                                attn_implementation=cls.attn_implementation)
        tok = Tokenizer.from_file(tokenizer_file(source))
        if tok.get_vocab_size() > full.get_input_embeddings().num_embeddings:
            full.resize_token_embeddings(tok.get_vocab_size())
        model, head = cls.split_lm_model(full)
        return cls(model, tok), head

    @classmethod
    def from_saved(cls, backbone_config: dict, tokenizer_json: str) -> "HFBackbone":
        from tokenizers import Tokenizer
        return cls.from_config(backbone_config, Tokenizer.from_str(tokenizer_json))

    @classmethod
    def from_config(cls, config_dict: dict, tokenizer) -> "HFBackbone":
        """The architecture of a config dict (`saved_config()` output or a published
        config.json) with random weights and no download. Under `torch.device("meta")` this
        sizes a real checkpoint without allocating it (models/real_size.py)."""
        config = cls.config_cls.from_dict(config_dict)
        config._attn_implementation = cls.attn_implementation
        return cls(cls.model_cls(config), tokenizer)

    def groups(self):
        return self._split_groups(self.GROUPS)


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

"""What every backbone family provides to the policy: the VLMBackbone interface.

A backbone owns: the transformers VLM module, its tokenizer and its image preprocessing.
The policy only sees `encode(frames, instructions, query)`, which returns the last-layer
hidden states of [prompt with image tokens, right padding, ActionQuery]: the query is always
the LAST column (mask 1), so the readout is simply `hidden[:, -1]` for every row.

The rest of the family toolkit: hf.py (HFBackbone: one transformers model class + config),
vqa_mixins.py (the language-model path shared by several families), arch.py (the tiny
builds' architecture and `arch:` overrides), tensors.py (frame / token-row helpers).
"""

from __future__ import annotations

import torch
from torch import nn

from vlm4vla.models.families import known_families, supports_vqa

FREEZE_GROUPS = ("vision", "projector", "llm", "word_embeddings")
# What `freeze: [vision]` freezes (models.<m>.vision_freeze): "tower" = the family's whole
# vision module, as the official code does (train_vision False -> vision_tower.requires_grad_(
# False), vlm4vla/model/backbone/base_backbone.py:385-388; for Qwen that module is
# `model.visual`, merger included: roboqwen25vl.py:45-46, roboqwen3vl.py:55-57);
# "encoder" = the vision group alone (the projector keeps training).
VISION_FREEZE = ("tower", "encoder")
# How the VLA forward feeds the LLM (models.<m>.vla_forward): "official" = as the official
# code's forward does, quirks included (Qwen2.5-VL / Qwen3-VL: 1-D positions, no M-RoPE;
# PaliGemma: plain causal attention, from flash-attention-2; Kosmos-2: the image latents
# first, then the official text; InternVL: a system turn); "native" = the family's own VLM
# conventions (3-D M-RoPE over the image grid; PaliGemma's bidirectional prefix). Families
# without such a quirk behave the same either way. A policy saved before the switch existed
# was trained native, and loads so.
VLA_FORWARD = ("official", "native")


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

    # --- VLA forward conventions (VLA_FORWARD) -------------------------------------------
    @property
    def vla_forward(self) -> str:
        cfg = getattr(self.model, "config", None)
        return getattr(cfg, "vlm4vla_vla_forward", None) or VLA_FORWARD[1]

    def set_vla_forward(self, mode: str | None) -> None:
        """Choose the VLA forward conventions (None: official); stored in the model config,
        so a saved policy reloads with the conventions it was trained with."""
        mode = mode or VLA_FORWARD[0]
        if mode not in VLA_FORWARD:
            raise ValueError(f"vla_forward={mode!r}: known {', '.join(VLA_FORWARD)}")
        cfg = getattr(self.model, "config", None)
        if cfg is not None:
            cfg.vlm4vla_vla_forward = mode

    # --- freeze groups ------------------------------------------------------------------
    # groups inside the module the official code freezes as the "vision tower" (Qwen: the
    # merger, i.e. the projector group, lives in `model.visual`)
    VISION_TOWER_ALSO: tuple[str, ...] = ()

    @classmethod
    def frozen_groups(cls, freeze, vision_freeze: str | None = None) -> list[str]:
        """The groups a `freeze` list freezes in this family (see VISION_FREEZE)."""
        scope = vision_freeze or VISION_FREEZE[0]
        if scope not in VISION_FREEZE:
            raise ValueError(f"vision_freeze={scope!r}: known {', '.join(VISION_FREEZE)}")
        groups = set(freeze)
        if "vision" in groups and scope == "tower":
            groups |= set(cls.VISION_TOWER_ALSO)
        return sorted(groups)

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
            f"(implemented for: {', '.join(f for f in known_families() if supports_vqa(f))})")

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

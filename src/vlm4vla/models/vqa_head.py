"""The VLM with its language-model head, for auxiliary embodied VQA (paper Figure 4).

`VQAModel` = a VLM backbone (the very module the VLA uses, `backbone.model`) + `lm_head`
(hidden -> vocabulary). Its weights are saved under the names of transformers'
...ForConditionalGeneration classes: `model.*` (= `backbone.model.*`) and `lm_head.weight`
(omitted when tied to the input embeddings; Kosmos-2: its own names, the backbone's
`lm_prefix` / `lm_head_key`), so a VLM checkpoint loads straight into a VLA
backbone (`init: aux`, see `load_vlm_backbone`); the LM head is then dropped.

Prompt layout: the family's VLA prompt with the question in place of the action question
(Qwen chat template: user turn = image + question, assistant turn = answer + <|im_end|>;
PaliGemma: prefix image + BOS + question + "\\n", suffix answer + <eos>; the other families
likewise, see their modules). No ActionQuery.

    vqa_loss(frames, questions, answers)  next-token cross-entropy on answer tokens only
                                          (+ the end token); prompt, image and padding
                                          positions have label -100
    answer(frames, questions, max_new_tokens)  greedy decoding, deterministic; rows are
                                          right-padded and finished rows leave the batch, so
                                          a row's answer does not depend on its batch mates

Decoding re-runs the full forward (vision included) per new token, without a KV cache:
simple and exactly padding-independent, fine for short answers and tiny/small models.
`answer(..., use_cache=True)` (families with `supports_kv_cache`) runs the prompt once and
then one token per row on the transformers KV cache: the same greedy answers (tested).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..io import dump_json, read_json
from .backbones import VLMBackbone, get_backbone
from .backbones.base import FREEZE_GROUPS

VLM_FORMAT = 1
VLM_WEIGHTS = "vlm.safetensors"
VLM_JSON = "vlm.json"
TOKENIZER_JSON = "tokenizer.json"
IGNORE = -100


class VQAModel(nn.Module):
    def __init__(self, backbone: VLMBackbone, lm_head: nn.Linear, freeze=()):
        super().__init__()
        if not getattr(backbone, "supports_vqa", False):
            backbone._no_vqa()
        self.backbone = backbone
        self.lm_head = lm_head
        self.freeze = sorted(freeze)
        self.apply_freeze(self.freeze)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, model_cfg: dict, seed: int) -> "VQAModel":
        """Deterministic: random init under `seed` in a forked RNG. init=scratch builds the
        backbone exactly as VLAPolicy.build would (same seed -> same backbone weights), then
        a fresh untied LM head (normal, std = initializer_range); init=pretrained loads the
        family's ...ForConditionalGeneration (with its LM head); init=aux continues from
        a VLM folder (model_cfg["vlm"])."""
        family = get_backbone(model_cfg["backbone"])
        if not getattr(family, "supports_vqa", False):
            family._no_vqa(family)
        freeze = family.frozen_groups(model_cfg.get("freeze") or [], model_cfg.get("vision_freeze"))
        init = model_cfg.get("init", "scratch")
        if init == "aux":
            return cls.load(vlm_dir_of(model_cfg), freeze=freeze, family=model_cfg["backbone"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if init == "pretrained":
                backbone, head = family.build_pretrained_with_lm_head(model_cfg)
            else:
                backbone = family.build(model_cfg)
                head = new_lm_head(backbone)
            return cls(backbone, head, freeze)

    @classmethod
    def load(cls, vlm_dir, freeze=(), family: str | None = None) -> "VQAModel":
        """Rebuild a VQAModel from a VLM folder written by save() (no network)."""
        from safetensors.torch import load_file
        info, backbone = _saved_backbone(vlm_dir, family)
        head = nn.Linear(backbone.hidden_size, backbone.model.get_input_embeddings().num_embeddings,
                         bias=False)
        if info["lm_head_tied"]:
            head.weight = backbone.model.get_input_embeddings().weight
        model = cls(backbone, head, freeze)
        model.load_vlm_state_dict(load_file(str(Path(vlm_dir) / VLM_WEIGHTS)))
        return model

    # --- weights under HF ...ForConditionalGeneration names ------------------------------
    @property
    def tied(self) -> bool:
        return self.lm_head.weight is self.backbone.model.get_input_embeddings().weight

    def vlm_state_dict(self) -> dict[str, torch.Tensor]:
        bb = self.backbone
        out = {f"{bb.lm_prefix}{k}": v for k, v in bb.model.state_dict().items()}
        if not self.tied:
            out[bb.lm_head_key] = self.lm_head.weight
        return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}

    def load_vlm_state_dict(self, state: dict) -> None:
        bb = self.backbone
        bb.model.load_state_dict(backbone_state(state, bb.lm_prefix, bb.lm_head_key), strict=True)
        if not self.tied:
            self.lm_head.weight.data.copy_(state[bb.lm_head_key])

    def save(self, out_dir, info: dict | None = None) -> dict:
        """Write vlm.safetensors + tokenizer.json + vlm.json into `out_dir` (plain writes;
        train_vqa makes the whole folder appear atomically). Returns the vlm.json content."""
        import os

        from safetensors.torch import save_file
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_file(self.vlm_state_dict(), str(out_dir / VLM_WEIGHTS), metadata={"format": "pt"})
        os.chmod(out_dir / VLM_WEIGHTS, 0o644)  # safetensors creates it owner-only
        (out_dir / TOKENIZER_JSON).write_text(self.backbone.tokenizer.to_str())
        meta = {"format": VLM_FORMAT, "backbone": self.backbone.name,
                "backbone_config": self.backbone.saved_config(), "lm_head_tied": self.tied,
                **(info or {})}
        (out_dir / VLM_JSON).write_text(dump_json(meta, default=str))
        return meta

    # --- freeze switches (the VLA's groups; the LM head trains like the action head) ----
    def apply_freeze(self, freeze) -> None:
        unknown = set(freeze) - set(FREEZE_GROUPS)
        if unknown:
            raise ValueError(f"unknown freeze group(s) {sorted(unknown)}; known: {', '.join(FREEZE_GROUPS)}")
        self.lm_head.weight.requires_grad_(True)
        # a tied head is the word-embedding table: it follows the word_embeddings switch
        for group, params in self.backbone.groups().items():
            for p in params:
                p.requires_grad_(group not in freeze)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = dict(self.backbone.groups())
        if not self.tied:
            groups["lm_head"] = [self.lm_head.weight]
        return groups

    def param_counts(self) -> dict:
        groups = {name: {"total": sum(p.numel() for p in ps),
                         "trainable": sum(p.numel() for p in ps if p.requires_grad)}
                  for name, ps in self.param_groups().items()}
        return {"total": sum(p.numel() for p in self.parameters()),
                "trainable": sum(p.numel() for p in self.parameters() if p.requires_grad),
                "groups": groups}

    # --- training -----------------------------------------------------------------------
    def vqa_batch(self, questions: list[str], answers: list):
        """Token rows prompt+answer, their labels (answer ids + end token; IGNORE on the
        prompt) and prompt lengths. Returns (rows, labels (B,T) right-padded with IGNORE,
        prefix_lens). An answer may also be pre-tokenised: a sequence of token ids, used
        as the target as given (it must then hold the end token itself; FAST action
        tokens, train/action_tokens.py)."""
        if len(questions) != len(answers):
            raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
        bb = self.backbone
        prompts = [bb.vqa_prompt_ids(q) for q in questions]
        targets = [bb.vqa_answer_ids(a) if isinstance(a, str) else [int(t) for t in a]
                   for a in answers]
        rows = [p + t for p, t in zip(prompts, targets)]
        labels = torch.full((len(rows), max(len(r) for r in rows)), IGNORE, dtype=torch.long)
        for i, (p, t) in enumerate(zip(prompts, targets)):
            labels[i, len(p):len(p) + len(t)] = torch.tensor(t, dtype=torch.long)
        return rows, labels, [len(p) for p in prompts]

    def logits_at(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.backbone.lm_logits(self.lm_head(hidden.to(self.lm_head.weight.dtype)))

    def vqa_loss(self, frames, questions: list[str], answers: list[str]) -> torch.Tensor:
        """Mean next-token cross-entropy over the answer tokens (and end token) of the batch.
        Only the positions that predict an answer token go through the LM head."""
        rows, labels, prefix_lens = self.vqa_batch(list(questions), list(answers))
        hidden, _ = self.backbone.lm_hidden(frames, rows, prefix_lens)
        labels = labels.to(hidden.device)
        target = labels[:, 1:]
        sel = target != IGNORE  # position t predicts token t+1
        logits = self.logits_at(hidden[:, :-1][sel])
        return F.cross_entropy(logits.float(), target[sel])

    def forward(self, frames, questions, answers) -> torch.Tensor:
        return self.vqa_loss(frames, questions, answers)

    # --- inference ----------------------------------------------------------------------
    @torch.no_grad()
    def answer(self, frames, questions: list[str], max_new_tokens: int = 32,
               use_cache: bool = False) -> list[str]:
        """Greedy answers (argmax, first index on ties). Rows are right-padded and each is
        read at its own last token; a row leaves the batch at its end token, so its answer
        does not depend on the other rows (up to float round-off). use_cache: decode on the
        KV cache (backbone.supports_kv_cache) instead of re-running the full forward."""
        import numpy as np

        bb = self.backbone
        questions = list(questions)
        if not isinstance(frames, torch.Tensor):  # validated and resized in lm_hidden
            frames = torch.from_numpy(np.ascontiguousarray(frames))
        if len(questions) != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {len(questions)} questions")
        prompts = [bb.vqa_prompt_ids(q) for q in questions]
        generated: list[list[int]] = [[] for _ in questions]
        active = list(range(len(questions)))
        banned = torch.tensor(sorted(set(bb.banned_answer_ids())), dtype=torch.long)
        if use_cache and not getattr(bb, "supports_kv_cache", False):
            raise NotImplementedError(f"backbone family {bb.name!r} has no KV-cache decoding; "
                                      "decode with use_cache=False")
        was_training = self.training
        self.eval()
        try:
            if use_cache:
                generated = self._greedy_on_cache(frames, prompts, int(max_new_tokens), banned)
            else:
                for _ in range(int(max_new_tokens)):
                    if not active:
                        break
                    rows = [prompts[i] + generated[i] for i in active]
                    hidden, _ = bb.lm_hidden(frames[active], rows, [len(prompts[i]) for i in active])
                    last = torch.tensor([len(r) - 1 for r in rows], device=hidden.device)
                    nxt = self._greedy_pick(hidden[torch.arange(len(rows), device=hidden.device), last],
                                            banned)
                    still = []
                    for i, tok in zip(active, nxt):
                        if tok == bb.eos_id:
                            continue
                        generated[i].append(tok)
                        still.append(i)
                    active = still
        finally:
            self.train(was_training)
        return [bb.tokenizer.decode(g, skip_special_tokens=True).strip() for g in generated]

    def _greedy_pick(self, hidden: torch.Tensor, banned: torch.Tensor) -> list[int]:
        logits = self.logits_at(hidden)
        logits[:, banned.to(logits.device)] = float("-inf")
        return logits.argmax(-1).tolist()

    def _greedy_on_cache(self, frames, prompts: list[list[int]], max_new_tokens: int,
                         banned: torch.Tensor) -> list[list[int]]:
        """answer()'s loop on the KV cache: one prefill of the right-padded prompts, then one
        token per active row; finished rows leave the batch (and the cache)."""
        bb = self.backbone
        generated: list[list[int]] = [[] for _ in prompts]
        if max_new_tokens <= 0:
            return generated
        hidden, mask, cache = bb.lm_prefill(frames, prompts, [len(p) for p in prompts])
        device = hidden.device
        lengths = torch.tensor([len(p) for p in prompts], device=device)
        last = hidden[torch.arange(len(prompts), device=device), lengths - 1]
        active = list(range(len(prompts)))
        for step in range(max_new_tokens):
            nxt = self._greedy_pick(last, banned)
            keep = [j for j, tok in enumerate(nxt) if tok != bb.eos_id]
            for j in keep:
                generated[active[j]].append(nxt[j])
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(active):
                sel = torch.tensor(keep, device=device)
                cache.batch_select_indices(sel)
                mask, lengths = mask[sel], lengths[sel]
                active = [active[j] for j in keep]
            ids = torch.tensor([[nxt[j]] for j in keep], dtype=torch.long, device=device)
            mask = torch.cat([mask, mask.new_ones(len(keep), 1)], dim=1)
            last = bb.lm_step(ids, mask, lengths, cache)[:, -1]
            lengths = lengths + 1
        return generated


def new_lm_head(backbone: VLMBackbone) -> nn.Linear:
    """A fresh untied LM head over the embedding table's rows, HF-style normal init."""
    n = backbone.model.get_input_embeddings().num_embeddings
    head = nn.Linear(backbone.hidden_size, n, bias=False)
    std = getattr(backbone.model.config.get_text_config(), "initializer_range", 0.02)
    nn.init.normal_(head.weight, mean=0.0, std=std)
    return head


def backbone_state(state: dict, prefix: str = "model.", head_key: str = "lm_head.weight") -> dict:
    """`<prefix>*` entries of a VLM checkpoint but the LM head, renamed to the backbone
    module's names (the backbone family's `lm_prefix` / `lm_head_key`)."""
    out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and k != head_key}
    if not out:
        raise ValueError(f"not a VLM checkpoint: no `{prefix}*` weights")
    return out


def vlm_dir_of(model_cfg: dict) -> Path:
    vlm = model_cfg.get("vlm")
    if not vlm:
        raise ValueError("init: aux needs `vlm: <folder written by train_vqa>` in the model config")
    return Path(vlm)


def vlm_digest(model_cfg: dict) -> str | None:
    """sha256 of the weights of the VLM folder a model starts from (init aux), None for any
    other init: a start point is identified by its weights, not its path (resume keys)."""
    if model_cfg.get("init") != "aux":
        return None
    from ..data.folder_store import sha256_file

    return sha256_file(Path(model_cfg["vlm"]) / VLM_WEIGHTS)


def _saved_backbone(vlm_dir, family: str | None) -> tuple[dict, VLMBackbone]:
    vlm_dir = Path(vlm_dir)
    meta = vlm_dir / VLM_JSON
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} missing: {vlm_dir} is not a VLM folder written by train_vqa")
    info = read_json(meta)
    if info.get("format") != VLM_FORMAT:
        raise ValueError(f"{meta}: format {info.get('format')} != {VLM_FORMAT}")
    if family is not None and info["backbone"] != family:
        raise ValueError(f"{vlm_dir} holds a {info['backbone']!r} VLM, the config asks for {family!r}")
    backbone = get_backbone(info["backbone"]).from_saved(
        info["backbone_config"], (vlm_dir / TOKENIZER_JSON).read_text())
    return info, backbone


def load_vlm_backbone(model_cfg: dict) -> VLMBackbone:
    """init: aux -> the backbone of the VLM folder model_cfg["vlm"] with its trained weights
    (architecture and tokenizer from the folder; the LM head is dropped)."""
    from safetensors.torch import load_file
    vlm_dir = vlm_dir_of(model_cfg)
    _, backbone = _saved_backbone(vlm_dir, model_cfg["backbone"])
    state = backbone_state(load_file(str(vlm_dir / VLM_WEIGHTS)), backbone.lm_prefix, backbone.lm_head_key)
    backbone.model.load_state_dict(state, strict=True)
    return backbone

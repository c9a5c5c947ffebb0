"""Table 4's stage 1 (paper section 4.4): fine-tune the VLM, through its LM head, to emit
FAST action tokens for the demonstrations, with the vision encoder frozen or trained; stage 2
is the usual VLA training starting from that VLM (model_cfg {init: aux, vlm: <folder>}).

Data: the demo episode store the VLA trains on, with the VLA's normalisation
(ActionNormalizer.fit on the store's actions, chunks from ChunkDataset). A sample is a store
step whose whole chunk lies inside its episode (the VLA masks the zero-filled tail of the
last chunk-1 steps; a token target cannot be masked, so those steps are left out). The FAST
tokenizer (models/fast_tokenizer.py) is fitted on the training samples' chunks (all 7 dims:
6 arm dims in [-1, 1], gripper in {0, 1}).

Prompt and target: the family's VQA prompt (models/vqa_head.py) with the paper's action
question as the question, ACTION_QUESTION = "What action should the robotic arm take to
{instruction}" (for the Qwen families this is token for token the VLA prompt, minus the
ActionQuery); the answer is [family answer prefix] + action tokens + the family's end token.
The loss is next-token cross-entropy on the answer only (action tokens + end token; the
Qwen families have no answer prefix), image, prompt and padding positions are unlabelled.

Token mapping (as pi0-FAST): FAST id i -> the VLM id action_ids[i], where action_ids are the
`n` highest ORDINARY ids of the VLM's tokenizer in increasing order (added / special tokens,
the end token and the image placeholders are skipped), so no embedding row is added and the
LM head keeps its size. The mapping may use at most half of the ordinary vocabulary,
otherwise a ValueError says to lower fast.vocab_size.

Output folder (the format train_vqa writes, so VLAPolicy.build / load_vlm_backbone read it;
written to a temporary sibling and renamed into place; deterministic bytes):
    vlm.safetensors     weights under HF ...ForConditionalGeneration names
    tokenizer.json      the backbone's tokenizer
    vlm.json            backbone + config, kind "fast_action_tokens", model/train/fast configs,
                        chunk, norm_stats, action_token_ids, question, steps, seed, ...
    train_log.jsonl     {"step", "loss", "lr"} every log_every steps
    fast_tokenizer.json the fitted FAST tokenizer
Resumable state (weights, optimiser, RNG, sampler) lives in state_dir (train/loop.py).

evaluate_action_tokens measures what stage 1 learned on (held-out) demo chunks: teacher-forced
token accuracy and greedy constrained decoding (only action tokens and the end token may be
emitted) -> decoded-action L1 error in normalised units, next to two references: the FAST
quantisation floor and a constant (mean-chunk) predictor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..data.dataset import ChunkDataset
from ..data.episodes import EpisodeStore
from ..data.normalize import ActionNormalizer
from ..io import read_json, write_json
from ..models.fast_tokenizer import FastTokenizer, fast_config
from ..models.vqa_head import IGNORE, VLM_FORMAT, VLM_JSON, VQAModel, vlm_digest
from .loop import EpochSampler, LoopConfig, config_hash, run_loop, set_determinism
from .vqa import write_vlm_folder

ACTION_QUESTION = "What action should the robotic arm take to {instruction}"
FAST_JSON = "fast_tokenizer.json"
KIND = "fast_action_tokens"


# --- token mapping ------------------------------------------------------------------------
def action_token_ids(backbone, n: int) -> list[int]:
    """The VLM ids of FAST ids 0..n-1: the n highest ordinary tokenizer ids (no added or
    special token, not the end token, no image placeholder, inside the embedding table),
    increasing. Raises ValueError if that would take more than half of the ordinary ids."""
    tok = backbone.tokenizer
    rows = backbone.model.get_input_embeddings().num_embeddings
    skip = set(tok.get_added_tokens_decoder()) | set(backbone.banned_answer_ids()) | {backbone.eos_id}
    for attr in ("pad_id", "image_token_id"):
        if getattr(backbone, attr, None) is not None:
            skip.add(int(getattr(backbone, attr)))
    ordinary = sorted(i for i in set(tok.get_vocab(with_added_tokens=False).values())
                      if i not in skip and i < rows)
    if int(n) < 1 or int(n) > len(ordinary) // 2:
        raise ValueError(
            f"{backbone.name}: the VLM vocabulary has {len(ordinary)} ordinary token ids; mapping "
            f"{n} FAST action tokens onto its last ids may use at most half of them "
            f"({len(ordinary) // 2}). Lower experiments.vision_supervision.fast.vocab_size "
            "(or use a backbone with a larger vocabulary, e.g. `tokenizer: qwen`).")
    return ordinary[-int(n):]


def answer_prefix_ids(backbone) -> list[int]:
    """What the family puts between the prompt and the answer text (empty for Qwen)."""
    ids = backbone.vqa_answer_ids("")
    if not ids or ids[-1] != backbone.eos_id:
        raise ValueError(f"{backbone.name}: vqa_answer_ids('') does not end with the end token")
    return ids[:-1]


def question_for(instruction: str) -> str:
    return ACTION_QUESTION.format(instruction=instruction)


# --- data ---------------------------------------------------------------------------------
def full_chunk_steps(store: EpisodeStore, dataset: ChunkDataset,
                     episodes: list[int] | None = None) -> np.ndarray:
    """Store steps (increasing) whose whole chunk is inside the episode, restricted to the
    episode indices `episodes` if given."""
    full = dataset.masks.all(axis=1)
    if episodes is not None:
        known = {int(e["index"]) for e in store.episodes}
        unknown = sorted(set(int(e) for e in episodes) - known)
        if unknown:
            raise ValueError(f"episode(s) {unknown} not in {store.path} (it has {len(known)})")
        full &= np.isin(np.asarray(store.episode_index), np.asarray(sorted(set(episodes)), dtype=np.int64))
    steps = np.flatnonzero(full)
    if len(steps) == 0:
        which = "" if episodes is None else f" (episodes {sorted(episodes)})"
        raise ValueError(f"no step of {store.path}{which} has a full chunk of {dataset.chunk} "
                         "actions inside its episode")
    return steps


class ActionTokenData:
    """The stage-1 samples of a store: steps with a full chunk, their normalised chunks
    (S, chunk, 7), FAST ids and VLM answer ids (prefix + mapped action ids + end token)."""

    def __init__(self, dataset: ChunkDataset, steps: np.ndarray, fast: FastTokenizer,
                 backbone, action_ids: list[int]):
        if len(action_ids) != fast.vocab_size:
            raise ValueError(f"{len(action_ids)} VLM ids for {fast.vocab_size} FAST tokens")
        self.dataset, self.steps, self.fast = dataset, np.asarray(steps, dtype=np.int64), fast
        self.action_ids = list(action_ids)
        self.chunks = dataset.chunks[self.steps]
        self.fast_ids = fast.encode_batch(self.chunks)
        prefix, eos = answer_prefix_ids(backbone), backbone.eos_id
        self.answers = [prefix + [self.action_ids[t] for t in ids] + [eos] for ids in self.fast_ids]

    def __len__(self) -> int:
        return len(self.steps)

    def batch(self, picked) -> dict:
        """Sample positions -> {"frames" uint8 (B,H,W,3), "questions", "answers" (id lists)}."""
        picked = [int(i) for i in picked]
        b = self.dataset.batch(self.steps[picked])
        return {"frames": b["frames"], "questions": [question_for(t) for t in b["instructions"]],
                "answers": [self.answers[i] for i in picked]}


def _stage1_loss(model, batch: dict) -> dict:
    # model(...) = VQAModel.vqa_loss on pre-tokenised answers, through any DDP wrapper
    return {"loss": model(batch["frames"], batch["questions"], batch["answers"])}


def _prompt_overlap(backbone, data: ActionTokenData) -> int:
    """Distinct action-token ids that also occur in the training prompts (their text meaning
    is shared with an action token; 0 for the Qwen prompts)."""
    instructions = sorted({data.dataset.instructions[s] for s in data.steps})
    used = {i for t in instructions for i in backbone.vqa_prompt_ids(question_for(t))}
    return len(used & set(data.action_ids))


# --- training -----------------------------------------------------------------------------
def train_action_tokens(model_cfg: dict, train_cfg: dict, fast_cfg: dict | None, demos_dir,
                        chunk: int, out_dir, state_dir, seed: int, threads: int,
                        progress: bool | None = None, episodes: list[int] | None = None,
                        action_norm: dict | None = None) -> dict:
    """Stage 1: fit the FAST tokenizer on the demo chunks of `demos_dir` (only the episode
    indices `episodes` if given) and fine-tune the VLM of `model_cfg` (freeze switches from
    model_cfg["freeze"], e.g. ["vision"]; lr: model_cfg["lr"] if set, as the VLA) to emit
    them. train_cfg: steps, batch_size, lr, warmup_steps, grad_clip, weight_decay,
    checkpoint_every, log_every (loop.LoopConfig). fast_cfg: {vocab_size, scale}.
    Returns the vlm.json content (also written to out_dir)."""
    set_determinism(threads)
    fast_cfg = fast_config(fast_cfg)
    episodes = None if episodes is None else sorted({int(e) for e in episodes})
    store = EpisodeStore(demos_dir)
    normalizer = ActionNormalizer.from_config(action_norm, np.asarray(store.actions))
    dataset = ChunkDataset(store, chunk, normalizer)
    steps = full_chunk_steps(store, dataset, episodes)
    fast = FastTokenizer.fit(dataset.chunks[steps], fast_cfg)
    model = VQAModel.build(model_cfg, seed)
    action_ids = action_token_ids(model.backbone, fast.vocab_size)
    data = ActionTokenData(dataset, steps, fast, model.backbone, action_ids)
    cfg = LoopConfig.from_train_cfg(train_cfg, lr=model_cfg.get("lr"), precision=model_cfg.get("precision"))
    sampler = EpochSampler(len(data), int(train_cfg["batch_size"]), seed)
    demos = {k: v["sha256"] for k, v in store.meta["arrays"].items()}
    key = config_hash({"kind": KIND, "model_cfg": model_cfg, "train_cfg": train_cfg,
                       "fast": fast_cfg, "chunk": int(chunk), "seed": seed, "threads": threads,
                       "episodes": episodes, "format": VLM_FORMAT, "demos": demos,
                       "vlm": vlm_digest(model_cfg)})
    log = run_loop(model, _stage1_loss, sampler, data.batch, cfg, state_dir, key, progress, seed=seed)
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under `accelerate launch` one process writes
        return {}

    return write_vlm_folder(model, out_dir, log, {
        "kind": KIND, "model_cfg": model_cfg, "train_cfg": train_cfg, "fast": fast_cfg,
        "chunk": int(chunk), "seed": seed, "steps": cfg.steps, "episodes": episodes,
        "train_samples": len(data), "demos": demos, "norm_stats": normalizer.to_dict(),
        "question": ACTION_QUESTION, "action_token_ids": action_ids,
        "fast_vocab_size": fast.vocab_size,
        "tokens_per_chunk": round(float(np.mean([len(i) for i in data.fast_ids])), 4),
        "action_ids_in_prompts": _prompt_overlap(model.backbone, data),
        "param_counts": model.param_counts()}, extra=lambda tmp: fast.save(tmp / FAST_JSON))


# --- evaluation ---------------------------------------------------------------------------
class ActionTokenVLM:
    """A stage-1 VLM folder for inference: the VQAModel, its FAST tokenizer and mapping."""

    def __init__(self, vlm_dir):
        vlm_dir = Path(vlm_dir)
        self.info = read_json(vlm_dir / VLM_JSON)
        if self.info.get("kind") != KIND:
            raise ValueError(f"{vlm_dir} is not a FAST stage-1 VLM folder (kind {self.info.get('kind')!r})")
        self.model = VQAModel.load(vlm_dir).eval()
        self.fast = FastTokenizer.load(vlm_dir / FAST_JSON)
        self.action_ids = list(self.info["action_token_ids"])
        self.to_fast = {v: i for i, v in enumerate(self.action_ids)}
        bb = self.model.backbone
        self.prefix, self.eos = answer_prefix_ids(bb), bb.eos_id
        self.allowed = torch.tensor(sorted(self.action_ids + [self.eos]), dtype=torch.long)

    def _constrained(self, logits: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(logits, float("-inf"))
        out[..., self.allowed] = logits[..., self.allowed]
        return out

    @torch.no_grad()
    def generate(self, frames, questions: list[str]) -> list[list[int]]:
        """Greedy constrained decoding -> FAST ids per row (the end token excluded). At most
        chunk * dims tokens (a FAST token holds at least one coefficient). Rows are
        right-padded and leave the batch at the end token, as VQAModel.answer."""
        bb = self.model.backbone
        if not isinstance(frames, torch.Tensor):
            frames = torch.from_numpy(np.ascontiguousarray(frames))
        prompts = [bb.vqa_prompt_ids(q) + self.prefix for q in questions]
        generated: list[list[int]] = [[] for _ in questions]
        active = list(range(len(questions)))
        for _ in range(self.fast.chunk * self.fast.dims):
            if not active:
                break
            rows = [prompts[i] + generated[i] for i in active]
            hidden, _ = bb.lm_hidden(frames[active], rows, [len(prompts[i]) for i in active])
            last = torch.tensor([len(r) - 1 for r in rows], device=hidden.device)
            logits = self._constrained(self.model.logits_at(
                hidden[torch.arange(len(rows), device=hidden.device), last]))
            still = []
            for i, tok in zip(active, logits.argmax(-1).tolist()):
                if tok != self.eos:
                    generated[i].append(tok)
                    still.append(i)
            active = still
        return [[self.to_fast[t] for t in g] for g in generated]

    @torch.no_grad()
    def teacher_forced(self, frames, questions: list[str], answers: list[list[int]]):
        """(loss, correct, count) of the next-token predictions on the answers: loss is the
        training cross-entropy (whole vocabulary), correctness is the constrained argmax."""
        rows, labels, prefix = self.model.vqa_batch(questions, answers)
        hidden, _ = self.model.backbone.lm_hidden(frames, rows, prefix)
        target = labels[:, 1:].to(hidden.device)
        sel = target != IGNORE
        logits = self.model.logits_at(hidden[:, :-1][sel]).float()
        loss = F.cross_entropy(logits, target[sel], reduction="sum")
        correct = (self._constrained(logits).argmax(-1) == target[sel]).sum()
        return float(loss), int(correct), int(sel.sum())


def evaluate_action_tokens(vlm_dir, demos_dir, episodes: list[int] | None = None,
                           max_samples: int | None = 64, batch_size: int = 16, threads: int = 1,
                           out_dir=None) -> dict:
    """What stage 1 learned, on the full-chunk steps of `episodes` (e.g. held-out ones; all
    if None), at most `max_samples` of them, evenly spaced. Normalisation = the stage-1 run's
    (vlm.json norm_stats). Returns (and with out_dir writes metrics.json):
        n, token_accuracy (teacher-forced, constrained argmax), loss (mean CE per token),
        exact_sequence (greedy tokens == target), l1 (mean |decoded - true| over chunk x 7,
        normalised units), l1_per_dim, l1_quantisation (FAST round trip of the true chunk:
        the floor), l1_constant (the mean chunk of these samples predicted for all: what a
        model ignoring image and instruction can reach at best)."""
    set_determinism(threads)
    vlm = ActionTokenVLM(vlm_dir)
    store = EpisodeStore(demos_dir)
    normalizer = ActionNormalizer.from_dict(vlm.info["norm_stats"])
    dataset = ChunkDataset(store, vlm.info["chunk"], normalizer)
    steps = full_chunk_steps(store, dataset, episodes)
    if max_samples is not None and len(steps) > int(max_samples):
        steps = steps[np.unique(np.linspace(0, len(steps) - 1, int(max_samples)).round().astype(int))]
    data = ActionTokenData(dataset, steps, vlm.fast, vlm.model.backbone, vlm.action_ids)
    loss_sum, correct, count, exact, preds = 0.0, 0, 0, 0, []
    for start in range(0, len(data), int(batch_size)):
        picked = list(range(start, min(start + int(batch_size), len(data))))
        b = data.batch(picked)
        ls, c, n = vlm.teacher_forced(b["frames"], b["questions"], b["answers"])
        loss_sum, correct, count = loss_sum + ls, correct + c, count + n
        for i, ids in zip(picked, vlm.generate(b["frames"], b["questions"])):
            exact += int(ids == data.fast_ids[i])
            preds.append(vlm.fast.decode(ids))
    true = data.chunks.astype(np.float64)
    err = np.abs(np.stack(preds).astype(np.float64) - true)
    quant = np.stack([vlm.fast.decode(ids) for ids in data.fast_ids]).astype(np.float64)
    metrics = {"n": len(data), "episodes": None if episodes is None else sorted({int(e) for e in episodes}),
               "token_accuracy": correct / count, "loss": loss_sum / count,
               "exact_sequence": exact / len(data), "l1": float(err.mean()),
               "l1_per_dim": [float(v) for v in err.mean(axis=(0, 1))],
               "l1_quantisation": float(np.abs(quant - true).mean()),
               "l1_constant": float(np.abs(true - true.mean(axis=0, keepdims=True)).mean())}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "metrics.json", metrics)
    return metrics

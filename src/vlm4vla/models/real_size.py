"""Paper-scale architectures without weights: sizes, prompt lengths, a full-width step and a
per-GPU memory plan for the paper's ten backbones.

The published architecture of each backbone is data: config/data/real_size/<model>.json
holds the values of its HF repo's config.json (with a `source` saying where they were read)
and the published total parameter count (with its source). Everything here goes through the
SAME family classes the pipeline trains (`get_backbone(family).from_config(config, tokenizer)`,
the constructor `from_saved` uses), and through `VLAPolicy` for the ActionQuery and the head:

- `size_report(name)`: the architecture built on the meta device (no memory, no download):
  parameters per freeze group (the family's `groups()`), ActionQuery, action head (width 1024,
  the paper's), total, the prompt length of a 224 px frame (as paper.yaml's model entry
  resizes it: Qwen to 448), and the gap to the published total (the
  backbones are `*Model` classes without an LM head, so an untied head is added back for
  that comparison; a tied one is the word-embedding matrix, counted once).
- `full_width_step(name)`: the same config with the vision and text layer counts cut to 2,
  every width real (hidden sizes, heads, vocabulary, image-token count), built on CPU with
  random weights; one forward + backward through the policy, with checks on shapes, dtypes,
  masks and the ActionQuery readout, and the activation bytes saved for backward per vision
  block / text layer (to scale to the real depth in `memory_plan`).
- `memory_plan(...)`: per-GPU bytes for DDP / ZeRO-2 / FSDP (ZeRO-3) from those counts.
"""

from __future__ import annotations

import copy
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbones import get_backbone
from .backbones.base import FREEZE_GROUPS
from .policy import PAPER_HEAD_WIDTH, VLAPolicy

REPO = Path(__file__).resolve().parents[3]
SPEC_DIR = REPO / "config" / "data" / "real_size"
CHUNK = 4  # LIBERO / Bridge action chunk (the paper's)
IMAGE_SIDE = 224  # the paper's frame side (families may resize further: InternVL to 448)
# Two LIBERO-10 instructions (tasks 0 and 9): the typical one for the prompt length, both
# for the full-width batch (different lengths -> right padding before the query).
INSTRUCTION = "put both the alphabet soup and the tomato sauce in the basket"
SECOND_INSTRUCTION = "pick up the book and place it in the back compartment of the caddy"

QWEN_FAMILIES = ("qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe")
# Qwen3's tokenizer adds these after Qwen2.5-VL's 22 special tokens (ids 151665..151668);
# InternVL3.5 then adds its image and grounding tokens (<img> 151669, </img> 151670,
# <IMG_CONTEXT> 151671 = the checkpoint's image_token_id, checked in tokenizer_for).
QWEN3_EXTRA_TOKENS = ["<tool_response>", "</tool_response>", "<think>", "</think>"]
INTERNVL_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>",
                   "<box>", "</box>"]

GB = 1e9


# --- specs ------------------------------------------------------------------------------
def spec_names(spec_dir: Path | None = None) -> list[str]:
    return sorted(p.stem for p in Path(spec_dir or SPEC_DIR).glob("*.json"))


def load_spec(name: str, spec_dir: Path | None = None) -> dict:
    spec = json.loads((Path(spec_dir or SPEC_DIR) / f"{name}.json").read_text())
    for key in ("model", "hf_id", "backbone", "source", "published_total", "config"):
        if key not in spec:
            raise KeyError(f"{name}: real-size spec lacks {key!r}")
    return spec


def tokenizer_for(spec: dict):
    """(tokenizer, kind): the real Qwen vocabulary for the Qwen families and InternVL3.5 (its
    LLM is Qwen3), checked against the config's special-token ids; the family's runtime BPE
    for PaliGemma and Kosmos-2 (their SentencePiece vocabularies are not available offline;
    the config's own special ids are used for image / BOS / pad, the text ids differ)."""
    family = spec["backbone"]
    cfg = spec["config"]
    if family in QWEN_FAMILIES or family == "internvl":
        from .backbones.qwen_tokenizer import qwen_tokenizer
        tok = qwen_tokenizer()
        if family == "internvl":
            tok.add_special_tokens(QWEN3_EXTRA_TOKENS + INTERNVL_TOKENS)
            want = {"<IMG_CONTEXT>": cfg["image_token_id"]}
        else:
            want = {"<|image_pad|>": cfg["image_token_id"], "<|video_pad|>": cfg["video_token_id"],
                    "<|vision_start|>": cfg["vision_start_token_id"],
                    "<|vision_end|>": cfg["vision_end_token_id"]}
        got = {t: tok.token_to_id(t) for t in want}
        if got != want:
            raise ValueError(f"{spec['model']}: tokenizer ids {got} != config ids {want}")
        return tok, "real"
    return get_backbone(family).runtime_tokenizer({}), "runtime"


def cut_layers(spec: dict, layers: int, experts: int | None = None) -> dict:
    """The spec's config with the vision and text layer counts cut to `layers` (every width
    kept). `experts` also cuts an MoE's expert count (top-k routing unchanged)."""
    cfg = copy.deepcopy(spec["config"])
    text, vision = cfg["text_config"], cfg["vision_config"]
    kind = cfg["model_type"]
    if kind == "kosmos-2":
        text["layers"] = layers
    else:
        text["num_hidden_layers"] = layers
    text.pop("layer_types", None)  # recomputed for the new depth (Gemma-2's alternation)
    if kind == "qwen2_5_vl":
        vision["depth"] = layers
        vision["fullatt_block_indexes"] = [layers - 1]  # window attention kept, last block full
    elif kind in ("qwen3_vl", "qwen3_vl_moe"):
        vision["depth"] = layers
        vision["deepstack_visual_indexes"] = list(range(min(layers, len(vision["deepstack_visual_indexes"]))))
    else:
        vision["num_hidden_layers"] = layers
    if experts is not None:
        if "num_experts" not in text:
            raise ValueError(f"{spec['model']} has no experts to cut")
        text["num_experts"] = min(int(experts), text["num_experts"])
    return cfg


def paper_model_cfg(name: str) -> dict:
    """The backbone's model entry in config/paper.yaml ({} if it has none): its settings
    (e.g. Qwen's min_pixels, which upsamples 224 px frames to 448 as the official processor
    does) decide the image-token count the paper-scale runs see."""
    import yaml

    models = yaml.safe_load((REPO / "config" / "paper.yaml").read_text(encoding="utf-8"))["models"]
    return dict(models.get(name) or {})


def build_backbone(spec: dict, config: dict | None = None, tokenizer=None, device: str = "meta"):
    """The family's backbone for `config` (default: the full published one) on `device`, with
    the paper.yaml model entry's settings applied."""
    if tokenizer is None:
        tokenizer, _ = tokenizer_for(spec)
    cls = get_backbone(spec["backbone"])
    with torch.device(device):
        return cls.from_config(config if config is not None else spec["config"], tokenizer,
                               paper_model_cfg(spec["model"]))


def depth(spec: dict) -> tuple[int, int]:
    """(vision layers, text layers) of the published config."""
    text, vision = spec["config"]["text_config"], spec["config"]["vision_config"]
    return (int(vision.get("depth") or vision["num_hidden_layers"]),
            int(text.get("layers") or text["num_hidden_layers"]))


# --- sizes ------------------------------------------------------------------------------
def partition_problems(policy: VLAPolicy) -> list[str]:
    """Why the backbone's freeze groups are not a disjoint, complete partition ([] if they are)."""
    groups = policy.backbone.groups()
    problems = []
    if set(groups) != set(FREEZE_GROUPS):
        problems.append(f"groups {sorted(groups)} != {sorted(FREEZE_GROUPS)}")
    ids = [id(p) for ps in groups.values() for p in ps]
    if len(ids) != len(set(ids)):
        problems.append("a parameter is in two groups")
    missing = {id(p) for p in policy.backbone.model.parameters()} - set(ids)
    if missing:
        problems.append(f"{len(missing)} backbone parameters in no group")
    for g in FREEZE_GROUPS:
        if not groups.get(g):
            problems.append(f"group {g} is empty")
    return problems


def size_report(name: str, spec_dir: Path | None = None) -> dict:
    """Counts of the real architecture, built on the meta device through the family class."""
    spec = load_spec(name, spec_dir)
    tok, tok_kind = tokenizer_for(spec)
    bb = build_backbone(spec, tokenizer=tok, device="meta")
    with torch.device("meta"):
        policy = VLAPolicy(bb, CHUNK, head_width=PAPER_HEAD_WIDTH)
    counts = policy.param_counts()
    groups = {g: counts["groups"][g]["total"] for g in FREEZE_GROUPS}
    backbone_total = sum(p.numel() for p in bb.model.parameters())
    text = bb.model.config.get_text_config()
    vocab = int(text.vocab_size)
    hidden = int(bb.hidden_size)
    untied = getattr(text, "tie_word_embeddings", True) is False
    lm_head = vocab * hidden if untied else 0
    comparable = backbone_total + lm_head
    pub = spec["published_total"]
    prompt = bb.prompt_ids(INSTRUCTION)
    n_image = int(bb.n_image_tokens)
    v_layers, t_layers = depth(spec)
    return {
        "model": name, "hf_id": spec["hf_id"], "backbone": spec["backbone"],
        "groups": groups, "action_query": counts["groups"]["action_query"]["total"],
        "head": counts["groups"]["head"]["total"], "backbone_total": backbone_total,
        "policy_total": counts["total"], "new_fraction": counts["new_fraction"],
        "partition_problems": partition_problems(policy),
        "hidden": hidden, "vocab": vocab, "vision_layers": v_layers, "text_layers": t_layers,
        "lm_head_untied": untied, "lm_head": lm_head, "comparable_total": comparable,
        "published": int(pub["total"]), "published_rounding": int(pub.get("rounding", 0)),
        "published_source": pub["source"], "gap": comparable / pub["total"] - 1.0,
        "image_side": int(getattr(bb, "image_size", IMAGE_SIDE)),
        "image_tokens": n_image, "prompt_tokens": len(prompt) + 1,  # + the ActionQuery column
        "text_tokens": len(prompt) - n_image, "tokenizer": tok_kind,
    }


def within_published(report: dict, tolerance: float = 0.03) -> bool:
    """|comparable - published| <= tolerance x published + the published figure's rounding."""
    return abs(report["comparable_total"] - report["published"]) <= \
        tolerance * report["published"] + report["published_rounding"]


# --- the full-width step ----------------------------------------------------------------
def _layer_lists(backbone) -> dict[str, list[nn.Module]]:
    """The repeated blocks of the vision tower and of the LLM (ModuleLists named layers /
    layer / blocks), classified by the family's freeze-group prefixes."""
    prefixes = {"vision": backbone.GROUPS["vision"], "llm": backbone.GROUPS["llm"]}
    out: dict[str, list[nn.Module]] = {"vision": [], "llm": []}
    for mname, mod in backbone.model.named_modules():
        if not isinstance(mod, nn.ModuleList) or mname.rsplit(".", 1)[-1] not in ("layers", "layer", "blocks"):
            continue
        for group, prefs in prefixes.items():
            for pref in (prefs,) if isinstance(prefs, str) else prefs:
                if mname == pref or mname.startswith(pref + "."):
                    out[group].extend(mod)
    return out


class SavedBytes:
    """Bytes of the activations autograd saves for backward, attributed to the vision block /
    text layer running when they were saved (parameters and repeated storages not counted)."""

    def __init__(self, backbone, params):
        self.param_ptrs = {p.untyped_storage().data_ptr() for p in params}
        self.seen: set[int] = set()
        self.bytes = {"vision": 0, "llm": 0, "other": 0}
        self.current = "other"
        self.handles = []
        for group, mods in _layer_lists(backbone).items():
            for m in mods:
                self.handles.append(m.register_forward_pre_hook(self._enter(group)))
                self.handles.append(m.register_forward_hook(self._leave))
        self.n = {g: len(m) for g, m in _layer_lists(backbone).items()}

    def _enter(self, group):
        def hook(module, args):
            self.current = group
        return hook

    def _leave(self, module, args, output):
        self.current = "other"

    def pack(self, t: torch.Tensor):
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self.param_ptrs and ptr not in self.seen:
            self.seen.add(ptr)
            self.bytes[self.current] += storage.nbytes()
        return t

    def close(self):
        for h in self.handles:
            h.remove()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def full_width_step(name: str, layers: int = 2, batch: int = 2, experts: int | None = None,
                    seed: int = 0, spec_dir: Path | None = None, dtype: torch.dtype = torch.float32,
                    backward: bool = True) -> dict:
    """One forward + backward of the policy at full width with `layers` vision and text
    layers, on CPU (float32 = the pipeline's CPU dtype; bfloat16 weights for an activation
    probe, `backward=False` = forward only). Raises AssertionError on any shape / mask /
    dtype / readout / gradient problem; returns timings and the saved activation bytes."""
    from .losses import action_loss

    spec = load_spec(name, spec_dir)
    tok, _ = tokenizer_for(spec)
    cfg = cut_layers(spec, layers, experts)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        bb = build_backbone(spec, cfg, tok, device="cpu")
        policy = VLAPolicy(bb, CHUNK, head_width=PAPER_HEAD_WIDTH)
    policy.to(dtype).train()
    with torch.no_grad():  # a non-zero query, so its readout is not a constant
        policy.action_query.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(seed))
    t_build = time.perf_counter() - t0
    n_params = sum(p.numel() for p in policy.parameters())

    rng = np.random.RandomState(seed)
    frames = rng.randint(0, 256, (batch, IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
    instructions = [INSTRUCTION, SECOND_INSTRUCTION] * batch
    instructions = instructions[:batch]
    prompts = [bb.prompt_ids(t) for t in instructions]
    target = torch.from_numpy(rng.uniform(-1, 1, (batch, CHUNK, 7)).astype(np.float32)).to(dtype)
    target[..., 6] = (target[..., 6] > 0).float()

    saved = SavedBytes(bb, list(policy.parameters()))
    t1 = time.perf_counter()
    try:
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
            hidden, mask = bb.encode(frames, instructions, policy.action_query)
            arm, grip = policy.head(hidden[:, -1])
            loss = action_loss(arm, grip, target, torch.ones(batch, CHUNK, dtype=dtype))["loss"]
        t_fwd = time.perf_counter() - t1
        if backward:
            loss.backward()
    finally:
        saved.close()
    t_step = time.perf_counter() - t1

    T = max(len(p) for p in prompts) + 1
    assert hidden.shape == (batch, T, bb.hidden_size), (hidden.shape, T, bb.hidden_size)
    assert hidden.dtype == dtype and mask.shape == (batch, T), (hidden.dtype, mask.shape)
    assert mask[:, -1].tolist() == [1] * batch, "the ActionQuery is not the last column"
    assert mask.sum(1).tolist() == [len(p) + 1 for p in prompts], "mask != prompt + query"
    for i, p in enumerate(prompts):  # right padding sits between the prompt and the query
        assert int(mask[i, len(p):T - 1].sum()) == 0
    assert torch.isfinite(hidden).all() and torch.isfinite(loss), "non-finite activations"
    assert arm.shape == (batch, CHUNK, 6) and grip.shape == (batch, CHUNK)
    assert arm.dtype == dtype and float(arm.detach().abs().max()) <= 1.0  # tanh-bounded arm actions
    if backward:
        g = policy.action_query.grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, "no ActionQuery gradient"
        grads = {}
        for group, ps in policy.backbone.groups().items():
            grads[group] = any(p.grad is not None and p.grad.abs().sum() > 0 for p in ps)
        grads["head"] = all(p.grad is not None for p in policy.head.parameters())
        assert all(grads.values()), f"groups without gradient: {grads}"
    result = {
        "model": name, "layers": layers, "batch": batch, "experts": cfg["text_config"].get("num_experts"),
        "dtype": str(dtype).replace("torch.", ""), "backward": backward,
        "params": n_params, "seq_len": T, "hidden": bb.hidden_size,
        "image_tokens": int(bb.n_image_tokens), "loss": float(loss),
        "build_s": t_build, "forward_s": t_fwd, "step_s": t_step,
        "saved_bytes": dict(saved.bytes), "blocks": dict(saved.n),
    }
    del policy, bb, hidden, loss
    return result


# --- memory plan ------------------------------------------------------------------------
# Bytes per trainable parameter, full fine-tuning with AdamW:
#   this repo's loop under `accelerate` bf16 autocast: fp32 weights 4 + fp32 grads 4
#   + fp32 exp_avg 4 + exp_avg_sq 4 = 16;
#   DeepSpeed / FSDP bf16 mixed precision (the paper's): bf16 weights 2 + bf16 grads 2 +
#   fp32 master weights 4 + fp32 exp_avg / exp_avg_sq 8 = 16.
BYTES_PER_PARAM = 16
OVERHEAD_BYTES = 3e9  # CUDA context, cuBLAS/NCCL workspaces, allocator slack (an assumption)
STRATEGIES = ("ddp", "zero2", "fsdp")


def static_bytes(params: int, strategy: str, gpus: int) -> float:
    """Weights + grads + AdamW states per GPU (no activations)."""
    if strategy == "ddp":  # everything replicated
        return BYTES_PER_PARAM * params
    if strategy == "zero2":  # bf16 weights replicated; grads, fp32 master and Adam sharded
        return 2 * params + (BYTES_PER_PARAM - 2) * params / gpus
    if strategy == "fsdp":  # FULL_SHARD / ZeRO-3: all sharded (+ one gathered layer, small)
        return BYTES_PER_PARAM * params / gpus
    raise ValueError(strategy)


def activation_bytes_per_sample(step: dict, spec: dict) -> float:
    """bf16 activations saved for backward per sample at the real depth: the bytes measured
    at `step['layers']` layers per vision block / text layer, scaled to the published layer
    counts, plus the rest (embeddings, projector, head). A float32 measurement is halved."""
    v_real, t_real = depth(spec)
    b = step["saved_bytes"]
    n = step["blocks"]
    per_v = b["vision"] / max(n["vision"], 1)
    per_t = b["llm"] / max(n["llm"], 1)
    total = b["other"] + v_real * per_v + t_real * per_t
    scale = 0.5 if step.get("dtype", "float32") == "float32" else 1.0
    return scale * total / step["batch"]


def memory_plan(report: dict, act_per_sample: float, per_gpu_batch: int, gpus: int = 8,
                gpu_bytes: float = 80e9, fit: float = 0.9) -> dict:
    """Per-GPU memory for each strategy at each micro-batch that divides the per-GPU batch,
    and the choice: the largest micro-batch that fits in fit x gpu_bytes under any strategy
    (fewer accumulation passes), with the simplest strategy for it (DDP, then ZeRO-2, then
    FSDP: ZeRO-2 moves as many bytes per step as DDP, FSDP also all-gathers the weights)."""
    params = report["policy_total"]
    rows = {}
    for s in STRATEGIES:
        st = static_bytes(params, s, gpus)
        rows[s] = {m: st + OVERHEAD_BYTES + act_per_sample * m
                   for m in (64, 32, 16, 8, 4, 2, 1) if per_gpu_batch % m == 0 and m <= per_gpu_batch}
    choice = None
    for m in sorted(rows["ddp"], reverse=True):
        ok = [s for s in STRATEGIES if rows[s][m] <= fit * gpu_bytes]
        if ok:
            choice = {"strategy": ok[0], "micro_batch": m, "grad_accum": per_gpu_batch // m,
                      "bytes": rows[ok[0]][m]}
            break
    return {"static": {s: static_bytes(params, s, gpus) for s in STRATEGIES}, "rows": rows,
            "choice": choice, "gpu_bytes": gpu_bytes, "gpus": gpus}

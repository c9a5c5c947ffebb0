#!/usr/bin/env python3
"""Paper-scale sizes and memory plan of the paper's ten backbones -> docs/real_size.md.

    python scripts/real_size_table.py            # everything (about 5 min on 2 CPU cores)
    python scripts/real_size_table.py --no-steps # only the meta-device size table

1. Sizes: each config/data/real_size/<model>.json built on the meta device through its
   family class (vlm4vla.models.real_size.size_report): parameters per freeze group,
   ActionQuery, head, total, prompt length of a 224 px frame, gap to the published total.
2. Full-width step: per family, its smallest paper backbone with vision and text layers cut
   to 2 (all widths real), one float32 forward + backward of the policy on CPU, each in its
   own process (wall time, peak resident memory).
3. Activation probe: per backbone, a bfloat16 forward at 2 layers (batch 2) counting the
   bytes autograd saves per vision block / text layer, scaled to the real depth.
4. Memory plan: per-GPU bytes of weights + grads + AdamW states (16 B / parameter) under
   DDP, ZeRO-2 and FSDP (ZeRO-3) on 8 GPUs, plus activations at each micro-batch of the
   paper's per-GPU batch (config/paper.yaml: train.batch_size / 8 GPUs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from vlm4vla.models import real_size as rs  # noqa: E402

# the smallest paper backbone of each family (the full-width step runs once per family)
FAMILY_REPRESENTATIVE = {"qwen2_5_vl": "qwen2_5_vl_3b", "qwen3_vl": "qwen3_vl_2b",
                         "qwen3_vl_moe": "qwen3_vl_30b_a3b", "paligemma": "paligemma_3b",
                         "paligemma2": "paligemma2_3b", "kosmos2": "kosmos2",
                         "internvl": "internvl3_5_4b"}
# 128 experts x 2 layers at full width = 1.2B expert parameters (9.7 GB fp32 with grads):
# the CPU step keeps every per-expert shape and top-8 routing, with 16 experts.
STEP_EXPERTS = 16
GPUS = 8
GPU = {"A100-80GB": 80e9, "H200-141GB": 141e9}


def one_step(name: str, dtype: str, backward: bool) -> dict:
    """Run in a fresh process: one full-width step; the process's peak RSS is its cost."""
    import torch
    torch.set_num_threads(2)
    experts = STEP_EXPERTS if rs.load_spec(name)["backbone"] == "qwen3_vl_moe" else None
    t0 = time.perf_counter()
    out = rs.full_width_step(name, layers=2, batch=2, experts=experts,
                             dtype=getattr(torch, dtype), backward=backward)
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss"] = rs.peak_rss_bytes()
    return out


def run_child(name: str, dtype: str, backward: bool) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--one-step", name, "--dtype", dtype,
                           "--backward", str(int(backward))], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} ({dtype}) failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = time.perf_counter() - t0
    return out


def paper_batch() -> tuple[int, int]:
    import yaml
    train = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())["train"]
    return int(train["batch_size"]), int(train.get("grad_accum", 1))


def fmt_b(n: float) -> str:
    return f"{n / 1e9:.3f}B" if n >= 1e8 else f"{n / 1e6:.2f}M"


def fmt_gb(n: float) -> str:
    return f"{n / 1e9:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one-step")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--backward", type=int, default=1)
    ap.add_argument("--no-steps", action="store_true", help="only the meta-device size table")
    ap.add_argument("--out", default=str(REPO / "docs" / "real_size.md"))
    ap.add_argument("--from-json", help="re-render the Markdown from a docs/real_size.json "
                                        "(the steps and probes are not rerun; the sizes are)")
    args = ap.parse_args()
    if args.one_step:
        print(json.dumps(one_step(args.one_step, args.dtype, bool(args.backward))))
        return

    names = rs.spec_names()
    reports = {n: rs.size_report(n) for n in names}
    steps, probes = {}, {}
    if args.from_json:
        raw = json.loads(Path(args.from_json).read_text())
        steps, probes = raw["steps"], raw["probes"]
    elif not args.no_steps:
        for family, name in FAMILY_REPRESENTATIVE.items():
            print(f"[real_size] full-width step {name}", file=sys.stderr, flush=True)
            steps[family] = run_child(name, "float32", True)
        for name in names:
            print(f"[real_size] activation probe {name}", file=sys.stderr, flush=True)
            probes[name] = run_child(name, "bfloat16", False)
    global_batch, grad_accum = paper_batch()
    per_gpu = global_batch // GPUS
    lines = write_doc(reports, steps, probes, per_gpu, global_batch, grad_accum)
    Path(args.out).write_text("\n".join(lines) + "\n")
    raw = {"sizes": reports, "steps": steps, "probes": probes}
    Path(args.out).with_suffix(".json").write_text(json.dumps(raw, indent=1, sort_keys=True, default=str) + "\n")
    print(f"[real_size] wrote {args.out}", file=sys.stderr)


def write_doc(reports, steps, probes, per_gpu, global_batch, grad_accum) -> list[str]:
    L = ["# Paper scale: sizes and memory", "",
         "Written by `python scripts/real_size_table.py` (numbers computed, nothing typed in); "
         "raw values in `docs/real_size.json`. Each backbone's published architecture is data in "
         "`config/data/real_size/<model>.json` (the values of its HF `config.json`, with a `source` "
         "field saying where they were read, and the published total with its source). The "
         "architecture is built through the pipeline's own family classes "
         "(`get_backbone(family).from_config`, the constructor `from_saved` uses) and `VLAPolicy`, "
         "on the meta device: no weights, no download, no memory.", "",
         "## Parameters per freeze group", "",
         "Groups are each family's `groups()` (the freeze switches of Table 3; `llm` excludes the "
         "word embeddings, `projector` is the merger / projection, split off `vision` by the "
         "longest-prefix rule). ActionQuery = hidden size; head = the paper's MLP (width 1024, chunk "
         "4). *Compared* = backbone + an untied LM head (the backbones are `*Model` classes with no "
         "LM head; a tied head is the word-embedding matrix, already counted), against the "
         "published total. Prompt = the LIBERO-10 instruction \"" + rs.INSTRUCTION + "\" in the "
         "family's template with the image tokens of a 224 px frame (Qwen and InternVL: upsampled to 448, as the "
         "paper's code does) and the ActionQuery; `runtime` = the text counted with the family's "
         "offline BPE (PaliGemma's and Kosmos-2's SentencePiece vocabularies are not available "
         "offline, so their text-token counts are approximate; image tokens are exact).", "",
         "| backbone | family | vision | projector | llm | word emb. | ActionQuery | head | policy total | LM head added | compared | published | gap | prompt tokens (image + text + query) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, r in reports.items():
        g = r["groups"]
        L.append(f"| {n} | {r['backbone']} | {fmt_b(g['vision'])} | {fmt_b(g['projector'])} | "
                 f"{fmt_b(g['llm'])} | {fmt_b(g['word_embeddings'])} | {r['action_query']:,} | "
                 f"{fmt_b(r['head'])} | {fmt_b(r['policy_total'])} | "
                 f"{fmt_b(r['lm_head']) if r['lm_head'] else 'tied'} | {r['comparable_total']:,} | "
                 f"{r['published']:,}{' (±' + fmt_b(r['published_rounding']) + ')' if r['published_rounding'] else ''} | "
                 f"{100 * r['gap']:+.2f}% | {r['prompt_tokens']} ({r['image_tokens']} + {r['text_tokens']} + 1, "
                 f"{r['tokenizer']}) |")
    L += ["", "The head is " + ", ".join(f"{100 * r['new_fraction']:.2f}%" for r in reports.values())
          + " of the policies above (the paper: under 1%). Tolerance of the check "
          "(`tests/test_real_size.py`): 3% of the published figure plus its rounding (Kosmos-2 and "
          "InternVL3.5 are published to 0.1B). Gaps: Kosmos-2's +4% is the rounding of the \"about "
          "1.6B\" of its paper (the tolerance with rounding is 3% + 0.05B = 6.1%); PaliGemma's few 1e-5 "
          "are keras-hub's count of the same checkpoint; InternVL3.5-4B-HF's compared total rounds to "
          "the 4.732B listed for the -HF repository in a public model survey found with the code search. "
          "Without their untied LM heads the head-less `*Model` counts would miss the published totals by "
          + ", ".join(f"{n} {100 * (r['backbone_total'] / r['published'] - 1):+.1f}%"
                      for n, r in reports.items() if r["lm_head"]) + ".", "",
          "Published totals and their sources:", ""]
    for n, r in reports.items():
        L.append(f"- {n}: {r['published']:,} — {r['published_source']}")
    if steps:
        L += ["", "## Full-width step (2 layers, real widths) on CPU", "",
              "Per family its smallest paper backbone, every width real (hidden sizes, heads, "
              "vocabulary, image-token count of a 224 px frame as paper.yaml resizes it), vision and text layers cut to 2, batch 2 "
              "(two LIBERO-10 instructions of different length, so right padding sits before the "
              "ActionQuery), float32 (this pipeline's CPU dtype), one forward + backward through "
              "`VLAPolicy` + the action loss, each in its own process. Checked: hidden states "
              "(B, T, hidden), mask = prompt + query with the query last in every row, float32 and "
              "finite, tanh-bounded arm actions, non-zero gradients in every freeze group, the head "
              "and the ActionQuery. Qwen3-VL-30B-A3B runs with " + str(STEP_EXPERTS) + " of its 128 "
              "experts (per-expert shapes and top-8 routing real; all 128 would be 9.7 GB of fp32 "
              "expert weights + grads at 2 layers, beyond this 23 GB machine beside the test suite).", "",
              "| family | model | params at 2 layers | seq len | image tokens | build s | fwd+bwd s | process wall s | peak RSS GB |",
              "|---|---|---|---|---|---|---|---|---|"]
        for fam, s in steps.items():
            L.append(f"| {fam} | {s['model']}{' (' + str(s['experts']) + ' experts)' if fam == 'qwen3_vl_moe' else ''} | "
                     f"{fmt_b(s['params'])} | {s['seq_len']} | {s['image_tokens']} | {s['build_s']:.1f} | "
                     f"{s['step_s']:.2f} | {s['process_s']:.1f} | {s['peak_rss'] / 1e9:.2f} |")
        L += ["", f"Total process time {sum(s['process_s'] for s in steps.values()):.0f} s; the largest peak "
              f"{max(s['peak_rss'] for s in steps.values()) / 1e9:.1f} GB."]
    if probes:
        L += ["", "## Memory plan per GPU", "",
              f"The paper's recipe: global batch {global_batch} over {GPUS} GPUs = {per_gpu} samples per GPU "
              f"and optimizer step (config/paper.yaml `train.grad_accum` = {grad_accum} now: the "
              f"micro-batch is {per_gpu} / grad_accum). Full fine-tuning with AdamW costs "
              f"{rs.BYTES_PER_PARAM} bytes per trainable parameter: this repo's loop under accelerate "
              "bf16 autocast keeps fp32 weights (4) + fp32 grads (4) + fp32 exp_avg and exp_avg_sq (8); "
              "DeepSpeed / FSDP bf16 mixed precision keeps bf16 weights (2) + bf16 grads (2) + fp32 "
              "master weights (4) + fp32 Adam moments (8). Per GPU: DDP = 16 P; ZeRO-2 = 2 P + 14 P / "
              "8 (bf16 weights replicated, the rest sharded); FSDP FULL_SHARD (= ZeRO-3) = 16 P / 8 (+ one "
              "gathered layer, not counted). Activations: the bytes autograd saves for backward, "
              "measured per vision block and per text layer in a bfloat16 forward at 2 layers (batch 2, "
              "the prompt above), scaled to the real depth and to the micro-batch. Not counted: autocast's "
              "bf16 weight copies (+2 P transiently under this repo's loop), temporary buffers of the "
              "backward, fragmentation; a fixed " + fmt_gb(rs.OVERHEAD_BYTES) + " GB is added for CUDA "
              "context and workspaces (an assumption). The choice: the largest micro-batch (fewest "
              "accumulation passes) that fits in 90% of the GPU under any strategy, with the simplest "
              "strategy that fits it (DDP, then ZeRO-2, which moves as many bytes per step as DDP, then "
              "FSDP, which also all-gathers the weights in every forward and backward).", "",
              "| backbone | policy params | act. / sample (bf16) | DDP static | ZeRO-2 static | FSDP static | "
              f"per GPU at micro-batch {per_gpu} (DDP / ZeRO-2 / FSDP) | A100-80GB choice | H200-141GB choice |",
              "|---|---|---|---|---|---|---|---|---|"]
        for n, r in reports.items():
            spec = rs.load_spec(n)
            act = rs.activation_bytes_per_sample(probes[n], spec)
            plans = {k: rs.memory_plan(r, act, per_gpu, GPUS, v) for k, v in GPU.items()}
            p = plans["A100-80GB"]
            full = " / ".join(fmt_gb(p["rows"][s][per_gpu]) for s in rs.STRATEGIES)

            def ch(plan):
                c = plan["choice"]
                if c is None:
                    return "does not fit"
                return f"{c['strategy']}, micro-batch {c['micro_batch']} x accum {c['grad_accum']} ({fmt_gb(c['bytes'])} GB)"
            L.append(f"| {n} | {fmt_b(r['policy_total'])} | {act / 1e6:.0f} MB | "
                     f"{fmt_gb(p['static']['ddp'])} GB | {fmt_gb(p['static']['zero2'])} GB | "
                     f"{fmt_gb(p['static']['fsdp'])} GB | {full} GB | {ch(plans['A100-80GB'])} | "
                     f"{ch(plans['H200-141GB'])} |")
        L += ["", "Activation probe (bf16 forward, 2 layers, batch 2): bytes saved for backward",
              "", "| backbone | per vision block | per text layer | rest (embeddings, projector, head) | real depth (vision / text) | seq len |",
              "|---|---|---|---|---|---|"]
        for n, pr in probes.items():
            b, k = pr["saved_bytes"], pr["blocks"]
            v, t = rs.depth(rs.load_spec(n))
            L.append(f"| {n} | {b['vision'] / max(k['vision'], 1) / 1e6:.1f} MB | {b['llm'] / max(k['llm'], 1) / 1e6:.1f} MB | "
                     f"{b['other'] / 1e6:.1f} MB | {v} / {t} | {pr['seq_len']} |")
    L += ["", "## Strategies", "",
          "- `profiles/accelerate/ddp.yaml`: 8-process DDP, bf16.",
          "- `profiles/accelerate/zero2.yaml`: DeepSpeed ZeRO-2, bf16 — the paper's own setting (its "
          "released configs use `deepspeed_stage_2` for every backbone, with per-GPU micro-batches of "
          "8 or 16 and gradient accumulation 4 or 8 to reach 512). Needs the `deepspeed` package "
          "(not installed here: untested).",
          "- `profiles/accelerate/fsdp_<family>.yaml`: FSDP2 FULL_SHARD with the family's decoder layer "
          "and vision block as wrap units (accelerate needs the class names: `VLAPolicy` is not a "
          "`PreTrainedModel` and has no `_no_split_modules`).",
          "- Gradient checkpointing is not implemented as a switch in this repository (no config key); "
          "the activation column is what it would cut (to about one layer's worth plus the layer inputs). "
          "The plan above needs none on 80 GB GPUs when the micro-batch is lowered with "
          "`train.grad_accum`.",
          "- What was run without a GPU: accelerate 1.16 selects FSDP / DeepSpeed only for GPU-type "
          "processes (on CPU the same launch becomes plain multi-CPU DDP), and `accelerate launch --cpu "
          "--num_processes 2` starts ONE process unless it is given an MPI hostfile. So the FSDP path "
          "was checked with torchrun starting 2 CPU processes (gloo) and torch's FSDP2 `fully_shard` "
          "applied with the wrap units of `profiles/accelerate/fsdp_qwen3_vl_moe.yaml` to the tiny "
          "MoE policy (`scripts/fsdp_cpu_check.py`, `tests/test_real_size.py::test_fsdp_two_cpu_processes`): "
          "the two half-batch gradients equal the one-process whole-batch gradients (max error ~1e-8), "
          "clipping sees the global norm, each rank holds half of the weights and of the AdamW state. "
          "Not run: this repository's training loop under FSDP or DeepSpeed (needs GPUs; note that the "
          "loop builds its AdamW before `accelerator.prepare` and clips the parameter list taken before "
          "it, which FSDP2 replaces by sharded copies: check both on the first GPU run)."]
    return L


if __name__ == "__main__":
    main()

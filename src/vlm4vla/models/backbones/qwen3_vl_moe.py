"""Qwen3-VL-MoE family (the paper's Qwen3-VL-30B-A3B): `Qwen3VLMoeModel` = the Qwen3-VL
vision tower (ViT + patch merger + DeepStack mergers) and a Qwen3 LLM whose MLPs are
sparse mixtures of experts (a router picks `num_experts_per_tok` of `num_experts` per
token; every expert's weights stay in memory, only the chosen ones compute).

The prompt, image preprocessing, M-RoPE positions and the ActionQuery readout are Qwen3-VL's
(the forward signatures of `Qwen3VLMoeModel` and `Qwen3VLModel` are the same), so the family
is the dense one with the transformers MoE classes. Freeze groups as Qwen3-VL: the router and
the experts belong to `llm`.

Tiny default: the dense tiny Qwen3-VL (hidden 64, 2 layers, 4 heads / 2 KV) with 4 experts of
width 64, 2 per token.
"""

from __future__ import annotations

from transformers import Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration, Qwen3VLMoeModel

from .arch import apply_arch_overrides
from .qwen3_vl import TINY as DENSE_TINY, Qwen3VLBackbone, tiny_config as dense_tiny_config

TINY = {**DENSE_TINY, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": None}


def tiny_config(arch, tokenizer) -> Qwen3VLMoeConfig:
    a = apply_arch_overrides(TINY, arch)
    moe = {k: a.pop(k) for k in ("num_experts", "num_experts_per_tok", "moe_intermediate_size")}
    dense = dense_tiny_config(a, tokenizer).to_dict()
    text = {k: v for k, v in dense["text_config"].items() if k != "model_type"}
    text.update({"num_experts": moe["num_experts"], "num_experts_per_tok": moe["num_experts_per_tok"],
                 "moe_intermediate_size": moe["moe_intermediate_size"] or a["hidden_size"],
                 "decoder_sparse_step": 1, "mlp_only_layers": [], "norm_topk_prob": True})
    vision = {k: v for k, v in dense["vision_config"].items() if k != "model_type"}
    ids = {k: dense[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                 "vision_end_token_id")}
    return Qwen3VLMoeConfig(text_config=text, vision_config=vision, **ids)


class Qwen3VLMoeBackbone(Qwen3VLBackbone):
    name = "qwen3_vl_moe"
    config_cls, model_cls = Qwen3VLMoeConfig, Qwen3VLMoeModel
    lm_model_cls = Qwen3VLMoeForConditionalGeneration

    @classmethod
    def tiny_config(cls, arch, tokenizer):
        return tiny_config(arch, tokenizer)

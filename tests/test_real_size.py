"""The paper's ten backbones at their real size, without weights (models/real_size.py):
meta-device totals through the family classes against the published counts, the freeze-group
partition, prompt / image-token lengths, config/paper.yaml pointing at the same checkpoints,
the accelerate profiles, and (slow) one full-width forward + backward per family with the
layer counts cut to 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from vlm4vla.models import real_size as rs
from vlm4vla.models.backbones import get_backbone
from vlm4vla.models.policy import VLAPolicy

REPO = Path(__file__).resolve().parents[1]
NAMES = rs.spec_names()
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
PAPER_MODELS = PAPER["models"]
# the paper's ten backbones: its main table (Figure 4's released RoboBrain2 is a Qwen2.5-VL-7B
# tuning, the qwen2_5_vl_7b architecture)
_REPORTS: dict = {}


def report(name):
    if name not in _REPORTS:
        _REPORTS[name] = rs.size_report(name)
    return _REPORTS[name]


def head_params(hidden: int, chunk: int = 4, w: int = 1024) -> int:
    """The paper's head counted by hand: trunk hidden -> hidden/2 -> W, arm W-W-W/2-W/4-6c,
    gripper W-W-W/2-W/4-c (weights + biases)."""
    lin = lambda a, b: a * b + b  # noqa: E731
    trunk = lin(hidden, hidden // 2) + lin(hidden // 2, w)
    branch = lin(w, w) + lin(w, w // 2) + lin(w // 2, w // 4)
    return trunk + 2 * branch + lin(w // 4, 6 * chunk) + lin(w // 4, chunk)


def test_ten_paper_backbones_have_specs():
    assert sorted(NAMES) == sorted(PAPER["experiments"]["main"]["models"])
    for name in NAMES:
        spec = rs.load_spec(name)
        assert spec["source"].startswith("config.json of the HF repo (https://huggingface.co/")
        assert spec["published_total"]["source"]


@pytest.mark.parametrize("name", NAMES)
def test_paper_yaml_points_at_the_spec(name):
    """config/paper.yaml trains the checkpoint whose architecture the spec records, with the
    family that can load it (Qwen3-VL-30B-A3B: the MoE family; InternVL3.5: the -HF repo)."""
    spec, model = rs.load_spec(name), PAPER_MODELS[name]
    assert model["backbone"] == spec["backbone"]
    assert model["source"] == spec["hf_id"]
    cls = get_backbone(model["backbone"])
    assert cls.config_cls.model_type == spec["config"]["model_type"]


@pytest.mark.parametrize("name", NAMES)
def test_meta_total_matches_published(name):
    r = report(name)
    assert r["partition_problems"] == []
    assert within_tolerance(r), (r["comparable_total"], r["published"], r["gap"])
    assert sum(r["groups"].values()) == r["backbone_total"]
    assert r["backbone_total"] + r["action_query"] + r["head"] == r["policy_total"]
    assert r["action_query"] == r["hidden"]
    assert r["head"] == head_params(r["hidden"])
    assert r["new_fraction"] < 0.01  # the paper: under 1% new parameters
    assert r["lm_head"] == (r["vocab"] * r["hidden"] if r["lm_head_untied"] else 0)
    assert r["comparable_total"] == r["backbone_total"] + r["lm_head"]


def within_tolerance(r) -> bool:
    return rs.within_published(r, tolerance=0.03)


def test_tolerance_check_can_fail():
    r = dict(report("qwen2_5_vl_3b"))
    r["comparable_total"] = int(r["published"] * 1.05)
    assert not within_tolerance(r)
    r["comparable_total"] = r["backbone_total"] - r["groups"]["word_embeddings"]  # head-less count
    assert not within_tolerance(r)


@pytest.mark.parametrize("name", NAMES)
def test_image_tokens_and_prompt_length(name):
    """Image tokens of a 224 px frame computed from the config by hand (Qwen: resized as
    paper.yaml's min_pixels says), against the family's prompt."""
    spec, r = rs.load_spec(name), report(name)
    cfg, v = spec["config"], spec["config"]["vision_config"]
    kind = cfg["model_type"]
    if kind.startswith("qwen"):  # paper.yaml's min_pixels (the official 28*28*256): 224 -> 448
        from vlm4vla.models.backbones.qwen_vl import smart_side
        patch, merge = v["patch_size"], v["spatial_merge_size"]
        side = smart_side(224, patch * merge, rs.paper_model_cfg(name)["min_pixels"])
        assert side == r["image_side"] == 448
        want = (side // patch) ** 2 // merge ** 2  # 256 / 196
    elif kind == "paligemma":
        want = (224 // v["patch_size"]) ** 2  # 256
    elif kind == "kosmos-2":
        want = cfg["latent_query_num"]  # 64
    else:  # InternVL3.5: 224 px frames upsampled to the checkpoint's 448, pixel shuffle 0.5
        side, patch = v["image_size"][0], v["patch_size"][0]
        want = int((side // patch * cfg["downsample_ratio"]) ** 2)
        assert want == cfg["image_seq_length"] == 256 and r["image_side"] == 448
    assert r["image_tokens"] == want
    assert r["prompt_tokens"] == r["image_tokens"] + r["text_tokens"] + 1
    assert 5 < r["text_tokens"] < 60
    assert r["tokenizer"] == ("runtime" if spec["backbone"] in ("paligemma", "paligemma2", "kosmos2") else "real")


def test_internvl_tiny_keeps_224():
    bb = get_backbone("internvl").build({"backbone": "internvl", "init": "scratch"})
    assert bb.image_size == 224 and bb.n_image_tokens == 64


@pytest.mark.parametrize("name", NAMES)
def test_cut_layers_keeps_every_width(name):
    spec = rs.load_spec(name)
    cut = rs.cut_layers(spec, 2)
    bb = rs.build_backbone(spec, cut, device="meta")
    blocks = rs._layer_lists(bb)
    assert len(blocks["vision"]) == 2 and len(blocks["llm"]) == 2
    full = rs.build_backbone(spec, device="meta")
    assert [len(b) for b in rs._layer_lists(full).values()] == list(rs.depth(spec))
    # same shapes everywhere except the dropped layers (and Qwen3-VL's DeepStack mergers)
    shapes = {k: tuple(p.shape) for k, p in full.model.named_parameters()}
    for k, p in bb.model.named_parameters():
        assert shapes[k] == tuple(p.shape), k


def test_qwen3_vl_moe_family():
    bb = get_backbone("qwen3_vl_moe").build({"backbone": "qwen3_vl_moe", "init": "scratch"})
    assert type(bb.model).__name__ == "Qwen3VLMoeModel"
    llm = {id(p) for p in bb.groups()["llm"]}
    experts = [p for n, p in bb.model.named_parameters() if ".mlp.experts." in n or ".mlp.gate." in n]
    assert experts and all(id(p) in llm for p in experts)
    assert bb.model.config.text_config.num_experts == 4
    with pytest.raises(ValueError):
        rs.cut_layers(rs.load_spec("qwen3_vl_2b"), 2, experts=4)  # a dense model has none


def test_memory_plan_arithmetic():
    r = report("qwen3_vl_30b_a3b")
    p = r["policy_total"]
    assert rs.static_bytes(p, "ddp", 8) == 16 * p
    assert rs.static_bytes(p, "ddp", 8) > rs.static_bytes(p, "zero2", 8) > rs.static_bytes(p, "fsdp", 8)
    assert rs.static_bytes(p, "zero2", 1) == rs.static_bytes(p, "fsdp", 1) == 16 * p
    plan = rs.memory_plan(r, act_per_sample=50e6, per_gpu_batch=64, gpus=8, gpu_bytes=80e9)
    assert plan["choice"]["strategy"] == "fsdp"  # 31B: neither replicated weights nor grads fit
    small = rs.memory_plan(report("qwen3_vl_2b"), act_per_sample=50e6, per_gpu_batch=64)
    assert small["choice"]["strategy"] == "ddp"
    c = small["choice"]
    assert c["micro_batch"] * c["grad_accum"] == 64
    assert rs.memory_plan(r, act_per_sample=1e12, per_gpu_batch=64)["choice"] is None
    step = {"saved_bytes": {"vision": 20, "llm": 40, "other": 10}, "blocks": {"vision": 2, "llm": 2},
            "batch": 2, "dtype": "bfloat16"}
    v, t = rs.depth(rs.load_spec("qwen3_vl_2b"))
    assert rs.activation_bytes_per_sample(step, rs.load_spec("qwen3_vl_2b")) == (10 + 10 * v + 20 * t) / 2


@pytest.mark.parametrize("path", sorted((REPO / "profiles" / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_profiles(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["mixed_precision"] == "bf16" and cfg["num_processes"] == 8
    assert cfg["distributed_type"] in ("MULTI_GPU", "FSDP", "DEEPSPEED")
    if cfg["distributed_type"] != "FSDP":
        return
    from accelerate.utils.dataclasses import get_module_class_from_name  # what set_auto_wrap_policy uses
    family = path.stem.removeprefix("fsdp_")
    fc = cfg["fsdp_config"]
    assert fc["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    policy = VLAPolicy.build({"backbone": family, "init": "scratch"}, chunk=4, seed=0)
    names = fc["fsdp_transformer_layer_cls_to_wrap"].split(",")
    assert len(names) == 2
    for cls_name in names:  # accelerate raises at prepare() if a class is not in the model
        assert get_module_class_from_name(policy, cls_name) is not None, cls_name


# --- slow: the full-width step ----------------------------------------------------------
FAMILY_STEPS = {"qwen2_5_vl": "qwen2_5_vl_3b", "qwen3_vl": "qwen3_vl_2b",
                "qwen3_vl_moe": "qwen3_vl_30b_a3b", "paligemma": "paligemma_3b",
                "paligemma2": "paligemma2_3b", "kosmos2": "kosmos2", "internvl": "internvl3_5_4b"}


def test_every_paper_family_has_a_step():
    assert set(FAMILY_STEPS) == {rs.load_spec(n)["backbone"] for n in NAMES}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILY_STEPS))
def test_full_width_two_layer_step(family):
    """Real widths, 2 vision + 2 text layers, batch 2, float32 forward + backward in its own
    process (real_size.full_width_step asserts shapes, masks, dtypes, the query readout and
    non-zero gradients in every group); peak memory well under 24 GB."""
    name = FAMILY_STEPS[family]
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "real_size_table.py"), "--one-step", name],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    r = report(name)
    assert out["hidden"] == r["hidden"] and out["image_tokens"] == r["image_tokens"]
    assert out["seq_len"] >= r["prompt_tokens"] and out["layers"] == 2 and out["batch"] == 2
    assert out["blocks"] == {"vision": 2, "llm": 2}
    assert out["saved_bytes"]["vision"] > 0 and out["saved_bytes"]["llm"] > 0
    assert torch.isfinite(torch.tensor(out["loss"]))
    assert out["peak_rss"] < 12e9, out["peak_rss"]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen3_vl_moe"])
def test_fsdp_two_cpu_processes(family):
    """FSDP2 sharding with the wrap units of profiles/accelerate/fsdp_<family>.yaml across 2
    CPU processes (gloo, started by torchrun: `accelerate launch --cpu --num_processes 2`
    starts ONE process unless given an MPI hostfile, and accelerate selects FSDP only on GPUs,
    so scripts/fsdp_cpu_check.py shards with torch's fully_shard itself): the gradients of the
    two half-batches equal those of the mean of their losses in one process, clipping sees the global norm,
    AdamW updates every parameter and each rank keeps only its shard of weights and state."""
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(REPO / "scripts" / "fsdp_cpu_check.py"), "--family", family],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ranks = json.loads(proc.stdout.strip().splitlines()[-1])["ranks"]
    assert [r["world"] for r in ranks] == [2, 2]
    r0 = ranks[0]
    assert r0["units"] >= 4 and r0["sharded_tensors"] > 0 and r0["max_grad_err"] < 1e-6
    assert sum(r["local_params"] for r in ranks) == r0["params"]  # each parameter stored once
    assert all(r["local_params"] < 0.6 * r["params"] for r in ranks)
    assert all(r["adam_state_local"] == r["local_params"] for r in ranks)
    assert r0["params_moved"] == r0["n_params"]
    assert abs(r0["grad_norm"] - r0["ref_grad_norm"]) < 1e-4 * max(1.0, r0["ref_grad_norm"])

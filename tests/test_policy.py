import numpy as np
import pytest
import torch

from vlm4vla.models.backbones import get_backbone
from vlm4vla.models.backbones.qwen2_5_vl import patchify
from vlm4vla.models.losses import action_loss
from vlm4vla.models.policy import VLAPolicy

CFG = {"backbone": "qwen2_5_vl", "init": "scratch",
       "arch": {"hidden_size": 64, "num_hidden_layers": 2}, "freeze": []}


def frames(n, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, 224, 224, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def policy():
    torch.set_num_threads(2)
    return VLAPolicy.build(CFG, chunk=4, seed=123)


def test_unknown_backbone_lists_known_names():
    with pytest.raises(KeyError, match="qwen2_5_vl"):
        get_backbone("no-such-vlm")


def test_patchify_equals_qwen_image_processor():
    from transformers import Qwen2VLImageProcessorPil
    x = frames(2)
    ref = Qwen2VLImageProcessorPil()(list(x), return_tensors="pt")
    assert ref["image_grid_thw"].tolist() == [[1, 16, 16]] * 2
    got = patchify(torch.from_numpy(x))
    assert got.shape == ref["pixel_values"].shape == (512, 1176)
    assert torch.allclose(got, ref["pixel_values"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_still_image_patch_embed_is_the_conv3d_on_repeated_frames(family):
    """The one-copy matmul equals Qwen's Conv3d over the two temporal copies the processor
    makes of a still frame, in value and in gradient, and keeps the parameter names."""
    from vlm4vla.models.backbones.qwen_vl import StillImagePatchEmbed
    cfg = {"backbone": family, "init": "scratch", "arch": {"hidden_size": 32, "num_hidden_layers": 1}}
    torch.manual_seed(0)
    bb = get_backbone(family).build(cfg)
    embed = bb.model.visual.patch_embed
    assert isinstance(embed, StillImagePatchEmbed)
    assert sorted(n for n, _ in embed.named_parameters()) == sorted(embed.state_dict())
    assert all(n.startswith("proj.") for n in embed.state_dict())
    p = bb.patch
    x = torch.from_numpy(frames(2))[:, : 4 * p, : 4 * p]
    conv = embed.proj
    ref = conv(patchify(x, p, 2, 2).view(-1, 3, 2, p, p)).view(-1, conv.out_channels)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), conv.weight)
    got = embed(patchify(x, p, 2, 1))
    (g_got,) = torch.autograd.grad(got.square().sum(), conv.weight)
    assert torch.allclose(got, ref, atol=1e-5, rtol=0)
    assert torch.allclose(g_got, g_ref, atol=1e-3 * g_ref.abs().max().item(), rtol=0)
    assert torch.equal(embed(patchify(x, p, 2, 2)), ref)  # tube rows take the Conv3d


def test_prompt_has_64_image_tokens_and_3d_positions(policy):
    bb = policy.backbone
    ids = bb.prompt_ids("press the button")
    assert ids.count(bb.image_token_id) == 64
    text = bb.tokenizer.decode(ids, skip_special_tokens=False)
    assert "What action should the robotic arm take to press the button<|im_end|>" in text
    t = torch.tensor([ids])
    pos, _ = bb.model.get_rope_index(t, mm_token_type_ids=(t == bb.image_token_id).long(),
                                     image_grid_thw=torch.tensor([[1, 16, 16]]))
    img = pos[:, 0, t[0] == bb.image_token_id]
    # M-RoPE: the 64 image tokens form an 8x8 grid in (h, w) with one temporal index
    assert img[0].unique().numel() == 1 and img[1].unique().numel() == 8 and img[2].unique().numel() == 8


def test_query_is_last_and_padding_does_not_matter(policy):
    x = frames(2, seed=1)
    long_instr = "open the drawer then push the green block onto the plate"
    q = torch.randn(64)  # a non-zero query, so the readout really depends on it
    with torch.no_grad():
        hid, mask = policy.backbone.encode(x, ["press the button", long_instr], q)
        alone, mask1 = policy.backbone.encode(x[:1], ["press the button"], q)
    assert mask[:, -1].tolist() == [1, 1] and mask[0].sum() < mask[1].sum()
    assert mask[0, mask1.shape[1] - 1:-1].sum() == 0  # row 0 is right-padded before the query
    torch.testing.assert_close(hid[0, -1], alone[0, -1], atol=1e-5, rtol=0)
    with torch.no_grad():
        arm, grip = policy(x, ["press the button", long_instr])
        arm1, grip1 = policy(x[:1], ["press the button"])
    torch.testing.assert_close(arm[0], arm1[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(grip[0], grip1[0], atol=1e-5, rtol=0)


def test_freeze_switches_are_exact():
    base = VLAPolicy.build(CFG, 4, seed=0)
    groups = {k: {id(p) for p in v} for k, v in base.param_groups().items()}
    all_ids = {id(p) for p in base.parameters()}
    assert sum(len(v) for v in groups.values()) == len(all_ids)  # disjoint and complete
    counts = base.param_counts()
    assert counts["total"] == counts["trainable"] == sum(g["total"] for g in counts["groups"].values())
    for group in ("vision", "projector", "llm", "word_embeddings"):  # each group alone
        pol = VLAPolicy.build({**CFG, "freeze": [group], "vision_freeze": "encoder"}, 4, seed=0)
        frozen = {n for n, p in pol.named_parameters() if not p.requires_grad}
        names = {n for n, p in pol.named_parameters() if id(p) in
                 {id(q) for q in pol.param_groups()[group]}}
        assert frozen == names and frozen, group
        assert pol.param_counts()["groups"][group]["trainable"] == 0
    proj = {n for n, _ in VLAPolicy.build({**CFG, "freeze": ["projector"]}, 4, 0).named_parameters()
            if "merger" in n}
    assert proj and all(".visual.merger." in n for n in proj)
    with pytest.raises(ValueError, match="unknown freeze"):
        VLAPolicy.build({**CFG, "freeze": ["lm"]}, 4, seed=0)


def test_freeze_vision_freezes_the_whole_visual_module_as_the_official_code():
    """Official: train_vision False -> vision_tower.requires_grad_(False), and Qwen's
    vision_tower is model.visual, merger included (base_backbone.py:385-388,
    roboqwen25vl.py:45-46): the default (vision_freeze tower) does the same."""
    pol = VLAPolicy.build({**CFG, "freeze": ["vision"]}, 4, seed=0)
    frozen = {n for n, p in pol.named_parameters() if not p.requires_grad}
    visual = {n for n, _ in pol.named_parameters() if ".visual." in n}
    assert frozen == visual and any(".visual.merger." in n for n in frozen)
    assert pol.freeze == ["projector", "vision"]  # recorded in policy.json as frozen
    enc = VLAPolicy.build({**CFG, "freeze": ["vision"], "vision_freeze": "encoder"}, 4, seed=0)
    assert not any(".visual.merger." in n for n, p in enc.named_parameters() if not p.requires_grad)
    with pytest.raises(ValueError, match="vision_freeze='all'"):
        VLAPolicy.build({**CFG, "freeze": ["vision"], "vision_freeze": "all"}, 4, seed=0)


def test_query_trains_with_word_embeddings_frozen():
    pol = VLAPolicy.build({**CFG, "freeze": ["word_embeddings"]}, 4, seed=0)
    arm, grip = pol(frames(2), ["press the button", "open the door"])
    action_loss(arm, grip, torch.rand(2, 4, 7).round(), torch.ones(2, 4))["loss"].backward()
    assert pol.action_query.grad is not None and pol.action_query.grad.abs().sum() > 0
    assert pol.backbone.model.language_model.embed_tokens.weight.grad is None


def test_several_steps_reduce_loss_on_a_fixed_batch():
    pol = VLAPolicy.build(CFG, 4, seed=0)
    x, instr = frames(4, seed=2), ["press the button", "open the door"] * 2
    g = torch.Generator().manual_seed(0)
    target = torch.rand(4, 4, 7, generator=g) * 2 - 1
    target[..., 6] = (target[..., 6] > 0).float()
    mask = torch.ones(4, 4)
    opt = torch.optim.AdamW(pol.parameters(), lr=1e-4, weight_decay=0)
    losses = []
    for _ in range(6):
        out = action_loss(*pol(x, instr), target, mask)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.8 * losses[0], losses


# Fixed seed -> fixed actions (policy built with seed 123, frames seed 7, threads 2).
GOLDEN_ARM = [0.02416403591632843, -0.04365336522459984, -0.07476276904344559,
              -0.12165605276823044, -0.052049703896045685, 0.0300084687769413]
GOLDEN_GRIP = [0.1042645126581192, 0.036842409521341324, 0.10607307404279709, 0.03313101455569267]


def test_golden_output():
    torch.set_num_threads(2)
    pol = VLAPolicy.build({**CFG, "vla_forward": "native"}, 4, seed=123).eval()  # 3-D M-RoPE
    with torch.no_grad():
        arm, grip = pol(frames(1, seed=7), ["pick up the red block"])
    got_arm, got_grip = arm[0, 0].tolist(), grip[0].tolist()
    np.testing.assert_allclose(got_arm, GOLDEN_ARM, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got_grip, GOLDEN_GRIP, atol=1e-5, rtol=0)

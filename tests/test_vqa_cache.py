"""KV-cache greedy decoding (VQAModel.answer(use_cache=True)) of the Qwen-VL families (M-RoPE:
3-D positions, one rope delta per row) and the PaliGemma families (bidirectional prefix,
causal suffix): the same answers as the full forward per token."""

import numpy as np
import pytest
import torch

from vlm4vla.models.vqa_head import VQAModel

FAMILIES = ["qwen2_5_vl", "qwen3_vl", "paligemma", "paligemma2"]
QUESTIONS = ["What color is the puck?", "In the image, is the puck to the left of the goal marker?",
             "Open?"]
COLOURS = [(220, 30, 30), (30, 50, 220), (30, 200, 40), (230, 220, 30)]
# answers of different token lengths: after tuning, rows end at different steps
ANSWERS = ["red", "a blue block", "green block on the left side of the table", "yellow"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # one thread: on a shared 2-core machine 2 OpenMP threads are much slower when busy
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def frames(n, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, 224, 224, 3), dtype=np.uint8)


def colour_frames():
    rng = np.random.default_rng(0)
    out = (np.full((4, 224, 224, 3), 120) + rng.integers(0, 20, (4, 224, 224, 3))).astype(np.uint8)
    for i, c in enumerate(COLOURS):
        out[i, 40 + 20 * i:140 + 20 * i, 30 + 10 * i:130 + 10 * i] = c
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_untrained_cached_answers_equal_full_forward(family):
    m = VQAModel.build({"backbone": family, "init": "scratch"}, seed=1)
    bb = m.backbone
    assert bb.supports_kv_cache
    x = frames(3, seed=5)
    full = m.answer(x, QUESTIONS, 10)
    # untrained: no end token, all 10 tokens; prompts of different lengths (right padding)
    ids = m._greedy_on_cache(torch.from_numpy(x), [bb.vqa_prompt_ids(q) for q in QUESTIONS], 10,
                             torch.tensor(sorted(set(bb.banned_answer_ids()))))
    assert [len(g) for g in ids] == [10, 10, 10]
    assert len({len(bb.vqa_prompt_ids(q)) for q in QUESTIONS}) == 3
    assert m.answer(x, QUESTIONS, 10, use_cache=True) == full
    # each row alone (no padding) == batched
    assert [m.answer(x[i:i + 1], QUESTIONS[i:i + 1], 10, use_cache=True)[0] for i in range(3)] == full


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_step_hidden_states_match_the_full_forward(family):
    """Not only the argmax: the hidden state of each cached token (positions: M-RoPE / 1-based)
    is the full forward's at that token, up to float round-off."""
    m = VQAModel.build({"backbone": family, "init": "scratch"}, seed=2).eval()
    bb = m.backbone
    x = torch.from_numpy(frames(2, seed=7))
    prompts = [bb.vqa_prompt_ids(q) for q in QUESTIONS[:2]]
    words = bb.tokenizer.encode("the red block is on the left of a small table",
                                add_special_tokens=False).ids
    new = [words[:4], words[-4:]]  # plain text tokens
    assert len(new[1]) == 4 and not set(new[0] + new[1]) & set(bb.banned_answer_ids())
    with torch.no_grad():
        rows = [p + n for p, n in zip(prompts, new)]
        want, _ = bb.lm_hidden(x, rows, [len(p) for p in prompts])
        hidden, mask, cache = bb.lm_prefill(x, prompts, [len(p) for p in prompts])
        lengths = torch.tensor([len(p) for p in prompts])
        for i, p in enumerate(prompts):
            assert torch.allclose(hidden[i, :len(p)], want[i, :len(p)], atol=1e-5)
        for t in range(4):
            mask = torch.cat([mask, mask.new_ones(2, 1)], dim=1)
            got = bb.lm_step(torch.tensor([[n[t]] for n in new]), mask, lengths, cache)[:, -1]
            for i in range(2):
                assert torch.allclose(got[i], want[i, lengths[i]], atol=1e-5), (family, t, i)
            lengths = lengths + 1


def tuned(family):
    """Briefly tuned on 4 images whose answers have different lengths (memorised)."""
    torch.manual_seed(0)
    m = VQAModel.build({"backbone": family, "init": "scratch"}, seed=0)
    x = colour_frames()
    q = ["What color is the block?"] * 4
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    m.train()
    for _ in range(40):
        opt.zero_grad()
        loss = m.vqa_loss(x, q, ANSWERS)
        loss.backward()
        opt.step()
    return m.eval(), x, q


@pytest.mark.parametrize("family", FAMILIES)
def test_tuned_rows_ending_at_different_steps(family):
    m, x, q = tuned(family)
    bb = m.backbone
    banned = torch.tensor(sorted(set(bb.banned_answer_ids())))
    prompts = [bb.vqa_prompt_ids(s) for s in q]
    ids = m._greedy_on_cache(torch.from_numpy(x), prompts, 12, banned)
    lens = [len(g) for g in ids]
    # rows end (end token before 12 tokens) at different steps: they leave the batch and cache
    assert len(set(lens)) >= 3 and min(lens) < 12, lens
    full = m.answer(x, q, 12)
    assert m.answer(x, q, 12, use_cache=True) == full
    assert [m.answer(x[i:i + 1], q[i:i + 1], 12, use_cache=True)[0] for i in range(4)] == full
    # a permuted batch: other rows leave first
    perm = [2, 0, 3, 1]
    assert m.answer(x[perm], [q[i] for i in perm], 12, use_cache=True) == [full[i] for i in perm]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "paligemma"])
def test_evaluate_vqa_decodes_on_the_cache_with_the_same_output(family, tmp_path, monkeypatch):
    from vlm4vla.data.vqa import VQARecord, write_vqa_store
    from vlm4vla.train import vqa as vqa_train

    m, x, q = tuned(family)
    recs = [VQARecord(image=x[i], question=q[i], answer=ANSWERS[i], task="embodied_qa", split="eval",
                      target={"kind": "text", "answers": [ANSWERS[i]]}, id=f"r{i}") for i in range(4)]
    store = write_vqa_store(tmp_path / "store", recs)
    calls = []
    answer = VQAModel.answer
    monkeypatch.setattr(VQAModel, "answer",
                        lambda self, *a, use_cache=False: calls.append(use_cache) or answer(self, *a, use_cache=use_cache))
    outs = {}
    for flag in (None, False):
        out = tmp_path / f"eval-{flag}"
        outs[flag] = vqa_train.evaluate_vqa(m, store, out_dir=out, batch_size=3, max_new_tokens=12,
                                            use_cache=flag)
    assert calls == [True, True, False, False]  # default: the cache (2 batches), then without
    assert outs[None] == outs[False] and outs[None]["embodied_qa"]["n"] == 4
    for f in ("predictions.jsonl", "metrics.json"):
        assert (tmp_path / "eval-None" / f).read_bytes() == (tmp_path / "eval-False" / f).read_bytes()

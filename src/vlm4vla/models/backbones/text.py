"""A small, deterministic byte-level BPE tokenizer built at runtime (no download).

Why this design: any text tokenises (the base alphabet is all 256 bytes, GPT-2/Qwen style
byte-level), yet common words are single tokens, keeping prompts short for tiny models.
The merges are written by hand rather than trained: every word of a FIXED list gets the
chain of merges "Ġw"+"o" -> "Ġwo", "Ġwo"+"r" -> "Ġwor", ... Every merge's left side starts
with "Ġ" (word start), so chains of different words can never interfere (bare forms for words right after a special token come after them in
rank), and the vocabulary
depends only on this file, not on the data (same ids on every machine and every run).
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

# Prompt words plus robot-manipulation vocabulary (Meta-World, LIBERO, CALVIN, Bridge).
WORDS = """
what action should the robotic arm take to you are a helpful assistant system user
pick place put push pull press open close slide turn rotate lift move stack lower reach
grasp grab drop insert remove sweep unstack hammer wipe flip fold knock
button door drawer window lid cup mug bowl plate block blocks cube box basket handle
faucet lever peg hole shelf bin drawer cabinet stove microwave light switch bulb led
knob dial coffee machine soccer ball goal wall puck table top bottom left right front
back middle side into onto on in of and from with off up down it its then at by
red green blue yellow pink purple orange black white wooden small large
carrot eggplant spoon towel sink pot pan ketchup butter cheese milk soup sauce book
caddy tray bottle can alphabet cream tomato salad dressing
""".split()

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]


def build_tokenizer(words: list[str] | None = None,
                    special_tokens: list[str] | None = None) -> Tokenizer:
    words = WORDS if words is None else words
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # 256 printable byte symbols
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    # Words with both capitalisations: "What" opens the prompt, "You" the system prompt.
    forms = list(dict.fromkeys(f for word in words for f in (word, word.capitalize())))
    # First every "Ġword" chain (mid-text words), then bare "word" chains (a word right after
    # a special token has no leading space). Ġ-merges get the lower ranks, so a bare chain can
    # never interrupt a Ġ chain; bare chains may split each other, which only costs length.
    for text in [" " + f for f in forms] + forms:
        symbols = _bytes_to_symbols(text)
        cur = symbols[0]
        for sym in symbols[1:]:
            new = cur + sym
            if new not in vocab:
                vocab[new] = len(vocab)
                merges.append((cur, sym))
            cur = new
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    # No prefix space: decoding gives back the exact prompt text.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(special_tokens or SPECIAL_TOKENS))
    return tok


_BYTE_SYMBOLS: dict[int, str] | None = None


def _bytes_to_symbols(text: str) -> list[str]:
    """GPT-2's reversible byte -> printable character map (what ByteLevel uses)."""
    global _BYTE_SYMBOLS
    if _BYTE_SYMBOLS is None:
        bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
              + list(range(ord("®"), ord("ÿ") + 1)))
        cs, n = bs[:], 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        _BYTE_SYMBOLS = {b: chr(c) for b, c in zip(bs, cs)}
    return [_BYTE_SYMBOLS[b] for b in text.encode("utf-8")]

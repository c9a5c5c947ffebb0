"""A FAST-style action tokenizer (frequency-space action tokens, Pertsch et al. 2025), used by
Table 4's stage 1: the VLM learns to emit a chunk of actions as discrete tokens.

Encoding one normalised action chunk x (chunk x dims, values in [-1, 1]; vlm4vla.data.normalize
gives arm dims in [-1, 1] and the gripper in {0, 1}):
  1. per action dimension, a DCT-II over time (scipy.fft.dct, norm="ortho"): c = dct(x, axis=0);
  2. quantise: q = round(scale * c), integers;
  3. flatten low frequency first, frequency-major across dims: q[0, 0..dims-1], q[1, ...], ...
     (the high-frequency tail, mostly zeros on smooth chunks, comes last);
  4. one character per integer (value v -> chr(CHAR_BASE + v + max_abs)), then a byte-pair
     encoding (HF `tokenizers` BPE, no normaliser / pre-tokeniser: the whole chunk is one
     "word") trained on the training chunks compresses frequent runs (e.g. zero tails).
Decoding is the exact inverse: token ids -> characters -> integers -> / scale -> inverse DCT.

The alphabet holds every integer a chunk inside [-1, 1] can produce: with the orthonormal DCT
|c_k| <= sqrt(2 * chunk), so |q| <= max_abs = ceil(scale * sqrt(2 * chunk)). Inputs are clipped
to [-1, 1] first, so nothing is ever out of the alphabet and the round trip is lossless up to
rounding: per dimension the inverse DCT is orthogonal, hence the reconstruction error has
RMS <= 0.5 / scale and every entry's error is <= 0.5 * sqrt(chunk) / scale.
`vocab_size` must be at least the alphabet (2 * max_abs + 1 symbols); the BPE then adds merges
up to vocab_size (fewer if the training data has no more pairs seen at least twice).

Malformed token sequences (what a model may emit) decode without error: ids outside the
vocabulary are dropped, then the integer sequence is truncated to chunk * dims or right-padded
with zeros (missing coefficients are the highest frequencies: a short sequence decodes to a
smoothed chunk), and the result is clipped to [-1, 1].

Training is deterministic (sorted training strings, fixed alphabet, HF's BPE trainer breaks
count ties by pair order), and the JSON file has sorted keys: the same chunks and config give
byte-identical files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.fft import dct, idct

from ..io import atomic_write_text, dump_json

FAST_FORMAT = 1
DEFAULTS = {"vocab_size": 256, "scale": 10.0}
CHAR_BASE = 0x100  # integer -> character map starts at U+0100 (printable, no whitespace)
_MAX_SYMBOLS = 0xD800 - CHAR_BASE  # stay below the UTF-16 surrogate block


def fast_config(cfg: dict | None = None) -> dict:
    """DEFAULTS overlaid with `cfg` ({vocab_size, scale}); unknown keys fail with their name."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise KeyError(f"unknown FAST tokenizer key(s) {unknown}; known: {', '.join(sorted(DEFAULTS))}")
    out = {**DEFAULTS, **cfg}
    out = {"vocab_size": int(out["vocab_size"]), "scale": float(out["scale"])}
    if out["scale"] <= 0:
        raise ValueError(f"FAST scale must be > 0, got {out['scale']}")
    return out


def coefficient_bound(scale: float, chunk: int) -> int:
    """Largest |round(scale * DCT coefficient)| of a chunk with values in [-1, 1]."""
    return int(math.ceil(float(scale) * math.sqrt(2.0 * int(chunk))))


class FastTokenizer:
    """DCT + quantisation + BPE over one chunk shape (chunk, dims). Build with `fit`,
    persist with `save` / `load` (JSON)."""

    def __init__(self, bpe, scale: float, chunk: int, dims: int, vocab_size: int):
        self.bpe = bpe  # a tokenizers.Tokenizer (BPE model, no pre-tokeniser)
        self.scale, self.chunk, self.dims = float(scale), int(chunk), int(dims)
        self.requested_vocab_size = int(vocab_size)
        self.max_abs = coefficient_bound(self.scale, self.chunk)
        self._id_to_token = {i: t for t, i in self.bpe.get_vocab().items()}

    # --- the lossy, invertible part: DCT + rounding ---------------------------------------
    def _check_shape(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-2:] != (self.chunk, self.dims):
            raise ValueError(f"action chunk must be (..., {self.chunk}, {self.dims}), got {x.shape}")
        return x

    def quantize(self, chunks: np.ndarray) -> np.ndarray:
        """(..., chunk, dims) normalised actions -> (..., chunk * dims) int64 DCT coefficients,
        low frequency first (frequency-major across dims)."""
        x = np.clip(self._check_shape(chunks), -1.0, 1.0)
        q = np.rint(self.scale * dct(x, type=2, axis=-2, norm="ortho")).astype(np.int64)
        q = np.clip(q, -self.max_abs, self.max_abs)  # guards float round-off at the bound
        return q.reshape(*q.shape[:-2], self.chunk * self.dims)

    def dequantize(self, ints, chunk: int | None = None, dims: int | None = None) -> np.ndarray:
        """Flat integer coefficients -> (chunk, dims) float32 actions, clipped to [-1, 1].
        Too many values are truncated, too few right-padded with zeros (high frequencies)."""
        chunk = self.chunk if chunk is None else int(chunk)
        dims = self.dims if dims is None else int(dims)
        flat = np.zeros(chunk * dims, dtype=np.float64)
        vals = np.asarray(list(ints), dtype=np.float64)[:chunk * dims]
        flat[:len(vals)] = vals
        x = idct(flat.reshape(chunk, dims) / self.scale, type=2, axis=0, norm="ortho")
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    # --- characters <-> integers ----------------------------------------------------------
    def _to_text(self, flat_ints) -> str:
        return "".join(chr(CHAR_BASE + self.max_abs + int(v)) for v in flat_ints)

    def _from_text(self, text: str) -> list[int]:
        out = []
        for ch in text:
            v = ord(ch) - CHAR_BASE - self.max_abs
            if -self.max_abs <= v <= self.max_abs:  # anything else is not ours: dropped
                out.append(v)
        return out

    # --- tokens ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of token ids (0 .. vocab_size-1) the tokenizer can emit."""
        return self.bpe.get_vocab_size()

    def encode(self, chunk: np.ndarray) -> list[int]:
        """One (chunk, dims) normalised action chunk -> token ids."""
        return self.encode_batch(self._check_shape(chunk)[None])[0]

    def encode_batch(self, chunks: np.ndarray) -> list[list[int]]:
        """(N, chunk, dims) -> N lists of token ids."""
        q = self.quantize(chunks)
        return [e.ids for e in self.bpe.encode_batch([self._to_text(r) for r in q])]

    def decode(self, ids, chunk: int | None = None, dims: int | None = None) -> np.ndarray:
        """Token ids -> (chunk, dims) float32 normalised actions (default: the fitted shape).
        Never raises on a malformed sequence: unknown ids are dropped, the coefficients are
        truncated / zero-padded to chunk * dims (see the module docstring)."""
        text = "".join(self._id_to_token.get(int(i), "") for i in ids)
        return self.dequantize(self._from_text(text), chunk, dims)

    def tokens_per_chunk(self, chunks: np.ndarray) -> float:
        """Mean number of tokens per chunk (vs chunk * dims before the BPE)."""
        ids = self.encode_batch(chunks)
        return float(np.mean([len(i) for i in ids])) if ids else 0.0

    # --- training -------------------------------------------------------------------------
    @classmethod
    def fit(cls, chunks: np.ndarray, config: dict | None = None) -> "FastTokenizer":
        """Train the BPE on (N, chunk, dims) normalised training chunks. config: {vocab_size,
        scale} (fast_config defaults). Deterministic."""
        from tokenizers import Tokenizer, models, trainers

        cfg = fast_config(config)
        chunks = np.asarray(chunks, dtype=np.float64)
        if chunks.ndim != 3 or len(chunks) == 0:
            raise ValueError(f"need (N, chunk, dims) training chunks with N >= 1, got {chunks.shape}")
        _, chunk, dims = chunks.shape
        max_abs = coefficient_bound(cfg["scale"], chunk)
        n_symbols = 2 * max_abs + 1
        if n_symbols > _MAX_SYMBOLS:
            raise ValueError(f"FAST scale {cfg['scale']} with chunk {chunk} needs {n_symbols} "
                             "symbols: too many; lower the scale")
        if cfg["vocab_size"] < n_symbols:
            raise ValueError(
                f"FAST vocab_size {cfg['vocab_size']} < {n_symbols}: scale {cfg['scale']:g} and "
                f"chunk {chunk} give integer coefficients in [-{max_abs}, {max_abs}], one symbol "
                "each; raise vocab_size or lower scale")
        bpe = Tokenizer(models.BPE())
        tok = cls(bpe, cfg["scale"], chunk, dims, cfg["vocab_size"])
        alphabet = [chr(CHAR_BASE + i) for i in range(n_symbols)]
        texts = sorted(tok._to_text(r) for r in tok.quantize(chunks))
        trainer = trainers.BpeTrainer(vocab_size=cfg["vocab_size"], min_frequency=2,
                                      show_progress=False, special_tokens=[],
                                      initial_alphabet=alphabet, limit_alphabet=n_symbols)
        bpe.train_from_iterator(texts, trainer=trainer, length=len(texts))
        got = sorted(bpe.get_vocab())
        if not set(alphabet) <= set(got):  # every integer must stay encodable
            raise RuntimeError("BPE training dropped alphabet symbols")
        return cls(bpe, cfg["scale"], chunk, dims, cfg["vocab_size"])

    # --- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FAST_FORMAT, "kind": "fast_dct_bpe", "scale": self.scale,
                "chunk": self.chunk, "dims": self.dims, "max_abs": self.max_abs,
                "char_base": CHAR_BASE, "requested_vocab_size": self.requested_vocab_size,
                "vocab_size": self.vocab_size, "dct": "scipy.fft.dct type 2, norm=ortho, over time",
                "order": "frequency-major: coefficient (k, d) at k * dims + d",
                "bpe": json.loads(self.bpe.to_str())}

    def to_json(self) -> str:
        return dump_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "FastTokenizer":
        from tokenizers import Tokenizer

        if d.get("format") != FAST_FORMAT or d.get("kind") != "fast_dct_bpe":
            raise ValueError(f"not a FAST tokenizer file (format {d.get('format')}, kind {d.get('kind')})")
        if d.get("char_base") != CHAR_BASE:
            raise ValueError(f"FAST tokenizer file uses char_base {d.get('char_base')}, expected {CHAR_BASE}")
        tok = cls(Tokenizer.from_str(json.dumps(d["bpe"])), d["scale"], d["chunk"], d["dims"],
                  d["requested_vocab_size"])
        if tok.max_abs != d["max_abs"]:
            raise ValueError(f"FAST tokenizer file: max_abs {d['max_abs']} != {tok.max_abs}")
        return tok

    @classmethod
    def from_json(cls, text: str) -> "FastTokenizer":
        return cls.from_dict(json.loads(text))

    def save(self, path) -> None:
        """JSON (sorted keys), written to a temp file and renamed."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path) -> "FastTokenizer":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

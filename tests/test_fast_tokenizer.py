"""FAST-style action tokenizer (DCT + rounding + BPE): bounded round-trip error, determinism,
compression on smooth chunks, robustness to malformed token sequences."""

import json

import numpy as np
import pytest
from scipy.fft import dct

from vlm4vla.models.fast_tokenizer import DEFAULTS, FastTokenizer, coefficient_bound, fast_config


def smooth_chunks(n, chunk=10, dims=7, seed=0):
    """Normalised-action-like chunks: slow sinusoids + a linear drift per dim, a binary
    gripper, clipped to [-1, 1]."""
    rs = np.random.RandomState(seed)
    t = np.linspace(0, 1, chunk)[None, :, None]
    x = (rs.uniform(-0.6, 0.6, (n, 1, dims)) + rs.uniform(-0.3, 0.3, (n, 1, dims)) * t
         + 0.2 * np.sin(2 * np.pi * (0.5 * t + rs.rand(n, 1, dims))))
    x[:, :, -1] = (rs.rand(n, 1) > 0.5)
    return np.clip(x, -1, 1)


def noisy_chunks(n, chunk=4, dims=7, seed=1):
    return np.random.RandomState(seed).uniform(-1, 1, (n, chunk, dims))


@pytest.mark.parametrize("scale,chunk", [(10, 4), (10, 10), (3, 10), (50, 4)])
def test_round_trip_error_is_bounded_by_the_quantisation(scale, chunk):
    train = smooth_chunks(200, chunk, seed=2)
    tok = FastTokenizer.fit(train, {"vocab_size": max(256, 2 * coefficient_bound(scale, chunk) + 41),
                                    "scale": scale})
    # unseen chunks, smooth and white noise, plus the extremes of the range
    test = np.concatenate([smooth_chunks(50, chunk, seed=3), noisy_chunks(50, chunk, seed=4),
                           np.ones((1, chunk, 7)), -np.ones((1, chunk, 7)),
                           np.where(np.arange(chunk)[None, :, None] % 2, 1.0, -1.0) * np.ones((1, 1, 7))])
    rms_bound, max_bound = 0.5 / scale, 0.5 * np.sqrt(chunk) / scale
    worst_rms = 0.0
    for x in test:
        ids = tok.encode(x)
        assert all(0 <= i < tok.vocab_size for i in ids)
        y = tok.decode(ids)
        assert y.shape == (chunk, 7) and y.dtype == np.float32
        err = np.abs(y.astype(np.float64) - x)
        rms = np.sqrt((err ** 2).mean(axis=0))  # per action dimension
        assert (rms <= rms_bound + 1e-6).all() and (err <= max_bound + 1e-6).all(), (rms.max(), err.max())
        worst_rms = max(worst_rms, rms.max())
        # the BPE is lossless: tokens decode to exactly the quantised coefficients
        np.testing.assert_array_equal(tok.dequantize(tok.quantize(x)), y)
    assert worst_rms > 0.2 * rms_bound  # the bound is not vacuous at this scale


def test_coefficients_are_scaled_rounded_dct_in_frequency_major_order():
    tok = FastTokenizer.fit(smooth_chunks(50, 4), {"vocab_size": 128, "scale": 10})
    x = smooth_chunks(1, 4, seed=9)[0]
    q = tok.quantize(x)
    want = np.rint(10 * dct(x, axis=0, norm="ortho")).astype(np.int64)
    assert q.shape == (28,)
    for k in range(4):
        np.testing.assert_array_equal(q[k * 7:(k + 1) * 7], want[k])  # frequency k, all dims
    const = np.full((4, 7), 0.3)  # a constant chunk has only DC coefficients
    qc = tok.quantize(const)
    assert (qc[:7] == round(10 * 0.3 * 2)).all() and (qc[7:] == 0).all()
    # inputs outside [-1, 1] are clipped, so the coefficients stay in the alphabet
    assert np.abs(tok.quantize(np.full((4, 7), 5.0))).max() <= tok.max_abs
    with pytest.raises(ValueError, match="4, 7"):
        tok.encode(np.zeros((5, 7)))


def test_training_is_deterministic_and_saves_byte_identical_json(tmp_path):
    chunks = smooth_chunks(300, 4)
    a = FastTokenizer.fit(chunks, {"vocab_size": 128, "scale": 10})
    b = FastTokenizer.fit(chunks[::-1].copy(), {"vocab_size": 128, "scale": 10})  # order-free
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temp files
    back = FastTokenizer.load(tmp_path / "a.json")
    back.save(tmp_path / "c.json")
    assert (tmp_path / "c.json").read_bytes() == (tmp_path / "a.json").read_bytes()
    test = smooth_chunks(20, 4, seed=5)
    assert back.encode_batch(test) == a.encode_batch(test)
    d = json.loads((tmp_path / "a.json").read_text())
    assert (d["scale"], d["chunk"], d["dims"], d["vocab_size"]) == (10.0, 4, 7, 128)
    other = FastTokenizer.fit(chunks, {"vocab_size": 128, "scale": 5})
    assert other.to_json() != a.to_json()


def test_bpe_compresses_smooth_chunks():
    chunks = smooth_chunks(400, 10)
    tok = FastTokenizer.fit(chunks[:300], DEFAULTS)
    assert tok.vocab_size == DEFAULTS["vocab_size"]
    per_chunk = tok.tokens_per_chunk(chunks[300:])  # held-out chunks
    assert per_chunk < 0.5 * 10 * 7, per_chunk
    # white noise has no structure to exploit: it compresses much less
    assert tok.tokens_per_chunk(noisy_chunks(100, 10)) > per_chunk


def test_malformed_token_sequences_decode_to_the_right_shape():
    tok = FastTokenizer.fit(smooth_chunks(200, 4), {"vocab_size": 96, "scale": 10})
    rs = np.random.RandomState(0)
    x = smooth_chunks(1, 4, seed=7)[0]
    ids = tok.encode(x)
    cases = [[], [tok.vocab_size + 5, 10 ** 9, -3], rs.randint(0, tok.vocab_size, 500).tolist(),
             ids[:1], ids + ids, rs.randint(-50, 50, 7).tolist()]
    for bad in cases:
        y = tok.decode(bad)
        assert y.shape == (4, 7) and np.isfinite(y).all() and np.abs(y).max() <= 1.0
    assert np.array_equal(tok.decode([]), np.zeros((4, 7), np.float32))
    assert np.array_equal(tok.decode(ids + ids), tok.decode(ids))  # extra coefficients dropped
    # a truncated sequence keeps its low frequencies: closer to x than nothing at all
    short = tok.decode(ids[:max(1, len(ids) // 2)])
    assert np.abs(short - x).mean() < np.abs(x).mean()
    assert tok.decode(ids, chunk=2, dims=3).shape == (2, 3)


def test_config_checks():
    assert fast_config(None) == {"vocab_size": 256, "scale": 10.0}
    with pytest.raises(KeyError, match="vocab"):
        fast_config({"vocab": 10})
    with pytest.raises(ValueError, match="scale"):
        fast_config({"scale": 0})
    # scale 10, chunk 4: coefficients in [-29, 29] -> 59 symbols needed
    assert coefficient_bound(10, 4) == 29
    with pytest.raises(ValueError, match="vocab_size 40 < 59"):
        FastTokenizer.fit(smooth_chunks(10, 4), {"vocab_size": 40, "scale": 10})
    with pytest.raises(ValueError, match="chunk, dims"):
        FastTokenizer.fit(np.zeros((0, 4, 7)), None)
    with pytest.raises(ValueError, match="not a FAST"):
        FastTokenizer.from_json(json.dumps({"format": 1, "kind": "other"}))

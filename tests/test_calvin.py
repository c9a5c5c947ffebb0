"""CALVIN ABC->D protocol: chain generation rules, determinism, and the chain metric."""

import numpy as np
import pytest

from vlm4vla.sim import calvin
from vlm4vla.sim.registry import get_benchmark


def test_protocol_constants_and_tasks():
    assert calvin.NUM_SEQUENCES == 1000 and calvin.CHAIN_LENGTH == 5 and calvin.EP_LEN == 360
    assert len(calvin.TASKS) == 34 and len(set(calvin.TASKS)) == 34
    assert set(calvin.INSTRUCTIONS) == set(calvin.TASKS) == set(calvin.RULES)
    bench = get_benchmark("calvin")
    assert bench.tasks() == sorted(calvin.TASKS)
    assert bench.instruction("open_drawer") == "open the drawer"
    assert len(calvin.initial_states()) == 192


def test_rules():
    s = calvin.initial_states()[0]
    assert s["slider"] == "right" and s["drawer"] == "closed" and s["grasped"] == 0
    assert calvin.valid_chain(s, ["open_drawer", "close_drawer"]) is False  # same category
    assert calvin.valid_chain(s, ["close_drawer"]) is False  # precondition fails
    table = next(b for b in calvin.BLOCKS if s[f"{b}_block"] == "table")
    chain = [f"lift_{table}_block_table", "open_drawer"]  # cannot open while holding
    assert calvin.valid_chain(s, chain) is False
    chain = ["open_drawer", f"lift_{table}_block_table", "place_in_drawer", "turn_on_led",
             "move_slider_left"]
    assert calvin.valid_chain(s, chain) is True


def test_sequences_are_valid_distinct_and_deterministic():
    before = np.random.get_state()[1].copy()
    seqs = calvin.eval_sequences(40)
    assert np.array_equal(np.random.get_state()[1], before)  # global RNG untouched
    assert len(seqs) == 40 and seqs == calvin.eval_sequences(40)
    for state, chain in seqs:
        assert len(chain) == 5 and len(set(chain)) == 5
        assert calvin.valid_chain(state, chain)
        assert len({calvin.TASK_CATEGORY[t] for t in chain}) == 5


def test_chain_metric_on_synthetic_outcomes():
    from vlm4vla.eval.chains import chain_metrics

    def rates(m):
        return [m["success_after"][str(k)]["success_rate"] for k in range(1, 6)]

    m = chain_metrics([0, 5, 2, [True, True, True, False, True]], 5)
    assert rates(m) == [0.75, 0.75, 0.5, 0.25, 0.25]
    assert m["avg_len"] == pytest.approx((0 + 5 + 2 + 3) / 4)
    rng = np.random.default_rng(0)
    flags = rng.random((200, 5)) < 0.8
    m = chain_metrics(flags.tolist(), 5)
    lengths = np.argmin(np.c_[flags, np.zeros(200, bool)], axis=1)
    assert m["avg_len"] == pytest.approx(lengths.mean())
    assert rates(m) == sorted(rates(m), reverse=True)
    assert m["avg_len"] == pytest.approx(sum(rates(m)))  # E[len] = sum_k P(len >= k)
    lo, hi = m["avg_len_ci95"]
    assert lo < m["avg_len"] < hi and hi - lo < 0.8  # 200 chains: about +-2 standard errors
    assert chain_metrics(flags.tolist(), 5) == m  # seeded bootstrap: byte-identical reruns
    with pytest.raises(ValueError):
        chain_metrics([6], 5)


def test_simulator_missing_is_a_clear_error():
    try:
        import calvin_env  # noqa: F401
        pytest.skip("calvin_env is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="calvin_env"):
        get_benchmark("calvin").make_env("open_drawer", 224)

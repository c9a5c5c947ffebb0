"""Chain evaluation (CALVIN's long-horizon protocol) for benchmarks whose plugin chains
subtasks (`chains = True`, sim/base.py: ChainEnv).

Per chain: reset to its initial state, then each subtask in turn with at most `max_steps`
steps (CALVIN: 360), the policy re-planning every `execute_chunk` actions (official CALVIN:
all 10 of a chunk, evaluate_ddp.py:303) on the subtask's own instruction; the chain stops at
its first failed subtask. Metrics (CALVIN's): success rate after 1..L completed subtasks and
the average completed length, with 95% bootstrap intervals over chains (seeded, so reruns
are byte-identical). Records: one per chain in episodes.jsonl; summary.json as evaluate's,
with "chains" for the tables (overall n / successes = chains / chains whose first subtask
succeeded, so the generic fields stay meaningful).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vlm4vla.io import write_json, write_jsonl
from vlm4vla.report.stats import mean_ci
from vlm4vla.sim.registry import get_benchmark

BOOTSTRAP = 2000  # resamples of the chains for the 95% intervals


def run_chain(env, policy, initial_state, chain, instruction_of, max_steps: int,
              execute_chunk: int) -> list[bool]:
    """Success flags of `chain`'s subtasks up to and including the first failure."""
    env.reset(initial_state)
    flags = []
    for subtask in chain:
        if hasattr(policy, "reset"):
            policy.reset()
        env.start_subtask(subtask)
        ok, steps, ended = False, 0, False
        while steps < max_steps and not (ok or ended):
            actions = np.asarray(policy.act(env.render()[None], [instruction_of(subtask)]))[0]
            for action in actions[:execute_chunk]:
                result = env.step(action)
                steps += 1
                ok, ended = bool(result.success), bool(result.done)
                if ok or ended or steps >= max_steps:
                    break
        flags.append(ok)
        if not ok:
            break
    return flags


def completed_length(flags) -> int:
    """Subtasks completed before the first failure (a chain stops there)."""
    n = 0
    for ok in flags:
        if not ok:
            break
        n += 1
    return n


def chain_metrics(results, length: int, seed: int = 0) -> dict:
    """CALVIN's metrics over chains: `results` per chain is its completed length or its
    per-subtask flags (later flags after a failure are ignored). success_after[k] = share
    of chains with >= k subtasks done; avg_len = their mean (= the sum over k); both with
    95% bootstrap intervals."""
    c = []
    for r in results:
        n = int(r) if np.isscalar(r) else completed_length(r)
        if not 0 <= n <= length:
            raise ValueError(f"completed length {n} outside 0..{length}")
        c.append(n)
    if not c:
        raise ValueError("no chains")
    c = np.asarray(c, dtype=np.int64)
    lo, hi = mean_ci(c, BOOTSTRAP, seed)
    after = {}
    for k in range(1, length + 1):
        hit = (c >= k).astype(np.float64)
        klo, khi = mean_ci(hit, BOOTSTRAP, seed + k)
        after[str(k)] = {"success_rate": float(hit.mean()), "ci95": [klo, khi]}
    return {"n": int(len(c)), "length": int(length), "avg_len": float(c.mean()), "avg_len_ci95": [lo, hi],
            "success_after": after}


def evaluate_chains(policy_factory, bench_cfg: dict, eval_cfg: dict, seed: int, out_dir) -> dict:
    """Evaluate on the plugin's first `eval_chains` chains; writes episodes.jsonl (one record
    per chain) and summary.json; returns the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").unlink(missing_ok=True)
    plugin = get_benchmark(bench_cfg["plugin"])
    chains = plugin.eval_chains(int(bench_cfg["eval_chains"]))
    policy = policy_factory()
    env = plugin.make_chain_env(int(bench_cfg["image_size"]))
    execute = int(eval_cfg["execute_chunk"])
    records = []
    try:
        for i, (state, chain) in enumerate(chains):
            flags = run_chain(env, policy, state, chain, plugin.instruction, int(bench_cfg["max_steps"]),
                              execute)
            records.append({"chain": i, "subtasks": list(chain), "flags": flags,
                            "completed": int(sum(flags))})
    finally:
        env.close()
    length = max(len(c) for _, c in chains)
    metrics = chain_metrics([r["completed"] for r in records], length, seed)
    first = sum(1 for r in records if r["completed"] >= 1)
    write_jsonl(out_dir / "episodes.jsonl", records)
    from vlm4vla.eval.metrics import wilson_interval

    lo, hi = wilson_interval(first, len(records))
    summary = {"benchmark": bench_cfg["plugin"], "seed": int(seed), "max_steps": int(bench_cfg["max_steps"]),
               "execute_chunk": execute, "chains": metrics,
               "overall": {"n": len(records), "successes": first, "success_rate": first / len(records),
                           "wilson_low": lo, "wilson_high": hi},
               "complete": True}
    write_json(out_dir / "summary.json", summary)
    return summary

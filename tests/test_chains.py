"""Chain evaluation (CALVIN's protocol, eval/chains.py) end to end on a stand-in chained
simulator behind the plugin interface, down to the average length in table_main and a
permutation test in the ablation table. No CALVIN install needed."""

import numpy as np
import pytest

from vlm4vla import pipeline as P
from vlm4vla.eval.chains import run_chain
from vlm4vla.eval.rollout import evaluate
from vlm4vla.io import read_json, write_json
from vlm4vla.report import tables
from vlm4vla.sim import registry
from vlm4vla.sim.base import StepResult

SUBTASKS = ("open_drawer", "lift_red_block", "push_into_drawer")


class StandInChainEnv:
    """A subtask is done once the robot has closed the gripper `need` times since it started
    (each subtask a different need); the scene counts steps so the test can check them."""

    NEED = {"open_drawer": 2, "lift_red_block": 3, "push_into_drawer": 4}

    def __init__(self):
        self.steps = 0
        self.frames = 0

    def reset(self, initial_state):
        self.state = dict(initial_state)

    def start_subtask(self, subtask):
        self.subtask, self.closes = subtask, 0

    def render(self):
        self.frames += 1
        return np.zeros((8, 8, 3), np.uint8)

    def step(self, action):
        self.steps += 1
        self.closes += action[6] > 0
        done = self.closes >= self.NEED[self.subtask]
        return StepResult(success=done, done=done, info={})

    def close(self):
        pass


class StandInChainBenchmark:
    name = "standin_chain"
    chains = True

    def tasks(self):
        return sorted(SUBTASKS)

    def instruction(self, task):
        return task.replace("_", " ")

    def eval_chains(self, n):
        rng = np.random.default_rng(0)
        return [({"start": i}, tuple(rng.permutation(SUBTASKS))) for i in range(n)]

    def make_chain_env(self, image_size):
        return StandInChainEnv()


class Policy:
    """Closes the gripper on every `every`-th action of each subtask it is good at."""

    chunk = 4

    def __init__(self, good=("open_drawer", "lift_red_block"), every=1):
        self.good, self.every, self.calls = set(good), every, 0

    def act(self, frames, instructions):
        self.calls += 1
        close = instructions[0].replace(" ", "_") in self.good
        a = np.zeros((1, self.chunk, 7), np.float32)
        a[0, ::self.every, 6] = 1.0 if close else -1.0
        return a


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.setitem(registry.PLUGINS, "standin_chain", ("test_chains", "StandInChainBenchmark"))


def test_run_chain_follows_calvins_protocol():
    env, pol = StandInChainEnv(), Policy()
    # stops at the first failure; a failing subtask uses its whole step budget
    flags = run_chain(env, pol, {}, ("open_drawer", "push_into_drawer", "lift_red_block"),
                      lambda t: t.replace("_", " "), max_steps=10, execute_chunk=2)
    assert flags == [True, False]
    assert env.steps == 2 + 10  # 2 closes, then 10 steps of the failing subtask
    assert pol.calls == 1 + 5  # one call per executed pair of actions
    env, pol = StandInChainEnv(), Policy(every=2)  # a close every other action: slower
    assert run_chain(env, pol, {}, ("lift_red_block",), lambda t: t.replace("_", " "), 10, 4) == [True]
    assert env.steps == 5  # closes at actions 1, 3, 5


def test_chain_benchmark_metadata_matches_its_class():
    for name in registry.CHAINED:
        assert getattr(registry.get_benchmark(name), "chains", False) is True, name
    for name in set(registry.PLUGINS) - set(registry.CHAINED):
        assert not getattr(registry.get_benchmark(name), "chains", False), name


def _evaluate(tmp_path, run, policy, n=40):
    bench = {"plugin": "standin_chain", "eval_chains": n, "max_steps": 12, "image_size": 8}
    out = tmp_path / P.eval_dir("standin", run)
    summary = evaluate(lambda: policy, bench, {"execute_chunk": 4, "workers": 1}, seed=0, out_dir=out,
                       workers=1)
    write_json(tmp_path / P.policy_dir("standin", run) / "policy.json", {"param_counts": {}})
    return summary


def test_evaluate_dispatches_chains_and_tables_show_average_length(standin, tmp_path, monkeypatch):
    good = _evaluate(tmp_path, "m", Policy(good=SUBTASKS))  # completes every chain
    half = _evaluate(tmp_path, "m--freeze_vision", Policy())  # fails push_into_drawer
    assert good["chains"]["avg_len"] == 3.0 and good["chains"]["n"] == 40
    assert good["chains"]["success_after"]["3"]["success_rate"] == 1.0
    rows = [read_json(tmp_path / P.eval_dir("standin", "m--freeze_vision") / "summary.json")]
    c = rows[0]["chains"]
    assert 0 < c["avg_len"] < 2 and c["avg_len_ci95"][0] <= c["avg_len"] <= c["avg_len_ci95"][1]
    assert half == rows[0] and half["complete"]
    # the same chains, the same outcome: reruns are byte-identical
    again = _evaluate(tmp_path / "again", "m--freeze_vision", Policy())
    assert again == half

    cfg = {"models": {"m": {"backbone": "qwen2_5_vl", "init": "scratch"}},
           "benchmarks": {"standin": {"plugin": "standin_chain"}},
           "experiments": {"main": {"models": ["m"], "benchmarks": ["standin"]},
                           "ablation": {"models": ["m"], "variants": ["full", "freeze_vision"],
                                        "benchmarks": ["standin"]}}}
    monkeypatch.chdir(tmp_path)
    main = tables.results_table(cfg, "main")
    assert main.iloc[0]["metric"] == "avg_len" and main.iloc[0]["avg_len"] == 3.0
    md = tables.to_markdown(main, "Main")
    assert "avg len 3.00 [3.00, 3.00] (40 chains)" in md and "permutation" in md
    abl = tables.results_table(cfg, "ablation")
    row = abl[abl["variant"] == "freeze_vision"].iloc[0]
    assert row["delta_avg_len"] == pytest.approx(c["avg_len"] - 3.0, abs=1e-3)
    assert row["p_value"] < 0.001 and row["significant"] == "yes"
    assert "subtasks |" in tables.to_markdown(abl, "Ablation")


def test_a_chain_benchmark_needs_its_chain_count():
    import copy

    import yaml
    from conftest import REPO
    from vlm4vla.config import ConfigError, validate_config
    raw = yaml.safe_load((REPO / "config/config.yaml").read_text())
    raw["benchmarks"]["calvin"] = {**copy.deepcopy(raw["benchmarks"]["metaworld"]), "plugin": "calvin",
                                   "tasks": ["open_drawer"]}
    with pytest.raises(ConfigError, match="'benchmarks.calvin' needs 'eval_chains'"):
        validate_config(raw)

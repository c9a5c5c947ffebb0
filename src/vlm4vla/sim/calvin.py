"""CALVIN ABC->D: the long-horizon evaluation protocol, and the simulator when installed.

Protocol (Mees et al., CALVIN; used unchanged by the paper):
- 1000 fixed evaluation chains of 5 subtasks each, drawn from CALVIN's 34 subtasks;
- each subtask gets at most EP_LEN = 360 steps; a chain stops at its first failure;
- metric: success rate after 1, 2, ..., 5 completed subtasks, and the average completed
  length (0..5).

How the chains are made (`eval_sequences`), following CALVIN's
calvin_agent/evaluation/multistep_sequences.py step by step so that the same list comes out:
- the symbolic scene state is {led, lightbulb, slider, drawer, red/blue/pink block
  position, grasped}; the initial states are all combinations of
  led {0,1} x lightbulb {0,1} x slider {right,left} x drawer {closed,open} x each block in
  {table, slider_right, slider_left}, with grasped = 0, keeping those with one or two blocks
  on the table and at most one block in each half of the slider;
- the 1000 chains are split as evenly as possible over these states (np.array_split);
- for initial state i, numpy's global RNG is seeded with i and chains are drawn as
  np.random.choice(TASKS, 5, replace=False) until enough are valid: every subtask's
  precondition holds in the state left by the previous one (exactly one rule of the task
  applies), and no two subtasks share a category (e.g. no two "lift from table");
- the (state, chain) pairs are shuffled with numpy seed 0.
We re-implemented this from the published algorithm; without calvin_agent installed here
the output could not be compared with CALVIN's own list (the test checks the rules and
determinism; `tests/test_calvin.py`). The global numpy RNG state is saved and restored.

Simulator: `calvin_env` (+ `calvin_agent` for CALVIN's mapping from a symbolic initial state
to a scene, and the ABC->D dataset's validation folder for the env config and the task
oracle) is not on PyPI. make_env() and make_chain_env() raise a clear error when it is
missing. Those paths are written against CALVIN's public API but could not be run here.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

NUM_SEQUENCES = 1000
CHAIN_LENGTH = 5
EP_LEN = 360  # steps per subtask
BLOCKS = ("red", "blue", "pink")

# The 34 subtasks in CALVIN's order (the order matters: np.random.choice draws from it),
# each with its category (a chain never repeats a category).
_CATEGORY: dict[str, int] = {}
for _c in BLOCKS:
    _CATEGORY[f"rotate_{_c}_block_right"] = 1
    _CATEGORY[f"rotate_{_c}_block_left"] = 1
for _c in BLOCKS:
    _CATEGORY[f"push_{_c}_block_right"] = 1
    _CATEGORY[f"push_{_c}_block_left"] = 1
_CATEGORY.update({"move_slider_left": 2, "move_slider_right": 2, "open_drawer": 3,
                  "close_drawer": 3})
for _c in BLOCKS:
    _CATEGORY.update({f"lift_{_c}_block_table": 4, f"lift_{_c}_block_slider": 5,
                      f"lift_{_c}_block_drawer": 6})
_CATEGORY.update({"place_in_slider": 7, "place_in_drawer": 7, "stack_block": 10,
                  "unstack_block": 11, "turn_on_lightbulb": 8, "turn_off_lightbulb": 8,
                  "turn_on_led": 8, "turn_off_led": 8, "push_into_drawer": 9})
TASKS: tuple[str, ...] = tuple(_CATEGORY)
TASK_CATEGORY = dict(_CATEGORY)

# CALVIN's evaluation instructions (conf/annotations/new_playtable_validation.yaml).
INSTRUCTIONS: dict[str, str] = {}
for _c in BLOCKS:
    INSTRUCTIONS.update({
        f"rotate_{_c}_block_right": f"rotate the {_c} block to the right",
        f"rotate_{_c}_block_left": f"rotate the {_c} block to the left",
        f"push_{_c}_block_right": f"push the {_c} block to the right",
        f"push_{_c}_block_left": f"push the {_c} block to the left",
        f"lift_{_c}_block_table": f"pick up the {_c} block",
        f"lift_{_c}_block_slider": f"pick up the {_c} block in the sliding cabinet",
        f"lift_{_c}_block_drawer": f"grasp the {_c} block in the drawer",
    })
INSTRUCTIONS.update({
    "move_slider_left": "slide the door to the left",
    "move_slider_right": "slide the door to the right",
    "open_drawer": "open the drawer", "close_drawer": "close the drawer",
    "place_in_slider": "put the block in the sliding cabinet",
    "place_in_drawer": "put the block in the drawer",
    "push_into_drawer": "push the block into the drawer",
    "stack_block": "stack the blocks", "unstack_block": "unstack the blocks",
    "turn_on_lightbulb": "turn on the light bulb", "turn_off_lightbulb": "turn off the light bulb",
    "turn_on_led": "turn on the led light", "turn_off_led": "turn off the led light",
})

# A rule: (condition, effect). Condition values are a value or a tuple of allowed values.
Rule = tuple[dict, dict]


def _rules() -> dict[str, list[Rule]]:
    rules: dict[str, list[Rule]] = {}

    def on_table(c: str) -> Rule:
        return {f"{c}_block": "table", "grasped": 0}, {f"{c}_block": "table"}
    for c in BLOCKS:
        rules[f"rotate_{c}_block_right"] = [on_table(c)]
        rules[f"rotate_{c}_block_left"] = [on_table(c)]
    for c in BLOCKS:
        rules[f"push_{c}_block_right"] = [on_table(c)]
        rules[f"push_{c}_block_left"] = [on_table(c)]
    rules["move_slider_left"] = [({"slider": "right", "grasped": 0}, {"slider": "left"})]
    rules["move_slider_right"] = [({"slider": "left", "grasped": 0}, {"slider": "right"})]
    rules["open_drawer"] = [({"drawer": "closed", "grasped": 0}, {"drawer": "open"})]
    rules["close_drawer"] = [({"drawer": "open", "grasped": 0}, {"drawer": "closed"})]
    for c in BLOCKS:
        b, grab = f"{c}_block", {f"{c}_block": "grasped", "grasped": 1}
        rules[f"lift_{c}_block_table"] = [({b: "table", "grasped": 0}, grab)]
        # a block in one half of the slider is reachable when the door covers the other half
        rules[f"lift_{c}_block_slider"] = [
            ({b: "slider_left", "slider": "right", "grasped": 0}, grab),
            ({b: "slider_right", "slider": "left", "grasped": 0}, grab)]
        rules[f"lift_{c}_block_drawer"] = [({b: "drawer", "drawer": "open", "grasped": 0}, grab)]
    rules["place_in_slider"] = [
        ({f"{c}_block": "grasped", "slider": door, "grasped": 1},
         {f"{c}_block": f"slider_{door}", "grasped": 0})
        for c in BLOCKS for door in ("right", "left")]
    rules["place_in_drawer"] = [
        ({f"{c}_block": "grasped", "drawer": "open", "grasped": 1},
         {f"{c}_block": "drawer", "grasped": 0}) for c in BLOCKS]
    pairs = [(a, b) for a in BLOCKS for b in BLOCKS if a != b]
    rules["stack_block"] = [
        ({f"{a}_block": "grasped", f"{b}_block": "table", "grasped": 1},
         {f"{a}_block": "stacked_top", f"{b}_block": "stacked_bottom", "grasped": 0})
        for a, b in pairs]
    rules["unstack_block"] = [
        ({f"{a}_block": "stacked_top", f"{b}_block": "stacked_bottom", "grasped": 0},
         {f"{a}_block": "table", f"{b}_block": "table"}) for a, b in pairs]
    rules["turn_on_lightbulb"] = [({"lightbulb": 0, "grasped": 0}, {"lightbulb": 1})]
    rules["turn_off_lightbulb"] = [({"lightbulb": 1, "grasped": 0}, {"lightbulb": 0})]
    rules["turn_on_led"] = [({"led": 0, "grasped": 0}, {"led": 1})]
    rules["turn_off_led"] = [({"led": 1, "grasped": 0}, {"led": 0})]
    # pushing a block into the drawer: only when it is the one block on the table
    in_slider = ("slider_right", "slider_left")
    rules["push_into_drawer"] = [
        ({f"{c}_block": "table", **{f"{o}_block": in_slider for o in BLOCKS if o != c},
          "drawer": "open", "grasped": 0}, {f"{c}_block": "drawer", "grasped": 0})
        for c in BLOCKS]
    assert tuple(rules) == TASKS, "rule order must follow CALVIN's task order"
    return rules


RULES = _rules()


def _holds(state: dict, condition: dict) -> bool:
    for key, want in condition.items():
        if isinstance(want, tuple):
            if state[key] not in want:
                return False
        elif state[key] != want:
            return False
    return True


def next_states(state: dict, task: str) -> list[dict]:
    """States reachable by `task` from `state` (one per applicable rule)."""
    return [{**state, **effect} for condition, effect in RULES[task] if _holds(state, condition)]


def valid_chain(state: dict, chain) -> bool:
    """CALVIN's check: each subtask applies in exactly one way, and categories are distinct."""
    for task in chain:
        states = next_states(state, task)
        if len(states) != 1:
            return False
        state = states[0]
    cats = [TASK_CATEGORY[t] for t in chain]
    return len(cats) == len(set(cats))


def initial_states() -> list[dict]:
    """CALVIN's symbolic initial scene states, in its enumeration order."""
    space = {"led": [0, 1], "lightbulb": [0, 1], "slider": ["right", "left"],
             "drawer": ["closed", "open"],
             "red_block": ["table", "slider_right", "slider_left"],
             "blue_block": ["table", "slider_right", "slider_left"],
             "pink_block": ["table", "slider_right", "slider_left"], "grasped": [0]}
    out = []
    for values in itertools.product(*space.values()):
        blocks = values[4:7]
        if (blocks.count("table") in (1, 2) and blocks.count("slider_right") < 2
                and blocks.count("slider_left") < 2):
            out.append(dict(zip(space, values)))
    return out


_KEYS = ("led", "lightbulb", "slider", "drawer", "red_block", "blue_block", "pink_block",
         "grasped")


class _Transitions:
    """Memoised symbolic transitions: (state, task index) -> next state, or None unless
    exactly one rule applies (CALVIN's condition for a valid step)."""

    def __init__(self):
        self._memo: dict = {}

    def __call__(self, key: tuple, ti: int):
        hit = self._memo.get((key, ti), 0)
        if hit == 0:
            states = next_states(dict(zip(_KEYS, key)), TASKS[ti])
            hit = tuple(states[0][k] for k in _KEYS) if len(states) == 1 else None
            self._memo[(key, ti)] = hit
        return hit


def eval_sequences(num_sequences: int = NUM_SEQUENCES) -> list[tuple[dict, tuple[str, ...]]]:
    """The fixed evaluation chains: [(initial symbolic state, (5 subtask names)), ...].

    Rejection sampling needs ~7 million draws for 1000 chains (about a minute on one core;
    CALVIN uses a process pool for it): cache the result, e.g. as JSON."""
    saved = np.random.get_state()
    step = _Transitions()
    cats = [TASK_CATEGORY[t] for t in TASKS]
    try:
        states = initial_states()
        counts = [len(part) for part in np.array_split(range(num_sequences), len(states))]
        pairs = []
        for i, (state, n) in enumerate(zip(states, counts)):
            np.random.seed(i)
            start = tuple(state[k] for k in _KEYS)
            found = []
            while len(found) < n:
                # == np.random.choice(TASKS, 5, replace=False): same draws from the RNG
                idx = np.random.permutation(len(TASKS))[:CHAIN_LENGTH].tolist()
                key = start
                for ti in idx:
                    key = step(key, ti)
                    if key is None:
                        break
                if key is not None and len({cats[ti] for ti in idx}) == CHAIN_LENGTH:
                    found.append(tuple(TASKS[ti] for ti in idx))
            pairs.extend((dict(state), chain) for chain in found)
        np.random.seed(0)
        np.random.shuffle(pairs)
        return pairs
    finally:
        np.random.set_state(saved)


_MISSING = ("the CALVIN simulator needs `calvin_env` and `calvin_agent` (not on PyPI: install "
            "them from the CALVIN repository, `pip install -e calvin_env` and "
            "`pip install -e calvin_models`) and the task_ABC_D dataset's validation folder "
            "(its .hydra config builds the env and the task oracle)")


def _require_calvin():
    try:
        import calvin_env  # noqa: F401
        import calvin_agent  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{_MISSING}: {e}") from e


class CalvinChainEnv:
    """calvin_env's PlayTableSimEnv behind the ChainEnv interface (sim/base.py), as CALVIN's
    evaluate_policy and the official eval/calvin/evaluate_ddp.py use it: the env of the
    dataset's validation folder (get_env, evaluate_ddp.py:62-64), the task oracle of
    calvin_models' conf/callbacks/rollout/tasks/new_playtable_tasks.yaml (86-87), reset from
    the symbolic initial state (244), success = the oracle reports the subtask done between
    the subtask's start info and now (310). Written against CALVIN's public API; calvin_env
    is not installable here, so this class is not run by the tests (eval/chains.py is, with
    a stand-in)."""

    def __init__(self, dataset_path, calvin_models_conf, image_size: int):
        _require_calvin()
        import hydra
        from omegaconf import OmegaConf
        from calvin_env.envs.play_table_env import get_env

        self.env = get_env(Path(dataset_path) / "validation", show_gui=False)
        task_cfg = OmegaConf.load(Path(calvin_models_conf) / "callbacks/rollout/tasks/new_playtable_tasks.yaml")
        self.oracle = hydra.utils.instantiate(task_cfg)
        self.image_size = int(image_size)
        self._obs = self._start = self._subtask = None

    def reset(self, initial_state) -> None:
        from calvin_agent.evaluation.utils import get_env_state_for_initial_condition

        robot_obs, scene_obs = get_env_state_for_initial_condition(initial_state)
        self._obs = self.env.reset(robot_obs=robot_obs, scene_obs=scene_obs)

    def start_subtask(self, subtask: str) -> None:
        self._subtask, self._start = subtask, self.env.get_info()
        self._obs = self.env.get_obs()

    def render(self) -> np.ndarray:
        frame = self._obs["rgb_obs"]["rgb_static"]  # 200 x 200, upright
        if frame.shape[:2] != (self.image_size, self.image_size):
            from PIL import Image
            frame = np.asarray(Image.fromarray(frame).resize((self.image_size,) * 2, Image.BICUBIC))
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def step(self, action):
        from vlm4vla.sim.base import StepResult

        a = np.asarray(action, dtype=np.float64).copy()
        a[6] = -1.0 if a[6] > 0 else 1.0  # ours: +1 close; CALVIN: -1 close
        self._obs, _, _, info = self.env.step(a)
        done = bool(self.oracle.get_task_info_for_set(self._start, info, {self._subtask}))
        return StepResult(success=done, done=done, info={})

    def close(self) -> None:
        self.env.close()


class CalvinBenchmark:
    """Names and instructions of CALVIN's 34 subtasks, its evaluation chains; environments
    need calvin_env. Evaluated per chain (eval/chains.py): `chains = True`."""

    name = "calvin"
    chains = True
    # where make_chain_env finds the dataset and calvin_models' conf (paper scale: set them)
    dataset_path = os.environ.get("CALVIN_DATASET", "data/calvin/task_ABC_D")
    conf_path = os.environ.get("CALVIN_MODELS_CONF", "calvin/calvin_models/conf")

    def eval_chains(self, n: int) -> list[tuple[dict, tuple[str, ...]]]:
        return eval_sequences(n)

    def make_chain_env(self, image_size: int) -> CalvinChainEnv:
        return CalvinChainEnv(self.dataset_path, self.conf_path, image_size)

    def tasks(self) -> list[str]:
        return sorted(TASKS)

    def instruction(self, task: str) -> str:
        if task not in INSTRUCTIONS:
            raise ValueError(f"unknown CALVIN subtask {task!r}; known: {self.tasks()}")
        return INSTRUCTIONS[task]

    def make_env(self, task: str, image_size: int):
        _require_calvin()
        raise NotImplementedError(
            "CALVIN is evaluated per 5-subtask chain, not per task: build the env with "
            "calvin_env.envs.play_table_env.get_env(<task_ABC_D>/validation) and the task "
            "oracle from its .hydra config: make_chain_env, run by vlm4vla.eval.chains)")

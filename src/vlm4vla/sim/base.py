"""The one interface every benchmark plugin implements.

A benchmark names its tasks, gives each a natural-language instruction, and makes
environments that reset to a seeded initial state, step a 7-D action and render a
224x224 uint8 RGB frame the right way up. Policies never see a simulator object: evaluation
hands them frames and instructions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class StepResult:
    success: bool  # task solved at this step (benchmark's own success criterion)
    done: bool  # episode must stop (success or the simulator's own termination)
    info: dict  # extra per-step information (JSON-serialisable values only)


class Env(Protocol):
    task: str

    def reset(self, seed: int) -> None:
        """Reset to the initial state derived from `seed` (same seed -> same state)."""

    def render(self) -> np.ndarray:
        """uint8 (H, W, 3) third-person RGB frame, upright, at the benchmark's image size."""

    def step(self, action: np.ndarray) -> StepResult:
        """Apply one 7-D action: xyz delta, rotation delta (3), gripper in [-1, 1]
        (-1 = open, +1 = close). Plugins whose robots lack rotation ignore dims 3:6."""

    def close(self) -> None: ...

    # Optional: plugins that can generate demonstrations also provide
    #     def expert_action(self) -> np.ndarray  # (7,) privileged scripted-expert action
    # for the current state; vlm4vla.data.demos refuses plugins without it, clearly.


class Benchmark(Protocol):
    name: str

    def tasks(self) -> list[str]:
        """All task names this plugin knows, sorted."""

    def instruction(self, task: str) -> str:
        """A real English sentence telling the robot what to do."""

    def make_env(self, task: str, image_size: int) -> Env:
        """Build an environment for `task` (may be slow; reuse it across resets)."""


def checked_action(action, started: bool) -> np.ndarray:
    """The 7-D action as float64, after the checks every plugin's step() needs."""
    if not started:
        raise RuntimeError("step() before reset()")
    action = np.asarray(action, dtype=np.float64).reshape(-1)
    if action.shape != (7,) or not np.all(np.isfinite(action)):
        raise ValueError(f"expected a finite 7-D action, got {action!r}")
    return action


class ChainEnv(Protocol):
    """A benchmark whose episodes are chains of subtasks (CALVIN): one environment runs a
    chain from a (symbolic) initial state, subtask after subtask, without a reset between
    them. Plugins that chain say so with `chains = True` and give `eval_chains(n)` ->
    [(initial_state, [subtask, ...]), ...] and `make_chain_env(image_size)`."""

    def reset(self, initial_state) -> None:
        """Put the scene in `initial_state` (the chain's start)."""

    def start_subtask(self, subtask: str) -> None:
        """Record the scene before `subtask` (success is judged against it)."""

    def render(self) -> np.ndarray:
        """uint8 (H, W, 3) third-person RGB frame, upright."""

    def step(self, action: np.ndarray) -> StepResult:
        """One 7-D action (ours: gripper +1 close); success = the current subtask is done."""

    def close(self) -> None: ...

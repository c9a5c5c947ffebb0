"""Action normalisation as in VLM4VLA's code: clip to per-dimension bounds, scale to [-1, 1].

Per arm dimension d (the 6 xyz + rotation deltas), with bounds [low_d, high_d]:
    y = 2 (clip(x, low, high) - low) / (high - low) - 1        low -> -1, high -> +1
    inverse: x = (y + 1) / 2 (high - low) + low                 (exact for x inside the bounds)
Two ways to choose the bounds, as the paper does per benchmark:
  - `fit` (Bridge / Fractal / LIBERO / Meta-World, OpenVLA style): low = q01, high = q99 of
    the demo actions, so the 2% of outlying deltas saturate instead of stretching the scale.
  - `fixed` (CALVIN rel_actions): the same bounds for every dimension; the paper's CALVIN
    recipe clips to +-0.65 (`fixed(-0.65, 0.65)`), i.e. x / 0.65 clipped to [-1, 1].
Degenerate dimensions (high == low, e.g. Meta-World's all-zero rotation) map to y = 0 and
back to x = low, never dividing by zero.
The gripper (+1 close / -1 open) becomes {1, 0} (target of the BCE term); inverse: close
probability > 0.5 (logit > 0) -> +1, else -1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json, write_json

ARM_DIMS = 6


class ActionNormalizer:
    def __init__(self, low, high, kind: str = "q01_q99"):
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        if self.low.shape != (ARM_DIMS,) or self.high.shape != (ARM_DIMS,):
            raise ValueError(f"low/high bounds must have {ARM_DIMS} entries")
        self.kind = kind
        self.span = self.high - self.low
        self.degenerate = self.span <= 0
        self._safe_span = np.where(self.degenerate, 1.0, self.span)

    @classmethod
    def fit(cls, actions: np.ndarray) -> "ActionNormalizer":
        """Bounds = per-dimension 1% / 99% quantiles of the arm dims of the demo actions (N, 7)."""
        arm = np.asarray(actions, dtype=np.float64)[:, :ARM_DIMS]
        return cls(np.quantile(arm, 0.01, axis=0), np.quantile(arm, 0.99, axis=0), "q01_q99")

    @classmethod
    def fixed(cls, low: float, high: float) -> "ActionNormalizer":
        """The same bounds for every arm dimension (CALVIN: fixed(-0.65, 0.65))."""
        return cls(np.full(ARM_DIMS, low), np.full(ARM_DIMS, high), "fixed")

    def normalize(self, actions: np.ndarray) -> np.ndarray:
        """(..., 7) env actions -> (..., 7) float32: arm in [-1, 1], gripper in {0, 1}."""
        a = np.asarray(actions, dtype=np.float64)
        x = np.clip(a[..., :ARM_DIMS], self.low, self.high)
        y = np.where(self.degenerate, 0.0, 2.0 * (x - self.low) / self._safe_span - 1.0)
        grip = (a[..., ARM_DIMS:] > 0).astype(np.float64)
        return np.concatenate([y, grip], axis=-1).astype(np.float32)

    def unnormalize(self, arm: np.ndarray, gripper_prob: np.ndarray) -> np.ndarray:
        """arm (..., 6) in [-1, 1], gripper close probability (...) -> (..., 7) env actions."""
        y = np.clip(np.asarray(arm, dtype=np.float64), -1.0, 1.0)
        x = np.where(self.degenerate, self.low, (y + 1.0) / 2.0 * self.span + self.low)
        grip = np.where(np.asarray(gripper_prob) > 0.5, 1.0, -1.0)[..., None]
        return np.concatenate([x, grip], axis=-1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "low": [float(v) for v in self.low],
                "high": [float(v) for v in self.high], "gripper": "+1 close -> 1, -1 open -> 0"}

    @classmethod
    def from_dict(cls, d: dict) -> "ActionNormalizer":
        return cls(d["low"], d["high"], d.get("kind", "q01_q99"))

    def save(self, path: str | Path) -> None:
        """JSON, written atomically (temp file + rename)."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "ActionNormalizer":
        return cls.from_dict(read_json(path))

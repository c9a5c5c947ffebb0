"""Action normalisation as in VLM4VLA's code: clip to per-dimension bounds, scale to [-1, 1].

Per arm dimension d (the 6 xyz + rotation deltas), with bounds [low_d, high_d]:
    y = 2 (clip(x, low, high) - low) / (high - low) - 1        low -> -1, high -> +1
    inverse: x = (y + 1) / 2 (high - low) + low                 (exact for x inside the bounds)
Two ways to choose the bounds, as the official code does per benchmark:
  - `fit` (Bridge / LIBERO / Meta-World, OpenVLA style): low = q01, high = q99 of the demo
    actions, so the 2% of outlying deltas saturate instead of stretching the scale. The
    official Bridge / LIBERO recipe then clips the result again, to +-0.65, and rescales:
        OpenVLA's BOUNDS_Q99: y1 = clip(2 (x - q01) / (q99 - q01) - 1, -1, 1)
            (official vlm4vla/data/base_openvla_dataset.py:74 picks it for Bridge / LIBERO)
        then normalize_action(y1, -0.65, 0.65): y = clip(y1, -0.65, 0.65) / 0.65
            (vlm4vla/data/base_action_prediction_dataset.py:115-116 with the
            configs/oxe_training/{bridge,libero10}/*.json `norm_action: true`,
            `norm_min/max: -+0.65`; normalize_action in vlm4vla/data/data_utils.py:568-574)
        evaluation inverts both: unnoramalize_action(y, -0.65, 0.65) (eval/calvin/
        model_wrapper.py:357-366, the base class of eval/libero/model_wrapper.py), then
        0.5 (y + 1) (q99 - q01) + q01 (eval/libero/model_wrapper.py:187-193).
    That is the same map as q01/q99 bounds moved inwards by (1 - 0.65) / 2 of their span
    (`fit(actions, clip=0.65)`): deltas beyond 65% of the q01..q99 range saturate.
  - `fixed` (CALVIN rel_actions): the same bounds for every dimension; the paper's CALVIN
    recipe clips to +-0.65 (`fixed(-0.65, 0.65)`), i.e. x / 0.65 clipped to [-1, 1].
`from_config` picks one from a benchmark's `action_norm` (config/schema.yaml).
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
    def fit(cls, actions: np.ndarray, clip: float = 1.0) -> "ActionNormalizer":
        """Bounds = per-dimension 1% / 99% quantiles of the arm dims of the demo actions (N, 7);
        clip < 1: then clipped to +-clip and rescaled (the official Bridge / LIBERO 0.65),
        i.e. the bounds moved inwards by (1 - clip) / 2 of their span (module docstring)."""
        if not 0.0 < clip <= 1.0:
            raise ValueError(f"action_norm clip={clip!r} must be in (0, 1]")
        arm = np.asarray(actions, dtype=np.float64)[:, :ARM_DIMS]
        q01, q99 = np.quantile(arm, 0.01, axis=0), np.quantile(arm, 0.99, axis=0)
        if clip == 1.0:
            return cls(q01, q99, "q01_q99")
        inset = (1.0 - clip) / 2.0 * (q99 - q01)
        return cls(q01 + inset, q99 - inset, f"q01_q99_clip{clip:g}")

    @classmethod
    def from_config(cls, norm_cfg: dict | None, actions: np.ndarray) -> "ActionNormalizer":
        """A benchmark's validated `action_norm` ({bounds: q01_q99 | fixed, clip, fixed_bound},
        defaults from config/schema.yaml); None (the benchmark sets none): plain q01/q99."""
        if norm_cfg is None:
            return cls.fit(actions)
        if norm_cfg["bounds"] == "fixed":
            return cls.fixed(-float(norm_cfg["fixed_bound"]), float(norm_cfg["fixed_bound"]))
        return cls.fit(actions, float(norm_cfg["clip"]))

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

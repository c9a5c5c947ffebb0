"""VLM4VLA's action loss: Huber(delta 1) on the 6 arm dims + 0.01 x BCE on the gripper.

Both terms are means over the VALID chunk steps only (mask 1): the arm term averages over
valid steps x 6 dims, the gripper term over valid steps. Steps past an episode's end carry
no target and contribute nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GRIPPER_WEIGHT = 0.01


def action_loss(arm: torch.Tensor, gripper_logits: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor, gripper_weight: float = GRIPPER_WEIGHT) -> dict[str, torch.Tensor]:
    """arm (B,C,6) in [-1,1]; gripper_logits (B,C); target (B,C,7) normalised (gripper in
    {0,1}); mask (B,C) -> {"loss", "arm", "gripper"} scalars."""
    m = mask.to(arm.dtype)
    n = m.sum().clamp_min(1.0)
    huber = F.huber_loss(arm, target[..., :6].to(arm.dtype), reduction="none", delta=1.0)
    arm_loss = (huber * m[..., None]).sum() / (n * 6)
    bce = F.binary_cross_entropy_with_logits(gripper_logits, target[..., 6].to(gripper_logits.dtype),
                                             reduction="none")
    grip_loss = (bce * m).sum() / n
    return {"loss": arm_loss + gripper_weight * grip_loss, "arm": arm_loss, "gripper": grip_loss}

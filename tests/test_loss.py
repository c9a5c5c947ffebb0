import math

import torch

from vlm4vla.models.losses import action_loss


def _huber(d):
    d = abs(d)
    return 0.5 * d * d if d <= 1 else d - 0.5


def _bce(logit, y):
    p = 1 / (1 + math.exp(-logit))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_hand_computed_values():
    arm = torch.zeros(1, 2, 6)
    arm[0, 0, 0] = 0.5      # diff 0.5 -> 0.125
    arm[0, 1, 1] = -0.9     # target 1.0 -> diff 1.9 -> 1.4
    target = torch.zeros(1, 2, 7)
    target[0, 1, 1] = 1.0
    target[0, 0, 6] = 1.0
    logits = torch.tensor([[2.0, -1.0]])
    out = action_loss(arm, logits, target, torch.ones(1, 2))
    arm_want = (_huber(0.5) + _huber(1.9)) / 12
    grip_want = (_bce(2.0, 1) + _bce(-1.0, 0)) / 2
    assert math.isclose(out["arm"].item(), arm_want, rel_tol=1e-6)
    assert math.isclose(out["gripper"].item(), grip_want, rel_tol=1e-6)
    assert math.isclose(out["loss"].item(), arm_want + 0.01 * grip_want, rel_tol=1e-6)


def test_masked_steps_do_not_count():
    torch.manual_seed(0)
    arm, logits, target = torch.rand(2, 3, 6), torch.randn(2, 3), torch.rand(2, 3, 7).round()
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    out = action_loss(arm, logits, target, mask)
    garbage = target.clone()
    garbage[mask == 0] = 1e6  # targets of masked steps must not matter
    assert torch.equal(action_loss(arm, logits, garbage, mask)["loss"], out["loss"])
    keep = mask.bool()
    want = torch.nn.functional.huber_loss(arm[keep], target[keep][:, :6])
    assert torch.allclose(out["arm"], want)

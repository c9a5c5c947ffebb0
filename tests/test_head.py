import math

import torch

from vlm4vla.models.policy import ActionHead


def test_shapes_and_range():
    head = ActionHead(hidden=64, chunk=4)
    arm, grip = head(torch.randn(3, 64) * 10)
    assert arm.shape == (3, 4, 6) and grip.shape == (3, 4)
    assert arm.abs().max() <= 1.0  # final tanh


def test_layer_sizes_and_init():
    head = ActionHead(hidden=64, chunk=10)
    dims = lambda seq: [(m.in_features, m.out_features) for m in seq if isinstance(m, torch.nn.Linear)]
    assert dims(head.trunk) == [(64, 32), (32, 1024)]
    assert dims(head.arm) == [(1024, 1024), (1024, 512), (512, 256), (256, 60)]
    assert dims(head.gripper) == [(1024, 1024), (1024, 512), (512, 256), (256, 10)]
    assert isinstance(head.arm[-1], torch.nn.Tanh) and not isinstance(head.gripper[-1], torch.nn.Tanh)
    for m in head.modules():
        if isinstance(m, torch.nn.Linear):
            assert torch.all(m.bias == 0)
            bound = math.sqrt(6.0 / (m.in_features + m.out_features))  # Xavier-uniform
            assert m.weight.abs().max() <= bound
            assert m.weight.abs().max() > 0.9 * bound

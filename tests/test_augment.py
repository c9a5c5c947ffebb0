"""Image augmentation: off is the identity, on is seeded (byte-reproducible), geometry and
colour change the frame, the evaluation centre crop keeps the centre."""

import numpy as np
import pytest
import torch

from vlm4vla.data.augment import augment_frames, center_crop, is_off


def _frames(b=3, h=32, w=32):
    g = np.random.default_rng(0)
    return torch.from_numpy(g.integers(0, 256, (b, h, w, 3), dtype=np.uint8))


def test_off_is_the_identity():
    f = _frames()
    assert is_off(None) and is_off({"eval_center_crop": 0.9})
    assert augment_frames(f, None) is f and augment_frames(f, {"crop_scale": 1.0}) is f
    assert center_crop(f.numpy(), 1.0) is not None and np.array_equal(center_crop(f.numpy(), 1.0), f.numpy())


@pytest.mark.parametrize("cfg", [{"shift_pad": 4}, {"crop_scale": 0.9}, {"color_jitter": True},
                                 {"crop_scale": 0.9, "color_jitter": True}])
def test_each_augmentation_changes_frames_reproducibly(cfg):
    f = _frames()
    torch.manual_seed(1)
    a = augment_frames(f, cfg)
    torch.manual_seed(1)
    b = augment_frames(f, cfg)
    torch.manual_seed(2)
    c = augment_frames(f, cfg)
    assert a.dtype == torch.uint8 and a.shape == f.shape
    assert torch.equal(a, b)                      # same seed, same bytes
    assert not torch.equal(a, f) and not torch.equal(a, c)   # it does something, seed-dependent


def test_shift_moves_content_by_whole_pixels():
    f = torch.zeros(1, 16, 16, 3, dtype=torch.uint8)
    f[0, 8, 8] = 255
    torch.manual_seed(0)
    out = augment_frames(f, {"shift_pad": 3})
    ys, xs = np.nonzero(out[0, ..., 0].numpy())
    assert len(ys) == 1 and abs(int(ys[0]) - 8) <= 3 and abs(int(xs[0]) - 8) <= 3


def test_center_crop_keeps_the_centre_and_the_size():
    f = np.zeros((1, 40, 40, 3), dtype=np.uint8)
    f[:, :2] = 255  # a bright top border: cropped away by a 0.9-area centre crop
    out = center_crop(f, 0.9)
    assert out.shape == f.shape and out.dtype == torch.uint8
    assert int(out[0, 20:, :, :].max()) == 0 and int(out[0, :2].float().mean()) < 255


def test_a_loaded_policy_applies_the_eval_crop_it_was_trained_with():
    from vlm4vla.data.normalize import ActionNormalizer
    from vlm4vla.train.vla import LoadedPolicy

    seen = []

    class Fake:
        chunk = 2

        def __call__(self, frames, instructions):
            seen.append(np.asarray(frames))
            return torch.zeros(len(instructions), 2, 6), torch.zeros(len(instructions), 2)

    f = np.zeros((1, 40, 40, 3), dtype=np.uint8)
    f[:, :2] = 255
    norm = ActionNormalizer([-1.0] * 6, [1.0] * 6)
    LoadedPolicy(Fake(), norm, {}).act(f, ["x"])
    LoadedPolicy(Fake(), norm, {"augment": {"crop_scale": 0.9, "eval_center_crop": 0.9}}).act(f, ["x"])
    assert np.array_equal(seen[0], f)               # no augment recorded: frames as rendered
    assert not np.array_equal(seen[1], f) and seen[1].shape == f.shape   # centre-cropped

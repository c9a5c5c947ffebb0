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


def _tf_crop_and_resize_reference(img, box, out_h, out_w):
    """tensorflow/core/kernels/image/crop_and_resize_op.cc (bilinear), transcribed as loops
    over one float32 (H, W, C) image and one box (y1, x1, y2, x2), normalised coordinates."""
    h, w, _ = img.shape
    y1, x1, y2, x2 = (np.float32(v) for v in box)
    hs = (y2 - y1) * np.float32(h - 1) / np.float32(out_h - 1)
    ws = (x2 - x1) * np.float32(w - 1) / np.float32(out_w - 1)
    out = np.zeros((out_h, out_w, img.shape[2]), np.float32)
    for y in range(out_h):
        in_y = y1 * np.float32(h - 1) + np.float32(y) * hs
        ty, by = int(np.floor(in_y)), int(np.ceil(in_y))
        ly = in_y - np.float32(ty)
        for x in range(out_w):
            in_x = x1 * np.float32(w - 1) + np.float32(x) * ws
            lx, rx = int(np.floor(in_x)), int(np.ceil(in_x))
            wx = in_x - np.float32(lx)
            top = img[ty, lx] + (img[ty, rx] - img[ty, lx]) * wx
            bottom = img[by, lx] + (img[by, rx] - img[by, lx]) * wx
            out[y, x] = top + (bottom - top) * ly
    return out


def test_center_crop_is_the_official_tf_crop_and_resize():
    """eval/libero/model_wrapper.py:150-172 + crop_and_resize 201-240: convert_image_dtype to
    float, box of sqrt(0.9) centred, tf.image.crop_and_resize to 224, clip, back to uint8
    with saturation (x * 255.5, truncated)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    out = center_crop(frames, 0.9, 224).numpy()
    assert out.shape == (2, 224, 224, 3)
    s = np.float32(np.sqrt(0.9))
    lo = (np.float32(1) - s) / np.float32(2)
    for i in range(2):
        ref = _tf_crop_and_resize_reference(frames[i].astype(np.float32) * np.float32(1 / 255),
                                            (lo, lo, lo + s, lo + s), 224, 224)
        want = (np.clip(ref, 0, 1) * np.float32(255.5)).astype(np.uint8)
        # float32 reassociation may move a value across an integer: at most 1 level, rarely
        diff = np.abs(out[i].astype(int) - want.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_a_loaded_policy_crops_a_larger_render_to_its_training_size():
    """LIBERO renders 256 and the crop resizes to the 224 the policy learned on
    (benchmarks.<b>.render_size); the image_size recorded in policy.json says which."""
    from vlm4vla.data.normalize import ActionNormalizer
    from vlm4vla.train.vla import LoadedPolicy

    seen = []

    class Fake:
        chunk = 2

        def __call__(self, frames, instructions):
            seen.append(np.asarray(frames))
            return torch.zeros(len(instructions), 2, 6), torch.zeros(len(instructions), 2)

    f = np.full((1, 40, 40, 3), 128, dtype=np.uint8)
    norm = ActionNormalizer([-1.0] * 6, [1.0] * 6)
    info = {"augment": {"eval_center_crop": 0.9}, "image_size": 24}
    LoadedPolicy(Fake(), norm, info).act(f, ["x"])
    assert seen[0].shape == (1, 24, 24, 3) and (seen[0] == 128).all()

"""Image augmentation of the official training recipe, deterministic.

What the official code does, per benchmark (CladernyJorn/VLM4VLA, as the fidelity audit in
issue 14 reads it): CALVIN a random shift (pad 10 px, replicate, crop back); Bridge and
LIBERO a random-resized crop of 90% of the area plus colour jitter (OpenVLA's:
brightness +-0.2, contrast and saturation x[0.8, 1.2], hue +-0.05); LIBERO evaluation a
centre crop of 90% of the area resized back. Configured per benchmark
(`benchmarks.<b>.augment`); all off by default.

Random draws come from torch's global generator, which the training loop seeds and
checkpoints with everything else: a run is byte-reproducible and a resumed run draws what
an uninterrupted one would. Frames stay uint8 (B, H, W, 3) in and out: the backbone's own
preprocessing follows, unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

OFF = {"shift_pad": 0, "crop_scale": 1.0, "color_jitter": False, "eval_center_crop": 1.0}
JITTER = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.05}


def is_off(cfg: dict | None) -> bool:
    c = {**OFF, **(cfg or {})}
    return not c["shift_pad"] and c["crop_scale"] >= 1.0 and not c["color_jitter"]


def augment_frames(frames: torch.Tensor, cfg: dict | None) -> torch.Tensor:
    """Training augmentation of a uint8 (B, H, W, 3) batch (returned unchanged if off)."""
    c = {**OFF, **(cfg or {})}
    if is_off(c):
        return frames
    x = frames.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
    b, _, h, w = x.shape
    if c["shift_pad"]:
        x = _random_shift(x, int(c["shift_pad"]))
    if c["crop_scale"] < 1.0:
        side_h, side_w = _crop_side(h, c["crop_scale"]), _crop_side(w, c["crop_scale"])
        oy = torch.randint(0, h - side_h + 1, (b,))
        ox = torch.randint(0, w - side_w + 1, (b,))
        x = torch.cat([_resize(x[i:i + 1, :, oy[i]:oy[i] + side_h, ox[i]:ox[i] + side_w], h, w)
                       for i in range(b)])
    if c["color_jitter"]:
        x = _color_jitter(x)
    return _to_uint8(x)


def center_crop(frames, scale: float, size: int | None = None):
    """Evaluation centre crop of `scale` of the area, resized to size x size (None: back to
    the input size); uint8 (B, H, W, 3) in and out, scale 1: frames as they are.

    As the official LIBERO evaluation (eval/libero/model_wrapper.py:150-172, crop_and_resize
    201-240): uint8 -> float in [0, 1] (tf.image.convert_image_dtype: x * (1/255)), the box
    [(1 - sqrt(scale)) / 2, (1 + sqrt(scale)) / 2] in normalised coordinates resampled by
    tf.image.crop_and_resize's bilinear kernel (output row i samples input row
    y1 (H-1) + i (y2 - y1)(H-1)/(out-1), tensorflow/core/kernels/image/crop_and_resize_op.cc),
    clipped to [0, 1] and converted back with saturation (floor(x * 255.5)). The official
    render is 256 px, resized to 224 in this one step (benchmarks.<b>.render_size)."""
    if scale >= 1.0:
        return frames
    t = torch.as_tensor(frames)
    h, w = t.shape[1:3]
    oh, ow = (h, w) if size is None else (int(size), int(size))
    x = t.to(torch.float32) * torch.tensor(1.0 / 255.0, dtype=torch.float32)  # (B, H, W, 3)
    # float32 throughout, as tf: sqrt of the float32 scale, offsets (1 - side) / 2
    side = torch.sqrt(torch.tensor(scale, dtype=torch.float32)).clamp(0.0, 1.0)
    lo = (1.0 - side) / 2.0
    hi = lo + side

    def sample(n_in: int, n_out: int):
        step = (hi - lo) * (n_in - 1) / (n_out - 1) if n_out > 1 else torch.tensor(0.0)
        pos = lo * (n_in - 1) + torch.arange(n_out, dtype=torch.float32) * step if n_out > 1 \
            else (0.5 * (lo + hi) * (n_in - 1)).reshape(1)
        top = pos.floor().long().clamp(0, n_in - 1)
        return top, (top + 1).clamp(max=n_in - 1), pos - pos.floor()

    ty, by, ly = sample(h, oh)
    lx, rx, wx = sample(w, ow)
    wx = wx[None, None, :, None]
    top = x[:, ty][:, :, lx] + (x[:, ty][:, :, rx] - x[:, ty][:, :, lx]) * wx
    bottom = x[:, by][:, :, lx] + (x[:, by][:, :, rx] - x[:, by][:, :, lx]) * wx
    out = top + (bottom - top) * ly[None, :, None, None]
    return (out.clamp(0.0, 1.0) * 255.5).to(torch.uint8).contiguous()


def _crop_side(n: int, area_scale: float) -> int:
    return max(1, int(round(n * math.sqrt(area_scale))))


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


def _random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad by `pad` (edge replicate) and crop back at a random integer offset per sample."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    oy = torch.randint(0, 2 * pad + 1, (b,))
    ox = torch.randint(0, 2 * pad + 1, (b,))
    return torch.stack([padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(b)])


def _uniform(b: int, lo: float, hi: float) -> torch.Tensor:
    return (lo + (hi - lo) * torch.rand(b)).view(b, 1, 1, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _color_jitter(x: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation (blend factors) and hue (rotation in YIQ), per
    sample, in that fixed order (torchvision draws a random order; a fixed one is simpler
    and as reproducible)."""
    b = x.shape[0]
    j = JITTER
    x = (x * _uniform(b, 1 - j["brightness"], 1 + j["brightness"])).clamp(0, 1)
    mean = _gray(x).mean(dim=(2, 3), keepdim=True)
    x = (mean + (x - mean) * _uniform(b, 1 - j["contrast"], 1 + j["contrast"])).clamp(0, 1)
    g = _gray(x)
    x = (g + (x - g) * _uniform(b, 1 - j["saturation"], 1 + j["saturation"])).clamp(0, 1)
    theta = (2 * math.pi * _uniform(b, -j["hue"], j["hue"])).view(b)
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    cos, sin = torch.cos(theta).view(b, 1, 1), torch.sin(theta).view(b, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], i * cos - q * sin, i * sin + q * cos], dim=1)
    return torch.einsum("ij,bjhw->bihw", from_yiq, yiq).clamp(0, 1)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()

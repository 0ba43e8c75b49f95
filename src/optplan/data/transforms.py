"""Spatial transforms of a clip: uint8 frames (T, H, W, 3) in, float tensors (C, T, H, W) out.

The same crop, resize and flip apply to every frame of a clip (a moving box would add motion
that is not in the video). Cropping happens on uint8 before the float conversion so that only
the pixels kept are converted and resized.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

RATIO = (3 / 4, 4 / 3)  # aspect-ratio range of the random resized crop, as in Inception/timm
ANTIALIAS_BELOW = 1.5  # shrink factor above which resizing is antialiased


def random_resized_box(height: int, width: int, scale: tuple[float, float],
                       rng: np.random.Generator, attempts: int = 10) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop covering ``scale`` of the area at a ratio in ``RATIO``;
    falls back to the largest centred square after ``attempts`` misses."""
    area = height * width
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(attempts):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def crop_boxes(height: int, width: int, size: int, count: int) -> list[tuple[int, int, int, int]]:
    """``count`` square crops of ``size`` along the longer side: 1 -> centre; 3 -> left, centre,
    right (or top, centre, bottom for portrait frames)."""
    size = min(size, height, width)
    spots = [0.5] if count == 1 else list(np.linspace(0.0, 1.0, count))
    centre_top, centre_left = (height - size) // 2, (width - size) // 2
    if width >= height:
        return [(centre_top, round(s * (width - size)), size, size) for s in spots]
    return [(round(s * (height - size)), centre_left, size, size) for s in spots]


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, T, H, W) in 0..1, the layout models take.

    The channel-first layout is made on uint8 (a quarter of the bytes); resizing then treats
    the 3 colour planes as a batch of T-channel images, so no further transpose is needed.
    """
    planes = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).contiguous()
    return planes.float().div_(255.0)


def resize(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of the last two dimensions of (3, T, h, w); antialiased only when
    shrinking by more than ANTIALIAS_BELOW (it costs 3x, and mild rescaling does not alias)."""
    if clip.shape[-2:] == (height, width):
        return clip
    shrink = max(clip.shape[-2] / height, clip.shape[-1] / width)
    return F.interpolate(clip, size=(height, width), mode="bilinear", align_corners=False,
                         antialias=shrink > ANTIALIAS_BELOW)


def resize_short_side(clip: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize (3, T, h, w) so that min(h, w) == short_side, keeping the aspect ratio."""
    h, w = clip.shape[-2:]
    ratio = short_side / min(h, w)
    return resize(clip, max(short_side, round(h * ratio)), max(short_side, round(w * ratio)))


def normalise_(clip: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """In place: (3, T, H, W) in 0..1 -> (x - mean) / std per colour channel."""
    m = torch.tensor(mean, dtype=clip.dtype).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=clip.dtype).view(3, 1, 1, 1)
    return clip.sub_(m).div_(s)


def train_transform(frames: np.ndarray, *, crop_size: int, scale: tuple[float, float], flip: bool,
                    mean: tuple[float, ...], std: tuple[float, ...], rng: np.random.Generator) -> torch.Tensor:
    """Random resized crop to ``crop_size``, optional horizontal flip, normalisation -> (C, T, S, S)."""
    top, left, h, w = random_resized_box(frames.shape[1], frames.shape[2], scale, rng)
    clip = resize(to_tensor(frames[:, top:top + h, left:left + w]), crop_size, crop_size)
    if flip and rng.random() < 0.5:
        clip = clip.flip(-1)
    return normalise_(clip, mean, std)


def test_views(frames: np.ndarray, *, short_side: int, crop_size: int, crops: int,
               mean: tuple[float, ...], std: tuple[float, ...]) -> list[torch.Tensor]:
    """Short-side resize, normalisation, then ``crops`` spatial crops -> list of (C, T, S, S).

    Normalising before cropping does it once per clip; it commutes with crop and resize."""
    clip = normalise_(resize_short_side(to_tensor(frames), short_side), mean, std)
    return [resize(clip[..., top:top + h, left:left + w], crop_size, crop_size).contiguous()
            for top, left, h, w in crop_boxes(clip.shape[-2], clip.shape[-1], crop_size, crops)]

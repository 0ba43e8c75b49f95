"""Spatial transforms of a clip: uint8 frames (T, H, W, 3) in, float tensors (C, T, H, W) out.

The same crop, resize, colour change and flip apply to every frame of a clip (a moving box
would add motion that is not in the video). Cropping, resizing and flipping happen on uint8
frames, the colour augmentation (``optplan.data.augment``) on the small crop; only the final
pixels are converted to float and normalised.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from optplan.data.augment import colour_augment
from optplan.data.config import AugmentConfig

RATIO = (3 / 4, 4 / 3)  # aspect-ratio range of the random resized crop, as in Inception/timm


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


def frames_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) array -> uint8 (T, 3, H, W) tensor viewing the same memory
    (channels-last), the layout PyTorch's fast uint8 resize works on."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 (T, 3, h, w) (about 3x faster than on floats,
    within half a grey level of it)."""
    if frames.shape[-2:] == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def resize_short_side(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize uint8 (T, 3, h, w) so that min(h, w) == short_side, keeping the aspect ratio."""
    h, w = frames.shape[-2:]
    ratio = short_side / min(h, w)
    return resize(frames, max(short_side, round(h * ratio)), max(short_side, round(w * ratio)))


def to_clip(frames: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (T, 3, H, W) -> normalised float32 (C, T, H, W), contiguous: the layout models take.

    The transpose is done on uint8 (a quarter of the bytes), the normalisation in place."""
    clip = frames.permute(1, 0, 2, 3).contiguous().float()
    m = torch.tensor(mean, dtype=clip.dtype).view(3, 1, 1, 1) * 255.0
    s = torch.tensor(std, dtype=clip.dtype).view(3, 1, 1, 1) * 255.0
    return clip.sub_(m).div_(s)


def train_transform(frames: np.ndarray, *, crop_size: int, scale: tuple[float, float], flip: bool,
                    mean: tuple[float, ...], std: tuple[float, ...], rng: np.random.Generator,
                    augment: AugmentConfig | None = None) -> torch.Tensor:
    """Random resized crop to ``crop_size``, colour ``augment`` (see ``optplan.data.augment``),
    optional horizontal flip, normalisation -> (C, T, S, S); the reference's order."""
    top, left, h, w = random_resized_box(frames.shape[1], frames.shape[2], scale, rng)
    crop = resize(frames_tensor(frames)[..., top:top + h, left:left + w], crop_size, crop_size)
    if augment is not None:
        crop = colour_augment(crop, augment, rng)
    if flip and rng.random() < 0.5:
        crop = crop.flip(-1)
    return to_clip(crop, mean, std)


def eval_views(frames: np.ndarray, *, short_side: int, crop_size: int, crops: int,
               mean: tuple[float, ...], std: tuple[float, ...]) -> list[torch.Tensor]:
    """Short-side resize, then ``crops`` spatial crops, normalised -> list of (C, T, S, S)."""
    resized = resize_short_side(frames_tensor(frames), short_side)
    return [to_clip(resize(resized[..., top:top + h, left:left + w], crop_size, crop_size), mean, std)
            for top, left, h, w in crop_boxes(resized.shape[-2], resized.shape[-1], crop_size, crops)]

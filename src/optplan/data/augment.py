"""Colour augmentation of a training clip: jitter, grayscale and Gaussian blur, as the reference.

The reference (Qiu et al.) applies, after the random resized crop, colour jitter with
probability 0.8 (brightness, contrast, saturation 0.4, hue 0.1, in random order), grayscale
with probability 0.2 and a Gaussian blur (sigma 0.1..2 pixels) with probability 0.5, each
frame through PIL. Here the whole clip is one uint8 tensor (T, 3, H, W) and every operation
runs on all its frames at once with the same parameters (a clip whose colours flickered from
frame to frame would carry motion that is not in the video): the crop is converted to float
once, jitter and grayscale are applied as one composed affine colour map, the blur as two
matrix products, and the result is rounded back to uint8, so the rest of the pipeline is
unchanged.

Hue is turned by rotating the chroma plane of YIQ (a 3 x 3 matrix per clip) rather than
through HSV as PIL does: the same turn of the colour wheel for the same ``hue`` factor, up to
YIQ's slightly different wheel (and keeping luma rather than HSV's value), at a small fraction
of the cost.

All draws come from the caller's ``numpy`` generator, and none is made when every operation is
off, so a clip is then bit-identical to one made without this module.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from optplan.data.config import AugmentConfig

GRAY = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL's convert("L")
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def colour_augment(frames: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """``frames`` uint8 (T, 3, H, W) with ``cfg``'s colour augmentation applied -> uint8, same shape."""
    if not cfg.active:
        return frames
    x = frames.float()
    colour = _colour_map(x, cfg, rng)
    if colour is not None:
        a, b = colour
        x = (a @ x.flatten(2)).view_as(x).add_(b[:, :, None, None])
    if rng.random() < cfg.blur:
        x = gaussian_blur(x, float(rng.uniform(*cfg.blur_sigma)))
    return x.clamp_(0.0, 255.0).add_(0.5).to(torch.uint8)  # rounded (the cast truncates)


def _colour_map(x: torch.Tensor, cfg: AugmentConfig,
                rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The jitter and grayscale drawn for clip ``x`` (float (T, 3, H, W)) as one affine map
    ``pixel -> a @ pixel + b[t]`` (a: (3, 3), b: (T, 3)), or None when neither was drawn.

    Every step is affine in the pixels (contrast blends with the frame's mean grey level, whose
    value after the earlier steps follows from the frame's mean colour), so the steps compose
    into one pass over the pixels instead of up to five. PIL clamps to 0..255 after each step;
    the composed map clamps once, at the end, which differs only where a step pushes a pixel
    out of range and a later one brings it back."""
    a, b, drawn = torch.eye(3), torch.zeros(len(x), 3), False
    grey = torch.tensor([GRAY])  # (1, 3)
    if rng.random() < cfg.jitter:
        drawn, means = True, x.mean(dim=(-2, -1))  # (T, 3)
        for op in rng.permutation(4):  # brightness, contrast, saturation, hue in random order
            if op == 3:
                a, b = _compose(_hue_turn(float(rng.uniform(-cfg.hue, cfg.hue))), a, b)
                continue
            f = float(rng.uniform(max(0.0, 1.0 - cfg.strengths[op]), 1.0 + cfg.strengths[op]))
            if op == 0:  # brightness: scale
                a, b = _compose(f * torch.eye(3), a, b)
            elif op == 1:  # contrast: blend with the frame's mean grey level (PIL's ImageEnhance.Contrast)
                mean_grey = (means @ a.T + b) @ grey.T  # (T, 1), after the steps so far
                a, b = f * a, f * b + (1.0 - f) * mean_grey
            else:  # saturation: blend each pixel with its own grey level (PIL's ImageEnhance.Color)
                a, b = _compose(f * torch.eye(3) + (1.0 - f) * torch.ones(3, 1) @ grey, a, b)
    if rng.random() < cfg.grayscale:
        drawn = True
        a, b = _compose(torch.ones(3, 1) @ grey, a, b)
    return (a, b) if drawn else None


def _compose(m: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map ``(a, b)`` followed by the linear colour map ``m`` (3, 3)."""
    return m @ a, b @ m.T


def _hue_turn(h: float) -> torch.Tensor:
    """(3, 3) RGB map turning the colour wheel by ``h`` of a full turn (in YIQ's chroma plane)."""
    angle = -2.0 * math.pi * h  # minus: red turns to yellow, as in HSV
    c, s = math.cos(angle), math.sin(angle)
    turn = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    return _YIQ_TO_RGB @ turn @ _RGB_TO_YIQ


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of float frames (T, 3, H, W), ``sigma`` in pixels, kernel radius 3 sigma (at
    most the frame size less one), edges mirrored.

    The separable blur is written as ``B_h @ x @ B_w^T`` with banded matrices that hold the
    kernel and the mirroring: on CPU a batched matrix product is 3-6x faster than PyTorch's
    depthwise convolution at 56 to 224 pixels."""
    h, w = x.shape[-2:]
    rows = _blur_matrix(h, sigma)
    return rows @ x @ (rows if w == h else _blur_matrix(w, sigma)).T


def _blur_matrix(size: int, sigma: float) -> torch.Tensor:
    """(size, size) float32 matrix whose row i is the Gaussian kernel centred on pixel i, with
    the taps that fall off an edge mirrored back inside (reflection without repeating the edge
    pixel). Built with numpy: a few operations on small arrays, 4x faster than with torch."""
    radius = min(math.ceil(3.0 * sigma), size - 1)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    source = np.abs(np.arange(size)[:, None] + offsets)  # (size, taps): the pixel each tap reads
    source = np.where(source > size - 1, 2 * (size - 1) - source, source)
    matrix = np.zeros((size, size), dtype=np.float32)
    rows = np.broadcast_to(np.arange(size)[:, None], source.shape)
    np.add.at(matrix, (rows, source), kernel / kernel.sum())
    return torch.from_numpy(matrix)

"""Colour augmentation of a training clip: jitter, grayscale and Gaussian blur, as the reference.

The reference (Qiu et al.) applies, after the random resized crop, colour jitter with
probability 0.8 (brightness, contrast, saturation 0.4, hue 0.1, in random order), grayscale
with probability 0.2 and a Gaussian blur (sigma 0.1..2 pixels) with probability 0.5, each
frame through PIL. Here the whole clip is one uint8 tensor (T, 3, H, W) and every operation
runs on all its frames at once with the same parameters (a clip whose colours flickered from
frame to frame would carry motion that is not in the video): the crop is converted to float
once, transformed, and rounded back to uint8, so the rest of the pipeline is unchanged.

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
import torch.nn.functional as F

from optplan.data.config import AugmentConfig

GRAY = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL's convert("L")
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def colour_augment(frames: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """``frames`` uint8 (T, 3, H, W) with ``cfg``'s colour augmentation applied -> uint8, same shape."""
    if not cfg.active:
        return frames
    x = frames.float()
    if rng.random() < cfg.jitter:
        for op in rng.permutation(4):
            x = _JITTER[op](x, cfg, rng).clamp_(0.0, 255.0)  # each step ends on valid pixels, as in PIL
    if rng.random() < cfg.grayscale:
        x = gray(x).expand_as(x)
    if rng.random() < cfg.blur:
        x = gaussian_blur(x, float(rng.uniform(*cfg.blur_sigma)))
    return x.clamp(0.0, 255.0).add_(0.5).to(torch.uint8)  # rounded (the cast truncates)


def gray(x: torch.Tensor) -> torch.Tensor:
    """Luma (T, 1, H, W) of float RGB frames (T, 3, H, W)."""
    w = torch.tensor(GRAY, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _factor(strength: float, rng: np.random.Generator) -> float:
    return float(rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength))


def _brightness(x: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    return x * _factor(cfg.brightness, rng)


def _contrast(x: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Blend each frame with its mean grey level (PIL's ImageEnhance.Contrast)."""
    f = _factor(cfg.contrast, rng)
    return x * f + gray(x).mean(dim=(-2, -1), keepdim=True) * (1.0 - f)


def _saturation(x: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Blend each pixel with its own grey level (PIL's ImageEnhance.Color)."""
    f = _factor(cfg.saturation, rng)
    return x * f + gray(x) * (1.0 - f)


def _hue(x: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Turn the colour wheel by ``h`` of a full turn, ``h`` uniform in [-hue, hue]."""
    angle = -2.0 * math.pi * float(rng.uniform(-cfg.hue, cfg.hue))  # minus: red turns to yellow, as in HSV
    c, s = math.cos(angle), math.sin(angle)
    turn = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    m = _YIQ_TO_RGB @ turn @ _RGB_TO_YIQ
    return (m @ x.flatten(2)).view_as(x)


_JITTER = (_brightness, _contrast, _saturation, _hue)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of float frames (T, 3, H, W), ``sigma`` in pixels, kernel radius 3 sigma (at
    most the frame size less one), edges mirrored.

    The separable blur is written as ``B_h @ x @ B_w^T`` with banded matrices that hold the
    kernel and the mirroring: on CPU a batched matrix product is 3-6x faster than PyTorch's
    depthwise convolution at 56 to 224 pixels."""
    h, w = x.shape[-2:]
    return _blur_matrix(h, sigma) @ x @ _blur_matrix(w, sigma).T


def _blur_matrix(size: int, sigma: float) -> torch.Tensor:
    """(size, size) matrix whose row i is the Gaussian kernel centred on pixel i, with the taps
    that fall off an edge mirrored back inside (reflection without repeating the edge pixel)."""
    radius = min(math.ceil(3.0 * sigma), size - 1)
    taps = torch.arange(-radius, radius + 1)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    source = (torch.arange(size)[:, None] + taps).abs()
    source = torch.where(source > size - 1, 2 * (size - 1) - source, source)
    matrix = torch.zeros(size, size)
    rows = torch.arange(size)[:, None].expand_as(source)
    return matrix.index_put_((rows, source), (kernel / kernel.sum()).expand_as(source), accumulate=True)

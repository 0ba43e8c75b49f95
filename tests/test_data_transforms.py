"""Spatial transforms: crop positions of the test views, random resized crops, normalisation."""

from __future__ import annotations

import numpy as np
import torch

from optplan.data.transforms import crop_boxes, eval_views, random_resized_box, train_transform

MEAN, STD = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)  # leaves pixel values as grey levels


def columns(width: int = 64, height: int = 48, frames: int = 2) -> np.ndarray:
    """(T, H, W, 3) uint8 frames whose value is the column index (x 2)."""
    row = (np.arange(width) * 2).astype(np.uint8)
    return np.broadcast_to(row[None, None, :, None], (frames, height, width, 3)).copy()


def test_three_crops_are_left_centre_right():
    views = eval_views(columns(), short_side=48, crop_size=40, crops=3, mean=MEAN, std=STD)
    assert [tuple(v.shape) for v in views] == [(3, 2, 40, 40)] * 3
    assert [float(v[0, 0, 0, 0]) for v in views] == [0.0, 24.0, 48.0]  # left edge at x = 0, 12, 24
    assert crop_boxes(64, 48, 40, 3) == [(0, 4, 40, 40), (12, 4, 40, 40), (24, 4, 40, 40)]  # portrait


def test_short_side_resize_keeps_the_aspect_ratio():
    views = eval_views(columns(), short_side=24, crop_size=24, crops=1, mean=MEAN, std=STD)
    # 48x64 -> 24x32: the centre 24 columns of 32 start at resized column 4 = original column 8.5
    assert abs(float(views[0][0, 0, 0, 0]) - 17.0) <= 1.0


def test_random_resized_box_respects_scale_and_ratio():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = random_resized_box(48, 64, (0.3, 0.6), rng)
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64
        assert 0.28 <= h * w / (48 * 64) <= 0.62 and 0.7 <= w / h <= 1.4


def test_train_transform_normalises_and_flips():
    frames = columns(width=32, height=32)
    kwargs = dict(crop_size=32, scale=(1.0, 1.0), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    plain = train_transform(frames, flip=False, rng=np.random.default_rng(0), **kwargs)
    assert plain.shape == (3, 2, 32, 32) and plain.is_contiguous()
    expected = (torch.arange(32) * 2 / 255 - 0.5) / 0.25  # scale 1 on a square frame: the whole frame
    assert torch.allclose(plain[:, :, 5], expected.expand(3, 2, 32))
    flipped = [torch.allclose(train_transform(frames, flip=True, rng=np.random.default_rng(seed), **kwargs)[0, 0, 0],
                              expected.flip(0)) for seed in range(8)]
    assert 0 < sum(flipped) < 8  # about half the clips are flipped

"""Colour augmentation (the reference's jitter, grayscale, blur) on real decoded clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optplan.config import load_config
from optplan.configs import config_path
from optplan.data.annotations import read_annotations
from optplan.data.augment import colour_augment, gaussian_blur
from optplan.data.config import AugmentConfig, DataConfig
from optplan.data.dataset import VideoDataset
from optplan.data.sampling import ClipSpec
from optplan.data.transforms import frames_tensor, train_transform
from optplan.data.video import decode
from optplan.errors import ConfigError

REFERENCE = AugmentConfig(jitter=0.8, grayscale=0.2, blur=0.5)


@pytest.fixture(scope="module")
def records(tiny_dataset):
    return read_annotations(tiny_dataset / "trainlist01.txt", tiny_dataset).records


@pytest.fixture(scope="module")
def clip(records) -> torch.Tensor:
    """uint8 (8, 3, 32, 32): 8 frames of a real video, the 4th repeated as the 5th."""
    frames = decode(records[0].path)[:8].copy()
    frames[4] = frames[3]
    return frames_tensor(frames)


def test_every_frame_of_a_clip_gets_the_same_colours(clip):
    """Same parameters across the clip: two equal frames stay equal whatever is drawn; two
    draws differ from each other and from the input, and the output is uint8 of the same shape."""
    outs = [colour_augment(clip, AugmentConfig(jitter=1.0, grayscale=0.5, blur=0.5), np.random.default_rng(s))
            for s in range(6)]
    for out in outs:
        assert out.dtype == torch.uint8 and out.shape == clip.shape
        assert torch.equal(out[3], out[4])
        assert not torch.equal(out, clip)
    assert len({out.numpy().tobytes() for out in outs}) == 6


def test_each_operation_does_what_it_says(clip):
    grey = colour_augment(clip, AugmentConfig(grayscale=1.0), np.random.default_rng(0))
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    bright = AugmentConfig(jitter=1.0, contrast=0.0, saturation=0.0, hue=0.0)
    out = colour_augment(clip, bright, np.random.default_rng(1)).float()
    ratio = out.sum() / clip.float().sum()  # one brightness factor for the whole clip
    assert ratio != pytest.approx(1.0, abs=0.02)
    unclipped = (out < 255) & (clip > 20)
    assert torch.allclose(out[unclipped] / clip.float()[unclipped], ratio, atol=0.06)
    hue_only = AugmentConfig(jitter=1.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.5)
    flat = torch.full((2, 3, 8, 8), 90, dtype=torch.uint8)  # grey pixels have no hue to turn
    assert torch.equal(colour_augment(flat, hue_only, np.random.default_rng(2)), flat)
    blurred = gaussian_blur(clip.float(), 1.5)
    assert blurred.diff(dim=-1).abs().mean() < 0.7 * clip.float().diff(dim=-1).abs().mean()
    assert torch.allclose(gaussian_blur(flat.float(), 2.0), flat.float())


def test_off_leaves_clips_bit_identical(records):
    """The default (off) draws nothing, so training clips are exactly today's."""
    frames = decode(records[1].path)[:4]
    common = dict(crop_size=24, scale=(0.5, 1.0), flip=True, mean=(0.45,) * 3, std=(0.225,) * 3)
    before = train_transform(frames, rng=np.random.default_rng(7), **common)
    assert torch.equal(train_transform(frames, rng=np.random.default_rng(7), augment=AugmentConfig(), **common),
                       before)
    assert not torch.equal(train_transform(frames, rng=np.random.default_rng(7), augment=REFERENCE, **common),
                           before)


def test_the_dataset_applies_it_and_the_config_checks_it(records, tmp_path):
    cfg = DataConfig(root=records[0].path.parent, cache_dir=tmp_path, crop_size=28, short_side=32)
    plain = VideoDataset(records, cfg, mode="train", clip=ClipSpec(4), seed=1)
    coloured = VideoDataset(records, cfg.model_copy(update={"augment": AugmentConfig(grayscale=1.0)}),
                            mode="train", clip=ClipSpec(4), seed=1)
    x = coloured[3][0]
    assert x.shape == plain[3][0].shape and torch.equal(x[0], x[1]) and not torch.equal(x, plain[3][0])
    assert coloured.__getitem__(3)[0].equal(x)  # reproducible: drawn from (seed, epoch, index)
    with pytest.raises(ConfigError, match="data.augment.blur_sigma"):
        load_config(overrides=["data.augment.blur_sigma=[2.0,0.5]"])
    with pytest.raises(ConfigError, match="data.augment.jitter"):
        load_config(overrides=["data.augment.jitter=1.5"])


def test_the_reference_config_matches_the_reference():
    cfg = load_config(config_path("reference"))
    d = cfg.data
    assert (d.augment.jitter, d.augment.grayscale, d.augment.blur) == (0.8, 0.2, 0.5)
    assert d.scale == (0.2, 1.0) and d.flip and d.mean == (0.485, 0.456, 0.406)
    assert (d.crop_size, d.short_side, d.test_crop, d.test_crops, d.test_average) == (224, 256, 256, 3, "logits")
    assert cfg.knee.score_clip == "longest" and cfg.plan.sampling == "uniform"
    assert (d.val_position, d.val_short_side) == (0.0, 224)

"""VideoDataset, the frame cache, bad input and the loader's clip changes between epochs."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from optplan.data import cache as cache_module
from optplan.data.annotations import VideoRecord, read_annotations
from optplan.data.cache import FrameCache
from optplan.data.check import check_records, probe_records
from optplan.data.config import DataConfig
from optplan.data.dataset import VideoDataset, make_loader
from optplan.data.sampling import ClipSpec, sample_indices
from optplan.data.splits import load_splits
from optplan.data.video import decode, encode
from optplan.errors import OptplanError


@pytest.fixture(scope="module")
def records(tiny_dataset) -> list[VideoRecord]:
    return read_annotations(tiny_dataset / "trainlist01.txt", tiny_dataset).records


def config(root: Path, cache_dir: Path, **overrides) -> DataConfig:
    return DataConfig(**{"root": root, "cache_dir": cache_dir, "crop_size": 28, "short_side": 32, **overrides})


@pytest.mark.parametrize("cache", [True, False])
def test_val_clip_is_the_centre_clip_of_the_decoded_video(records, tmp_path, cache):
    cfg = config(records[0].path.parent, tmp_path, cache=cache, crop_size=32,
                 mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    clip = ClipSpec(8, frame_step=2)
    ds = VideoDataset(records[:3], cfg, mode="val", clip=clip)
    x, label = ds[2]
    frames = decode(records[2].path)
    expected = frames[sample_indices(len(frames), clip)].astype(np.float32) / 255
    assert x.shape == (3, 8, 32, 32) and label == records[2].label
    assert torch.allclose(x, torch.from_numpy(expected).permute(3, 0, 1, 2), atol=1e-6)


def test_val_clip_can_be_the_first_clip_resized_as_the_reference(records, tmp_path):
    """``data.val_position: 0`` scores the first clip (the reference's), and ``val_short_side``
    resizes validation frames on their own (the reference: to the crop size)."""
    cfg = config(records[0].path.parent, tmp_path, crop_size=32, val_position=0.0,
                 mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    clip = ClipSpec(8, frame_step=2)
    x = VideoDataset(records[:3], cfg, mode="val", clip=clip)[2][0]
    frames = decode(records[2].path)
    first = frames[sample_indices(len(frames), clip, position=0.0)].astype(np.float32) / 255
    assert not np.array_equal(sample_indices(len(frames), clip, position=0.0), sample_indices(len(frames), clip))
    assert torch.allclose(x, torch.from_numpy(first).permute(3, 0, 1, 2), atol=1e-6)
    small = config(records[0].path.parent, tmp_path, crop_size=28, val_short_side=28)
    resized = VideoDataset(records[:3], small, mode="val", clip=clip)[2][0]
    cropped = VideoDataset(records[:3], config(records[0].path.parent, tmp_path), mode="val", clip=clip)[2][0]
    assert resized.shape == cropped.shape == (3, 8, 28, 28) and not torch.allclose(resized, cropped)
    with pytest.raises(ValueError, match="val_short_side"):
        config(records[0].path.parent, tmp_path, crop_size=28, val_short_side=20)


def test_train_clips_are_random_per_epoch_and_reproducible(records, tmp_path):
    cfg = config(records[0].path.parent, tmp_path)
    ds = VideoDataset(records, cfg, mode="train", clip=ClipSpec(4), seed=3)
    first = ds[5][0]
    assert first.shape == (3, 4, 28, 28) and first.dtype == torch.float32
    assert torch.equal(first, ds[5][0])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[5][0])
    pixels = first * 0.225 + 0.45  # undo the default normalisation: back in 0..1
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5 and float(first.min()) < -1


def test_test_views_are_clips_times_crops(records, tmp_path):
    cfg = config(records[0].path.parent, tmp_path, test_clips=2, test_crops=3, short_side=40)
    views = VideoDataset(records[:1], cfg, mode="test", clip=ClipSpec(4, sampling="uniform"))[0][0]
    assert views.shape == (6, 3, 4, 28, 28)
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[0], views[3])  # crops, clips differ


def test_test_views_have_a_crop_size_of_their_own(records, tmp_path):
    """As the reference (train 224, test 256 of a 256 short side): training and validation clips
    keep crop_size, only the multi-view test uses test_crop_size."""
    cfg = config(records[0].path.parent, tmp_path, test_clips=1, test_crops=3, short_side=32,
                 test_crop_size=32)
    clip = ClipSpec(4)
    assert VideoDataset(records[:1], cfg, mode="test", clip=clip)[0][0].shape == (3, 3, 4, 32, 32)
    assert VideoDataset(records[:1], cfg, mode="val", clip=clip)[0][0].shape == (3, 4, 28, 28)
    assert VideoDataset(records[:1], cfg, mode="train", clip=clip)[0][0].shape == (3, 4, 28, 28)
    assert config(records[0].path.parent, tmp_path).test_crop == 28  # None: the training crop


def test_cache_decodes_once_and_again_after_a_change(records, tmp_path, monkeypatch):
    video = tmp_path / "v.mp4"
    shutil.copy(records[0].path, video)
    calls = []
    monkeypatch.setattr(cache_module, "decode", lambda *a, **k: calls.append(a) or decode(*a, **k))
    cache = FrameCache(tmp_path / "cache")
    first = np.array(cache.frames(video))
    assert isinstance(cache.frames(video), np.memmap) and len(calls) == 1  # reused, memory-mapped
    shutil.copy(records[1].path, video)  # a different video under the same name
    os.utime(video, ns=(1, 1))  # an mtime the copy cannot have had
    second = np.array(cache.frames(video))
    assert len(calls) == 2 and not np.array_equal(first, second)
    assert np.array_equal(second, decode(records[1].path))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # the stale entry is gone
    small = FrameCache(tmp_path / "cache", short_side=16).frames(video)  # resized at decode, own entry
    assert small.shape == (32, 16, 16, 3) and len(calls) == 3
    now = cache_module.DECODER
    monkeypatch.setattr(cache_module, "DECODER", now - 1)  # an entry of an older decoder ...
    FrameCache(tmp_path / "cache").frames(video)
    monkeypatch.setattr(cache_module, "DECODER", now)
    FrameCache(tmp_path / "cache").frames(video)  # ... is not taken for this one's
    assert len(calls) == 5


def test_cache_keeps_a_map_open_for_every_video_of_an_epoch(records, tmp_path, monkeypatch):
    cache = FrameCache(tmp_path / "cache")
    assert cache.keep_open >= 256
    loads = []
    real = np.load
    monkeypatch.setattr(cache_module.np, "load", lambda *a, **k: loads.append(a) or real(*a, **k))
    for _ in range(3):  # three epochs over every video: each map is opened once
        for record in records:
            cache.frames(record.path)
    assert len(loads) == len(records)
    few = FrameCache(tmp_path / "cache", keep_open=2)  # fewer maps than videos: reopened each pass
    for _ in range(2):
        for record in records[:3]:
            few.frames(record.path)
    assert len(loads) == len(records) + 6


@pytest.mark.parametrize("soft, hard, settable, expected", [
    (1024, 4096, True, 1024),        # raised to the hard limit, a quarter of it kept open
    (1024, 1024, True, 256),         # nothing to raise: a quarter of 1,024
    (1024, 65536, False, 256),       # raising refused: what the soft limit allows
    (200, 200, True, 256),           # never fewer than 256
    (10**6, 10**6, True, cache_module.MAX_OPEN_MAPS),
])
def test_open_maps_follow_the_descriptor_limit(monkeypatch, tmp_path, soft, hard, settable, expected):
    resource = cache_module.resource
    limits = {"now": (soft, hard)}
    monkeypatch.setattr(resource, "getrlimit", lambda _: limits["now"])

    def setrlimit(_, value):
        if not settable:
            raise ValueError("not allowed")
        limits["now"] = value
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert cache_module.open_map_limit() == expected
    assert limits["now"][1] == hard  # the hard limit is never touched
    assert FrameCache(tmp_path).keep_open == expected  # what a cache keeps open by default


def make_bad_files(src: list[VideoRecord], root: Path) -> tuple[list[VideoRecord], dict[str, str]]:
    """Two good videos plus one of each problem kind; returns the records and path -> kind."""
    root.mkdir(parents=True, exist_ok=True)
    good = []
    for i, record in enumerate(src[:2]):
        good.append(root / f"good{i}.mp4")
        shutil.copy(record.path, good[-1])
    data = src[0].path.read_bytes()
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n")
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    encode(root / "faststart.mp4", decode(src[0].path), faststart=True)
    (root / "cut_late.mp4").write_bytes((root / "faststart.mp4").read_bytes()[:-600])
    encode(root / "short.mp4", decode(src[0].path)[:3])
    kinds = {"missing.mp4": "missing", "empty.mp4": "empty", "text.mp4": "unreadable",
             "cut.mp4": "truncated", "cut_late.mp4": "truncated"}
    names = ["good0.mp4", *kinds, "good1.mp4", "short.mp4"]
    labels = {"good0.mp4": 0, "good1.mp4": 2}  # every other file: label 1
    return [VideoRecord(root / n, labels.get(n, 1)) for n in names], kinds


def test_bad_files_are_reported_counted_and_skipped(records, tmp_path, caplog):
    bad_records, kinds = make_bad_files(records, tmp_path / "videos")
    checked, problems = check_records(bad_records, min_frames=8)
    assert checked == 8
    assert {Path(p.path).name: p.kind for p in problems} == {**kinds, "short.mp4": "short"}
    # the cheap probe finds the ones that fail at the start; the cut-off end needs a full decode
    assert {Path(p.path).name for p in probe_records(bad_records)} == set(kinds) - {"cut_late.mp4"}

    ds = VideoDataset(bad_records, config(tmp_path, tmp_path / "cache"), mode="train", clip=ClipSpec(8))
    with caplog.at_level(logging.WARNING, logger="optplan.data"):
        labels = [ds[i][1] for i in range(len(ds))]  # a full epoch: nothing raises
    # each bad index is replaced by the next usable video (good1, label 2 for indices 1..5)
    assert labels == [0, 2, 2, 2, 2, 2, 2, 1]
    assert ds.bad_count == 5 and ds.short_count == 1
    for name in [*kinds, "short.mp4"]:
        assert str(tmp_path / "videos" / name) in caplog.text


def test_load_splits_refuses_too_many_bad_files(records, tmp_path):
    bad_records, _ = make_bad_files(records, tmp_path)
    lines = [f"{r.path.name},{r.label}\n" for r in bad_records]
    (tmp_path / "train.csv").write_text("path,label\n" + "".join(lines))
    with pytest.raises(OptplanError, match="(?s)max_bad_fraction=0.1.*optplan data check"):
        load_splits(config(tmp_path, tmp_path / "cache", val_fraction=0.3))
    splits = load_splits(config(tmp_path, tmp_path / "cache", val_fraction=0.3, max_bad_fraction=0.6))
    kept = {r.path.name for r in splits.train + splits.val}
    assert kept == {"good0.mp4", "good1.mp4", "short.mp4", "cut_late.mp4"} and len(splits.bad) == 4


def test_set_clip_reaches_persistent_workers(records, tmp_path):
    cfg = config(records[0].path.parent, tmp_path)
    ds = VideoDataset(records[:8], cfg, mode="train", clip=ClipSpec(4), seed=1)
    loader = make_loader(ds, batch_size=4, shuffle=True, num_workers=1, seed=5)
    shapes = []
    for epoch, clip in enumerate([ClipSpec(4), ClipSpec(8, "uniform"), ClipSpec(40)]):
        ds.set_epoch(epoch)
        ds.set_clip(clip)
        batches = list(loader)
        shapes.append(tuple(batches[0][0].shape))
        if epoch == 0:
            workers = loader._iterator._workers
    assert shapes == [(4, 3, 4, 28, 28), (4, 3, 8, 28, 28), (4, 3, 40, 28, 28)]
    assert loader._iterator._workers is workers  # the same worker processes all along
    assert ds.short_count == 8  # 40 > 32 frames: padded in the worker, counted here
    # same seed and epoch: the same clips in the same order as without workers
    in_process = list(make_loader(ds, batch_size=4, shuffle=True, num_workers=0, seed=5))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, in_process))

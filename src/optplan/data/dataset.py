"""``VideoDataset``: annotated videos -> normalised clips, and the loader that feeds it.

Changing the clip setting between epochs. The planner moves from 8-frame to 16-frame clips
without rebuilding the DataLoader, whose persistent workers hold their own copies of the
dataset. Rather than sharing mutable state with those copies, the sampler (which lives in the
main process) reads ``dataset.clip`` and ``dataset.epoch`` when an epoch's iteration starts and
yields :class:`ClipKey` items ``(index, clip, epoch)``; a worker cuts exactly the clip its key
names. So ``set_clip``/``set_epoch`` take effect at the next ``iter(loader)``, the same way with
any worker count and start method, and a batch never mixes clip settings. Augmentation draws
from ``default_rng([seed, epoch, index])``, so clips do not depend on which worker made them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from optplan.data.annotations import VideoRecord
from optplan.data.cache import FrameCache, cache_dir
from optplan.data.config import DataConfig
from optplan.data.sampling import ClipSpec, sample_indices, view_positions
from optplan.data.transforms import eval_views, train_transform
from optplan.data.source import decode, decode_at, frame_count
from optplan.data.video import BadVideo
from optplan.errors import OptplanError

log = logging.getLogger("optplan.data")
Mode = Literal["train", "val", "test"]


class ClipKey(NamedTuple):
    """What the sampler asks a worker for: video ``index`` cut with ``clip`` in ``epoch``."""

    index: int
    clip: ClipSpec
    epoch: int


class VideoDataset(Dataset):
    """Clips of annotated videos.

    ``ds[i]`` (or ``ds[ClipKey]``) -> ``(clip, label)``: train: one random clip, random resized
    crop, (C, T, crop, crop); val: one clip at ``data.val_position`` (default the centre),
    centre crop, same shape; test: (V, C, T, S, S) with V = ``cfg.test_clips * cfg.test_crops`` views (clip-major) and S the
    test crop (``cfg.test_crop``).
    A file that cannot be decoded is logged with its path, counted in ``bad_count`` and
    replaced by the next usable video; a video shorter than the clip is padded by repeating
    its last frame and counted in ``short_count`` (counts include worker processes).
    """

    def __init__(self, records: Sequence[VideoRecord], cfg: DataConfig, *, mode: Mode,
                 clip: ClipSpec, seed: int = 0) -> None:
        if mode not in ("train", "val", "test"):
            raise ValueError(f"mode must be 'train', 'val' or 'test', got {mode!r}")
        if not records:
            raise OptplanError(f"the {mode} split has no videos")
        self.records = list(records)
        self.cfg, self.mode, self.clip, self.seed, self.epoch = cfg, mode, clip, seed, 0
        self.cache = FrameCache(cache_dir(cfg), cfg.decode_short_side) if cfg.cache else None
        # [clips skipped for bad files, clips padded]; shared memory so workers' counts show here
        self._counts = torch.zeros(2, dtype=torch.int64).share_memory_()
        self._bad: set[int] = set()
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def set_clip(self, clip: ClipSpec) -> None:
        """Use ``clip`` from the next ``iter(loader)`` on (see the module docstring)."""
        self.clip = clip

    def set_epoch(self, epoch: int) -> None:
        """Seed the order and augmentation of the next ``iter(loader)`` with ``epoch``."""
        self.epoch = int(epoch)

    @property
    def bad_count(self) -> int:
        """Clips replaced because their file could not be decoded."""
        return int(self._counts[0])

    @property
    def short_count(self) -> int:
        """Clips padded because their video was shorter than the clip."""
        return int(self._counts[1])

    def __getitem__(self, key: int | ClipKey) -> tuple[torch.Tensor, int]:
        index, clip, epoch = key if isinstance(key, tuple) else (int(key), self.clip, self.epoch)
        for attempt in range(len(self)):
            i = (index + attempt) % len(self)
            if i in self._bad:
                continue
            try:
                return self._item(i, clip, epoch), self.records[i].label
            except BadVideo as err:
                self._bad.add(i)
                self._counts[0] += 1
                log.warning("skipping %s: %s (%s)", err.path, err.kind, err.detail)
        raise OptplanError(f"none of the {len(self)} {self.mode} videos can be decoded; "
                           f"run 'optplan data check {self.cfg.root}'")

    def _item(self, i: int, clip: ClipSpec, epoch: int) -> torch.Tensor:
        cfg, path = self.cfg, self.records[i].path
        if self.mode == "train":
            rng = np.random.default_rng([self.seed, epoch, i])
            frames = self._frames(path, clip, [None], rng)[0]
            return train_transform(frames, crop_size=cfg.crop_size, scale=cfg.scale, flip=cfg.flip,
                                   mean=cfg.mean, std=cfg.std, rng=rng, augment=cfg.augment)
        val = self.mode == "val"
        positions = [cfg.val_position] if val else view_positions(cfg.test_clips)
        short_side = (cfg.val_short_side or cfg.short_side) if val else cfg.short_side
        views = [view for frames in self._frames(path, clip, positions, None)
                 for view in eval_views(frames, short_side=short_side,
                                        crop_size=cfg.crop_size if val else cfg.test_crop,
                                        crops=1 if val else cfg.test_crops, mean=cfg.mean, std=cfg.std)]
        return views[0] if self.mode == "val" else torch.stack(views)

    def _frames(self, path: Path, clip: ClipSpec, positions: list[float | None],
                rng: np.random.Generator | None) -> list[np.ndarray]:
        """uint8 (T, H, W, 3) frames of one clip per position (None: random, from ``rng``)."""
        video: np.ndarray | None = None
        if self.cache is not None:
            video = self.cache.frames(path)
            total = len(video)
        else:
            total = frame_count(path)
            if not total:  # the container does not say: decode it all
                video = decode(path, short_side=self.cfg.decode_short_side)
                total = len(video)
        indices = [sample_indices(total, clip, rng=rng) if p is None else
                   sample_indices(total, clip, position=p) for p in positions]
        if total < clip.span:
            self._counts[1] += 1
            if str(path) not in self._reported:
                self._reported.add(str(path))
                log.warning("padding %s: %d frames, clip needs %d", path, total, clip.span)
        if video is None:  # no cache: decode only the frames needed (a video: up to the last)
            frames = decode_at(path, np.concatenate(indices), short_side=self.cfg.decode_short_side)
            return np.split(frames, np.cumsum([len(ix) for ix in indices])[:-1])
        return [np.asarray(video[np.minimum(ix, len(video) - 1)]) for ix in indices]


class ClipSampler(Sampler[ClipKey]):
    """Yields one :class:`ClipKey` per video, shuffled by ``(seed, dataset.epoch)`` if asked,
    carrying the dataset's clip setting as it is when the iteration starts."""

    def __init__(self, dataset: VideoDataset, *, shuffle: bool, seed: int = 0) -> None:
        self.dataset, self.shuffle, self.seed = dataset, shuffle, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        epoch, clip, n = self.dataset.epoch, self.dataset.clip, len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else range(n)
        return iter([ClipKey(int(i), clip, epoch) for i in order])


def loader_generator(seed: int) -> torch.Generator:
    """A DataLoader's own generator. Without one, the loader draws its workers' base seed from
    the global torch RNG when first iterated, which shifts the dropout stream of that epoch
    only: a persistent loader made in epoch 1 and one made after a resume in epoch 2 would
    train differently. Clip order and augmentation do not depend on it (they are seeded by
    (seed, epoch, index) in :class:`ClipSampler` and the dataset)."""
    return torch.Generator().manual_seed(seed)


def make_loader(dataset: VideoDataset, *, batch_size: int, shuffle: bool, num_workers: int,
                seed: int = 0, pin_memory: bool = False, drop_last: bool = False) -> DataLoader:
    """A DataLoader over ``dataset`` whose workers persist across epochs; the order is fixed by
    ``seed`` and ``dataset.epoch``, and the global torch RNG is never touched (see
    :func:`loader_generator`). Batches: (N, C, T, H, W) (test: (N, V, C, T, H, W)), labels (N,)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=ClipSampler(dataset, shuffle=shuffle, seed=seed),
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      pin_memory=pin_memory, drop_last=drop_last, generator=loader_generator(seed))

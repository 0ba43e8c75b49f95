"""What every training run in one process shares: device, data, the model factory, one epoch.

A :class:`TrainSession` is built once from the config (reading and probing the annotation
lists is the slow part) and then serves any number of states, edges and schedules: it hands
out models (fresh or from a checkpoint), trains one epoch of a state and scores a model on
the validation list with a given clip setting.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from optplan.config import OptplanConfig
from optplan.data.dataset import ClipSampler, VideoDataset, loader_generator, make_loader
from optplan.data.sampling import ClipSpec
from optplan.data.splits import load_splits
from optplan.errors import OptplanError
from optplan.models import clip_length_problem, config_overrides, create_model_from_config, set_frozen_bn
from optplan.models.weights import load_weights
from optplan.train.average import refresh_batchnorm
from optplan.train.checkpoint import unwrap
from optplan.train.cost import ClipFlops, Cost
from optplan.train.distributed import (ShardedBatchSampler, all_reduce_sum, init_distributed, sync_batchnorm,
                                       wrap_model)
from optplan.train.engine import (EpochStats, Precision, Scores, chance_score, resolve_metric, train_epoch,
                                  validate)
from optplan.train.optim import make_optimizer
from optplan.state import State
from optplan.train.threads import auto_threads

_SHARED: dict[str, "TrainSession"] = {}
"""This process's sessions by config JSON (see :meth:`TrainSession.shared`)."""
_AMP = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; asking for cuda without one is a user error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise OptplanError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
    return torch.device(name)


def seed_for(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts (same in every process and Python run)."""
    return zlib.crc32(":".join(map(str, parts)).encode()) & 0x7FFFFFFF


class TrainSession:
    """Device, data splits and loaders, model factory and the per-epoch steps of one process.

    Under torchrun it joins the process group (see ``optplan.train.distributed``).
    """

    def __init__(self, cfg: OptplanConfig) -> None:
        self.cfg = cfg
        self.threads = cfg.train.threads or auto_threads()
        torch.set_num_threads(self.threads)
        device = resolve_device(cfg.train.device)
        self.dist = init_distributed(device.type == "cuda")
        if device.type == "cuda" and self.dist.active:
            device = torch.device("cuda", self.dist.local_rank)
        on_gpu = device.type == "cuda"
        self.precision = Precision(device, _AMP[cfg.train.amp] if on_gpu else None,
                                   channels_last=cfg.train.channels_last and on_gpu)
        self.splits = load_splits(cfg.data, seed=cfg.train.seed)
        if not self.splits.val:
            raise OptplanError("the validation list is empty; set data.val_list or data.val_fraction")
        self._datasets: dict[tuple[str, str], VideoDataset] = {}
        self._loaders: dict[tuple[str, str, int], DataLoader] = {}
        m = cfg.model
        self.flops = ClipFlops(m.name, len(self.classes), cfg.data.crop_size, config_overrides(m))
        self.metric = resolve_metric(cfg.knee.metric, len(self.classes))  # what curves measure
        self.chance = chance_score(self.metric, len(self.classes))  # what they measure at chance

    @property
    def run_seed(self) -> int:
        """The seed of this session's training randomness: ``train.seed`` for draw 0 (the
        seeding every earlier run used), otherwise one derived from (seed, draw), so another
        draw trains another run on the same validation hold-out."""
        train = self.cfg.train
        return train.seed if train.draw == 0 else seed_for(train.seed, "draw", train.draw)

    @classmethod
    def shared(cls, cfg: OptplanConfig) -> "TrainSession":
        """This process's one session of ``cfg``, built on first use. Work that arrives in the
        same process many times (pool jobs of the process executor, Ray trials on a reused
        actor) would otherwise read and probe the data lists again each time: seconds per
        arrival against an epoch of a few seconds on the benchmark's data."""
        key = cfg.model_dump_json()
        if key not in _SHARED:
            _SHARED[key] = cls(cfg)
        return _SHARED[key]

    def serves(self, cfg: OptplanConfig) -> "TrainSession":
        """Return self if it was built for ``cfg``'s data, model and train sections (the knee
        and plan sections may differ); a session of another config is a caller's bug."""
        for section in ("data", "model", "train"):
            if getattr(cfg, section) != getattr(self.cfg, section):
                raise ValueError(f"the session was built for another {section} config than the one given")
        if resolve_metric(cfg.knee.metric, len(self.classes)) != self.metric:  # it scores in its own
            raise ValueError("the session was built for another knee.metric than the one given")
        return self

    @property
    def device(self) -> torch.device:
        return self.precision.device

    @property
    def classes(self) -> list[str]:
        return self.splits.classes

    def scaler(self) -> torch.amp.GradScaler | None:
        """A loss scaler for fp16 autocast (bf16 and fp32 need none)."""
        if self.precision.amp_dtype == torch.float16:
            return torch.amp.GradScaler(self.device.type)
        return None

    # --- models -----------------------------------------------------------------------------
    def new_model(self, *, pretrained: bool = True) -> nn.Module:
        """A freshly initialised model (seeded by :attr:`run_seed`), on the session's device;
        with ``pretrained``, from ``model.pretrained`` when that is set."""
        torch.manual_seed(self.run_seed)
        return self._place(create_model_from_config(self.cfg.model, len(self.classes), pretrained=pretrained))

    def load_model(self, path: str | Path, *, fine_tune: bool = False) -> nn.Module:
        """The model in the weights file at ``path`` (an optplan checkpoint, or another
        framework's, see :mod:`optplan.models.weights`); ``fine_tune`` re-creates a classifier
        trained on another class count instead of refusing it."""
        model = self.new_model(pretrained=False)
        load_weights(unwrap(model), path, "checkpoint", fine_tune=fine_tune)
        return model

    def _place(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if self.precision.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        return model

    def prepare(self, model: nn.Module, state: State) -> tuple[torch.optim.Optimizer, nn.Module]:
        """Enter ``state``: SyncBatchNorm when distributed on GPU, then freeze BN as the state and
        ``train.frozen_bn`` say (after the conversion, which drops the freezing), build its fresh
        optimiser (after the freeze, so parameters frozen in mode ``all`` get no updates), wrap
        the model for data-parallel training. ``model`` is converted in place.
        Returns (optimizer, the module to train: ``model`` itself or its DDP wrapper)."""
        self.check_state(state)
        model = sync_batchnorm(model, self.dist, self.device)
        set_frozen_bn(model, state.frozen_bn, self.cfg.train.frozen_bn)
        optimizer = make_optimizer(model, state, self.cfg.train)
        return optimizer, wrap_model(model, self.dist, self.device)

    def check_state(self, state: State) -> None:
        """Refuse a state whose clips are shorter than the model accepts (the planner's check,
        :func:`optplan.models.clip_length_problem`), or whose epoch would hold no optimiser step
        once ``train.drop_last`` and ``train.drop_last_accumulation`` have dropped what is short."""
        problem = clip_length_problem(state.clip_length, self.cfg.model)
        if problem is not None:
            raise OptplanError(f"state {state.name!r}: {problem}")
        if state.batch_size % self.dist.world_size:
            raise OptplanError(f"state {state.name!r}: batch_size {state.batch_size} must be a multiple "
                               f"of the {self.dist.world_size} training processes")
        train = self.cfg.train
        batches = -(-self.epoch_clips(state) // state.batch_size)
        if batches < (state.accumulation if train.drop_last_accumulation else 1):
            raise OptplanError(
                f"state {state.name!r}: an epoch of {len(self.splits.train)} training clips in batches of "
                f"{state.batch_size} x {state.accumulation} accumulated would make no optimiser step with "
                f"train.drop_last={train.drop_last} and train.drop_last_accumulation="
                f"{train.drop_last_accumulation}; lower the batch or accumulation, or set those to false")

    # --- data -------------------------------------------------------------------------------
    def dataset(self, split: str, clip: ClipSpec, mode: str | None = None) -> VideoDataset:
        """The dataset of ``split`` ('train', 'val' or 'test') cutting ``clip`` the way ``mode``
        says (default: the split's own; 'test' on the val list gives its multi-view test)."""
        mode = mode or split
        if (split, mode) not in self._datasets:
            records = {"train": self.splits.train, "val": self.splits.val, "test": self.splits.test}[split]
            if not records:
                raise OptplanError(f"the {split} list is empty" + (
                    "; set data.test_list or evaluate with --split val" if split == "test" else ""))
            self._datasets[split, mode] = VideoDataset(records, self.cfg.data, mode=mode, clip=clip,
                                                       seed=self.cfg.train.seed)
        dataset = self._datasets[split, mode]
        dataset.set_clip(clip)
        return dataset

    def loader(self, split: str, clip: ClipSpec, batch_size: int, *, epoch: int = 0,
               mode: str | None = None) -> DataLoader:
        """Batches of ``split`` for the next iteration: train shuffled by (seed, ``epoch``), each
        process its slice of every ``batch_size`` clips; val/test in order, sharded likewise."""
        dataset = self.dataset(split, clip, mode)
        dataset.set_epoch(epoch)
        key = (split, dataset.mode, batch_size)
        if key not in self._loaders:
            data, training = self.cfg.data, dataset.mode == "train"
            pin = self.device.type == "cuda"
            drop_last = training and self.cfg.train.drop_last
            if self.dist.active:
                sampler = ShardedBatchSampler(ClipSampler(dataset, shuffle=training, seed=self.cfg.train.seed),
                                              batch_size, self.dist, training=training, drop_last=drop_last)
                loader = DataLoader(dataset, batch_sampler=sampler, num_workers=data.num_workers,
                                    persistent_workers=data.num_workers > 0, pin_memory=pin,
                                    generator=loader_generator(self.cfg.train.seed))
            else:
                loader = make_loader(dataset, batch_size=batch_size, shuffle=training,
                                     num_workers=data.num_workers, seed=self.cfg.train.seed, pin_memory=pin,
                                     drop_last=drop_last)
            self._loaders[key] = loader
        return self._loaders[key]

    # --- one epoch --------------------------------------------------------------------------
    def train_one_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: State,
                        epoch: int, *, scaler: torch.amp.GradScaler | None = None,
                        desc: str = "", share: float = 1.0) -> EpochStats:
        """Epoch ``epoch`` (1-based, counted inside the state) of training in ``state``.

        Its clip order, augmentation and dropout are seeded by (:attr:`run_seed`, state name,
        epoch) only, so the epoch is the same wherever it runs: straight through, after a
        resume, in a graph edge or in a replayed schedule. Replaying a planned path in the same
        ``train.draw`` therefore rebuilds the planned model exactly (on CPU); another draw trains
        an independent run of it. ``model`` and ``optimizer`` come from
        :meth:`prepare`.

        ``share`` < 1 trains only that share of the epoch's batches (rounded up to whole
        optimiser steps): the first batches of the same seeded order, so a schedule can end on
        a part of an epoch and spend a GFLOPs budget exactly.
        """
        torch.set_num_threads(self.threads)  # the process-wide setting: another session may have moved it
        seed = seed_for(self.run_seed, state.name, epoch)
        torch.manual_seed(seed)
        batches = self.loader("train", ClipSpec.from_state(state), state.batch_size, epoch=seed)
        limit = None
        if share < 1.0:
            step = state.accumulation
            limit = min(len(batches), max(step, math.ceil(share * len(batches) / step) * step))
        total = len(batches.dataset) if limit is None else limit * state.batch_size * self.dist.world_size
        progress = self.progress_bar(total // self.dist.world_size, desc, "clip")
        try:
            stats = train_epoch(model, batches, optimizer, precision=self.precision,
                                accumulation=state.accumulation, grad_clip=self.cfg.train.grad_clip,
                                head_weight=self.cfg.model.head_weight, scaler=scaler,
                                drop_partial=self.cfg.train.drop_last_accumulation, progress=progress,
                                max_batches=limit)
        finally:
            if progress is not None:
                progress.close()
        return stats

    def progress_bar(self, total: int, desc: str, unit: str):
        """A tqdm bar on stderr over ``total`` items of this process (cleared when closed), or
        None under ``train.progress=false`` (``--quiet``) and in every process but the first."""
        if not (self.cfg.train.progress and self.dist.is_main):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def epoch_clips(self, state: State) -> int:
        """Clips one training epoch in ``state`` trains: the whole training list, less a short
        last batch when ``train.drop_last`` drops it (or, distributed, when it has fewer clips
        than processes; see :class:`ShardedBatchSampler`)."""
        clips = len(self.splits.train)
        short = clips % state.batch_size
        if short and (self.cfg.train.drop_last or (self.dist.active and short < self.dist.world_size)):
            clips -= short
        return clips

    def epoch_gflops(self, state: State) -> float:
        """Training GFLOPs of one epoch in ``state`` (what a budget in GFLOPs converts to epochs
        with)."""
        return self.flops.train(state.clip_length, self.epoch_clips(state))

    def charge(self, cost: Cost, state: State, stats: EpochStats | None = None,
               scores: Scores | None = None, seconds: float = 0.0) -> None:
        """Add one epoch's training (``stats``, all processes' clips) in ``state``'s clip setting,
        one validation pass (``scores``, in its own clip length) and their wall ``seconds`` to ``cost``."""
        if stats is not None:
            clips = stats.clips * self.dist.world_size
            cost.epochs, cost.clips = cost.epochs + 1, cost.clips + clips
            cost.gflops += self.flops.train(state.clip_length, clips)
        if scores is not None and scores.clips:  # (a diverged epoch scored nothing)
            cost.eval_gflops += self.flops(scores.clip_length) * scores.clips
        cost.seconds += seconds

    def refresh_batchnorm(self, net: nn.Module, state: State, cost: Cost) -> None:
        """Measure BatchNorm statistics again over one pass of the training clips in ``state``
        (for averaged weights, :mod:`optplan.train.average`), seeded apart from every epoch. Its
        forward GFLOPs and seconds count as training in ``cost``: the final model needs them."""
        torch.set_num_threads(self.threads)
        start = time.perf_counter()
        batches = self.loader("train", ClipSpec.from_state(state), state.batch_size,
                              epoch=seed_for(self.run_seed, state.name, "batchnorm"))
        clips = refresh_batchnorm(net, batches, self.precision) * self.dist.world_size
        cost.gflops += self.flops(state.clip_length) * clips
        cost.seconds += time.perf_counter() - start

    def score(self, model: nn.Module, clip: ClipSpec) -> Scores:
        """Validation scores with one centre clip per video cut as ``clip`` says (the state's
        own or the longest, see ``optplan.train.scoring``); their ``score`` is ``knee.metric``."""
        torch.set_num_threads(self.threads)
        batch = self.cfg.train.eval_batch_size * self.dist.world_size
        scores = validate(model, self.loader("val", clip, batch), precision=self.precision,
                          reduce=all_reduce_sum, metric=self.metric)
        return replace(scores, clip_length=clip.clip_length)

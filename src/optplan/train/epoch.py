"""One trained epoch: the body every epoch optplan trains goes through.

A plan's edges and ``optplan train --state`` (both through :class:`~optplan.train.run.StateRun`)
and a replayed schedule (:func:`~optplan.train.replay.train_schedule`) each hold an
:class:`EpochTrainer` per state they train in, and call :meth:`EpochTrainer.train` once per
epoch. It sets the epoch's learning rate, trains the epoch (:meth:`TrainSession.train_one_epoch`,
seeded by state and epoch), scores it on the run's scoring clip setting (NaN when the loss
diverged), adds its training and evaluation GFLOPs and wall seconds to the run's cost, lets
the caller checkpoint it by the caller's policy, then writes the log row.

There is one body on purpose: a replay rebuilds the searched model bit for bit only while the
search and the replay train an epoch the same way, and a fix to the bookkeeping must land in both.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from optplan.data.sampling import ClipSpec
from optplan.errors import space_for
from optplan.state import State
from optplan.train.cost import Cost
from optplan.train.engine import EpochStats, Scores
from optplan.train.logging import RunLogger
from optplan.train.optim import set_lr
from optplan.train.session import TrainSession


@dataclass
class EpochTrainer:
    """Training in one ``state``: the module to train (``net``, from :meth:`TrainSession.prepare`,
    with its ``optimizer`` and fp16 ``scaler``), the clip setting epochs are scored on
    (``clip``), the run's running ``cost`` (shared by every state of a run, updated in place)
    and its ``logger`` (None: the caller records epochs elsewhere, as a Ray Tune trial does),
    whose rows and TensorBoard scalars are named ``<tag>/...``."""

    session: TrainSession
    state: State
    net: nn.Module
    optimizer: torch.optim.Optimizer
    clip: ClipSpec
    cost: Cost
    logger: RunLogger | None
    tag: str
    scaler: torch.amp.GradScaler | None = None

    def train(self, epoch: int, lr: float, *, save: Callable[[Scores, EpochStats], None] | None = None,
              where: dict[str, Any] | None = None, totals: bool = False, desc: str = "",
              share: float = 1.0) -> Scores:
        """Train epoch ``epoch`` (1-based, counted inside the state: it seeds the epoch) at
        learning rate ``lr`` and return its scores (:meth:`Scores.diverged` after a non-finite
        loss).

        ``save(scores, stats)`` checkpoints the epoch (``stats``: its training loss and cost)
        after its cost is counted and before it is logged, so a log row always has its checkpoint. The log row is ``where`` (what locates
        the epoch in the run; default ``{"epoch": epoch}``), with ``totals`` the run's epochs and
        training GFLOPs so far (``global_epoch``, ``gflops``), then the state, loss, scores,
        lr, clip length, seconds and clips per second; its TensorBoard step is the run's
        epochs so far. ``share`` < 1 trains that share of the epoch's batches (a schedule's
        last, partial epoch; see :meth:`TrainSession.train_one_epoch`)."""
        session = self.session
        set_lr(self.optimizer, lr)
        start = time.perf_counter()
        stats = session.train_one_epoch(self.net, self.optimizer, self.state, epoch, scaler=self.scaler,
                                        desc=desc, share=share)
        scores = session.score(self.net, self.clip) if math.isfinite(stats.loss) else Scores.diverged()
        session.charge(self.cost, self.state, stats, scores, time.perf_counter() - start)
        if save is not None:
            save(scores, stats)
        if self.logger is None:
            return scores
        row = dict(where) if where is not None else {"epoch": epoch}
        if totals:
            row.update(global_epoch=self.cost.epochs, gflops=self.cost.gflops)
        row.update({"state": self.state.name, "loss": stats.loss, **scores.to_dict(), "lr": lr,
                    "clip_length": self.state.clip_length, "seconds": stats.seconds,
                    "clips_per_s": stats.clips_per_s * session.dist.world_size})
        with space_for(self.logger.run_dir):
            self.logger.log(row, step=self.cost.epochs, prefix=f"{self.tag}/")
        return scores

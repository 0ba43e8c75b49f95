"""A trainer that trains nothing: validation curves drawn from a response surface.

With it a whole plan of the paper's graph runs in seconds, so the tests use it and users can
ask "what if" questions (a longer patience, another graph, a beam) before spending GPU days.
The surface is :class:`~optplan.defaults.SimulationConfig`; curves are deterministic given
its seed, the source model and the state (noise is seeded by a hash of the model's lineage), so
any executor, and any resume, sees the same numbers.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from typing import Any

import numpy as np

from optplan.plan.config import SimulationConfig
from optplan.protocol import Checkpoint
from optplan.state import State

MAX_SCORE = 0.99


class SimulatedTrainer:
    """Implements ``EdgeTrainer`` (and ``ResumableEdgeTrainer``) from a response surface.

    ``SimulatedTrainer(config)`` or ``SimulatedTrainer(noise=0.01, seed=3, ...)`` (fields of
    :class:`SimulationConfig`, overriding ``config``). Checkpoints carry ``meta = {"score",
    "lineage"}`` and no path. Picklable.
    """

    def __init__(self, config: SimulationConfig | None = None, **fields: Any) -> None:
        base = config.model_dump() if config is not None else {}
        self.config = SimulationConfig.model_validate({**base, **fields})

    def surface(self, state: State) -> tuple[float, float, float]:
        """``(ceiling, speed, overfit)`` of a state: score units, 1/epochs, score per epoch."""
        c = self.config
        ceiling = (c.ceiling + c.clip_gain * math.log2(state.clip_length / c.ref_clip)
                   + c.lr_gain * math.log10(c.ref_lr / state.lr))
        values = {"ceiling": ceiling, "speed": c.speed * math.sqrt(state.lr / c.ref_lr),
                  "overfit": c.overfit, **c.states.get(state.name, {})}
        return values["ceiling"], values["speed"], values["overfit"]

    @classmethod
    def random(cls, draw: int, **fields: Any) -> "SimulatedTrainer":
        """Surface number ``draw`` of a random family (ceiling, gains, transfer, speed, overfit),
        noise-free unless ``fields`` say otherwise: many surfaces to test a planning rule on."""
        rng = random.Random(draw)
        drawn = dict(ceiling=rng.uniform(0.3, 0.6), clip_gain=rng.uniform(0.0, 0.15),
                     lr_gain=rng.uniform(-0.05, 0.1), transfer=rng.uniform(0.0, 0.8),
                     speed=rng.uniform(0.3, 1.5), overfit=rng.uniform(0.005, 0.03))
        return cls(**{**drawn, **fields})

    def epoch_gflops(self, state: State) -> float:
        """Training GFLOPs of one epoch in ``state`` (proportional to its clip length)."""
        return self.config.epoch_gflops_per_frame * state.clip_length

    def open(self, source: Checkpoint | None, state: State) -> "SimulatedRun":
        return SimulatedRun(self, source, state)

    def resume(self, snapshot: Checkpoint, source: Checkpoint | None, state: State,
               scores: list[float]) -> "SimulatedRun":
        return SimulatedRun(self, source, state, epoch=int(snapshot.meta["epoch"]))


class SimulatedRun:
    """One edge: ``y(x) = e - (e - s0) exp(-speed x) - overfit x + noise`` (see the config)."""

    def __init__(self, trainer: SimulatedTrainer, source: Checkpoint | None, state: State,
                 epoch: int = 0) -> None:
        self.config = trainer.config
        self.state = state
        self.epoch = epoch
        self.s0 = float(source.meta["score"]) if source is not None else 0.0
        self.lineage = str(source.meta["lineage"]) if source is not None else ""
        ceiling, self.speed, self.overfit = trainer.surface(state)
        self.top = min(MAX_SCORE, ceiling + self.config.transfer * self.s0)
        self.diverges = self.config.diverge_lr is not None and state.lr > self.config.diverge_lr

    def score(self, epoch: int) -> float:
        """The validation score after ``epoch`` epochs (epoch 0: the source's own score)."""
        if epoch == 0:
            return self.s0
        if self.diverges and epoch >= self.config.diverge_after:
            return math.nan
        y = self.top - (self.top - self.s0) * math.exp(-self.speed * epoch) - self.overfit * epoch
        if self.config.noise:
            y += self.config.noise * float(np.random.default_rng(self._seed(epoch)).standard_normal())
        return y

    def _seed(self, epoch: int) -> int:
        key = f"{self.config.seed}|{self.lineage}|{self.state.name}|{epoch}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")

    def initial_score(self) -> float:
        return self.s0

    def train_epoch(self) -> float:
        self.epoch += 1
        if self.config.epoch_seconds:
            time.sleep(self.config.epoch_seconds)
        return self.score(self.epoch)

    def keep(self, epoch: int) -> Checkpoint:
        if epoch == 0:
            return Checkpoint(meta={"score": self.s0, "lineage": self.lineage})
        lineage = hashlib.blake2b(f"{self.lineage}>{self.state.name}@{epoch}".encode(),
                                  digest_size=8).hexdigest()
        return Checkpoint(meta={"score": self.score(epoch), "lineage": lineage})

    def snapshot(self) -> Checkpoint:
        return Checkpoint(meta={"epoch": self.epoch})

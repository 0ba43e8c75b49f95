"""Trainers that train nothing: validation curves from a response surface, or from a finished search.

With :class:`SimulatedTrainer` a whole plan of the paper's graph runs in seconds, so the tests
use it and users can ask "what if" questions (a longer patience, another graph, a beam) before
spending GPU days. The surface is :class:`~optplan.defaults.SimulationConfig`; curves are
deterministic given its seed, the source model and the state (noise is seeded by a hash of the
model's lineage), so any executor, and any resume, sees the same numbers.

:class:`RecordedTrainer` hands out the real curves a finished search measured, edge by edge, so
a rule that only ever trains an edge *less* (racing, an earlier knee) can be asked of real
curves at no training cost. Planning them again under the search's own rule gives the search's
plan back; under such a rule the answer is exact as long as every node keeps the winner it had
(the later edges then start from the same models, which the real trainer seeds by state and
epoch). A node whose recorded winner was cut short has a changed model downstream that no
record holds: :func:`recorded_winner_cut` names those nodes, and the plan after them is not an
answer. An edge asked for more epochs than were recorded raises :class:`CurveEnded`.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from optplan.errors import OptplanError
from optplan.plan.config import SimulationConfig
from optplan.protocol import Checkpoint
from optplan.state import State

if TYPE_CHECKING:
    from optplan.plan.result import PlanResult

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


class CurveEnded(RuntimeError):
    """A recorded curve was asked for an epoch past its end (the rule trains longer than the
    search did: the record cannot say what that epoch would have scored)."""


class RecordedTrainer:
    """Implements ``EdgeTrainer`` and ``CountingEdgeTrainer`` from the edges of a finished
    search (:class:`~optplan.plan.result.PlanResult`): the edge ``u -> v`` replays the curve
    recorded for it and costs what the search counted. A plan with a beam (several models per
    node, so several curves per edge) is refused: a curve would not say which model it is of."""

    def __init__(self, result: PlanResult) -> None:
        if any(e.slot != 0 for e in result.edges):
            raise OptplanError("records of a plan with plan.beam > 1 cannot be replayed: an edge has a "
                               "curve per source model")
        self.curves = {(e.source, e.target): list(e.curve) for e in result.edges if e.curve}
        self.losses = {(e.source, e.target): list(e.losses) for e in result.edges if e.losses}
        self.start = result.graph.start if result.graph is not None else "start"
        self.gflops = dict(result.epoch_gflops)
        self.knee_metric = result.knee_metric  # what the scores are ('auto' resolved when recorded)

    def epoch_gflops(self, state: State) -> float:
        return self.gflops.get(state.name, 0.0)

    def open(self, source: Checkpoint | None, state: State) -> "RecordedRun":
        edge = (source.meta["state"] if source is not None else self.start, state.name)
        if edge not in self.curves:
            raise CurveEnded(f"no curve was recorded for {edge[0]} -> {edge[1]}")
        return RecordedRun(self.curves[edge], state.name, self.losses.get(edge, []))


class RecordedRun:
    """One recorded curve, epoch by epoch; checkpoints name the state and the epoch. Its
    ``train_losses`` are the recorded ones up to the epoch reached ([] where none were
    recorded: the climb rule then judges nothing)."""

    def __init__(self, curve: list[float], state: str, losses: list[float] | None = None) -> None:
        self.curve, self.state, self.epoch, self.losses = curve, state, 0, list(losses or [])

    @property
    def train_losses(self) -> list[float]:
        return self.losses[: self.epoch] if len(self.losses) >= self.epoch else []

    def initial_score(self) -> float:
        return self.curve[0]

    def train_epoch(self) -> float:
        if self.epoch + 1 >= len(self.curve):
            raise CurveEnded(f"the recorded curve into {self.state} ends after {len(self.curve) - 1} "
                             f"epochs; the rule asked for epoch {self.epoch + 1}")
        self.epoch += 1
        return self.curve[self.epoch]

    def keep(self, epoch: int) -> Checkpoint:
        return Checkpoint(meta={"state": self.state, "epoch": epoch, "score": self.curve[epoch]})


def recorded_winner_cut(recorded: PlanResult, replanned: PlanResult) -> list[str]:
    """The nodes whose recorded winner (the kept model every later edge started from) is
    another edge, or the same one ending at another epoch, when ``replanned``: past these the
    replanned curves are not what training would have measured. A node ``replanned`` skipped
    (a dropped start's) is not one: no edge trains from it."""
    def winners(result: PlanResult) -> dict[str, tuple[str | None, int]]:
        return {d.name: (d.candidates[0].edge, d.candidates[0].epochs) for d in result.decisions
                if d.candidates and d.candidates[0].edge}
    before, after = winners(recorded), winners(replanned)
    skipped = {d.name for d in replanned.decisions if d.skipped}
    return [node for node, won in before.items() if node not in skipped and after.get(node) != won]

"""One knee-terminated run along an edge, the unit of work executors run (in any process).

:func:`run_edge` opens the edge (or resumes it from a snapshot), trains epoch by epoch in
:func:`optplan.knee.train_to_knee` (the loop ``optplan train --state`` runs too) until the knee
rule decides or the edge loses its race, and keeps the knee epoch's model (an epoch of the video
trainer trains in :meth:`optplan.train.epoch.EpochTrainer.train`). It never raises on
a training error (the driver decides whether to retry); a ``BaseException`` that is not an
``Exception`` (Ctrl-C, a kill) goes through, so the plan stops with its store intact.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from optplan.errors import DiskFull
from optplan.knee import Knee, KneeRule, train_to_knee
from optplan.protocol import Checkpoint, EdgeRun, EdgeTrainer, EpochCallback
from optplan.plan.climb import CLIMB, Climb
from optplan.plan.racing import Racing
from optplan.plan.records import DIVERGED, DONE, DROPPED, FAILED
from optplan.state import State

@dataclass
class EdgeJob:
    """Everything a worker needs to train one edge (picklable).

    ``scores``/``snapshot``: the curve so far and the trainer's resume point of an edge that
    was interrupted (empty/None: start the edge afresh). ``race``: stop early once the edge
    cannot beat a finished competitor (:mod:`optplan.plan.racing`; None: train to the knee).
    ``climb``: drop the edge (from scratch) once its training loss climbs
    (:mod:`optplan.plan.climb`; None: never).
    """

    id: str
    source: Checkpoint | None
    state: State
    rule: KneeRule = field(default_factory=KneeRule)
    scores: list[float] = field(default_factory=list)
    snapshot: Checkpoint | None = None
    race: Racing | None = None
    climb: Climb | None = None


@dataclass
class EdgeOutcome:
    """What a worker returns: the curve, the knee, the kept model, the wall seconds spent;
    ``error`` says why a run failed or was dropped; ``losses`` the epochs' training losses (where
    the run reports them)."""

    id: str
    curve: list[float]
    knee: Knee | None
    checkpoint: Checkpoint | None
    seconds: float
    error: str | None = None
    losses: list[float] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.knee is not None and self.knee.stop == CLIMB:
            return DROPPED
        if self.error is not None or self.knee is None:
            return FAILED
        return DIVERGED if self.knee.diverged else DONE


def _open(trainer: EdgeTrainer, job: EdgeJob) -> tuple[EdgeRun, list[float]]:
    """The run of ``job``: resumed from its snapshot when the trainer can (a
    ``ResumableEdgeTrainer``), else opened afresh; and its curve so far."""
    # hasattr, not isinstance(..., Protocol): the protocol check costs ~0.1 ms per call
    if job.snapshot is not None and len(job.scores) > 1 and hasattr(trainer, "resume"):
        return trainer.resume(job.snapshot, job.source, job.state, list(job.scores)), list(job.scores)
    run = trainer.open(job.source, job.state)
    return run, [float(run.initial_score())]


def run_edge(trainer: EdgeTrainer, job: EdgeJob, on_epoch: EpochCallback | None = None) -> EdgeOutcome:
    """Train ``job`` until its knee. ``on_epoch`` sees every epoch (the driver records it); the
    run's snapshot is taken only when someone listens, since a real snapshot costs a save."""
    start = time.perf_counter()
    scores: list[float] = list(job.scores)
    try:
        run, scores = _open(trainer, job)
        snapshots = on_epoch is not None and hasattr(run, "snapshot")  # a ResumableEdgeRun
        after = None if on_epoch is None else (
            lambda curve: on_epoch(curve, run.snapshot() if snapshots else None))
        dropped: list[str] = []
        knee = train_to_knee(run.train_epoch, scores, lambda curve: _decide(curve, job, run, dropped), after)
        if dropped and hasattr(run, "discard"):  # a DiscardingEdgeRun: nothing of it is used
            run.discard()
            checkpoint = None
        else:  # a dropped run without discard() too: keep() is where a trainer clears its epochs
            checkpoint = run.keep(knee.epoch)
    except DiskFull:  # not the edge's fault: the plan stops and resumes once space is freed
        raise
    except Exception as err:  # a training error: reported to the driver, which may retry
        detail = traceback.format_exc(limit=-3)
        return EdgeOutcome(job.id, scores, None, None, time.perf_counter() - start,
                           error=f"{type(err).__name__}: {err}\n{detail}")
    losses = list(getattr(run, "train_losses", None) or [])
    return EdgeOutcome(job.id, scores, knee, None if dropped else checkpoint, time.perf_counter() - start,
                       error=dropped[0] if dropped else None, losses=losses)


def _decide(scores: list[float], job: EdgeJob, run: EdgeRun, dropped: list[str]) -> Knee | None:
    """The knee rule's decision, racing's, or (first) the climb rule's, whose reason goes to
    ``dropped``."""
    if job.climb is not None and job.source is None:
        losses = getattr(run, "train_losses", None)  # a LossReportingEdgeRun
        why = job.climb.climbed(losses) if losses is not None and len(losses) == len(scores) - 1 else None
        if why is not None:
            dropped.append(why)
            best = max(range(len(scores)), key=lambda i: scores[i] if math.isfinite(scores[i]) else -math.inf)
            return Knee(epoch=best, score=scores[best], params=(), reached=True, method=job.rule.method,
                        epochs=len(scores) - 1, stop=CLIMB)  # what it reached, for the record only
    knee = job.rule.decide(scores)
    if knee is None and job.race is not None:
        knee = job.race.lost(scores, job.rule)
    return knee

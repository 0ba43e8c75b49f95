"""The small protocol through which the planner reaches training.

The planner never assumes how training is done (as Optuna never assumes the objective): the
real video trainer (``optplan.train.edge``), the :class:`~optplan.plan.SimulatedTrainer` and a
user's own code all plug in by implementing :class:`EdgeTrainer` and :class:`EdgeRun`. It sits
at the package top, beside :class:`~optplan.state.State`, so that ``train/`` implements it
without importing the planner (``optplan.plan.protocol`` re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from optplan.records_io import JsonRecord
from optplan.state import State


def edge_id(source: str, target: str, slot: int | str = 0) -> str:
    """The one name of an edge run: ``source->target`` (node names), with ``#slot`` when the
    source node keeps several models: the planner's beam slot, or the video trainer's short hash
    of the source checkpoint (it is not told the slot)."""
    return f"{source}->{target}" + (f"#{slot}" if slot else "")


def resolve_path(path: str | Path, root: str | Path | None) -> Path:
    """A stored checkpoint path as a file: a relative one is taken from ``root`` (the run
    directory that stores it, so the directory can move). Paths stored before they were kept
    relative (absolute, or relative to the directory a plan was started from) are used as
    they are when ``root`` holds no such file."""
    path = Path(path)
    if root is None or path.is_absolute():
        return path
    inside = Path(root) / path
    return inside if inside.exists() or not path.exists() else path


@dataclass
class Checkpoint(JsonRecord):
    """What a trainer hands back from :meth:`EdgeRun.keep` and receives again as a source.

    Opaque to the planner, which stores it as JSON: ``path`` names a file, relative to the run
    directory where the trainer writes into one (or None for a trainer that keeps models
    elsewhere), and ``meta`` holds JSON values only.
    """

    path: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def file(self, run_dir: str | Path | None) -> Path | None:
        """The file ``path`` names; a relative path is relative to ``run_dir`` (the run
        directory whose store holds this checkpoint), so a run directory can be moved."""
        return None if self.path is None else resolve_path(self.path, run_dir)


EpochCallback = Callable[[list[float], "Checkpoint | None"], None]
"""Called after every finished epoch of a knee-terminated run (a planner's edge, ``optplan train
--state``) with the curve so far (``curve[0]``: the start score) and the run's resume snapshot
(None when the run has none); raising stops the run, which resumes from that snapshot."""


@runtime_checkable
class EdgeRun(Protocol):
    """Training along one edge u->v: starts from u's checkpoint, trains in v's state."""

    def initial_score(self) -> float:
        """Validation score of the source model (epoch 0 of the curve; 0.0 from scratch)."""

    def train_epoch(self) -> float:
        """Train one more epoch; return the validation score after it (may be NaN if diverged).
        The video trainer's epoch trains in :meth:`optplan.train.epoch.EpochTrainer.train`."""

    def keep(self, epoch: int) -> Checkpoint:
        """The model after ``epoch`` epochs (0 = the source); other epochs may be discarded."""


@runtime_checkable
class EdgeTrainer(Protocol):
    """Factory of edge runs. Must be picklable to be used by the process and Ray executors."""

    def open(self, source: Checkpoint | None, state: State) -> EdgeRun:
        """Start training ``state`` from ``source`` (None: from scratch)."""


@runtime_checkable
class ResumableEdgeRun(EdgeRun, Protocol):
    """Optional: an edge run that can be continued after a crash from its last finished epoch."""

    def snapshot(self) -> Checkpoint:
        """Everything needed to continue after the latest epoch (model, optimiser, RNG)."""


@runtime_checkable
class LossReportingEdgeRun(EdgeRun, Protocol):
    """Optional: an edge run that reports how its training went, so the planner can drop a start
    whose training loss climbs (``plan.climb_limit``, :mod:`optplan.plan.climb`)."""

    @property
    def train_losses(self) -> list[float]:
        """Mean training loss of every epoch the run has handed out (epoch 1 first)."""


@runtime_checkable
class DiscardingEdgeRun(EdgeRun, Protocol):
    """Optional: an edge run that can free its models when the planner drops it
    (``plan.climb_limit``): a dropped start is never trained on, so none of its epochs is kept."""

    def discard(self) -> None:
        """Delete the run's models (its curve and logs stay, for the report)."""


@runtime_checkable
class ResumableEdgeTrainer(EdgeTrainer, Protocol):
    """Optional: reopen an edge from :meth:`ResumableEdgeRun.snapshot` with its curve so far."""

    def resume(self, snapshot: Checkpoint, source: Checkpoint | None, state: State,
               scores: list[float]) -> EdgeRun:
        """Continue the edge whose curve so far is ``scores`` (``scores[0]`` = initial score)."""


@runtime_checkable
class CheckingEdgeTrainer(EdgeTrainer, Protocol):
    """Optional: say whether a checkpoint handed out earlier (maybe in another session) is still
    whole, so the planner trains its edge again instead of pruning every branch after it."""

    def intact(self, checkpoint: Checkpoint) -> bool:
        """False when the checkpoint's model is missing or damaged."""


@runtime_checkable
class CountingEdgeTrainer(EdgeTrainer, Protocol):
    """Optional: count compute, so the plan reports search and replay GFLOPs and can keep a
    replay within ``plan.budget_gflops`` (``plan.objective=score_at_budget`` needs it)."""

    def epoch_gflops(self, state: State) -> float:
        """Training GFLOPs of one epoch in ``state``."""

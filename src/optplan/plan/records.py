"""What a plan records: one :class:`EdgeRecord` per trained edge and one :class:`NodeRecord`
per decided node. Stores persist the edges; on resume the planner decides the nodes again from
them, and :class:`~optplan.plan.result.PlanResult` carries the decisions.

Scores are validation scores (e.g. mean of top-1/3/5 accuracy, 0..1); epochs count epochs
trained in one state; seconds are wall seconds. NaN scores are written as JSON ``null``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from optplan.knee import Knee
from optplan.protocol import Checkpoint, edge_id
from optplan.records_io import JsonRecord

# Edge statuses. "running": started, curve so far recorded; the rest are final. "dropped": a
# start whose training loss climbed (optplan.plan.climb): a decision, not retried like "failed".
RUNNING, DONE, DIVERGED, FAILED, SKIPPED, DROPPED = "running", "done", "diverged", "failed", "skipped", "dropped"
FINISHED = (DONE, DIVERGED, FAILED, SKIPPED, DROPPED)
USABLE = (DONE, DIVERGED)


@dataclass
class EdgeRecord(JsonRecord):
    """One knee-terminated run along ``source -> target`` from the source's ``slot``-th model.

    ``curve[i]`` is the validation score after ``i`` epochs (``curve[0]``: the source model);
    ``knee.epoch`` is the epoch kept as ``checkpoint`` and ``knee.score`` the edge's score.
    ``snapshot`` is the trainer's resume point while ``status`` is 'running'. ``losses`` are the
    epochs' mean training losses where the trainer reports them (a ``LossReportingEdgeRun``; []
    otherwise), so the climb rule can be asked of the records. Its JSON also carries ``epochs``
    and ``score`` for readers of the file.
    """

    source: str
    target: str
    slot: int = 0
    status: str = RUNNING
    curve: list[float] = field(default_factory=list)
    knee: Knee | None = None
    checkpoint: Checkpoint | None = None
    snapshot: Checkpoint | None = None
    seconds: float = 0.0
    attempts: int = 1
    error: str | None = None
    losses: list[float] = field(default_factory=list)

    json_keys = ("source", "target", "slot", "status", "curve", "knee", "epochs", "score", "checkpoint",
                 "snapshot", "seconds", "attempts", "error", "losses")

    @property
    def id(self) -> str:
        return edge_id(self.source, self.target, self.slot)

    @property
    def epochs(self) -> int:
        """Epochs trained along this edge (the search cost)."""
        return max(len(self.curve) - 1, 0)

    @property
    def score(self) -> float | None:
        """The edge's score (the knee score; best finite score if diverged), None if unusable."""
        if self.status not in USABLE or self.knee is None or not math.isfinite(self.knee.score):
            return None
        return self.knee.score

    @property
    def finished(self) -> bool:
        return self.status in FINISHED



@dataclass
class Candidate(JsonRecord):
    """A model a node keeps: the best (beam: one of the ``k`` best) of its incoming runs.

    ``epochs`` is this stage's length (the edge's knee epoch); ``total_epochs`` the epochs of
    the whole path from the start when replayed, ``gflops`` its training GFLOPs (0.0 when the
    trainer counts none). ``parent_slot`` indexes the parent's candidates.
    """

    score: float
    checkpoint: Checkpoint | None
    edge: str | None = None
    parent: str | None = None
    parent_slot: int = 0
    epochs: int = 0
    total_epochs: int = 0
    gflops: float = 0.0

    json_keys = ("score", "edge", "parent", "parent_slot", "epochs", "total_epochs", "gflops", "checkpoint")


@dataclass
class NodeRecord(JsonRecord):
    """A node's decision: its kept candidates (best first), or skipped with the reason."""

    name: str
    candidates: list[Candidate] = field(default_factory=list)
    note: str = ""

    @property
    def skipped(self) -> bool:
        return not self.candidates

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

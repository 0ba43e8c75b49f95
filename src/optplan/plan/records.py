"""What a plan records: one :class:`EdgeRecord` per trained edge and one :class:`NodeRecord`
per decided node. Stores persist the edges; on resume the planner decides the nodes again from
them, and :class:`~optplan.plan.result.PlanResult` carries the decisions.

Scores are validation scores (e.g. mean of top-1/3/5 accuracy, 0..1); epochs count epochs
trained in one state; seconds are wall seconds. NaN scores are written as JSON ``null``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from optplan.knee import Knee
from optplan.protocol import Checkpoint, edge_id

# Edge statuses. "running": started, curve so far recorded; the rest are final.
RUNNING, DONE, DIVERGED, FAILED, SKIPPED = "running", "done", "diverged", "failed", "skipped"
FINISHED = (DONE, DIVERGED, FAILED, SKIPPED)
USABLE = (DONE, DIVERGED)


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def knee_to_dict(knee: Knee | None) -> dict[str, Any] | None:
    return None if knee is None else knee.to_dict()


def knee_from_dict(data: dict[str, Any] | None) -> Knee | None:
    if data is None:
        return None
    return Knee(**{**data, "params": tuple(data.get("params") or ()), "score": _nan(data.get("score"))})


@dataclass
class EdgeRecord:
    """One knee-terminated run along ``source -> target`` from the source's ``slot``-th model.

    ``curve[i]`` is the validation score after ``i`` epochs (``curve[0]``: the source model);
    ``knee.epoch`` is the epoch kept as ``checkpoint`` and ``knee.score`` the edge's score.
    ``snapshot`` is the trainer's resume point while ``status`` is 'running'.
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

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "slot": self.slot,
                "status": self.status, "curve": [_num(s) for s in self.curve],
                "knee": knee_to_dict(self.knee), "epochs": self.epochs, "score": _num(self.score),
                "checkpoint": self.checkpoint.to_dict() if self.checkpoint else None,
                "snapshot": self.snapshot.to_dict() if self.snapshot else None,
                "seconds": self.seconds, "attempts": self.attempts, "error": self.error}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EdgeRecord":
        return cls(source=d["source"], target=d["target"], slot=d.get("slot", 0),
                   status=d["status"], curve=[_nan(s) for s in d.get("curve", [])],
                   knee=knee_from_dict(d.get("knee")),
                   checkpoint=Checkpoint.from_dict(d.get("checkpoint")),
                   snapshot=Checkpoint.from_dict(d.get("snapshot")),
                   seconds=d.get("seconds", 0.0), attempts=d.get("attempts", 1), error=d.get("error"))


@dataclass
class Candidate:
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

    def to_dict(self) -> dict[str, Any]:
        return {"score": _num(self.score), "edge": self.edge, "parent": self.parent,
                "parent_slot": self.parent_slot, "epochs": self.epochs,
                "total_epochs": self.total_epochs, "gflops": self.gflops,
                "checkpoint": self.checkpoint.to_dict() if self.checkpoint else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Candidate":
        return cls(score=_nan(d.get("score")), checkpoint=Checkpoint.from_dict(d.get("checkpoint")),
                   edge=d.get("edge"), parent=d.get("parent"), parent_slot=d.get("parent_slot", 0),
                   epochs=d.get("epochs", 0), total_epochs=d.get("total_epochs", 0),
                   gflops=d.get("gflops", 0.0))


@dataclass
class NodeRecord:
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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "candidates": [c.to_dict() for c in self.candidates],
                "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NodeRecord":
        return cls(name=d["name"], candidates=[Candidate.from_dict(c) for c in d["candidates"]],
                   note=d.get("note", ""))

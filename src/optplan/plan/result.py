"""A plan's result: the chosen path, its replayable schedule, the search cost, the Pareto
front (or, for an unfinished plan, the edges so far).

The schedule is the format ``optplan train --schedule`` takes:
``{"stages": [{"state": {State fields}, "epochs": int}, ...]}`` (0-epoch stages dropped).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from optplan.plan.graph import Edge, StateGraph
from optplan.plan.racing import RACE
from optplan.plan.records import DONE, DROPPED, FAILED, SKIPPED, EdgeRecord, NodeRecord
from optplan.protocol import Checkpoint
from optplan.records_io import JsonRecord
from optplan.state import State
from optplan.train.schedule import Constant, SearchRun, Stage

RESULT_FILE = "result.json"


def schedule_of(stages: Iterable[Stage]) -> dict[str, Any]:
    """The replayable schedule of some stages (0-epoch stages dropped)."""
    return {"stages": [s.to_dict() for s in stages if s.epochs > 0]}


@dataclass(frozen=True)
class ParetoPoint(JsonRecord):
    """A replayable path found by the search: its ``score`` and the ``epochs`` its replay takes.

    ``nodes`` is the path (start excluded), ``edge`` the run that ends it; ``gflops`` the
    training GFLOPs of its replay (0.0 when the trainer counts none).
    """

    score: float
    epochs: int
    nodes: tuple[str, ...]
    stages: tuple[Stage, ...]
    edge: str
    gflops: float = 0.0

    @property
    def schedule(self) -> dict[str, Any]:
        return schedule_of(self.stages)


# Why an edge stopped training (:func:`stop_reason`), and what each reason means to a reader.
STOP_REASONS: dict[str, str] = {
    "knee": "the knee rule: T epochs trained past the fitted knee (or the estimate settled)",
    "gain": "the gain rule: the fit promised less than knee.min_gain over the next T epochs",
    "plateau": "the plateau rule: the best measured score was T epochs old",
    "cap": "knee.max_epochs reached before a knee; the best fitted epoch is kept",
    "raced": "stopped early by plan.racing: it could no longer beat a finished edge into its state",
    "diverged": "a score was not finite (the loss blew up); the best finite epoch is kept",
    "dropped": "a start whose training loss climbed (plan.climb_limit): left out, keeps no model",
    "failed": "training raised an error (twice); the search lacks this branch",
    "skipped": "not trained: its source state has no usable model",
    "choice": "a move into a choice node: trains nothing, passes the source's model on",
    "running": "not finished: the plan stopped while it trained",
}
_KNEE_STOPS = {"max_epochs": "cap", RACE: "raced", "gain": "gain", "plateau": "plateau",
               "choice": "choice", "diverged": "diverged"}  # Knee.stop -> reason; a rule's own knee is "knee"


def stop_reason(edge: EdgeRecord) -> str:
    """Why ``edge`` stopped training: a key of :data:`STOP_REASONS`."""
    if edge.status != DONE:  # failed, skipped, diverged, dropped and running name themselves
        return edge.status
    return _KNEE_STOPS.get(edge.knee.stop if edge.knee is not None else "", "knee")


def planned_runs(graph: StateGraph, beam: int = 1) -> int:
    """Edge runs a plan of ``graph`` makes at most: one per edge from the start, ``beam`` (one
    per kept source model) per other edge."""
    return sum(1 if e.source == graph.start else beam for e in graph.edges)


Scored = TypeVar("Scored")  # anything with a ``score``: a ParetoPoint, a node's Candidate


def pareto_front(points: Iterable[Scored],
                 cost: Callable[[Scored], float] = attrgetter("epochs")) -> list[Scored]:
    """Points no other point beats on both score (higher) and ``cost`` (lower; default the
    replay epochs), cheapest first."""
    front: list[Scored] = []
    for p in sorted(points, key=lambda p: (cost(p), -p.score)):
        if not front or p.score > front[-1].score:
            front.append(p)
    return front


@dataclass
class PlanResult(JsonRecord):
    """What :meth:`Planner.run` returns.

    ``path`` are the chosen states in order (start and choice nodes excluded), ``nodes`` their
    names, ``path_epochs``/``path_scores`` each one's stage epochs and score; ``stages`` drops
    0-epoch stages. ``score`` is the final node's score,
    ``checkpoint`` its trained model (:attr:`model_path` its file). ``search_epochs`` sums the epochs of every trained edge
    and ``search_seconds`` is the wall time of the plan (all sessions of a resumed one).
    ``pareto`` is the front of score vs replay epochs over every searched path (any run ends
    one); ``pareto_gflops`` the front of score vs replay GFLOPs over the complete paths, those
    ending where the plan may end (the final node, or any node with ``plan.final: best``).
    ``budget_gflops`` is the replay budget the DP kept to (objective ``score_at_budget``; None
    for the paper's ``score``), ``budget_epochs`` one only looked up after the search
    (:attr:`budget`).

    What tools downstream (the report) need, so that they never re-walk the planner's records:
    ``graph`` the planned graph (states, edges, choice nodes), ``chosen`` the chosen path's
    nodes from the start's child on, choice nodes included, :attr:`stop_reasons` why each edge
    stopped. ``unfinished`` is set on a plan's result so far (:meth:`so_far`) only.
    Its JSON (``result.json``) also carries the computed totals, the schedule
    and the budget's point, for readers of the file; ``run_dir`` is where it was read from.
    """

    path: list[State]
    nodes: list[str]
    path_epochs: list[int]
    path_scores: list[float]
    stages: list[Stage]
    score: float
    checkpoint: Checkpoint | None
    search_epochs: int
    search_seconds: float
    edges: list[EdgeRecord]
    decisions: list[NodeRecord]
    pareto: list[ParetoPoint]
    notes: list[str] = field(default_factory=list)
    budget_epochs: int | None = None
    epoch_gflops: dict[str, float] = field(default_factory=dict)  # state name -> GFLOPs of one epoch
    knee_metric: str | None = None  # what the curves measure (``knee.metric``)
    score_clip: str | None = None  # which clip setting they were scored on (``knee.score_clip``, described)
    pareto_gflops: list[ParetoPoint] = field(default_factory=list)
    budget_gflops: float | None = None
    run_dir: Path | None = None  # where the plan ran: stored checkpoint paths are relative to it
    graph: StateGraph | None = None  # the graph planned (None: a result.json of an earlier optplan)
    chosen: list[str] = field(default_factory=list)  # the chosen path's nodes, choice nodes included
    unfinished: tuple[int, int] | None = None  # (runs finished, runs planned) of a plan so far

    @classmethod
    def so_far(cls, graph: StateGraph, edges: Iterable[EdgeRecord], planned: int,
               seconds: float) -> "PlanResult":
        """What an unfinished plan of ``graph`` has recorded: its ``edges`` (finished or still
        running) in the graph's order, out of ``planned`` runs; no node is decided yet, so
        there is no path, schedule or score. ``seconds`` is the wall time recorded so far."""
        rank = {e: i for i, e in enumerate(graph.edges)}
        edges = sorted(edges, key=lambda r: (rank.get(Edge(r.source, r.target), len(rank)), r.slot))
        return cls(path=[], nodes=[], path_epochs=[], path_scores=[], stages=[], score=math.nan,
                   checkpoint=None, search_epochs=sum(e.epochs for e in edges),
                   search_seconds=seconds, edges=edges, decisions=[], pareto=[], graph=graph,
                   unfinished=(sum(e.finished for e in edges), planned))

    @property
    def stop_reasons(self) -> dict[str, str]:
        """Why each edge stopped (edge id -> a key of :data:`STOP_REASONS`), in edge order."""
        return {e.id: stop_reason(e) for e in self.edges}

    json_keys = ("nodes", "path", "path_epochs", "path_scores", "stages", "score", "replay_epochs", "checkpoint",
                 "search_epochs", "search_seconds", "train_seconds", "schedule", "edges", "decisions", "pareto",
                 "notes", "budget_epochs", "budget", "epoch_gflops", "search_gflops", "replay_gflops",
                 "knee_metric", "score_clip", "pareto_gflops", "budget_gflops", "graph", "chosen",
                 "stop_reasons", "unfinished", "measured_score")

    @property
    def measured_score(self) -> float | None:
        """The validation score the final model really reached: its edge's curve at the kept
        epoch. ``score`` is the knee's, which under the paper rule is the fitted curve's value
        and can exceed anything observed (even 1.0); users comparing runs want this one."""
        decision = next((d for d in self.decisions if self.nodes and d.name == self.nodes[-1]), None)
        edge_id = decision.best.edge if decision is not None and decision.best is not None else None
        edge = next((e for e in self.edges if e.id == edge_id), None)
        if edge is None or edge.knee is None or not 0 <= edge.knee.epoch < len(edge.curve):
            return None
        return edge.curve[edge.knee.epoch]

    @property
    def model_path(self) -> Path | None:
        """The final model's file (None when the trainer keeps no files)."""
        return None if self.checkpoint is None else self.checkpoint.file(self.run_dir)

    def _gflops(self, pairs: Iterable[tuple[str, int]]) -> float | None:
        if not self.epoch_gflops:
            return None  # a trainer that does not count compute
        return sum(self.epoch_gflops.get(name, 0.0) * epochs for name, epochs in pairs)

    @property
    def search_gflops(self) -> float | None:
        """Training GFLOPs of every epoch of every edge (None when the trainer counts none)."""
        return self._gflops((e.target, e.epochs) for e in self.edges)

    @property
    def replay_gflops(self) -> float | None:
        """Training GFLOPs of replaying the chosen schedule from scratch."""
        return self._gflops((s.state.name, s.epochs) for s in self.stages)

    @property
    def schedule(self) -> dict[str, Any]:
        """The replayable schedule (YAML-ready dict), with what the search's run of it reached
        (:attr:`search_run`) when the schedule is that run's path."""
        out = schedule_of(self.stages)
        if (run := self.search_run) is not None:
            out["search_run"] = run.model_dump(mode="json")
        return out

    @property
    def search_run(self) -> SearchRun | None:
        """The final model's measured score, metric and file: what a replay of the schedule
        should reach. None when the schedule is not the path the search ran (``plan.replay_lr``
        smoothed its learning rates) or nothing was measured."""
        score = self.measured_score
        if score is None or self.knee_metric is None or any(s.lr_schedule != Constant() for s in self.stages):
            return None
        model = self.model_path
        return SearchRun(score=score, metric=self.knee_metric,
                         model=None if model is None else str(model.resolve()))

    @property
    def failed_edges(self) -> list[EdgeRecord]:
        """Edges that failed, or were skipped after a failure: the search lacked their branches."""
        return [e for e in self.edges if e.status in (FAILED, SKIPPED)]

    @property
    def replay_epochs(self) -> int:
        """Epochs to train the chosen schedule from scratch."""
        return sum(s.epochs for s in self.stages)

    @property
    def train_seconds(self) -> float:
        """Wall seconds spent inside edge runs (training, scoring, knee fits)."""
        return sum(e.seconds for e in self.edges)

    @property
    def overhead_seconds(self) -> float:
        """Planner time outside edge runs (DP, store, bookkeeping); meaningful in-process."""
        return max(self.search_seconds - self.train_seconds, 0.0)

    def best_within(self, epochs: int) -> ParetoPoint | None:
        """The best-scoring searched path whose replay takes at most ``epochs`` epochs."""
        fits = [p for p in self.pareto if p.epochs <= epochs]
        return fits[-1] if fits else None

    @property
    def budget(self) -> ParetoPoint | None:
        """:meth:`best_within` the plan's ``budget_epochs`` (None without a budget)."""
        return None if self.budget_epochs is None else self.best_within(self.budget_epochs)

    def save(self, path: str | Path) -> None:
        """Write as JSON (``RUN/result.json``)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "PlanResult":
        """Read a result written by :meth:`save` (a run directory means its result.json)."""
        p = Path(path)
        file = p / RESULT_FILE if p.is_dir() else p
        result = cls.from_dict(json.loads(file.read_text()))
        result.run_dir = file.parent
        return result

    def table(self) -> str:
        """The chosen path as a text table (what ``optplan plan`` prints)."""
        rows = [("#", "state", "clip", "sampling", "lr", "batch", "epochs", "score")]
        for i, (state, epochs, score) in enumerate(zip(self.path, self.path_epochs, self.path_scores), 1):
            rows.append((str(i), state.name, str(state.clip_length), state.sampling, f"{state.lr:g}",
                         f"{state.batch_size}x{state.accumulation}", str(epochs), f"{score:.4f}"))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        budget = "" if self.budget_gflops is None else f" of a {self.budget_gflops:,.0f} budget"
        gflops = ("" if self.replay_gflops is None else
                  f" ({self.replay_gflops:,.0f} GFLOPs{budget})")
        search = ("" if self.search_gflops is None else f" ({self.search_gflops:,.0f} GFLOPs)")
        metric = f" ({self.knee_metric})" if self.knee_metric else ""
        raced = sum(e.knee is not None and e.knee.stop == RACE for e in self.edges)
        dropped = sum(e.status == DROPPED for e in self.edges)
        early = [f"{n} {why}" for n, why in ((raced, "stopped by racing"), (dropped, "dropped for a climbing loss")) if n]
        early_note = f" ({', '.join(early)})" if early else ""
        measured = self.measured_score
        seen = ("" if measured is None or abs(measured - self.score) < 5e-5
                else f" (knee fit; measured {measured:.4f})")
        lines.append(f"score{metric} {self.score:.4f}{seen}; replay {self.replay_epochs} epochs{gflops}; search "
                     f"{self.search_epochs} epochs{search} over {sum(e.epochs > 0 for e in self.edges)} "
                     f"edges{early_note} in {self.search_seconds:.1f} s")
        return "\n".join(lines)

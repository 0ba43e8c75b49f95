"""What a report shows, as plain data: the view the plots and the HTML page are drawn from.

Loading a run directory (through the planner's own store and result API) happens in
:mod:`optplan.report.load`; everything here is independent of where the numbers came from, so
the figures can be drawn from any plan, stored or simulated.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from optplan.plan.result import STOP_REASONS, ParetoPoint, Stage
from optplan.state import State


@dataclass(frozen=True)
class EdgeView:
    """One trained edge ``source -> target``.

    ``curve[i]`` is the validation score after ``i`` epochs in the target state (``curve[0]``:
    the source model). ``knee_epoch``/``knee_score`` are the kept epoch and the edge's score;
    ``knee_params`` the fitted ``(a, b, c, d, e)`` of the paper's curve, or None when the fit
    came from another method or failed. ``seconds`` is wall time spent training the edge;
    ``slot`` which of the source's kept models it started from (a beam wider than 1).
    ``stop`` says why it stopped (a key of :data:`~optplan.plan.result.STOP_REASONS`);
    ``train_loss[i]``/``val_loss[i]`` are the mean training loss of epoch ``i + 1`` and the
    validation cross-entropy after it, from the edge's log (empty when the trainer logs none,
    NaN for an epoch it did not record).
    """

    source: str
    target: str
    curve: tuple[float, ...]
    epochs: int
    status: str
    knee_epoch: int | None = None
    knee_score: float | None = None
    knee_params: tuple[float, ...] | None = None
    seconds: float = 0.0
    slot: int = 0
    stop: str = ""
    train_loss: tuple[float, ...] = ()
    val_loss: tuple[float, ...] = ()

    @property
    def has_losses(self) -> bool:
        """Whether the edge's log recorded any finite loss."""
        return any(math.isfinite(x) for x in (*self.train_loss, *self.val_loss))

    @property
    def name(self) -> str:
        return f"{self.source} \u2192 {self.target}" + (f" #{self.slot}" if self.slot else "")


PLANNED = "optplan (planned)"  # the planned schedule's row among the baselines


@dataclass
class ReportData:
    """Everything one report shows.

    ``path`` lists the chosen nodes in order, the start node excluded (choice nodes, which
    train nothing, included); ``stages`` (the planner's) drops 0-epoch stages. ``states`` maps
    every node that trains to its :class:`State`. ``search_epochs`` sums every edge's epochs and
    ``search_seconds`` is the plan's wall time. ``grid_layout`` draws the graph as a grid of clip
    settings x lr levels when its states allow (else in layers). ``baselines`` are rows
    ``{"name", "top1", "epochs", ...}`` and ``evaluation`` the test metrics of the final model,
    each when the run directory has them. ``pareto`` is the plan's front of score vs replay
    GFLOPs over complete paths and ``budget_gflops`` the budget the plan kept to (if any).
    ``unfinished`` is (edge runs finished, runs planned) of a plan that has not finished (its
    report shows the edges so far: no path, schedule or score yet). ``replay_command`` and
    ``eval_command`` are shell commands that replay the schedule from scratch and test the
    plan's final model (None where there is nothing to replay or test); ``resume_command``
    finishes an unfinished plan. ``graph_edges`` lists
    every edge of the planned graph (an unfinished plan has not recorded all of them).
    """

    start: str
    final: str
    states: dict[str, State]
    edges: list[EdgeView]
    path: list[str]
    stages: list[Stage]
    score: float
    search_epochs: int
    search_seconds: float
    search_gflops: float | None = None
    replay_gflops: float | None = None
    knee_metric: str | None = None
    score_clip: str | None = None
    title: str = "optplan run"
    grid_layout: bool = True
    baselines: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    pareto: list[ParetoPoint] = field(default_factory=list)
    budget_gflops: float | None = None
    unfinished: tuple[int, int] | None = None
    graph_edges: list[tuple[str, str]] = field(default_factory=list)  # every planned move
    replay_command: str | None = None
    eval_command: str | None = None
    resume_command: str | None = None  # of an unfinished plan

    @property
    def stop_counts(self) -> dict[str, int]:
        """How many edges stopped for each reason, in the order of ``STOP_REASONS``."""
        counts = Counter(e.stop for e in self.edges)
        order = [*STOP_REASONS, *sorted(set(counts) - set(STOP_REASONS))]
        return {reason: counts[reason] for reason in order if counts[reason]}

    @property
    def confusion(self) -> tuple[list[str], list[list[int]]] | None:
        """The test's class names and confusion matrix (rows: true class, columns: predicted),
        when the evaluation holds a square one; class names default to their indices."""
        matrix = (self.evaluation or {}).get("confusion")
        if not (isinstance(matrix, list) and matrix and all(
                isinstance(row, list) and len(row) == len(matrix) for row in matrix)):
            return None
        names = (self.evaluation or {}).get("classes")
        if not (isinstance(names, list) and len(names) == len(matrix)):
            names = [str(i) for i in range(len(matrix))]
        return [str(n) for n in names], [[int(v) for v in row] for row in matrix]

    @property
    def path_edges(self) -> set[tuple[str, str]]:
        """The chosen path as (source, target) pairs, starting from the start node."""
        nodes = [self.start, *self.path]
        return set(zip(nodes[:-1], nodes[1:]))

    @property
    def trained_edges(self) -> list[EdgeView]:
        """Edges that trained at least one epoch (not skipped ones, nor moves into a choice node)."""
        return [e for e in self.edges if e.epochs > 0]

    @property
    def comparison(self) -> list[dict[str, Any]]:
        """The baselines, then the planned schedule's row when its test top-1 is known."""
        rows = list(self.baselines)
        if self.evaluation is not None and "top1" in self.evaluation:
            rows.append({"name": PLANNED, "top1": self.evaluation["top1"],
                         "epochs": self.schedule_epochs})
        return rows

    @property
    def schedule_epochs(self) -> int:
        """Epochs of the replayed schedule (the training cost of the chosen path)."""
        return sum(stage.epochs for stage in self.stages)

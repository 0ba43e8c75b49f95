"""What the dynamic programme maximises, and so which models a node keeps.

``score`` (the paper): the best final score; a node keeps its best incoming model (``beam``:
the ``beam`` best). ``score_at_budget``: the best final score among paths whose replay fits
``budget_gflops``, the training GFLOPs of replaying the path from scratch (the sum over its
stages of epochs x one epoch's GFLOPs in the stage's state). A node then keeps every incoming
model that fits the budget and that no other beats on both score and replay cost (a Pareto set
of (cost, score) labels): a model another one dominates can only lead to dominated paths, as
long as an edge's outcome grows with its source's score and its cost does not (true of the
simulated surfaces), so the labels make the DP over (node, cost) exact without discretising
cost. Every edge then trains once per label of its source instead of once.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

from optplan.defaults import objective_problem
from optplan.plan.records import Candidate
from optplan.plan.result import pareto_front
from optplan.records_io import JsonRecord

SCORE, SCORE_AT_BUDGET = "score", "score_at_budget"
OBJECTIVES = (SCORE, SCORE_AT_BUDGET)


@dataclass(frozen=True)
class Objective(JsonRecord):
    """``name`` one of :data:`OBJECTIVES`; ``budget_gflops`` the replay budget of
    ``score_at_budget`` (training GFLOPs)."""

    name: Literal["score", "score_at_budget"] = SCORE
    budget_gflops: float | None = None

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.name!r}; choose one of {', '.join(OBJECTIVES)}")
        problem = objective_problem(self.name, self.budget_gflops)
        if problem:
            raise ValueError(problem)

    @property
    def budgeted(self) -> bool:
        return self.name == SCORE_AT_BUDGET

    @classmethod
    def from_config(cls, plan: Any) -> "Objective":
        """From a ``plan`` config section (:class:`~optplan.plan.config.PlanConfig`)."""
        return cls(plan.objective, plan.budget_gflops)

    def fits(self, gflops: float) -> bool:
        """Whether a replay of ``gflops`` training GFLOPs fits the budget (always, for ``score``)."""
        return not self.budgeted or gflops <= self.budget_gflops

    def keep(self, candidates: list[Candidate], beam: int = 1) -> list[Candidate]:
        """The models a node keeps out of its usable incoming ones, best score first."""
        if self.budgeted:
            kept = pareto_front([c for c in candidates if self.fits(c.gflops)], cost=attrgetter("gflops"))
        else:
            kept = candidates
        return sorted(kept, key=lambda c: -c.score)[: None if self.budgeted else beam]

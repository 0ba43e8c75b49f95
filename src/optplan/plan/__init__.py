"""The optimization planner: state graph, knee-terminated edges, dynamic programming, store.

The user meets :class:`StateGraph` (the state space), a trainer (:class:`SimulatedTrainer`,
``optplan.train.edge.VideoEdgeTrainer`` or their own :class:`EdgeTrainer`), :class:`Planner`
and :class:`PlanResult`; stores and executors are swappable parts::

    graph = StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    result = Planner(graph, SimulatedTrainer(), patience=10).run()
    result.schedule  # {"stages": [{"state": {...}, "epochs": 12}, ...]}

Names are imported on first use (PEP 562), so a light import (``optplan.plan.PlanConfig``,
the command line's ``--help``) does not load the planner with numpy and scipy behind it.
"""

from __future__ import annotations

from optplan._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "climb": ["Climb"],
    "config": ["PlanConfig", "SimulationConfig"],
    "edge": ["EdgeJob", "EdgeOutcome", "run_edge"],
    "executors": ["EXECUTORS", "Executor", "InProcessExecutor", "ProcessExecutor", "RayExecutor",
                  "make_executor"],
    "graph": ["Edge", "StateGraph", "grid_graph"],
    "objective": ["Objective"],
    "planner": ["Planner"],
    "progress": ["Progress", "TqdmProgress"],
    "protocol": ["Checkpoint", "CheckingEdgeTrainer", "CountingEdgeTrainer", "DiscardingEdgeRun", "EdgeRun",
                 "EdgeTrainer", "LossReportingEdgeRun", "ResumableEdgeRun", "ResumableEdgeTrainer"],
    "racing": ["Racing"],
    "records": ["Candidate", "EdgeRecord", "NodeRecord"],
    "result": ["ParetoPoint", "PlanResult", "Stage", "pareto_front"],
    "runner": ["run_plan"],
    "simulate": ["CurveEnded", "RecordedTrainer", "SimulatedTrainer", "recorded_winner_cut"],
    "space": ["Space", "grid_space", "paper_space"],
    "store": ["InMemoryStore", "PlanStore", "SQLiteStore"],
})

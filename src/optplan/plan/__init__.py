"""The optimization planner: state graph, knee-terminated edges, dynamic programming, store.

The user meets :class:`StateGraph` (the state space), a trainer (:class:`SimulatedTrainer`,
``optplan.train.edge.VideoEdgeTrainer`` or their own :class:`EdgeTrainer`), :class:`Planner`
and :class:`PlanResult`; stores and executors are swappable parts::

    graph = StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    result = Planner(graph, SimulatedTrainer(), patience=10).run()
    result.schedule  # {"stages": [{"state": {...}, "epochs": 12}, ...]}

Names are imported on first use (PEP 562), so ``optplan.config``, which needs only
``optplan.plan.config``, does not load the planner with numpy and scipy behind it.
"""

from __future__ import annotations

from optplan._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "config": ["PlanConfig", "SimulationConfig"],
    "edge": ["EdgeJob", "EdgeOutcome", "run_edge"],
    "executors": ["EXECUTORS", "Executor", "InProcessExecutor", "ProcessExecutor", "RayExecutor",
                  "make_executor"],
    "graph": ["Edge", "StateGraph"],
    "objective": ["Objective"],
    "planner": ["Planner"],
    "progress": ["Progress", "TqdmProgress"],
    "protocol": ["Checkpoint", "EdgeRun", "EdgeTrainer", "ResumableEdgeRun", "ResumableEdgeTrainer"],
    "racing": ["Racing"],
    "records": ["Candidate", "EdgeRecord", "NodeRecord"],
    "result": ["ParetoPoint", "PlanResult", "Stage", "pareto_front"],
    "runner": ["run_plan"],
    "simulate": ["SimulatedTrainer"],
    "space": ["grid_graph", "paper_graph"],
    "store": ["InMemoryStore", "PlanStore", "SQLiteStore"],
})

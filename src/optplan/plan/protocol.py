"""The trainer protocol's public path under the planner; it lives in :mod:`optplan.protocol`."""

from optplan.protocol import (CheckingEdgeTrainer, Checkpoint, CountingEdgeTrainer, DiscardingEdgeRun,
                              EdgeRun, EdgeTrainer, EpochCallback, LossReportingEdgeRun, ResumableEdgeRun,
                              ResumableEdgeTrainer)

__all__ = ["CheckingEdgeTrainer", "Checkpoint", "CountingEdgeTrainer", "DiscardingEdgeRun", "EdgeRun", "EdgeTrainer",
           "EpochCallback", "LossReportingEdgeRun", "ResumableEdgeRun", "ResumableEdgeTrainer"]

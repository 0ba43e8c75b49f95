"""The ``plan`` section's public path; the classes live in :mod:`optplan.defaults` with every key."""

from optplan.defaults import GridRule, PlanConfig, SimulationConfig, objective_problem

__all__ = ["GridRule", "PlanConfig", "SimulationConfig", "objective_problem"]

"""The ``plan`` section: the state space (states and allowed moves) and how edges are executed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

GridRule = Literal["monotone_lr", "monotone_clip", "one_change", "adjacent"]


class SimulationConfig(BaseModel):
    """The response surface of :class:`~optplan.plan.SimulatedTrainer` (``--simulate``).

    An edge into state v started from a model of score ``s0`` follows
    ``y(x) = e - (e - s0) * exp(-speed * x) - overfit * x`` (x in epochs) with
    ``e = min(0.99, ceiling(v) + transfer * s0)``, plus Gaussian noise of std ``noise``.
    ``ceiling(v) = ceiling + clip_gain * log2(clip / ref_clip) + lr_gain * log10(ref_lr / lr)``
    and ``speed(v) = speed * (lr / ref_lr) ** 0.5``; ``states`` overrides any of ceiling, speed,
    overfit per state name. A state with ``lr > diverge_lr`` returns NaN from epoch
    ``diverge_after`` on. With ``noise = 0`` and ``0 <= transfer <= 1`` an edge's score grows
    with its source's, so the dynamic programme is exact. An epoch costs
    ``epoch_gflops_per_frame * clip_length`` training GFLOPs (compute grows with the frames of a clip).
    """

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed of the noise (curves are deterministic given it).")
    noise: float = Field(0.0, ge=0.0, description="Std of the Gaussian noise added to each score.")
    ceiling: float = Field(0.5, description="Ceiling of a state at ref_clip and ref_lr (score units).")
    clip_gain: float = Field(0.08, description="Ceiling gained per doubling of the clip length.")
    lr_gain: float = Field(0.05, description="Ceiling gained per 10x lower learning rate.")
    transfer: float = Field(0.4, ge=0.0, le=1.0, description="Share of the source's score added to the ceiling.")
    speed: float = Field(0.3, gt=0.0, description="Convergence rate at ref_lr (1/epochs).")
    overfit: float = Field(0.002, ge=0.0, description="Score lost per epoch past saturation.")
    ref_clip: int = Field(4, ge=1, description="Clip length (frames) of the reference ceiling.")
    ref_lr: float = Field(0.1, gt=0.0, description="Learning rate of the reference ceiling and speed.")
    diverge_lr: float | None = Field(None, gt=0.0, description="States above this lr diverge (None: never).")
    diverge_after: int = Field(2, ge=1, description="First NaN epoch of a diverging state.")
    epoch_seconds: float = Field(0.0, ge=0.0, description="Sleep per epoch (to time executors).")
    epoch_gflops_per_frame: float = Field(
        1.0, gt=0.0, description="Training GFLOPs of one epoch per frame of the state's clip.")
    states: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per-state overrides: {name: {ceiling|speed|overfit: value}}.")

    @field_validator("states")
    @classmethod
    def _known_overrides(cls, states: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for name, values in states.items():
            unknown = set(values) - {"ceiling", "speed", "overfit"}
            if unknown:
                raise ValueError(f"state {name!r}: unknown keys {sorted(unknown)}; "
                                 "use ceiling, speed or overfit")
        return states


class PlanConfig(BaseModel):
    """States and moves. A preset builds the paper's graph from clip settings and lr multipliers;
    'grid' crosses the values of ``grid`` and links them by ``rules``; 'custom' takes ``states``
    and ``edges`` as written."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["paper", "paper-ext", "auto", "grid", "custom"] = Field(
        "paper", description="Graph family: paper, paper-ext, auto (paper with the start linked to "
                             "every clip setting), grid (grid + rules) or custom.")
    clip_lengths: list[int] = Field([4, 8, 16], description="Clip settings, shortest first (frames).")
    batch_sizes: list[int] = Field([16, 8, 4], description="Per-step batch per clip setting.")
    frame_steps: list[int] | None = Field(
        None, description="Frame step per clip setting (None: 1); a clip spans clip x step frames.")
    accumulation: list[int] = Field([1, 2, 4], description="Gradient accumulation per clip setting.")
    base_lrs: list[float] = Field([0.1, 0.1, 0.1], description="Base learning rate per clip setting.")
    lr_multipliers: list[float] = Field([1.0, 0.1, 0.01], description="Learning-rate levels.")
    sampling: Literal["consecutive", "uniform", "both"] = Field(
        "consecutive", description="'both': two subgraphs sharing the start; the better final wins.")
    frozen_bn_longest: bool = Field(True, description="Freeze BatchNorm in the longest-clip states.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="grid: values per State field, e.g. {lr: [0.1, 0.01], clip_length: [4, 8]}.")
    grid_base: dict[str, Any] = Field(default_factory=dict, description="grid: State fields shared by all states.")
    rules: list[GridRule] = Field(
        ["monotone_lr", "monotone_clip", "one_change", "adjacent"],
        description="grid: allowed moves (lr never rises, clip never shrinks, one field at a time, "
                    "one level at a time).")
    states: list[dict[str, Any]] = Field(default_factory=list, description="custom: State fields each.")
    edges: list[tuple[str, str]] = Field(default_factory=list, description="custom: [source, target].")
    start: str = Field("start", description="custom: name of the start node.")
    final: str | None = Field(
        None, description="Where the chosen path ends: 'best' (the best-scoring node of all), or "
                          "custom/grid: the name of the final node (None: the graph's final node, the "
                          "only sink or the preset's last state, as the paper).")
    executor: Literal["inprocess", "process", "ray"] = Field("inprocess", description="Edge execution.")
    workers: int = Field(2, ge=1, description="Parallel edges for the process/ray executors.")
    ray_address: str | None = Field(None, description="Ray cluster address (None: local ray.init).")
    beam: int = Field(1, ge=1, description="Checkpoints kept per node (1: the paper's DP).")
    budget_epochs: int | None = Field(
        None, ge=1, description="Also report the best searched path whose replay fits this many epochs.")
    objective: Literal["score", "score_at_budget"] = Field(
        "score", description="What the DP maximises: 'score' (the paper: the best final score) or "
                             "'score_at_budget' (the best path whose replay fits plan.budget_gflops).")
    budget_gflops: float | None = Field(
        None, gt=0.0, description="score_at_budget: training GFLOPs a replay of the chosen path may spend.")
    racing: bool = Field(False, description="Stop an edge once it cannot beat a finished edge into "
                                            "the same state (see optplan.plan.racing).")
    race_margin: float = Field(
        0.01, ge=0.0, description="racing: score units added to an edge's optimistic bound.")
    race_after: int | None = Field(
        None, ge=1, description="racing: epochs an edge trains before it can be judged (None: knee.patience).")
    simulate: SimulationConfig = Field(
        default_factory=SimulationConfig, description="Response surface of the simulated trainer.")

    @model_validator(mode="after")
    def _budget_with_its_objective(self) -> "PlanConfig":
        problem = objective_problem(self.objective, self.budget_gflops, self.beam)
        if problem:
            raise ValueError(problem)
        return self


def objective_problem(objective: str, budget_gflops: float | None, beam: int = 1) -> str | None:
    """What is wrong with an objective and its budget (None: nothing); the one check behind
    the config's validation and :class:`~optplan.plan.objective.Objective`."""
    if objective == "score_at_budget" and (budget_gflops is None or budget_gflops <= 0):
        return ("plan.objective=score_at_budget needs a positive plan.budget_gflops (the training "
                "GFLOPs a replay of the chosen path may spend), e.g. plan.budget_gflops=5000")
    if objective == "score" and budget_gflops is not None:
        return ("plan.budget_gflops is used only by plan.objective=score_at_budget; set that "
                "objective or drop the budget")
    if objective == "score_at_budget" and beam > 1:
        return ("plan.objective=score_at_budget keeps every Pareto-optimal model of a node; "
                "leave plan.beam at 1")
    return None

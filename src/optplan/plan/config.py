"""The ``plan`` section: the state space (states and allowed moves) and how edges are executed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PlanConfig(BaseModel):
    """States and moves. A preset builds the paper's graph from clip settings and lr multipliers;
    'custom' takes ``states`` and ``edges`` as written."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["paper", "paper-ext", "custom"] = Field("paper", description="Graph family.")
    clip_lengths: list[int] = Field([4, 8, 16], description="Clip settings, shortest first (frames).")
    batch_sizes: list[int] = Field([16, 8, 4], description="Per-step batch per clip setting.")
    accumulation: list[int] = Field([1, 2, 4], description="Gradient accumulation per clip setting.")
    base_lrs: list[float] = Field([0.1, 0.1, 0.1], description="Base learning rate per clip setting.")
    lr_multipliers: list[float] = Field([1.0, 0.1, 0.01], description="Learning-rate levels.")
    sampling: Literal["consecutive", "uniform", "both"] = Field(
        "consecutive", description="'both': two subgraphs sharing the start; the better final wins.")
    frozen_bn_longest: bool = Field(True, description="Freeze BatchNorm in the longest-clip states.")
    states: list[dict[str, Any]] = Field(default_factory=list, description="custom: State fields each.")
    edges: list[tuple[str, str]] = Field(default_factory=list, description="custom: [source, target].")
    start: str = Field("start", description="custom: name of the start node.")
    final: str | None = Field(None, description="custom: name of the final node.")
    executor: Literal["inprocess", "process", "ray"] = Field("inprocess", description="Edge execution.")
    workers: int = Field(2, ge=1, description="Parallel edges for the process/ray executors.")
    ray_address: str | None = Field(None, description="Ray cluster address (None: local ray.init).")
    beam: int = Field(1, ge=1, description="Checkpoints kept per node (1: the paper's DP).")
    budget_epochs: int | None = Field(None, ge=1, description="Best path whose replay fits this budget.")

"""A training *state*: the hyper-parameters that stay fixed while a state trains.

A top-level module because ``train/`` trains a State and ``plan/`` makes them the nodes of its
graph; neither owns it (``optplan.train.state`` re-exports it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class State(BaseModel):
    """One node of the state graph.

    Within a state the learning rate is constant and the optimiser is fresh; moving to another
    state is what changes hyper-parameters. ``batch_size * accumulation`` is the effective batch
    (clips per optimiser step), kept constant across clip settings in the paper's space.
    ``sampling='uniform'`` spreads ``clip_length`` frames over the whole video in equal segments
    (``extra['frames_per_segment']``, default 1, frames taken per segment); 'consecutive' takes
    ``clip_length`` frames ``frame_step`` apart from a random start.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique node name, e.g. 'c16_lr1'.")
    lr: float = Field(gt=0.0, description="Constant learning rate of this state.")
    clip_length: int = Field(ge=1, description="Frames per clip (T).")
    sampling: Literal["consecutive", "uniform"] = "consecutive"
    frame_step: int = Field(1, ge=1, description="Stride between consecutive frames.")
    batch_size: int = Field(8, ge=1, description="Clips per forward/backward step.")
    accumulation: int = Field(1, ge=1, description="Steps accumulated per optimiser update.")
    frozen_bn: bool = Field(False, description="Freeze BatchNorm in this state (how: train.frozen_bn).")
    extra: dict[str, Any] = Field(default_factory=dict, description="Any further optimiser/data fields.")

    @model_validator(mode="after")
    def _segments_fit(self) -> "State":
        k = int(self.extra.get("frames_per_segment", 1))
        if self.sampling == "uniform" and (k < 1 or self.clip_length % k):
            raise ValueError(f"uniform sampling needs clip_length ({self.clip_length}) divisible by "
                             f"extra.frames_per_segment ({k})")
        return self

    @property
    def effective_batch(self) -> int:
        """Clips per optimiser update."""
        return self.batch_size * self.accumulation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (what schedules and stores write)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "State":
        """Inverse of :meth:`to_dict`."""
        return cls.model_validate(data)

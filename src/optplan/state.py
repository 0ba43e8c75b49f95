"""A training *state*: the hyper-parameters that stay fixed while a state trains.

A top-level module because ``train/`` trains a State and ``plan/`` makes them the nodes of its
graph; neither owns it (``optplan.train.state`` re-exports it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

UNIFORM_FRAMES_PER_SEGMENT = 4
"""Frames per segment of the reference's uniform sampling (4 / 8 / 16 segments of 4 frames)."""


class State(BaseModel):
    """One node of the state graph.

    Within a state the learning rate is constant and the optimiser is fresh; moving to another
    state is what changes hyper-parameters. ``batch_size * accumulation`` is the effective batch
    (clips per optimiser step), kept constant across clip settings in the paper's space.
    ``sampling='uniform'`` cuts the whole video into ``clip_length / frames_per_segment`` equal
    segments and takes ``frames_per_segment`` frames in a row from each (default 4, the
    reference's: the stem's 4-frame temporal kernel with stride 4 then sees exactly one segment;
    1 spreads single frames). 'consecutive' takes ``clip_length`` frames ``frame_step`` apart
    from a random start (its ``frames_per_segment`` is 1 and unused).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique node name, e.g. 'c16_lr1'.")
    lr: float = Field(gt=0.0, description="Constant learning rate of this state.")
    clip_length: int = Field(ge=1, description="Frames per clip (T).")
    sampling: Literal["consecutive", "uniform"] = "consecutive"
    frame_step: int = Field(1, ge=1, description="Stride between consecutive frames.")
    batch_size: int = Field(8, ge=1, description="Clips per forward/backward step.")
    accumulation: int = Field(1, ge=1, description="Steps accumulated per optimiser update.")
    frames_per_segment: int = Field(
        1, ge=1, description="uniform: frames taken in a row from each segment (left out: "
                             f"{UNIFORM_FRAMES_PER_SEGMENT}, the reference's); consecutive: 1.")
    frozen_bn: bool = Field(False, description="Freeze BatchNorm in this state (how: train.frozen_bn).")
    extra: dict[str, Any] = Field(default_factory=dict, description="Any further optimiser/data fields.")

    @model_validator(mode="before")
    @classmethod
    def _default_frames_per_segment(cls, data: Any) -> Any:
        """Fill a missing ``frames_per_segment`` by sampling, so every stored state says it."""
        if isinstance(data, dict) and data.get("frames_per_segment") is None:
            uniform = data.get("sampling") == "uniform"
            data = {**data, "frames_per_segment": UNIFORM_FRAMES_PER_SEGMENT if uniform else 1}
        return data

    @model_validator(mode="after")
    def _segments_fit(self) -> "State":
        k = self.frames_per_segment
        if self.sampling == "uniform" and self.clip_length % k:
            raise ValueError(f"uniform sampling needs clip_length ({self.clip_length}) divisible by "
                             f"frames_per_segment ({k}); set frames_per_segment (1 takes single frames)")
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

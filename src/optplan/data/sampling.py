"""Which frames of a video make a clip: the paper's two sampling modes.

- ``consecutive``: ``clip_length`` frames ``frame_step`` apart from a random start (train) or
  from a fixed position (val: the centre; test: N positions spread over the video).
- ``uniform`` ("sparse"): the video is cut into ``S = clip_length / frames_per_segment`` equal
  segments and ``frames_per_segment`` frames (``frame_step`` apart) are taken from each, at a
  random offset inside the segment (train) or a fixed one (val/test). The reference takes 4
  frames per segment (:data:`optplan.state.UNIFORM_FRAMES_PER_SEGMENT`), so a stem whose temporal kernel and
  stride are 4 sees one segment per output step; training states default to it, while
  ``ClipSpec`` itself defaults to 1 (one frame per segment).

A video shorter than the clip is padded by repeating its last frame (indices are clamped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from optplan.state import UNIFORM_FRAMES_PER_SEGMENT  # noqa: F401  (the reference's, named here too)


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut for one training state. Frames are counted in decoded frames."""

    clip_length: int
    sampling: Literal["consecutive", "uniform"] = "consecutive"
    frame_step: int = 1
    frames_per_segment: int = 1

    def __post_init__(self) -> None:
        if self.clip_length < 1 or self.frame_step < 1 or self.frames_per_segment < 1:
            raise ValueError(f"clip_length, frame_step and frames_per_segment must be >= 1: {self}")
        if self.sampling not in ("consecutive", "uniform"):
            raise ValueError(f"sampling must be 'consecutive' or 'uniform', got {self.sampling!r}")
        if self.sampling == "uniform" and self.clip_length % self.frames_per_segment:
            raise ValueError(f"uniform sampling needs clip_length ({self.clip_length}) divisible by "
                             f"frames_per_segment ({self.frames_per_segment})")

    @classmethod
    def from_state(cls, state: Any) -> "ClipSpec":
        """The clip setting of a training ``State``."""
        return cls(clip_length=state.clip_length, sampling=state.sampling, frame_step=state.frame_step,
                   frames_per_segment=state.frames_per_segment)

    @property
    def segments(self) -> int:
        """S, the number of segments (uniform) or 1 (consecutive)."""
        return self.clip_length // self.frames_per_segment if self.sampling == "uniform" else 1

    @property
    def span(self) -> int:
        """Frames the video needs so nothing is repeated (consecutive: one window; uniform: all
        segments' windows side by side)."""
        per_window = self.frames_per_segment if self.sampling == "uniform" else self.clip_length
        return self.segments * ((per_window - 1) * self.frame_step + 1)


def sample_indices(num_frames: int, spec: ClipSpec, *, rng: np.random.Generator | None = None,
                   position: float = 0.5) -> np.ndarray:
    """Frame indices (int64, length ``spec.clip_length``) of one clip of a ``num_frames`` video.

    With ``rng`` the temporal offset is random (training); without, ``position`` in [0, 1]
    places it (0: earliest, 0.5: centre, 1: latest possible).
    """
    if num_frames < 1:
        raise ValueError("a video needs at least one frame")
    if spec.sampling == "consecutive":
        window = (spec.clip_length - 1) * spec.frame_step + 1
        room = max(num_frames - window, 0)
        start = int(rng.integers(0, room + 1)) if rng is not None else round(position * room)
        indices = start + np.arange(spec.clip_length) * spec.frame_step
    else:
        k, segments = spec.frames_per_segment, spec.segments
        window = (k - 1) * spec.frame_step + 1
        length = num_frames / segments
        starts = np.floor(np.arange(segments) * length).astype(np.int64)
        room = max(int(np.floor(length)) - window, 0)
        offsets = (rng.integers(0, room + 1, size=segments) if rng is not None
                   else np.full(segments, round(position * room)))
        indices = ((starts + offsets)[:, None] + np.arange(k) * spec.frame_step).reshape(-1)
    return np.minimum(indices, num_frames - 1).astype(np.int64)


def view_positions(count: int) -> list[float]:
    """``count`` positions in [0, 1] spread evenly, centred (1 -> [0.5]; 3 -> [1/6, 1/2, 5/6])."""
    return [(j + 0.5) / count for j in range(count)]

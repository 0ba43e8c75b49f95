"""Which clip setting validation scores a state with (``knee.score_clip``).

``state`` (the default): every state is scored with its own clip setting, so a curve measures
the model the way the state trains it. ``longest`` (the reference's: its validation loader keeps
the last, longest clip setting): every state is scored with the longest clip setting of the
state space that shares its sampling, so a 16-frame state and a 64-frame state are scored on one
scale, and an edge into a short-clip state is judged by what its model does on long clips,
which is where the schedule ends. The space is the plan's graph, a replayed schedule's stages,
or the state alone (then both modes agree).
"""

from __future__ import annotations

from typing import Iterable, Literal

from optplan.data.sampling import ClipSpec
from optplan.state import State

ScoreClip = Literal["state", "longest"]


def _length(clip: ClipSpec) -> tuple[int, int]:
    """Order of clip settings: more frames first, then the longer span of the video."""
    return clip.clip_length, clip.span


def scoring_clip(state: State, mode: ScoreClip, space: Iterable[State] = ()) -> ClipSpec:
    """The clip setting validation scores ``state`` with: its own (``mode='state'``), or the
    longest of ``space`` and ``state`` with ``state``'s sampling (``'longest'``)."""
    own = ClipSpec.from_state(state)
    if mode == "state":
        return own
    if mode != "longest":
        raise ValueError(f"score_clip must be 'state' or 'longest', got {mode!r}")
    same = [ClipSpec.from_state(s) for s in space if s.sampling == state.sampling]
    return max([own, *same], key=_length)


def describe(mode: ScoreClip, space: Iterable[State]) -> str:
    """One line for reports: what the knee curves of ``space`` were scored on."""
    if mode == "state":
        return "state: each state's own clip setting"
    states = list(space)
    longest = {scoring_clip(s, mode, states) for s in states}
    shown = ", ".join(f"{c.clip_length} {c.sampling} frames" +
                      (f" ({c.segments} segments x {c.frames_per_segment})" if c.sampling == "uniform" else "") +
                      (f" step {c.frame_step}" if c.frame_step > 1 else "")
                      for c in sorted(longest, key=_length))
    return f"longest: every state scored on the longest clip setting ({shown})"

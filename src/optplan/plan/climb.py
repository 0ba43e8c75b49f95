"""Dropping starts that climb: an edge from scratch whose training loss rises is left out.

A model trained from scratch at a learning rate above what it trains stably first climbs: its
training loss rises after the warm-up instead of falling. Such a start sometimes recovers within
the search, is then chosen, and its replay (another draw of the same schedule) stalls at chance
or collapses; and it costs the search its whole run plus every edge after its node. On the
benchmark's regimes every start at lr x1 climbed 16-54% above its first epoch's loss within
epochs 2-4 and every start at x0.3 at most 12% (bench/RESULTS.md, "Dropping starts that climb").
So :class:`Climb` drops an edge from scratch once, within its first ``epochs`` epochs, its mean
training loss exceeds ``limit`` times its first epoch's: the edge ends ``dropped`` (no model,
not retried, not trained again on resume), and a node reached only through it is skipped.

Only edges from scratch are judged, and of the starts into states that differ only in lr, the
one at the lowest lr is never judged: the rule chooses between learning rates, it never takes a
clip setting out of a plan (on the tests' tiny data even lr 0.02 climbs 40% and then learns).
An edge from a trained model that enters a higher lr may rise for an epoch and settle, which is
the move the graph offers on purpose. It needs a trainer
whose runs report their losses (a :class:`~optplan.protocol.LossReportingEdgeRun`, as the video
trainer's do); on another trainer it does nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from optplan.records_io import JsonRecord

CLIMB = "climb"  # Knee.stop of a dropped edge


@dataclass(frozen=True)
class Climb(JsonRecord):
    """Drop an edge from scratch whose training loss in epochs 2..``epochs`` exceeds ``limit``
    times epoch 1's (``limit`` > 1: a rise by a fraction; ``epochs`` >= 2)."""

    limit: float = 1.15
    epochs: int = 4

    def __post_init__(self) -> None:
        if not (math.isfinite(self.limit) and self.limit > 1.0) or self.epochs < 2:
            raise ValueError(f"the climb rule needs limit > 1 and epochs >= 2, got {self.limit}, {self.epochs}")

    def climbed(self, losses: Sequence[float]) -> str | None:
        """Why the run whose epoch training losses (epoch 1 first) are ``losses`` is dropped, or
        None while it is not (it has not climbed, or its epochs are past the window)."""
        if len(losses) < 2 or len(losses) > self.epochs or not math.isfinite(losses[0]) or losses[0] <= 0:
            return None
        last = losses[-1]
        if math.isfinite(last) and last <= self.limit * losses[0]:
            return None
        rise = f"+{last / losses[0] - 1:.0%}" if math.isfinite(last) else "not finite"
        return (f"training loss rose from {losses[0]:.3g} in epoch 1 to {last:.3g} in epoch {len(losses)} "
                f"({rise}; plan.climb_limit={self.limit:g}): a start that climbs is dropped")

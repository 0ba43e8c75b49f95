"""Racing: stop an edge that can no longer beat a finished competitor into the same node.

All edges into a node v train v's state and only the best survives (``beam``: the ``beam``
best), so once a competing edge into v has finished with kept score ``bar``, an edge still
training whose optimistic bound falls below ``bar`` can stop: it would lose anyway. The
bound is the higher of the best score observed so far and the maximum of the knee model
fitted to the curve over the knee's whole horizon, plus ``margin``. When the curve follows
the knee model (the simulated surfaces without noise do), later fits agree with the current
one, the edge's final knee score cannot exceed the bound, and racing leaves the chosen path
unchanged; on noisy curves ``margin`` is the slack. The bound is judged once ``after`` epochs
are trained (default: the knee's patience T, when the knee rule itself starts judging; the fit
needs :data:`~optplan.knee.MIN_FIT_POINTS` points); judging earlier saves more and trusts a
shorter curve's fit more. The planner trains the edges into a node from the best source model
first, so the later ones meet the highest bar; with a parallel executor an edge races only
against the competitors that had finished when it started.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from optplan.knee import Knee, KneeFitError, KneeRule, fit_knee
from optplan.records_io import JsonRecord

RACE = "race"  # Knee.stop of an edge that lost its race
MARGIN = 0.01  # a hundredth of the score scale, as the gain rule's default


@dataclass(frozen=True)
class Racing(JsonRecord):
    """``margin`` (score units) added to an edge's optimistic bound; ``after`` the epochs an
    edge trains before it can be judged (None: the knee's patience); ``bar`` the kept score the
    edge must be able to beat (set per edge by the planner; None: no competitor has finished)."""

    margin: float = MARGIN
    after: int | None = None
    bar: float | None = None

    json_keys = ("margin", "after")  # the bar is set per edge: not part of the plan's fingerprint

    def __post_init__(self) -> None:
        if self.margin < 0 or (self.after is not None and self.after < 1):
            raise ValueError(f"racing needs margin >= 0 and after >= 1 epoch, got {self.margin}, {self.after}")

    def against(self, bar: float | None) -> "Racing":
        """This rule racing against ``bar``."""
        return replace(self, bar=bar)

    def bound(self, scores: Sequence[float]) -> float | None:
        """The optimistic bound of a curve (None when the knee model cannot be fitted yet)."""
        try:
            fitted = fit_knee(scores).score
        except KneeFitError:
            return None
        return max(fitted, float(np.max(scores))) + self.margin

    def lost(self, scores: Sequence[float], rule: KneeRule) -> Knee | None:
        """A stop (``Knee.stop == 'race'``, keeping the best observed epoch) when the curve can
        no longer reach :attr:`bar`; None to train on."""
        if self.bar is None or len(scores) - 1 < (self.after or rule.patience):
            return None
        bound = self.bound(scores)
        if bound is None or bound >= self.bar:
            return None
        best = int(np.argmax(scores))
        return Knee(epoch=best, score=float(scores[best]), params=(), reached=True,
                    method=rule.method, epochs=len(scores) - 1, stop=RACE)

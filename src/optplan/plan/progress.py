"""The live view of a plan: edges done / total, the edge in training, its epoch and curve, ETA.

:class:`TqdmProgress` draws one tqdm bar over edges (ETA from the edges' pace) with the current
edge, its epoch and its last scores as the postfix; :class:`Progress` itself shows nothing
(``--quiet`` and library use).
"""

from __future__ import annotations

import sys
from typing import TextIO

from optplan.plan.records import EdgeRecord


class Progress:
    """Callbacks the planner makes; this base class shows nothing."""

    def start(self, total: int) -> None:
        """``total`` edge runs expected (a beam may add some; restored ones count too)."""

    def epoch(self, edge: str, scores: list[float]) -> None:
        """An epoch of ``edge`` finished; ``scores`` is its curve so far."""

    def finished(self, record: EdgeRecord) -> None:
        """An edge run ended (trained, restored from the store, failed or skipped)."""

    def close(self) -> None:
        """The plan ended."""


class TqdmProgress(Progress):
    """A tqdm bar over edge runs on ``file`` (stderr by default)."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file or sys.stderr
        self._bar = None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc="plan", unit="edge", file=self.file,
                         dynamic_ncols=True)

    def epoch(self, edge: str, scores: list[float]) -> None:
        if self._bar is not None:
            tail = " ".join(f"{s:.3f}" for s in scores[-4:])
            self._bar.set_postfix_str(f"{edge} epoch {len(scores) - 1} [{tail}]")

    def finished(self, record: EdgeRecord) -> None:
        if self._bar is None:
            return
        if self._bar.n >= self._bar.total:
            self._bar.total = self._bar.n + 1
        score = "-" if record.score is None else f"{record.score:.4f}"
        self._bar.set_postfix_str(f"{record.id} {record.status} score {score}")
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

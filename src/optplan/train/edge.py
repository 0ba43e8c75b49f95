"""The real planner adapter: graph edges trained on video with :class:`~optplan.train.run.StateRun`.

``VideoEdgeTrainer(cfg, run_dir, space)`` implements the planner's ``EdgeTrainer`` protocol (and
the optional resumable one). Edge u->v trains in ``run_dir/edges/<u>.<hash>-<v>/`` (see
:func:`edge_dir`), scored on the clip setting ``knee.score_clip`` picks in the state ``space``;
the checkpoints it hands the planner name files relative to ``run_dir``, so a run directory can
be moved or resumed from another working directory. The trainer pickles as its config,
directory and space only; each process builds one :class:`TrainSession` per config on first use
and keeps it, so a pool worker reads and probes the data once, not once per edge job.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any, Iterable

from optplan.config import OptplanConfig
from optplan.errors import OptplanError
from optplan.protocol import Checkpoint, edge_id
from optplan.state import State
from optplan.train.checkpoint import is_intact
from optplan.train.run import StateRun
from optplan.train.scoring import scoring_clip

START = "start"

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text) or "_"


def _origin(source: Checkpoint | None) -> tuple[str, str]:
    """The source node's name and a short hash of the source checkpoint's path ("" from scratch):
    stable across processes, and unique even when a node keeps several models (the beam)."""
    if source is None:
        return START, ""
    return source.meta.get("state", "ckpt"), hashlib.sha1(str(source.path).encode()).hexdigest()[:6]


def run_id(source: Checkpoint | None, state: State) -> str:
    """The :func:`~optplan.protocol.edge_id` of training ``state`` from ``source``."""
    node, digest = _origin(source)
    return edge_id(node, state.name, digest)


def edge_dir(run_dir: Path, source: Checkpoint | None, state: State) -> Path:
    """``run_dir/edges/<source>.<hash>-<target>`` (``start-<target>`` from scratch): shell-safe,
    and the layout of earlier runs, so their edges resume."""
    node, digest = _origin(source)
    origin = f"{node}.{digest}" if digest else node
    return run_dir / "edges" / f"{_slug(origin)}-{_slug(state.name)}"


class VideoEdgeRun:
    """One edge in training (the planner's ``ResumableEdgeRun``, ``LossReportingEdgeRun`` and
    ``DiscardingEdgeRun``).

    ``pending`` are scores of epochs the run already trained but the planner has not recorded
    (it was killed between our save and its own): :meth:`train_epoch` hands them out first.
    """

    def __init__(self, run: StateRun, edge: str, root: Path, pending: list[float] | None = None) -> None:
        self._run, self.edge, self._root, self._pending = run, edge, root, list(pending or [])

    def initial_score(self) -> float:
        return self._run.initial_score()

    def train_epoch(self) -> float:
        if self._pending:
            return self._pending.pop(0)
        return self._run.train_epoch()

    @property
    def train_losses(self) -> list[float]:
        """Training losses of the epochs handed out so far (a resumed snapshot's own record; a
        snapshot older than this record reports none)."""
        handed = self._run.epoch - len(self._pending)
        losses = self._run.losses
        return losses[:handed] if len(losses) == self._run.epoch else []

    def keep(self, epoch: int) -> Checkpoint:
        path = self._run.keep(epoch)
        score = self._run.scores[epoch]
        return Checkpoint(path=self._stored(path),
                          meta={"state": self._run.state.name, "edge": self.edge, "epoch": epoch,
                                "score": score if math.isfinite(score) else None})

    def discard(self) -> None:
        self._run.discard()

    def snapshot(self) -> Checkpoint:
        return Checkpoint(path=self._stored(self._run.snapshot()),
                          meta={"edge": self.edge, "epoch": self._run.epoch})

    def _stored(self, path: Path) -> str:
        """``path`` as the store keeps it: relative to the run directory, which may move."""
        return path.relative_to(self._root).as_posix()


class VideoEdgeTrainer:
    """Factory of edge runs on the configured data and model (the planner's ``EdgeTrainer``);
    ``space`` is the graph's states, among which ``knee.score_clip: longest`` finds the clip
    setting to score with."""

    def __init__(self, cfg: OptplanConfig, run_dir: str | Path, space: Iterable[State] = ()) -> None:
        self.cfg, self.run_dir, self.space = cfg, Path(run_dir), tuple(space)
        self._session = None

    def __getstate__(self) -> dict[str, Any]:
        return {"cfg": self.cfg, "run_dir": self.run_dir, "space": self.space, "_session": None}

    @property
    def session(self):
        """The process's :class:`TrainSession` of this config (data lists read and probed once per
        process, however many jobs bring the trainer)."""
        if self._session is None:
            from optplan.train.session import TrainSession

            self._session = TrainSession.shared(self.cfg)  # the trainer arrives pickled per job
        return self._session

    def epoch_gflops(self, state: State) -> float:
        """Training GFLOPs of one epoch in ``state`` (the planner's ``CountingEdgeTrainer``)."""
        return self.session.epoch_gflops(state)

    @property
    def knee_metric(self) -> str:
        """What the curves measure (``knee.metric``, ``auto`` resolved on the data's classes)."""
        return self.session.metric

    @property
    def chance_score(self) -> float | None:
        """What the curves score at chance on these data (``knee.chance_guard``'s floor)."""
        return self.session.chance

    def intact(self, checkpoint: Checkpoint) -> bool:
        """Whether a kept model is still a whole file (the planner's ``CheckingEdgeTrainer``)."""
        path = checkpoint.file(self.run_dir)
        return path is not None and is_intact(path)

    def edge_dir(self, source: Checkpoint | None, state: State) -> Path:
        return edge_dir(self.run_dir, source, state)

    def open(self, source: Checkpoint | None, state: State) -> VideoEdgeRun:
        """Start edge ``source -> state`` afresh (what an earlier attempt left is removed)."""
        return VideoEdgeRun(self._state_run(source, state, resume=False), run_id(source, state),
                            self.run_dir)

    def resume(self, snapshot: Checkpoint, source: Checkpoint | None, state: State,
               scores: list[float]) -> VideoEdgeRun:
        """Continue the edge from its snapshot, whose curve must begin with ``scores``; epochs the
        snapshot has beyond them are replayed from its record, not trained again."""
        run = self._state_run(source, state, resume=True)
        if run.scores[: len(scores)] != list(scores):
            raise OptplanError(f"snapshot {snapshot.path} holds the curve {run.scores}, which does not "
                               f"continue the recorded curve {scores}; the edge must start afresh")
        return VideoEdgeRun(run, run_id(source, state), self.run_dir, pending=run.scores[len(scores):])

    def _state_run(self, source: Checkpoint | None, state: State, *, resume: bool) -> StateRun:
        path = None if source is None else source.path
        return StateRun(self.session, state, self.edge_dir(source, state), path, root=self.run_dir,
                        tag=run_id(source, state), resume=resume,
                        score_clip=scoring_clip(state, self.cfg.knee.score_clip, self.space))

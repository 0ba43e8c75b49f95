"""Train one state to its knee: :class:`StateRun` (one epoch at a time) and :func:`train_state`.

A run directory holds

``epoch_<k>.pt``  the model after epoch k (``epoch_0.pt``: the source), kept while it could
                  still become the knee
``last.pt``       the full snapshot after the latest epoch (model, optimiser, RNG, curve, cost),
                  from which a killed run resumes
``kept.pt``       the knee epoch's model once decided (the other epoch files are deleted)
``curve.csv``     the validation curve so far (``optplan knee`` reads it)
``log.jsonl``     one line per epoch (``log.txt`` the same for people); ``tb/`` as TensorBoard scalars
``result.json``   curve, knee and cost once the state is finished

Every epoch is seeded from (``train.seed``, the state's name, the epoch), so the run is the same
whether it went straight through or was killed and resumed, and whichever process runs it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from optplan.config import OptplanConfig
from optplan.data.sampling import ClipSpec
from optplan.errors import OptplanError, space_for
from optplan.knee import Knee, KneeRule, read_curve, train_to_knee, write_curve
from optplan.train.cost import Cost
from optplan.protocol import Checkpoint, EpochCallback, resolve_path
from optplan.records_io import JsonRecord
from optplan.train.checkpoint import is_intact, load_checkpoint, make_checkpoint, save_checkpoint, set_rng_state
from optplan.train.distributed import barrier
from optplan.train.epoch import EpochTrainer
from optplan.train.logging import RunLogger
from optplan.train.schedule import warm_factor
from optplan.train.scoring import scoring_clip
from optplan.train.session import TrainSession
from optplan.state import State

@dataclass
class StateResult(JsonRecord):
    """A finished state: its curve (``curve[0]`` = start score), knee, kept model and cost."""

    curve: list[float]
    knee: Knee
    checkpoint: Path
    cost: Cost = field(default_factory=Cost)


class StateRun:
    """Training in ``state`` from ``source`` (a checkpoint path, or None: from scratch).

    Offers what the planner's ``EdgeRun`` needs (:meth:`initial_score`, :meth:`train_epoch`,
    :meth:`keep`, :meth:`snapshot`; ``optplan.train.edge`` adapts them to the protocol). With
    ``resume`` and a ``last.pt`` of the same state, source and scoring clip in ``run_dir``, it
    continues after that snapshot's epoch; otherwise it starts afresh (removing what an earlier
    attempt left). A run killed while keeping its knee model resumes as kept (:meth:`keep`
    finishes the job). A relative ``source`` is read from ``root`` (default: the working
    directory) and recorded as given, so a moved ``root`` still resumes. ``score_clip`` is the
    clip setting every epoch is scored with (None: the state's own; see
    ``optplan.train.scoring``). ``tag`` names the run in logs.
    """

    def __init__(self, session: TrainSession, state: State, run_dir: str | Path,
                 source: str | Path | None = None, *, root: str | Path | None = None,
                 tag: str | None = None, resume: bool = True, score_clip: ClipSpec | None = None) -> None:
        self.session, self.state, self.run_dir = session, state, Path(run_dir)
        self.score_clip = score_clip or ClipSpec.from_state(state)
        self.source = None if source is None else str(source)
        self._source_file = None if source is None else resolve_path(source, root)
        self.tag = tag or state.name
        self.main = session.dist.is_main
        last, kept = self.run_dir / "last.pt", self.run_dir / "kept.pt"
        self.kept_epoch: int | None = None  # set when the run had kept its knee model already
        if resume and not last.is_file() and is_intact(kept) and (self.run_dir / "curve.csv").is_file():
            last = kept  # killed after keep() removed the snapshot: the run is over, only kept
        snapshot = load_checkpoint(last, session.device) if resume and last.is_file() else None
        if snapshot is not None:
            self._check_same_run(snapshot, last)
        elif self.main:
            self._clear()
        barrier()
        self.model = (session.load_model(self._source_file, fine_tune=True) if self._source_file
                      else session.new_model())
        self.scores: list[float] = []
        self.losses: list[float] = []  # mean training loss of epochs 1, 2, ...
        self.epoch = 0
        self.cost = Cost()
        if snapshot is not None:
            self.model.load_state_dict(snapshot["model"])
        self.optimizer, self.net = session.prepare(self.model, state)
        self.scaler = session.scaler()
        if snapshot is not None:
            self._restore(snapshot)
        self.logger = RunLogger(self.run_dir, tensorboard=session.cfg.train.tensorboard, enabled=self.main)
        self.trainer = EpochTrainer(session, state, self.net, self.optimizer, self.score_clip, self.cost,
                                    self.logger, self.tag, self.scaler)

    def _restore(self, snapshot: dict[str, Any]) -> None:
        """Optimiser, loss scaler, RNG, curve and cost as they were after the snapshot's epoch;
        from a kept model (no optimiser), the curve only (its cost counters are lost)."""
        if snapshot["optimizer"] is None:
            self.scores = read_curve(self.run_dir / "curve.csv")
            self.epoch, self.kept_epoch = len(self.scores) - 1, snapshot["epoch"]
            return
        self.optimizer.load_state_dict(snapshot["optimizer"])
        set_rng_state(snapshot["rng"])
        meta = snapshot["meta"]
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        self.scores, self.epoch, self.cost = list(meta["scores"]), snapshot["epoch"], Cost.from_dict(meta["cost"])
        self.losses = list(meta.get("losses", []))  # a snapshot from before losses were kept: none

    # --- EdgeRun protocol -------------------------------------------------------------------
    def initial_score(self) -> float:
        """Score of the source model on the run's scoring clip setting (0.0 from scratch, as in
        the paper; a ``model.pretrained`` start is scored); also saves the source as
        ``epoch_0.pt`` so ``keep(0)`` can return it."""
        if not self.scores:
            start = time.perf_counter()
            scored = self.source or self.session.cfg.model.pretrained
            scores = self.session.score(self.net, self.score_clip) if scored else None
            self.scores = [scores.score if scores is not None else 0.0]
            self.session.charge(self.cost, self.state, scores=scores, seconds=time.perf_counter() - start)
            self._save_epoch()
        return self.scores[0]

    def train_epoch(self) -> float:
        """Train one more epoch (in :class:`~optplan.train.epoch.EpochTrainer`), score it, save
        it; returns the score (NaN when diverged)."""
        if self.kept_epoch is not None:
            raise OptplanError(f"{self.run_dir} kept its model already; its optimiser state is gone, "
                               "so it cannot train on")
        self.initial_score()
        epoch = self.epoch + 1
        # A run from scratch warms up (train.warmup_epochs), as the first stage of its replay does.
        warmup = self.session.cfg.train.warmup_epochs if self.source is None else 0
        scores = self.trainer.train(epoch, self.state.lr * warm_factor(epoch - 1, warmup),
                                    save=lambda s, stats: self._trained(s.score, stats.loss),
                                    desc=f"{self.tag} epoch {epoch}")
        return scores.score

    def keep(self, epoch: int) -> Path:
        """Make ``epoch``'s model the run's result (``kept.pt``) and delete every other epoch file
        and the snapshot; returns the kept path."""
        if not 0 <= epoch <= self.epoch:
            raise ValueError(f"cannot keep epoch {epoch}: epochs 0..{self.epoch} were trained")
        kept, chosen = self.run_dir / "kept.pt", self.run_dir / f"epoch_{epoch}.pt"
        if self.kept_epoch not in (None, epoch):
            raise ValueError(f"cannot keep epoch {epoch}: epoch {self.kept_epoch} was kept")
        if self.main:
            if chosen.is_file() or not is_intact(kept):  # else a killed keep() renamed it already
                chosen.replace(kept)
            for path in self.run_dir.glob("epoch_*.pt"):
                path.unlink()
            (self.run_dir / "last.pt").unlink(missing_ok=True)  # last: until now a kill resumes
        barrier()
        self.logger.close()
        return kept

    def discard(self) -> None:
        """Delete every model of the run (epoch files, snapshot, kept model); the curve and logs
        stay. For a run nobody will train on or use (a start the planner dropped); a kill right
        after it leaves the edge without a snapshot, so a resumed plan trains it afresh."""
        if self.main:
            for path in [*self.run_dir.glob("epoch_*.pt"), self.run_dir / "last.pt", self.run_dir / "kept.pt"]:
                path.unlink(missing_ok=True)
        barrier()
        self.logger.close()

    def snapshot(self) -> Path:
        """The resume point after the latest finished epoch."""
        return self.run_dir / "last.pt"

    # --- helpers ----------------------------------------------------------------------------
    def _trained(self, score: float, loss: float) -> None:
        """The epoch just trained is the run's next one: record its ``score`` and training
        ``loss``, then save it."""
        self.epoch += 1
        self.scores.append(score)
        self.losses.append(loss)
        self._save_epoch()

    def _save_epoch(self) -> None:
        """Write ``epoch_<k>.pt`` (model) and ``last.pt`` (everything), then the curve CSV."""
        if self.main:
            cfg = self.session.cfg.model_dump(mode="json")
            common = dict(state=self.state.to_dict(), epoch=self.epoch, config=cfg,
                          classes=self.session.classes)
            meta = {"scores": self.scores, "losses": self.losses, "cost": self.cost.to_dict(), "source": self.source,
                    "score_clip": asdict(self.score_clip), "tag": self.tag,
                    "scaler": self.scaler.state_dict() if self.scaler else None}
            save_checkpoint(self.run_dir / f"epoch_{self.epoch}.pt",
                            make_checkpoint(self.model, meta={"score": self.scores[-1], "tag": self.tag,
                                                              "source": self.source,
                                                              "score_clip": meta["score_clip"]}, **common))
            save_checkpoint(self.run_dir / "last.pt",
                            make_checkpoint(self.model, optimizer=self.optimizer, meta=meta, **common))
            with space_for(self.run_dir / "curve.csv"):
                write_curve(self.run_dir / "curve.csv", self.scores)
        barrier()

    def _check_same_run(self, snapshot: dict[str, Any], path: Path) -> None:
        meta = snapshot.get("meta") or {}
        if snapshot.get("state") != self.state.to_dict() or meta.get("source") != self.source:
            raise OptplanError(f"{path} belongs to another run (state {snapshot.get('state', {}).get('name')!r} "
                               f"from {meta.get('source')!r}); choose another output directory or "
                               f"delete it to start over")
        if meta.get("score_clip") != asdict(self.score_clip):
            raise OptplanError(f"{path} was scored on the clip setting {meta.get('score_clip')}, not "
                               f"{asdict(self.score_clip)} (knee.score_clip changed?); choose another "
                               f"output directory or delete it to start over")

    def _clear(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for pattern in ("epoch_*.pt", "last.pt", "kept.pt", "curve.csv", "result.json", "log.jsonl", "log.txt"):
            for path in self.run_dir.glob(pattern):
                path.unlink()


def train_state(source: str | Path | None, state: State, cfg: OptplanConfig, run_dir: str | Path, *,
                session: TrainSession | None = None, on_epoch: EpochCallback | None = None,
                space: Iterable[State] = ()) -> StateResult:
    """Train ``state`` from ``source`` (None: scratch) until the knee rule of ``cfg.knee`` stops.

    Epochs are scored on the clip setting ``cfg.knee.score_clip`` picks among ``state`` and the
    state ``space`` (see ``optplan.train.scoring``). Resumes a killed run from
    ``run_dir/last.pt``; a finished run (``result.json``) is returned as it is. The result's
    ``checkpoint`` is the knee epoch's model (``kept.pt``). ``on_epoch`` sees the curve and the
    resume snapshot (``last.pt``) after every epoch, as a planner's edge's listener does.
    """
    run_dir = Path(run_dir)
    done = run_dir / "result.json"
    if done.is_file():
        return StateResult.from_dict(json.loads(done.read_text()))
    session = session.serves(cfg) if session is not None else TrainSession(cfg)
    run = StateRun(session, state, run_dir, source, score_clip=scoring_clip(state, cfg.knee.score_clip, space))
    scores = [run.initial_score()] if not run.scores else list(run.scores)
    after = None if on_epoch is None else (lambda curve: on_epoch(
        list(curve), Checkpoint(path=str(run.snapshot()), meta={"epoch": run.epoch})))
    knee = train_to_knee(run.train_epoch, scores, KneeRule.from_config(cfg.knee, session.chance).decide, after)
    result = StateResult(curve=scores, knee=knee, checkpoint=run.keep(knee.epoch), cost=run.cost)
    if session.dist.is_main:
        done.write_text(json.dumps(result.to_dict(), indent=2))
    return result

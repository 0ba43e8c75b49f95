"""Replay a fixed multi-stage schedule from scratch (a planned path, or a hand-tuned baseline).

Each stage trains its state for its epochs with a fresh optimiser, the learning rate of every
epoch given by the stage's ``lr_schedule``; the model carries over from stage to stage. Every
epoch trains in :class:`~optplan.train.epoch.EpochTrainer`, as the search's do. Epochs
are seeded as in :class:`~optplan.train.run.StateRun` (by state name and epoch in the state),
so replaying a planned path with constant learning rates rebuilds the planned model. With
``train.average_last`` the final model may be the average of the models ending the schedule's
last epochs (:mod:`optplan.train.average`). The run directory holds ``last.pt`` (resume point
after each epoch), ``final.pt`` (the model at the end; with averaging, ``last_epoch.pt`` is the
model its last epoch left), ``log.jsonl``/``log.txt``/``tb/`` and ``result.json`` (per-stage
curves and cost).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from optplan.config import OptplanConfig
from optplan.errors import OptplanError
from optplan.records_io import JsonRecord
from optplan.train.average import WeightAverage, averaged_epochs
from optplan.train.cost import Cost
from optplan.train.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint, set_rng_state
from optplan.train.distributed import barrier
from optplan.train.engine import EpochStats, Scores
from optplan.train.epoch import EpochTrainer
from optplan.train.logging import RunLogger
from optplan.train.schedule import SHORTFALL, Schedule, load_schedule
from optplan.train.scoring import scoring_clip
from optplan.state import State
from optplan.train.session import TrainSession

StageCallback = Callable[[int, int, list[list[float]]], None]
"""Called after every saved epoch with (stage index, epoch in stage, curves so far)."""


@dataclass
class ScheduleResult(JsonRecord):
    """Per-stage validation curves (``curves[i][0]``: score entering stage i), the final model
    and the cost; its JSON also carries the final score. ``shortfall``: how far the final
    score ended below the search's run of the same schedule (:meth:`Schedule.shortfall`; None
    for a schedule no search ran). ``averaged``: the validation score of the average of the
    ``averaged_epochs`` last models (``train.average_last``; None without averaging), which is
    the final model when it scores at least as well as the last epoch's (``averaged_kept``);
    ``last_epoch_checkpoint`` then keeps the model as the last epoch left it, for comparison."""

    curves: list[list[float]]
    checkpoint: Path
    cost: Cost = field(default_factory=Cost)
    shortfall: float | None = None
    averaged: float | None = None
    averaged_epochs: int = 0
    last_epoch_checkpoint: Path | None = None

    json_keys = ("curves", "final_score", "checkpoint", "cost", "shortfall", "averaged", "averaged_epochs",
                 "averaged_kept", "last_epoch_checkpoint")

    @property
    def last_epoch_score(self) -> float:
        return next((c[-1] for c in reversed(self.curves) if c), math.nan)

    @property
    def averaged_kept(self) -> bool:
        """Whether the final model is the average: it validated at least as well as the last
        epoch's model (an average over a stage still rising lags behind its end)."""
        return self.averaged is not None and self.averaged >= self.last_epoch_score

    @property
    def final_score(self) -> float:
        return self.averaged if self.averaged_kept else self.last_epoch_score

    @property
    def fell_short(self) -> bool:
        """Whether the replay ended :data:`SHORTFALL` or more below the search's run: a run that
        stalled, which one training run is one draw of (the search's own model is the other)."""
        return self.shortfall is not None and self.shortfall >= SHORTFALL


def train_schedule(schedule: dict | str | Path | Schedule, cfg: OptplanConfig, run_dir: str | Path, *,
                   session: TrainSession | None = None,
                   on_epoch: StageCallback | None = None) -> ScheduleResult:
    """Train ``schedule`` from scratch into ``run_dir`` (resuming from ``last.pt`` when there).

    Stages of 0 epochs are skipped. A diverged epoch (non-finite loss) ends the replay early
    with its NaN score on the curve (and averages nothing). Epochs are scored as
    ``cfg.knee.score_clip`` says, the schedule's stages being the state space. Returns the curves, ``final.pt``, the cost and,
    for a planned schedule, how far it ended below the search's run of it.
    """
    schedule = load_schedule(schedule)
    run_dir = Path(run_dir)
    done = run_dir / "result.json"
    if done.is_file():
        return ScheduleResult.from_dict(json.loads(done.read_text()))
    session = session.serves(cfg) if session is not None else TrainSession(cfg)
    main = session.dist.is_main
    last = run_dir / "last.pt"
    snap = load_checkpoint(last, session.device) if last.is_file() else None
    # what trains must match; ``search_run`` only says what an earlier run of it reached
    if snap is not None and (snap["meta"].get("schedule") or {}).get("stages") != schedule.to_dict()["stages"]:
        raise OptplanError(f"{last} belongs to another schedule; choose another output directory")
    if snap is not None and snap["meta"].get("score_clip") != cfg.knee.score_clip:
        raise OptplanError(f"{last} was scored with knee.score_clip={snap['meta'].get('score_clip')}, not "
                           f"{cfg.knee.score_clip}; choose another output directory")
    if snap is not None and snap["meta"].get("average_last", 0.0) != cfg.train.average_last:
        raise OptplanError(f"{last} averages train.average_last={snap['meta'].get('average_last', 0.0)} of its "
                           f"epochs, not {cfg.train.average_last}; choose another output directory")
    model = session.new_model()
    curves: list[list[float]] = [[] for _ in schedule.stages]
    cost, start_stage, start_epoch = Cost(), 0, 0
    # the schedule's epochs from this one on end in the average (past every epoch: none do)
    last_stage = next(s for s in reversed(schedule.stages) if s.epochs)
    averaging = averaged_epochs(schedule.epochs, cfg.train.average_last, last_stage.epochs)
    average, first_averaged = WeightAverage(), schedule.epochs - averaging
    if snap is not None:
        model.load_state_dict(snap["model"])
        meta = snap["meta"]
        curves, cost = [list(c) for c in meta["curves"]], Cost.from_dict(meta["cost"])
        start_stage, start_epoch = meta["stage"], snap["epoch"]
        average = WeightAverage.from_dict(meta.get("average"))
    logger = RunLogger(run_dir, tensorboard=cfg.train.tensorboard, enabled=main)
    diverged = False
    first_trained = next(i for i, s in enumerate(schedule.stages) if s.epochs)  # from scratch
    for i, stage in enumerate(schedule.stages):
        if i < start_stage or stage.epochs == 0 or diverged:
            continue
        state = stage.state
        clip = scoring_clip(state, cfg.knee.score_clip, [s.state for s in schedule.stages])
        optimizer, net = session.prepare(model, state)
        scaler = session.scaler()
        first = start_epoch if i == start_stage else 0
        if first:  # resuming inside this stage
            optimizer.load_state_dict(snap["optimizer"])
            set_rng_state(snap["rng"])
        if not curves[i]:
            curves[i] = [_previous_score(curves, i)]
        trainer = EpochTrainer(session, state, net, optimizer, clip, cost, logger, "schedule", scaler)
        for epoch in range(first, stage.epochs):
            lr = stage.lr(epoch, curves[i], cfg.train.warmup_epochs if i == first_trained else 0)

            def save(scores: Scores, _stats: EpochStats) -> None:  # the resume point after this epoch
                curves[i].append(scores.score)
                if cost.epochs > first_averaged:  # (the epoch is counted already)
                    average.add(model)
                if main:
                    meta = {"schedule": schedule.to_dict(), "stage": i, "curves": curves,
                            "cost": cost.to_dict(), "score_clip": cfg.knee.score_clip,
                            "average_last": cfg.train.average_last, "average": average.to_dict()}
                    save_checkpoint(last, make_checkpoint(model, optimizer=optimizer, state=state.to_dict(),
                                                          epoch=epoch + 1, config=cfg.model_dump(mode="json"),
                                                          meta=meta))
                barrier()

            scores = trainer.train(epoch + 1, lr, save=save, where={"stage": i, "epoch": epoch + 1}, totals=True,
                                   desc=f"stage {i + 1}/{len(schedule.stages)} epoch {epoch + 1}",
                                   share=stage.share(epoch))
            if on_epoch is not None:
                on_epoch(i, epoch + 1, curves)
            if not math.isfinite(scores.score):
                diverged = True
                break
    final, averaged, last_epoch, last_state = run_dir / "final.pt", None, None, last_stage.state
    if average.count and not diverged:
        last_epoch = run_dir / "last_epoch.pt"
        if main:
            save_checkpoint(last_epoch, make_checkpoint(model, state=last_state.to_dict(), epoch=cost.epochs,
                                                        config=cfg.model_dump(mode="json"), classes=session.classes))
        barrier()
        ended = {k: v.clone() for k, v in model.state_dict().items()}
        averaged = _averaged_score(session, model, average, schedule, last_state, cost, cfg)
    result = ScheduleResult(curves=curves, checkpoint=final, cost=cost, averaged=averaged,
                            averaged_epochs=average.count if averaged is not None else 0,
                            last_epoch_checkpoint=last_epoch)
    if averaged is not None:
        if not result.averaged_kept:
            model.load_state_dict(ended)
        logger.log({"averaged_epochs": average.count, "averaged_score": averaged,
                    "averaged_kept": result.averaged_kept, "gflops": cost.gflops},
                   step=cost.epochs, prefix="schedule/")
    logger.close()
    result.shortfall = schedule.shortfall(result.final_score, session.metric)
    if main:
        save_checkpoint(final, make_checkpoint(model, state=last_state.to_dict(), epoch=cost.epochs,
                                               config=cfg.model_dump(mode="json"), classes=session.classes,
                                               meta={"schedule": schedule.to_dict(), "curves": curves}))
        done.write_text(json.dumps(result.to_dict(), indent=2))
        last.unlink(missing_ok=True)
    barrier()
    return result


def _averaged_score(session: TrainSession, model, average: WeightAverage, schedule: Schedule, state: State,
                    cost: Cost, cfg: OptplanConfig) -> float:
    """Load the average into ``model``, measure its BatchNorm statistics in ``state`` (the last
    trained stage's) and return its validation score (on that stage's scoring clip)."""
    states = [s.state for s in schedule.stages]
    average.apply(model)
    _, net = session.prepare(model, state)
    session.refresh_batchnorm(net, state, cost)
    return session.score(net, scoring_clip(state, cfg.knee.score_clip, states)).score


def _previous_score(curves: list[list[float]], i: int) -> float:
    """The score a stage starts from: the last score of the stage before (0.0 at the start)."""
    return next((c[-1] for c in reversed(curves[:i]) if c), 0.0)

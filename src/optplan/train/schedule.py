"""Multi-stage schedules: what the planner outputs and what hand-tuned baselines are.

A schedule is YAML/JSON ``{"stages": [{"state": {State fields}, "epochs": int}, ...]}`` - per
stage the training state and how many epochs to train in it, from scratch, with a fresh
optimiser at every stage (as the paper replays a planned path). A stage may also carry an
``lr_schedule`` that varies the learning rate inside the stage, which is how the usual
hand-tuned baselines are written:

- ``{"kind": "constant"}`` (default): ``state.lr`` throughout (the paper's states).
- ``{"kind": "cosine", "final": 0.0}``: cosine from ``state.lr`` down to ``final * state.lr``.
- ``{"kind": "step", "milestones": [30, 60], "gamma": 0.1}``: times ``gamma`` at each milestone
  (epochs counted inside the stage).
- ``{"kind": "plateau", "factor": 0.1, "patience": 5, "threshold": 1e-4, "min_lr": 0.0}``: as
  ``torch.optim.lr_scheduler.ReduceLROnPlateau`` on the validation score (mode "max").
- ``{"kind": "linear", "start": 1.0, "final": 0.0}``: linear from ``start * state.lr`` towards
  ``final * state.lr`` over the stage (1 to 0: the budget-aware schedule of Li, Yumer and
  Ramanan, ICLR 2020). :func:`anneal` writes a planned path this way (``plan.replay_lr``).

A stage may end on a part of an epoch: ``last_epoch_share`` (default 1) trains that share of its
last epoch's batches, so that a schedule spends a GFLOPs budget exactly.

A planned schedule also says what the search's own run of it reached (``search_run``: its last
validation score, the metric, the model), so that a replay can tell when it fell far behind the
run it repeats (:data:`SHORTFALL`).

Every rule takes ``warmup`` (epochs, default 0): the learning rate of warm-up epoch ``i`` is
``(i + 1) / (warmup + 1)`` of what the rule gives, as the usual linear warm-up, per epoch.

Every rule is a pure function of the epoch and the scores seen so far in the stage, so a resumed
run recomputes the same learning rate without any scheduler state in its checkpoint.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from optplan.config import format_validation_error
from optplan.errors import ConfigError
from optplan.state import State


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup: int = Field(0, ge=0, description="Epochs of linear warm-up at the start of the stage.")

    def warm(self, epoch: int, at_least: int = 0) -> float:
        """The warm-up factor of ``epoch`` (0-based in the stage) with ``max(warmup, at_least)``
        warm-up epochs."""
        return warm_factor(epoch, max(self.warmup, at_least))


def warm_factor(epoch: int, warmup: int) -> float:
    """Linear warm-up: epoch ``i`` (0-based) of ``warmup`` trains at ``(i + 1) / (warmup + 1)``."""
    return (epoch + 1) / (warmup + 1) if epoch < warmup else 1.0


class Constant(_Rule):
    kind: Literal["constant"] = "constant"

    def factor(self, epoch: int, epochs: int, scores: Sequence[float]) -> float:
        return 1.0


class Cosine(_Rule):
    kind: Literal["cosine"]
    final: float = Field(0.0, ge=0.0, le=1.0, description="Last lr as a fraction of state.lr.")

    def factor(self, epoch: int, epochs: int, scores: Sequence[float]) -> float:
        progress = epoch / max(epochs, 1)
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * progress))


class Linear(_Rule):
    kind: Literal["linear"]
    start: float = Field(1.0, ge=0.0, description="Lr of the stage's first epoch, as a fraction of state.lr.")
    final: float = Field(0.0, ge=0.0, description="Lr the decay heads for at the stage's end, "
                                                  "as a fraction of state.lr.")

    def factor(self, epoch: int, epochs: int, scores: Sequence[float]) -> float:
        return self.start + (self.final - self.start) * epoch / max(epochs, 1)


class Step(_Rule):
    kind: Literal["step"]
    milestones: list[int] = Field(min_length=1, description="Epochs (in the stage) where lr drops.")
    gamma: float = Field(0.1, gt=0.0, le=1.0)

    def factor(self, epoch: int, epochs: int, scores: Sequence[float]) -> float:
        return self.gamma ** sum(epoch >= m for m in self.milestones)


class Plateau(_Rule):
    kind: Literal["plateau"]
    factor_: float = Field(0.1, gt=0.0, lt=1.0, alias="factor")
    patience: int = Field(5, ge=0, description="Epochs without improvement before a drop.")
    threshold: float = Field(1e-4, ge=0.0, description="Relative improvement that counts.")
    min_lr: float = Field(0.0, ge=0.0, description="Floor of the learning rate (absolute).")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def factor(self, epoch: int, epochs: int, scores: Sequence[float]) -> float:
        """Replay ReduceLROnPlateau(mode='max', threshold_mode='rel', cooldown=0) over the
        scores after each finished epoch of the stage (``scores[0]`` is the stage's start)."""
        best, bad, factor = -math.inf, 0, 1.0
        for score in scores[1: epoch + 1]:
            if score > best * (1 + self.threshold):  # -inf * x stays -inf: the first counts
                best, bad = score, 0
            else:
                bad += 1
            if bad > self.patience:
                factor *= self.factor_
                bad = 0
        return factor


LRSchedule = Annotated[Union[Constant, Cosine, Linear, Step, Plateau], Field(discriminator="kind")]


class Stage(BaseModel):
    """One stage of a schedule: a state, its epochs and how lr varies inside it.

    The planner's chosen path is a list of these too (with the default constant lr).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: State
    epochs: int = Field(ge=0, description="Epochs to train in this state (0: skipped).")
    lr_schedule: LRSchedule = Field(default_factory=Constant)
    last_epoch_share: float = Field(1.0, gt=0.0, le=1.0, description=(
        "Share of the last epoch's batches that trains (1: the whole epoch); lets a schedule "
        "spend a GFLOPs budget exactly, as the benchmark's hand-tuned rows do."))

    def share(self, epoch: int) -> float:
        """Share of epoch ``epoch`` (0-based in the stage) that trains."""
        return self.last_epoch_share if epoch == self.epochs - 1 else 1.0

    def lr(self, epoch: int, scores: Sequence[float] = (), warmup_at_least: int = 0) -> float:
        """Learning rate of epoch ``epoch`` (0-based in the stage) given the stage's curve so
        far, warmed up over at least ``warmup_at_least`` epochs (a first stage from scratch:
        ``train.warmup_epochs``); never below the plateau rule's ``min_lr``."""
        rule = self.lr_schedule
        lr = self.state.lr * rule.factor(epoch, self.epochs, scores) * rule.warm(epoch, warmup_at_least)
        if isinstance(rule, Plateau):
            lr = max(lr, rule.min_lr)
        return lr

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; the default constant lr is left out, so a planned stage reads
        ``{state, epochs}`` as it always has (and a whole last epoch leaves out its share)."""
        data = self.model_dump(mode="json", by_alias=True)
        if self.lr_schedule == Constant():
            del data["lr_schedule"]
        if self.last_epoch_share == 1.0:
            del data["last_epoch_share"]
        return data


SHORTFALL = 0.1
"""How far (in the score's own units) a replay may end below the search's run of the same
schedule before it is reported. On a GPU, whose kernels are not deterministic, the same
schedule trained twice ended 2-3 points apart on average and up to ~10 (bench/RESULTS.md); a
replay 0.1 or more below is a run that stalled, not noise. On one CPU thread the two agree
exactly."""


class SearchRun(BaseModel):
    """What the search's own run of a planned schedule reached (``optplan plan`` writes it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: float = Field(description="validation score at the run's last epoch (the plan's final model)")
    metric: str = Field(description="what the score measures (knee.metric, resolved)")
    model: str | None = Field(None, description="the search's final model, a file the replay can fall back on")


class Schedule(BaseModel):
    """An ordered list of stages, replayed from scratch by :func:`optplan.train.train_schedule`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: list[Stage] = Field(min_length=1)
    search_run: SearchRun | None = Field(None, description=(
        "What the search's run of this schedule reached (a planned path's schedule.yaml); a "
        "replay ending SHORTFALL or more below it is reported."))

    @model_validator(mode="after")
    def _trains(self) -> "Schedule":
        if self.epochs == 0:
            raise ValueError("every stage has 0 epochs; a schedule must train at least one epoch")
        return self

    @property
    def epochs(self) -> int:
        return sum(s.epochs for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; a schedule no search ran leaves ``search_run`` out."""
        data = self.model_dump(mode="json", by_alias=True)
        if self.search_run is None:
            del data["search_run"]
        return data

    def shortfall(self, score: float, metric: str) -> float | None:
        """How far ``score`` (a replay's last validation score, measuring ``metric``) ended
        below the search's run; None when no search ran it or it measured something else. A
        diverged replay (NaN) fell the whole way."""
        run = self.search_run
        if run is None or run.metric != metric:
            return None
        return run.score - (score if math.isfinite(score) else 0.0)


ANNEAL_SHAPES = ("linear", "budget")
"""How :func:`anneal` smooths a planned path (``plan.replay_lr`` besides 'constant')."""


def anneal(stages: Sequence[Stage], shape: str = "linear") -> list[Stage]:
    """A planned path with its learning rate decaying linearly instead of in steps.

    The planner measures states at constant learning rates, which makes its replay a step
    schedule; on a fixed budget a linear decay to zero beat step decay at the same clip on the
    benchmark's appearance regime (bench/RESULTS.md). Both shapes keep the plan's clips and epochs, so the replay spends the
    same GFLOPs:

    - ``linear``: inside every stage from the stage's own lr towards the next trained stage's
      (held where that one is higher), towards zero in the last; the plan's lr levels stay.
    - ``budget``: one decay from the first stage's lr to zero over the whole replay, epoch by
      epoch across the stages (the budget-aware schedule of Li, Yumer and Ramanan on the
      planned clips and epochs); the planned lr levels then only decided the epochs.

    Stages with an lr_schedule of their own, and 0-epoch stages, are kept as they are."""
    if shape not in ANNEAL_SHAPES:
        raise ValueError(f"unknown anneal shape {shape!r}; choose from {ANNEAL_SHAPES}")
    trained = [i for i, s in enumerate(stages) if s.epochs > 0]
    out, total, before = list(stages), sum(s.epochs for s in stages), 0
    top = stages[trained[0]].state.lr if trained else 0.0
    for k, i in enumerate(trained):
        stage, lr = stages[i], stages[i].state.lr
        if stage.lr_schedule == Constant() and lr > 0:
            if shape == "budget":  # from top * (1 - before / total) down to top * (1 - after / total)
                rule = Linear(kind="linear", start=top * (1 - before / total) / lr,
                              final=top * (1 - (before + stage.epochs) / total) / lr)
            else:
                after = stages[trained[k + 1]].state.lr if k + 1 < len(trained) else 0.0
                rule = Linear(kind="linear", final=min(1.0, after / lr))
            out[i] = stage.model_copy(update={"lr_schedule": rule})
        before += stage.epochs
    return out


def load_schedule(source: dict[str, Any] | str | Path | Schedule) -> Schedule:
    """A :class:`Schedule` from a dict or a YAML/JSON file; mistakes raise ConfigError naming
    the file and the field."""
    if isinstance(source, Schedule):
        return source
    where = "schedule"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"schedule file {str(path)!r} does not exist")
        try:
            source = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"schedule file {str(path)!r} is not valid YAML: {err}") from None
        where = f"schedule {str(path)!r}"
    if not isinstance(source, dict):
        raise ConfigError(f"{where} must be a mapping with a 'stages' list, "
                          f"e.g. stages: [{{state: {{name: s1, lr: 0.1, clip_length: 8}}, epochs: 10}}]")
    try:
        return Schedule.model_validate(source)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None


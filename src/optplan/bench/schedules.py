"""Hand-tuned schedules at a training budget in GFLOPs (the rows people write by hand).

Each builder takes the config (its plan section's clip settings: clip length, frame step, batch,
accumulation, base lr), the budget and ``epoch_gflops(state)`` (what one epoch of a state
costs), and turns the budget into epochs whose last one may be partial
(``Stage.last_epoch_share``), so that every row trains what the planned replay trains, to
within one optimiser step (whole epochs missed small budgets by up to 13%).

- ``cosine``: one clip setting, cosine to zero after a 1-epoch linear warm-up;
- ``step``: one clip setting, lr x0.1 at 50% and 75% of the epochs;
- ``plateau``: one clip setting, ReduceLROnPlateau on the validation score;
- ``linear``: one clip setting, linear decay to zero (budget-aware training);
- ``short_long``: the usual short-then-long practice: half the budget at the shortest clip and
  the base lr, a quarter at the middle clip at x0.1, a quarter at the longest at x0.01;
- ``multigrid``: PySlowFast's long cycle: the three lr phases of ``step`` (50/25/25% of the
  budget), each cycling the clip settings shortest to longest with equal GFLOPs, the effective
  batch scaled so that clip x batch stays at the middle setting's.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from optplan.bench.config import SINGLE_CLIP
from optplan.config import OptplanConfig
from optplan.train.schedule import Cosine, Linear, Plateau, Schedule, Stage, Step
from optplan.state import State

EpochGflops = Callable[[State], float]
PHASES = ((0.5, 1.0), (0.25, 0.1), (0.25, 0.01))  # (share of the budget, lr multiplier)


def clip_state(cfg: OptplanConfig, i: int, name: str, *, lr: float | None = None,
               accumulation: int | None = None) -> State:
    """Clip setting ``i`` of the plan section as a State (BatchNorm training) at ``lr``
    (default: the setting's base lr)."""
    p = cfg.plan
    uniform = p.sampling == "uniform"
    return State(name=name, lr=p.base_lrs[i] if lr is None else lr, clip_length=p.clip_lengths[i],
                 sampling="uniform" if uniform else "consecutive",
                 frame_step=(p.frame_steps or [1] * len(p.clip_lengths))[i], batch_size=p.batch_sizes[i],
                 frames_per_segment=p.frames_per_segment[i] if p.frames_per_segment and uniform else None,
                 accumulation=p.accumulation[i] if accumulation is None else accumulation)


def fit_budget(gflops: float, state: State, epoch_gflops: EpochGflops) -> tuple[int, float]:
    """``(epochs, last_epoch_share)`` of ``state`` that spend ``gflops``: whole epochs and a
    share of one more (at least some of one epoch)."""
    epochs = gflops / epoch_gflops(state)
    whole = max(1, math.ceil(epochs - 1e-9))
    return whole, min(1.0, max(epochs - (whole - 1), 1e-3))


def budget_stage(gflops: float, state: State, epoch_gflops: EpochGflops, **rule: Any) -> Stage:
    """A stage of ``state`` that spends ``gflops`` (``rule``: its ``lr_schedule``, if any)."""
    epochs, share = fit_budget(gflops, state, epoch_gflops)
    return Stage(state=state, epochs=epochs, last_epoch_share=share, **rule)


def single_clip(kind: str, cfg: OptplanConfig, i: int, budget: float, epoch_gflops: EpochGflops,
                lr_scale: float = 1.0) -> Schedule:
    """``kind`` (one of :data:`SINGLE_CLIP`) on clip setting ``i`` for ``budget`` GFLOPs, its
    peak lr ``lr_scale`` times the setting's base lr."""
    name = f"{kind}_c{cfg.plan.clip_lengths[i]}" + (f"_x{lr_scale:g}" if lr_scale != 1.0 else "")
    state = clip_state(cfg, i, name, lr=cfg.plan.base_lrs[i] * lr_scale)
    epochs, _ = fit_budget(budget, state, epoch_gflops)
    if kind == "cosine":
        rule = Cosine(kind="cosine", final=0.0, warmup=1 if epochs > 2 else 0)
    elif kind == "step":
        rule = Step(kind="step", milestones=[max(1, round(epochs * 0.5)), max(1, round(epochs * 0.75))], gamma=0.1)
    elif kind == "plateau":
        rule = Plateau(kind="plateau", factor=0.1, patience=max(1, epochs // 10),
                       min_lr=state.lr * min(cfg.plan.lr_multipliers))
    elif kind == "linear":
        rule = Linear(kind="linear")
    else:
        raise ValueError(f"unknown single-clip schedule {kind!r}; choose from {SINGLE_CLIP}")
    return Schedule(stages=[budget_stage(budget, state, epoch_gflops, lr_schedule=rule)])


def short_long(cfg: OptplanConfig, budget: float, epoch_gflops: EpochGflops) -> Schedule:
    """Shortest clip at x1, middle at x0.1, longest at x0.01 (50/25/25% of the budget)."""
    n = len(cfg.plan.clip_lengths)
    stages = []
    for k, (i, (share, mult)) in enumerate(zip((0, n // 2, n - 1), PHASES)):
        state = clip_state(cfg, i, f"sl{k}", lr=cfg.plan.base_lrs[i] * mult)
        stages.append(budget_stage(share * budget, state, epoch_gflops))
    return Schedule(stages=stages)


def multigrid(cfg: OptplanConfig, budget: float, epoch_gflops: EpochGflops) -> Schedule:
    """PySlowFast's long cycle inside the three step-decay phases (see the module docstring)."""
    n = len(cfg.plan.clip_lengths)
    acc = cfg.plan.accumulation[n // 2]
    return Schedule(stages=[
        budget_stage(share * budget / n, clip_state(cfg, i, f"mg{p}c{i}", lr=cfg.plan.base_lrs[i] * mult,
                                                    accumulation=acc), epoch_gflops)
        for p, (share, mult) in enumerate(PHASES) for i in range(n)])


def schedule_gflops(schedule: Schedule, epoch_gflops: EpochGflops) -> float:
    """Training GFLOPs of replaying ``schedule`` from scratch (up to the rounding of a partial
    last epoch to whole optimiser steps)."""
    return sum((s.epochs - 1 + s.last_epoch_share) * epoch_gflops(s.state) for s in schedule.stages if s.epochs)

"""What each benchmark row trains and measures, for one regime and seed.

A row name is a kind from :data:`~optplan.bench.config.ROW_KINDS`, a single-clip kind with its
clip (``cosine@16``) and perhaps an lr multiplier (``cosine@16x0.3``), or a planner variant
(``planned:top1``); :func:`~optplan.bench.config.parse_row` reads them. Every row ends in a test of its
final model on the test split (multi-view) and a dict: ``top1``, ``top5``, ``train_gflops``
(what its model's own training cost), ``search_gflops`` (what finding it cost beyond that),
``wall_seconds``, ``within_budget`` and whatever describes the row (schedule, lineage).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optplan.bench.config import SEARCH_FACTOR, SEARCHER_KINDS, SINGLE_CLIP, parse_row
from optplan.bench.schedules import multigrid, short_long, single_clip
from optplan.errors import OptplanError

LABELS = {
    "planned": "optplan: planned path, replayed from scratch",
    "search_model": "optplan: the search's own final model",
    "cosine": "single clip {clip}, cosine + 1-epoch warm-up",
    "step": "single clip {clip}, step decay",
    "plateau": "single clip {clip}, ReduceLROnPlateau",
    "linear": "single clip {clip}, linear decay to 0",
    "short_long": "short-then-long clips, step decay",
    "multigrid": "multigrid long cycle (PySlowFast)",
    "pbt": "PBT (Ray Tune) at search GFLOPs",
    "asha": "ASHA (Ray Tune) at search GFLOPs",
    "random": "random search over whole schedules at search GFLOPs",
    "random_x3": "random search over whole schedules at 3x search GFLOPs",
}


def row_label(name: str) -> str:
    """A readable label of a row name."""
    kind, clip, scale = parse_row(name)
    if kind.startswith("planned:"):
        return f"optplan variant '{kind.split(':', 1)[1]}': planned path, replayed"
    return LABELS[kind].format(clip=f"{clip}" + (f" at lr x{scale:g}" if scale is not None else ""))


def expand_rows(kinds: list[str], variants: dict[str, list[str]], clips: list[int]) -> list[str]:
    """Row names in run order: planner rows first (every other budget comes from them)."""
    names = ["planned"] + [f"planned:{v}" for v in variants]
    for kind in kinds:
        if kind == "planned":
            continue
        clip = parse_row(kind)[1]
        if clip is not None and clip not in clips:
            raise OptplanError(f"row {kind!r}: the plan has no clip setting of {clip} "
                               f"frames (plan.clip_lengths = {clips})")
        names += [f"{kind}@{c}" for c in clips] if kind in SINGLE_CLIP else [kind]  # KIND@CLIP: as is
    return names


@dataclass
class RowContext:
    """What every row of one (regime, seed) shares."""

    cfg: Any  # OptplanConfig
    session: Any  # TrainSession
    work: Path
    seed: int
    bench: Any  # BenchConfig
    plan: Any = None  # the planned row's PlanResult, once it ran

    @property
    def budget(self) -> float:
        """The planned replay's training GFLOPs: every hand-tuned row's budget."""
        return self.plan.replay_gflops

    @property
    def search_budget(self) -> float:
        """The planner's search GFLOPs: every peer searcher's budget."""
        return self.plan.search_gflops

    def within(self, gflops: float, budget: float) -> bool:
        return abs(gflops / budget - 1.0) <= self.bench.budget_tolerance


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _test(ctx: RowContext, checkpoint: Path) -> dict[str, Any]:
    from optplan.train.multiview import evaluate

    result = evaluate(ctx.cfg, checkpoint, split="test", session=ctx.session)
    return {"top1": result["top1"], "top5": result["top5"], "test_videos": result["videos"],
            "test_gflops": result["gflops"]}


def run_row(name: str, ctx: RowContext) -> dict[str, Any]:
    """Train and test row ``name``; returns its result dict (see the module docstring)."""
    tic, load = time.perf_counter(), _load()
    kind = parse_row(name)[0]
    if kind == "planned" or kind.startswith("planned:"):
        row = _planned(name, ctx)
    elif kind == "search_model":
        row = _search_model(ctx)
    elif kind in SEARCHER_KINDS:
        row = _searcher(kind, ctx)
    else:
        row = _hand_tuned(name, ctx)
    row.update(name=name, wall_seconds=time.perf_counter() - tic, load=[load, _load()])
    return row


def _replay(ctx: RowContext, schedule, run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from optplan.train.replay import train_schedule

    result = train_schedule(schedule, ctx.cfg, run_dir, session=ctx.session)
    averaged = {} if result.averaged is None else {  # with averaging: the average, and the last epoch's model
        "average_last": ctx.cfg.train.average_last, "averaged_epochs": result.averaged_epochs,
        "averaged_val": result.averaged, "averaged_kept": result.averaged_kept,
        "last_epoch_val": result.last_epoch_score, "last_epoch_top1": _test(ctx, result.last_epoch_checkpoint)["top1"]}
    return result, {**_test(ctx, result.checkpoint), "train_gflops": result.cost.gflops,
                    "epochs": result.cost.epochs, "val_score": result.final_score, **averaged}


def _planned(name: str, ctx: RowContext) -> dict[str, Any]:
    from optplan.config import apply_overrides, validate
    from optplan.plan.runner import result_config, run_plan
    from optplan.train.schedule import load_schedule
    from optplan.train.session import TrainSession

    variant = name.partition(":")[2]
    cfg, session = ctx.cfg, ctx.session
    if variant:
        cfg = validate(apply_overrides(cfg.model_dump(mode="json"), list(ctx.bench.variants[variant])),
                       source=f"bench variant {variant!r}")
        try:
            session = session.serves(cfg)
        except ValueError:  # the variant changes data, model, train or the metric: its own session
            session = TrainSession(cfg)
    plan_dir = ctx.work / name.replace(":", "_") / "plan"
    if variant and ctx.plan is not None and not plan_dir.exists() and result_config(cfg) == result_config(ctx.cfg):
        # the variant searches exactly as the planner row did (it changes how the path is
        # replayed, plan.replay_lr): start from a copy of that finished search, spend nothing
        shutil.copytree(ctx.plan.run_dir, plan_dir)
    tic = time.perf_counter()
    plan = run_plan(cfg, plan_dir, progress=False)
    search_seconds = time.perf_counter() - tic
    if not variant:
        ctx.plan = plan
    draw = ctx.bench.replay_draw
    if draw:  # an independent run of the schedule: the same split, other training randomness
        cfg = validate(apply_overrides(cfg.model_dump(mode="json"), [f"train.draw={draw}"]),
                       source="bench replay_draw")
        session = TrainSession(cfg)
    sub = RowContext(cfg, session, ctx.work, ctx.seed, ctx.bench, plan)
    replay_dir = ctx.work / name.replace(":", "_") / ("replay" if not draw else f"replay-draw{draw}")
    replay, row = _replay(sub, load_schedule(plan.schedule), replay_dir)
    return {**row, "replay_draw": draw, "replay_shortfall": replay.shortfall,
            "search_gflops": plan.search_gflops, "search_seconds": search_seconds,
            "search_epochs": plan.search_epochs, "replay_gflops": plan.replay_gflops,
            "plan_score": plan.score, "knee_metric": plan.knee_metric,
            "nodes": plan.nodes, "schedule": plan.schedule,
            "within_budget": variant == "" or ctx.within(row["train_gflops"], ctx.budget),
            "caps": sum(e.knee is not None and e.knee.stop == "max_epochs" for e in plan.edges),
            "edges": sum(e.epochs > 0 for e in plan.edges),
            "dropped": sum(e.status == "dropped" for e in plan.edges)}


def _search_model(ctx: RowContext) -> dict[str, Any]:
    plan = ctx.plan
    return {**_test(ctx, plan.model_path), "train_gflops": plan.replay_gflops,
            "search_gflops": plan.search_gflops, "val_score": plan.score, "within_budget": True}


def _hand_tuned(name: str, ctx: RowContext) -> dict[str, Any]:
    cfg, cost = ctx.cfg, ctx.session.epoch_gflops
    kind, clip, scale = parse_row(name)
    if kind in SINGLE_CLIP:
        schedule = single_clip(kind, cfg, cfg.plan.clip_lengths.index(clip), ctx.budget, cost,
                               1.0 if scale is None else scale)
    elif kind == "short_long":
        schedule = short_long(cfg, ctx.budget, cost)
    elif kind == "multigrid":
        schedule = multigrid(cfg, ctx.budget, cost)
    else:
        raise ValueError(f"unknown row kind {kind!r}")
    _, row = _replay(ctx, schedule, ctx.work / kind / (name.partition("@")[2] or "run"))
    return {**row, "search_gflops": 0.0, "schedule": schedule.to_dict(),
            "within_budget": ctx.within(row["train_gflops"], ctx.budget)}


def _searcher(kind: str, ctx: RowContext) -> dict[str, Any]:
    from optplan.bench.search import random_search, tune_search
    from optplan.plan.graph import StateGraph

    work = ctx.work / kind
    work.mkdir(parents=True, exist_ok=True)
    spec = ctx.bench.search
    factor = SEARCH_FACTOR.get(kind, 1.0)
    if kind.startswith("random"):
        out = random_search(ctx.cfg, StateGraph.from_config(ctx.cfg.plan), work, ctx.session,
                            budget=ctx.budget, search_budget=factor * ctx.search_budget, seed=ctx.seed,
                            max_schedules=round(factor * spec.random_max_schedules))
    else:
        out = tune_search(kind, ctx.cfg, work, budget=ctx.budget, search_budget=ctx.search_budget,
                          seed=ctx.seed, spec=spec)
    return {**_test(ctx, out.checkpoint), "train_gflops": out.train_gflops, "search_gflops": out.search_gflops,
            "val_score": out.val_score, "detail": out.detail, "search_factor": factor,
            "within_budget": ctx.within(out.search_gflops, factor * ctx.search_budget)}

"""Peer searchers at the planner's search budget in GFLOPs: PBT and ASHA (Ray Tune), and random
search over whole schedules of the planner's own state graph.

Every searcher spends (about) the GFLOPs the plan spent, then its best model by validation
score is tested like every other row. Ray trials train with optplan's own
:class:`~optplan.train.epoch.EpochTrainer` one epoch per ``tune.report`` (1 thread and no
loader workers each, two trials at a time on two cores) and checkpoint model and optimiser at
every report, so PBT's exploit step copies a real model. Actors are reused across trials, and
each keeps one :class:`~optplan.train.session.TrainSession`, so a trial starts in milliseconds.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optplan.bench.schedules import EpochGflops, budget_stage, clip_state, fit_budget
from optplan.config import OptplanConfig
from optplan.train.schedule import Schedule


@dataclass
class SearchOutcome:
    """The searcher's chosen model and what the search cost."""

    checkpoint: Path
    val_score: float
    train_gflops: float  # of the chosen model's own lineage
    search_gflops: float  # everything the search trained
    detail: dict[str, Any]


# --- random search over whole schedules ------------------------------------------------------

def random_schedule(graph, budget: float, epoch_gflops: EpochGflops, rng: np.random.Generator) -> Schedule:
    """A random start-to-final path of ``graph`` with the budget split at random (Dirichlet(1))
    over its training states (each stage a part of an epoch at least), constant lr per stage (as
    the planner's states are)."""
    paths = list(graph.paths())
    path = paths[int(rng.integers(len(paths)))]
    states = [graph.state(n) for n in path if graph.state(n) is not None]
    shares = rng.dirichlet(np.ones(len(states)))
    return Schedule(stages=[budget_stage(w * budget, s, epoch_gflops) for s, w in zip(states, shares)])


def random_search(cfg: OptplanConfig, graph, work: Path, session, *, budget: float, search_budget: float,
                  seed: int, max_schedules: int) -> SearchOutcome:
    """Split ``search_budget`` into ``round(search_budget / budget)`` (1..``max_schedules``) whole
    random schedules of equal GFLOPs, each trained from scratch; keep the best by final
    validation score.

    Each schedule gets ``search_budget / count``, near the planner's replay ``budget`` (0.75-1.25x
    of it once the search buys two schedules or more), so the search spends the planner's search
    GFLOPs to within an optimiser step per stage; schedules of exactly ``budget`` GFLOPs missed it
    by up to half a schedule (-16% on one benchmark seed)."""
    from optplan.train.replay import train_schedule

    rng = np.random.default_rng([seed, 7])
    count = int(min(max_schedules, max(1, math.floor(search_budget / budget + 0.5))))
    each = search_budget / count
    tried, spent = [], 0.0
    for k in range(count):
        schedule = random_schedule(graph, each, session.epoch_gflops, rng)
        result = train_schedule(schedule, cfg, work / f"schedule{k}", session=session)
        spent += result.cost.gflops
        tried.append((result.final_score, result.checkpoint, result.cost.gflops, schedule))
    finite = [t for t in tried if math.isfinite(t[0])] or tried
    score, checkpoint, gflops, schedule = max(finite, key=lambda t: t[0])
    return SearchOutcome(checkpoint, score, gflops, spent, {
        "schedules": [{"val_score": t[0], "gflops": t[2], "schedule": t[3].to_dict()} for t in tried],
        "chosen": schedule.to_dict(), "schedule_gflops": each})


# --- Ray Tune: PBT and ASHA ------------------------------------------------------------------

def _trainable(config: dict[str, Any], cfg_json: dict[str, Any], budget: float) -> None:
    """One Tune trial: clip setting ``config['clip']`` at ``config['lr']``; constant lr (PBT) or
    cosine over one schedule's budget (``config['cosine']``, ASHA). Reports ``score``, the
    lineage's ``gflops`` and this epoch's ``epoch_gflops`` after every epoch."""
    from ray import tune

    from optplan.data.sampling import ClipSpec
    from optplan.train.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
    from optplan.train.cost import Cost
    from optplan.train.epoch import EpochTrainer
    from optplan.train.session import TrainSession

    cfg = OptplanConfig.model_validate(cfg_json)
    session = TrainSession.shared(cfg)  # a reused actor serves trial after trial
    i = cfg.plan.clip_lengths.index(config["clip"])
    state = clip_state(cfg, i, f"tune_c{config['clip']}", lr=config["lr"])
    model = session.new_model()
    optimizer, net = session.prepare(model, state)
    epoch, gflops, lineage = 0, 0.0, []
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            snap = load_checkpoint(Path(d) / "model.pt", session.device)
        model.load_state_dict(snap["model"])
        if snap["state"]["clip_length"] == state.clip_length:  # same param groups and meaning
            optimizer.load_state_dict(snap["optimizer"])
        epoch, gflops, lineage = snap["epoch"], snap["meta"]["gflops"], snap["meta"]["lineage"]
    epochs, _ = fit_budget(budget, state, session.epoch_gflops)
    # Ray records the trial's metrics (no log); each epoch is charged to a fresh Cost, this epoch's.
    trainer = EpochTrainer(session, state, net, optimizer, ClipSpec.from_state(state), Cost(), None, "tune")
    while True:
        lr = state.lr * (0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs)) if config.get("cosine") else 1.0)
        epoch += 1
        trainer.cost = Cost()
        score = trainer.train(epoch, lr).score
        spent = trainer.cost.gflops
        gflops += spent
        lineage.append([state.clip_length, lr])
        with tempfile.TemporaryDirectory() as d:
            save_checkpoint(Path(d) / "model.pt", make_checkpoint(
                model, optimizer=optimizer, state=state.to_dict(), epoch=epoch, config=cfg_json,
                meta={"gflops": gflops, "lineage": lineage}))
            tune.report({"score": score if math.isfinite(score) else 0.0, "gflops": gflops,
                         "epoch_gflops": spent, "pid": os.getpid(), "nice": os.nice(0)},
                        checkpoint=tune.Checkpoint.from_directory(d))


def _budget_stopper(total: float, per_trial: float | None):
    """A Tune stopper: every epoch's GFLOPs count against ``total`` (stop everything once spent);
    a trial also stops once it alone spent ``per_trial`` (PBT) or its lineage reached it (ASHA's
    schedule end, ``per_trial`` None: the scheduler decides)."""
    from ray.tune.stopper import Stopper

    class GflopsBudget(Stopper):
        def __init__(self) -> None:
            self.spent, self.by_trial = 0.0, {}

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.spent += result["epoch_gflops"]
            self.by_trial[trial_id] = self.by_trial.get(trial_id, 0.0) + result["epoch_gflops"]
            return per_trial is not None and self.by_trial[trial_id] >= per_trial * (1 - 1e-9)

        def stop_all(self) -> bool:
            return self.spent >= total * (1 - 1e-9)

    return GflopsBudget()


class _UnstartedTrials(logging.Filter):
    """Drops Tune's end-of-search warning about trials without metrics.

    The GFLOPs budget ends a search while Tune still holds trials it generated but never
    started (about 200 for every ASHA row), and :meth:`tune.Tuner.fit` then logs one
    ``FileNotFoundError`` line per such trial: 200 lines per ASHA row, 1,800 in one benchmark
    log, burying its progress lines. A trial that did start and failed is still counted: the
    row's ``errored_trials``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to fetch metrics")


def tune_search(kind: str, cfg: OptplanConfig, work: Path, *, budget: float, search_budget: float,
                seed: int, spec) -> SearchOutcome:
    """``kind`` 'pbt' (population ``spec.pbt_population``, lr and clip mutated every
    ``spec.pbt_interval`` epochs) or 'asha' (single-clip cosine trials of one schedule's budget,
    stopped at rungs); both until ``search_budget`` GFLOPs are spent."""
    import random

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from optplan.train.checkpoint import load_checkpoint

    random.seed(seed)
    np.random.seed(seed)
    p = cfg.plan
    lo, hi = min(p.base_lrs) * min(p.lr_multipliers), max(p.base_lrs) * max(p.lr_multipliers)
    space = {"lr": tune.loguniform(lo, hi), "clip": tune.choice(list(p.clip_lengths))}
    trial_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": 1}),
                                       "data": cfg.data.model_copy(update={"num_workers": 0})})
    if kind == "pbt":
        scheduler = PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=spec.pbt_interval,
            hyperparam_mutations={"lr": tune.loguniform(lo, hi), "clip": list(p.clip_lengths)})
        samples, stopper = spec.pbt_population, _budget_stopper(search_budget, search_budget / spec.pbt_population)
    else:
        scheduler = ASHAScheduler(time_attr="gflops", max_t=budget, grace_period=spec.asha_grace * budget,
                                  reduction_factor=spec.asha_reduction)
        space["cosine"] = True
        samples, stopper = 1000, _budget_stopper(search_budget, None)  # the budget ends the search
    # Ray starts its workers at nice 15: beside the benchmark's other units (--jobs) the trials
    # got ~4% of a core each and a PBT row took 25+ minutes. The trials are the benchmark's own
    # work, so they share the cores on equal terms (a value the user set is kept).
    os.environ.setdefault("RAY_worker_niceness", "0")
    # ASHA keeps 2 checkpoints per trial (all of ~200 trials' epochs would be gigabytes), so Tune
    # forces an experiment snapshot whenever a trial saved twice since the last one, and warns
    # each time two fall within 5 s: 10-35 identical warnings per ASHA row in the
    # benchmark's logs, burying its progress lines. The snapshots are local and small; the
    # warning is dropped.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # At verbose=0 Tune's newer output engine still prints a table of the search's setup and
    # "View detailed results here: <the ray folder>" (which is deleted below) for every row;
    # its older reporter prints nothing at verbose=0.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    unstarted, analysis_log = _UnstartedTrials(), logging.getLogger("ray.tune.analysis.experiment_analysis")
    analysis_log.addFilter(unstarted)
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_trainable, cfg_json=trial_cfg.model_dump(mode="json"),
                                                     budget=budget), {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(scheduler=scheduler, metric="score", mode="max", num_samples=samples,
                                        search_alg=BasicVariantGenerator(random_state=seed),
                                        # a fresh actor per trial (and per PBT pause) re-imports
                                        # torch and rebuilds the session: seconds per start against
                                        # an epoch of seconds, and ASHA starts ~200 trials
                                        reuse_actors=True),
            run_config=tune.RunConfig(name=kind, storage_path=str((work / "ray").resolve()), stop=stopper,
                                      verbose=0,
                                      # PBT exploits other trials' checkpoints, and a trial waiting
                                      # for a core restores one many epochs later: keeping only the
                                      # last 4 let Ray delete it first, the trial errored and the
                                      # search under-spent its budget (12 errored trials in the
                                      # benchmark's PBT rows). Keep all; the folder goes afterwards.
                                      checkpoint_config=tune.CheckpointConfig(
                                          num_to_keep=None if kind == "pbt" else 2)))
        results = tuner.fit()
        finished = [r for r in results if r.metrics and r.checkpoint is not None]
        if kind == "asha":  # prefer trials that ran their whole schedule
            finished = [r for r in finished if r.metrics["gflops"] >= budget * 0.99] or finished
        best = max(finished, key=lambda r: r.metrics["score"])
        with best.checkpoint.as_directory() as d:
            path = work / f"{kind}_best.pt"
            path.write_bytes((Path(d) / "model.pt").read_bytes())
    finally:
        analysis_log.removeFilter(unstarted)
        ray.shutdown()
    shutil.rmtree(work / "ray", ignore_errors=True)  # every trial's checkpoints: the best is kept
    snap = load_checkpoint(path)
    return SearchOutcome(path, best.metrics["score"], snap["meta"]["gflops"], stopper.spent, {
        "trials": len(results), "errored_trials": results.num_errors, "best_config": best.config,
        "processes": len({r.metrics.get("pid") for r in results if r.metrics} - {None}),  # reused actors
        "niceness": sorted({r.metrics.get("nice") for r in results if r.metrics} - {None}),
        "lineage": snap["meta"]["lineage"]})

"""The planned path against hand-tuned schedules and a peer searcher, at equal epochs.

For each seed (``train.seed``), on the built-in dataset with the demo's model and data:

1. ``planned``: plan the demo config (search epochs and seconds), replay the planned schedule
   from scratch and test it (multi-view, test split).
2. Hand-tuned schedules with the SAME total epochs E as that replay, at the demo's base lr and
   per-clip batch x accumulation: ``step`` (middle clip, lr x0.1 at 50% and 75% of E),
   ``cosine`` (middle clip, cosine to 0), ``short_long`` (shortest clip for the first half,
   middle clip at lr x0.1 to 75%, longest at x0.01: the usual short-then-long practice),
   ``plateau`` (middle clip, ReduceLROnPlateau on the val score) and ``multigrid`` (PySlowFast's
   long cycle: clips shortest..longest cycled inside each of the three lr phases of ``step``,
   effective batch scaled so that clip x batch stays at the middle clip's); and, as a
   diagnostic, ``long_step`` (``step`` with the longest clip, BatchNorm training).
3. ``pbt``: Ray Tune's PopulationBasedTraining over lr and clip length (population 4), the
   total search budget in epochs equal to the plan's; the best trial's last model is tested.

Also computes what a grid search over whole schedules would cost: every start-to-final path
of the graph trained from scratch with the planner's per-edge knee epochs as stage lengths.

    python bench/bench_baselines.py --seeds 0 1 2 --out bench/baselines
    python bench/bench_baselines.py --small --seeds 0 --work /tmp/bb-small   # smoke check

Per-row results are written as they finish (WORK/seedN/ROW.json); running again skips rows
already measured, so an interrupted benchmark resumes. ``OUT/baselines.json`` holds the
report's rows (``[{"name", "top1", "epochs"}]``, means over seeds), ``OUT/summary.json``
every figure and ``OUT/baselines.png`` the plot.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent

HAND_TUNED = ("step", "cosine", "short_long", "plateau", "multigrid", "long_step")
ROWS = ("planned", *HAND_TUNED, "pbt")
LABELS = {
    "planned": "optplan (planned path, replayed)",
    "step": "single clip, step decay",
    "cosine": "single clip, cosine decay",
    "short_long": "short-then-long clips, step decay",
    "plateau": "single clip, ReduceLROnPlateau",
    "multigrid": "multigrid clip cycle, step decay",
    "long_step": "longest clip only, step decay",
    "pbt": "PBT (Ray Tune), best trial",
}
PBT_POPULATION = 4
PBT_INTERVAL = 3  # epochs between PBT exploit/explore steps


# --- configs and states -----------------------------------------------------------------------

def bench_config(small: bool, root: Path, seed: int, threads: int, overrides: list[str],
                 config: Path | None = None):
    """The demo config (``--small``: the quick one; ``config``: a copy of it) on ``root`` with
    ``train.seed=seed``."""
    from optplan.config import load_config
    from optplan.demo import demo_config

    extra = [f"data.root={root.resolve()}", f"train.seed={seed}", f"train.threads={threads}",
             "train.progress=false", "train.tensorboard=false", *overrides]
    return load_config(config, extra) if config is not None else demo_config(small, overrides=extra)


def clip_state(cfg, i: int, name: str, *, mult: float = 1.0, frozen_bn: bool = False,
               accumulation: int | None = None):
    """Clip setting ``i`` of the demo's plan section (clip, frame step, batch, accumulation,
    base lr) as a State at ``mult`` x the base lr."""
    from optplan.train.state import State

    p = cfg.plan
    return State(name=name, lr=p.base_lrs[i] * mult, clip_length=p.clip_lengths[i],
                 sampling="uniform" if p.sampling == "uniform" else "consecutive",
                 frame_step=(p.frame_steps or [1] * len(p.clip_lengths))[i],
                 batch_size=p.batch_sizes[i],
                 accumulation=p.accumulation[i] if accumulation is None else accumulation,
                 frozen_bn=frozen_bn)


def _phases(epochs: int) -> list[tuple[int, float]]:
    """(epochs, lr multiplier) of the three step-decay phases: 50% / 25% / 25% of ``epochs``."""
    m1, m2 = round(epochs * 0.5), round(epochs * 0.75)
    return [(m1, 1.0), (m2 - m1, 0.1), (epochs - m2, 0.01)]


def hand_tuned(kind: str, cfg, epochs: int):
    """The hand-tuned schedule ``kind`` (see the module docstring) of ``epochs`` epochs."""
    from optplan.train.schedule import Cosine, Plateau, Schedule, Stage, Step

    n = len(cfg.plan.clip_lengths)
    mid, last = n // 2, n - 1
    mults = cfg.plan.lr_multipliers
    phases = _phases(epochs)
    if kind in ("step", "long_step"):  # long_step: a diagnostic row, the longest clip throughout
        m1 = phases[0][0]
        stages = [Stage(state=clip_state(cfg, mid if kind == "step" else last, kind), epochs=epochs,
                        lr_schedule=Step(kind="step", milestones=[m1, m1 + phases[1][0]], gamma=0.1))]
    elif kind == "cosine":
        stages = [Stage(state=clip_state(cfg, mid, "cosine"), epochs=epochs,
                        lr_schedule=Cosine(kind="cosine", final=0.0))]
    elif kind == "plateau":
        state = clip_state(cfg, mid, "plateau")
        stages = [Stage(state=state, epochs=epochs, lr_schedule=Plateau(
            kind="plateau", factor=0.1, patience=max(1, epochs // 10), min_lr=state.lr * min(mults)))]
    elif kind == "short_long":
        clips = [0, mid, last]
        stages = [Stage(state=clip_state(cfg, i, f"sl{k}", mult=m,
                                         frozen_bn=cfg.plan.frozen_bn_longest and i == last and i > 0),
                        epochs=e) for k, (i, (e, m)) in enumerate(zip(clips, phases))]
    elif kind == "multigrid":
        # Effective batch x clip kept at the middle setting's: accumulate as it does, so the
        # per-step batch (memory) is the demo's and the effective batch scales as 1 / clip.
        acc = cfg.plan.accumulation[mid]
        stages = []
        for p, (e, m) in enumerate(phases):
            for c in range(n):  # shortest first; the remainder goes to the longer clips
                length = e // n + (1 if c >= n - e % n else 0)
                stages.append(Stage(state=clip_state(cfg, c, f"mg{p}c{c}", mult=m, accumulation=acc),
                                    epochs=length))
        stages = [s for s in stages if s.epochs]
    else:
        raise ValueError(kind)
    return Schedule(stages=stages)


# --- rows -------------------------------------------------------------------------------------

def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    tic = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - tic


def run_schedule(name: str, schedule, cfg, work: Path, session) -> dict[str, Any]:
    """Train ``schedule`` from scratch, test its final model; one result row."""
    from optplan.train.multiview import evaluate
    from optplan.train.replay import train_schedule

    run_dir = work / name
    result, seconds = timed(lambda: train_schedule(schedule, cfg, run_dir, session=session))
    test = evaluate(cfg, result.checkpoint, split="test", session=session)
    return {"name": name, "top1": test["top1"], "top5": test["top5"], "val_score": result.final_score,
            "epochs": result.cost.epochs, "train_seconds": seconds,
            "schedule": schedule.to_dict() if hasattr(schedule, "to_dict") else schedule}


def plan_row(cfg, work: Path, session) -> dict[str, Any]:
    """Plan, replay the planned schedule from scratch, test it; plus the grid-search cost."""
    from optplan.plan.runner import run_plan
    from optplan.train.schedule import load_schedule

    result, seconds = timed(lambda: run_plan(cfg, work / "plan", progress=False))
    row = run_schedule("planned", load_schedule(result.schedule), cfg, work, session)
    row.update(search_epochs=result.search_epochs, search_seconds=result.search_seconds,
               search_wall=seconds, plan_val_score=result.score,
               grid=grid_cost(cfg, result))
    return row


def grid_cost(cfg, result) -> dict[str, Any]:
    """Epochs of a grid search over whole schedules: every start-to-final path replayed from
    scratch, each stage as long as the planner's knee epoch on that edge (a lower bound: the
    grid is told the stage lengths for free and pays no patience)."""
    from optplan.plan.graph import StateGraph

    graph = StateGraph.from_config(cfg.plan)
    knee = {(e.source, e.target): e.knee.epoch for e in result.edges if e.knee is not None}
    paths = list(graph.paths())
    costs = [sum(knee.get((u, v), 0) for u, v in zip(p, p[1:]) if not graph.is_choice(v)) for p in paths]
    return {"paths": len(paths), "path_epochs": costs, "epochs": sum(costs),
            "paths_x_replay": len(paths) * result.replay_epochs,
            "ratio": result.search_epochs / max(sum(costs), 1)}


# --- population-based training ----------------------------------------------------------------

def pbt_trainable(config: dict[str, Any], cfg_json: dict[str, Any], epoch_log: str) -> None:
    """One PBT member: one epoch per ``tune.report``, the optplan trainer at ``config``'s lr and
    clip setting, a checkpoint (model, optimiser, lineage epochs) at every report."""
    from ray import tune

    from optplan.config import OptplanConfig
    from optplan.train.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
    from optplan.train.optim import set_lr
    from optplan.train.session import TrainSession

    cfg = OptplanConfig.model_validate(cfg_json)
    session = TrainSession(cfg)
    i = cfg.plan.clip_lengths.index(config["clip_length"])
    state = clip_state(cfg, i, f"pbt_c{config['clip_length']}", mult=config["lr"] / cfg.plan.base_lrs[i])
    model = session.new_model()
    optimizer, net = session.prepare(model, state)
    epochs, lineage = 0, []
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            snap = load_checkpoint(Path(d) / "model.pt", session.device)
        model.load_state_dict(snap["model"])
        optimizer.load_state_dict(snap["optimizer"])  # momentum survives; lr is reset below
        epochs, lineage = snap["epoch"], snap["meta"]["lineage"]
    set_lr(optimizer, state.lr)
    while True:
        epochs += 1
        stats = session.train_one_epoch(net, optimizer, state, epochs)
        score = session.score(net, state).score if math.isfinite(stats.loss) else math.nan
        lineage.append([state.clip_length, state.lr])
        with open(epoch_log, "a") as f:
            f.write(f"{state.clip_length} {state.lr} {stats.seconds:.3f}\n")
        with tempfile.TemporaryDirectory() as d:
            save_checkpoint(Path(d) / "model.pt", make_checkpoint(
                model, optimizer=optimizer, state=state.to_dict(), epoch=epochs,
                config=cfg_json, meta={"lineage": lineage}))
            tune.report({"score": score if math.isfinite(score) else 0.0, "epochs": epochs},
                        checkpoint=tune.Checkpoint.from_directory(d))


def pbt_row(cfg, work: Path, budget: int, seed: int, session) -> dict[str, Any]:
    """Population-based training with ``budget`` epochs in all; the best trial's last model
    is tested on the test split."""
    import random

    import numpy as np
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from optplan.train.checkpoint import load_checkpoint
    from optplan.train.multiview import evaluate

    random.seed(seed)
    np.random.seed(seed)
    p = cfg.plan
    lo, hi = min(p.base_lrs) * min(p.lr_multipliers), max(p.base_lrs) * max(p.lr_multipliers)
    per_trial = max(1, round(budget / PBT_POPULATION))
    trial_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": 1})})
    epoch_log = work / "pbt_epochs.log"
    epoch_log.unlink(missing_ok=True)
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=PBT_INTERVAL,
        hyperparam_mutations={"lr": tune.loguniform(lo, hi), "clip_length": list(p.clip_lengths)})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(pbt_trainable, cfg_json=trial_cfg.model_dump(mode="json"),
                                                     epoch_log=str(epoch_log.resolve())), {"cpu": 1}),
            param_space={"lr": tune.loguniform(lo, hi), "clip_length": tune.choice(list(p.clip_lengths))},
            tune_config=tune.TuneConfig(scheduler=scheduler, metric="score", mode="max",
                                        num_samples=PBT_POPULATION,
                                        search_alg=BasicVariantGenerator(random_state=seed)),
            run_config=tune.RunConfig(name="pbt", storage_path=str((work / "ray").resolve()),
                                      stop={"training_iteration": per_trial}, verbose=0,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=4)))
        results, seconds = timed(tuner.fit)
        best = results.get_best_result(metric="score", mode="max", scope="last")
        with best.checkpoint.as_directory() as d:
            model_path = work / "pbt_best.pt"
            model_path.write_bytes((Path(d) / "model.pt").read_bytes())
    finally:
        ray.shutdown()
    snap = load_checkpoint(model_path)
    test = evaluate(cfg, model_path, split="test", session=session)
    search_epochs = len(epoch_log.read_text().splitlines())
    return {"name": "pbt", "top1": test["top1"], "top5": test["top5"],
            "val_score": best.metrics["score"], "epochs": snap["epoch"], "lineage": snap["meta"]["lineage"],
            "best_config": best.config, "search_epochs": search_epochs, "search_seconds": seconds,
            "budget_epochs": budget, "epochs_per_trial": per_trial}


# --- driver -----------------------------------------------------------------------------------

def run_seed(args: argparse.Namespace, seed: int) -> dict[str, dict[str, Any]]:
    """Every row for one seed, each cached as WORK/seedN/ROW.json."""
    from optplan.train.session import TrainSession

    cfg = bench_config(args.small, args.root, seed, args.threads, args.overrides, args.config)
    work = args.work / f"seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    session = TrainSession(cfg)
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str, make: Callable[[], dict[str, Any]]) -> None:
        path = work / f"{name}.json"
        if path.is_file():
            rows[name] = json.loads(path.read_text())
            return
        if name not in args.rows or (name == "pbt" and seed not in (args.pbt_seeds or args.seeds)):
            return
        print(f"[seed {seed}] {name} ...", flush=True)
        rows[name] = make()
        path.write_text(json.dumps(rows[name], indent=1) + "\n")
        r = rows[name]
        print(f"[seed {seed}] {name}: top-1 {r['top1']:.3f}, {r['epochs']} epochs, "
              f"{r.get('train_seconds', r.get('search_seconds', 0)):.0f} s", flush=True)

    row("planned", lambda: plan_row(cfg, work, session))
    if "planned" not in rows:
        return rows
    epochs = rows["planned"]["epochs"]
    for kind in HAND_TUNED:
        row(kind, lambda: run_schedule(kind, hand_tuned(kind, cfg, epochs), cfg, work, session))
    row("pbt", lambda: pbt_row(cfg, work, rows["planned"]["search_epochs"], seed, session))
    return rows


def _stats(values: list[float]) -> dict[str, float | None]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def summarize(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Mean and std over seeds of each row's figures."""
    fields = ("top1", "top5", "epochs", "train_seconds", "search_epochs", "search_seconds")
    rows = {}
    for name in ROWS:
        got = {s: r[name] for s, r in per_seed.items() if name in r}
        if got:
            rows[name] = {"label": LABELS[name], "seeds": sorted(got),
                          **{f: _stats([r.get(f) for r in got.values()]) for f in fields}}
    grids = [r["planned"]["grid"] for r in per_seed.values() if "planned" in r]
    grid = {k: _stats([g[k] for g in grids]) for k in ("paths", "epochs", "paths_x_replay", "ratio")}
    return {"rows": rows, "grid": grid, "per_seed": per_seed}


def markdown(summary: dict[str, Any]) -> str:
    """The results table (mean +- std over seeds)."""
    def ms(s: dict[str, Any], fmt: str) -> str:
        if s["mean"] is None:
            return "-"
        return f"{format(s['mean'], fmt)} ± {format(s['std'], fmt)}"

    lines = ["| schedule | seeds | test top-1 | train epochs | train wall (s) | search epochs | search wall (s) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in summary["rows"].items():
        lines.append(f"| {r['label']} | {len(r['seeds'])} | {ms(r['top1'], '.3f')} | {ms(r['epochs'], '.1f')} | "
                     f"{ms(r['train_seconds'], '.0f')} | {ms(r['search_epochs'], '.1f')} | "
                     f"{ms(r['search_seconds'], '.0f')} |")
    g = summary["grid"]
    if g["paths"]["mean"] is not None:
        lines += ["", f"Grid search over whole schedules: {g['paths']['mean']:.0f} paths, "
                      f"{ms(g['epochs'], '.1f')} epochs (sum of each path's knee epochs; "
                      f"paths x planned replay epochs: {ms(g['paths_x_replay'], '.1f')}); "
                      f"planner search / grid = {ms(g['ratio'], '.3f')}."]
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(summary["rows"].values())
    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    means = [r["top1"]["mean"] or 0.0 for r in rows]
    bars = ax.bar(range(len(rows)), means, yerr=[r["top1"]["std"] or 0.0 for r in rows], capsize=3,
                  color=["#d95f02" if r["label"] == LABELS["planned"] else "#7570b3" for r in rows])
    ax.bar_label(bars, [f"{m:.3f}\n{r['epochs']['mean']:.0f} ep" for m, r in zip(means, rows)],
                 fontsize=7, padding=2)
    ax.set_xticks(range(len(rows)), [r["label"] for r in rows], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("test top-1 (mean ± std over seeds)")
    ax.set_ylim(0, max(means + [0.1]) * 1.3)
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(summary: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # The report's rows: only rows measured on every seed the planned row was (comparable means).
    seeds = summary["rows"].get("planned", {}).get("seeds")
    report_rows = [{"name": r["label"], "top1": round(r["top1"]["mean"], 4),
                    "epochs": round(r["epochs"]["mean"], 1)}
                   for r in summary["rows"].values()
                   if r["top1"]["mean"] is not None and (seeds is None or r["seeds"] == seeds)]
    (out / "baselines.json").write_text(json.dumps(report_rows, indent=1) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    (out / "table.md").write_text(markdown(summary))
    plot(summary, out / "baselines.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pbt-seeds", type=int, nargs="*", default=None,
                    help="seeds that also run PBT (default: every seed)")
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS, help="rows to run")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "baselines")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "baselines",
                    help="run directories (plans, checkpoints, Ray results)")
    ap.add_argument("--root", type=Path, default=None, help="dataset (generated when absent; "
                    "default data/synth, --small: data/synth-quick)")
    ap.add_argument("--small", action="store_true", help="smoke setting: the quick demo config")
    ap.add_argument("--config", type=Path, default=None,
                    help="a config file to use instead of the shipped demo config")
    ap.add_argument("--threads", type=int, default=2, help="train.threads (1 on a busy machine)")
    ap.add_argument("--summarize", action="store_true", help="only rebuild OUT from WORK")
    ap.add_argument("overrides", nargs="*", help="key.sub=value config overrides")
    args = ap.parse_args(argv)

    from optplan.demo import PRESETS, ensure_dataset

    preset = PRESETS["quick" if args.small else "full"]
    if args.root is None:
        args.root = ROOT / ("data/synth-quick" if args.small else "data/synth")
    per_seed: dict[int, dict[str, dict[str, Any]]] = {}
    if not args.summarize:
        ensure_dataset(args.root, preset.synth)
    for seed in args.seeds:
        if args.summarize:
            work = args.work / f"seed{seed}"
            per_seed[seed] = {p.stem: json.loads(p.read_text()) for p in sorted(work.glob("*.json"))
                              if p.stem in ROWS}
        else:
            per_seed[seed] = run_seed(args, seed)
        summary = summarize(per_seed)
        write_outputs(summary, args.out)
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

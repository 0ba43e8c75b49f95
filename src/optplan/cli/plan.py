"""``optplan plan``: search the training schedule of a config's state graph.

Writes into the run directory: ``plan.sqlite`` (every edge, epoch and decision, as it goes),
``config.yaml``, ``result.json`` and ``schedule.yaml`` (what ``optplan train --schedule``
replays). Running again into the same directory resumes; another config there is refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optplan.cli.common import add_config_arguments, config_from_args
from optplan.errors import OptplanError

# Keys that change how a plan runs but not what it finds: free to differ on resume.
RUNTIME_KEYS = {"out": None, "plan": ("executor", "workers", "ray_address", "budget_epochs"),
                "train": ("progress", "tensorboard"), "data": ("num_workers",)}


def result_config(cfg) -> dict:
    """The config as a dict without :data:`RUNTIME_KEYS` (what a resumed run must match)."""
    tree = cfg.model_dump(mode="json")
    for section, keys in RUNTIME_KEYS.items():
        if keys is None:
            tree.pop(section, None)
        else:
            for key in keys:
                tree[section].pop(key, None)
    return tree


def _load(args: argparse.Namespace):
    from optplan.config import load_config

    run_dir = Path(args.out) if args.out else None
    if args.resume and args.config is None:
        if run_dir is None or not (run_dir / "config.yaml").is_file():
            raise OptplanError("--resume without CONFIG needs --out RUN holding a config.yaml "
                               "from an earlier 'optplan plan'")
        cfg = load_config(run_dir / "config.yaml", list(args.overrides))
    else:
        cfg = config_from_args(args)
    plan = {k: v for k, v in (("executor", args.executor), ("workers", args.workers),
                              ("ray_address", args.ray_address), ("budget_epochs", args.budget))
            if v is not None}
    cfg = cfg.model_copy(update={"plan": cfg.plan.model_copy(update=plan),
                                 "out": run_dir or cfg.out})
    return cfg, Path(cfg.out)


def _trainer(cfg, run_dir: Path, simulate: bool):
    if simulate:
        from optplan.plan import SimulatedTrainer

        return SimulatedTrainer(cfg.plan.simulate)
    if cfg.plan.beam > 1:  # its edge directories are named by source *state*, not source model
        raise OptplanError("plan.beam > 1 is not supported with the video trainer yet (two kept "
                           "models of one state would share an edge directory); use plan.beam=1 "
                           "or --simulate")
    try:
        from optplan.train.edge import VideoEdgeTrainer
    except ImportError as err:
        raise OptplanError(f"the video trainer is not available ({err}); use --simulate") from None
    return VideoEdgeTrainer(cfg, run_dir)


def model_validator(cfg):
    """A graph validator refusing states whose clips the configured model cannot take."""
    from optplan.models import create_model

    shortest = getattr(create_model(cfg.model.name, num_classes=2, **cfg.model.kwargs),
                       "min_clip_length", 1)

    def check(state) -> str | None:
        if state.clip_length < shortest:
            return (f"clip_length {state.clip_length} is shorter than model {cfg.model.name!r} "
                    f"accepts ({shortest} frames); raise plan.clip_lengths")
        return None
    return check


def run(args: argparse.Namespace) -> int:
    import yaml

    from optplan.config import dump_config
    from optplan.plan import Planner, SQLiteStore, StateGraph, make_executor
    from optplan.plan.result import RESULT_FILE
    from optplan.plan.store import STORE_FILE

    cfg, run_dir = _load(args)
    if args.resume and not (run_dir / STORE_FILE).is_file():
        raise OptplanError(f"--resume: {run_dir / STORE_FILE} does not exist; nothing to resume")
    trainer = _trainer(cfg, run_dir, args.simulate)
    graph = StateGraph.from_config(cfg.plan, validator=None if args.simulate else model_validator(cfg))
    store = SQLiteStore.in_run_dir(run_dir)
    executor = make_executor(cfg.plan.executor, cfg.plan.workers, cfg.plan.ray_address)
    try:
        planner = Planner(graph, trainer, store, patience=cfg.knee.patience,
                          knee_method=cfg.knee.method, executor=executor,
                          max_epochs=cfg.knee.max_epochs, beam=cfg.plan.beam,
                          budget_epochs=cfg.plan.budget_epochs, progress=not args.quiet,
                          config=result_config(cfg))
        store.check_config(planner.fingerprint())  # refuse a foreign run dir before writing
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        result = planner.run()
    finally:
        executor.close()
        store.close()
    result.save(run_dir / RESULT_FILE)
    (run_dir / "schedule.yaml").write_text(yaml.safe_dump(result.schedule, sort_keys=False))
    print(result.table())
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.budget_epochs is not None:
        best = result.budget
        print(f"budget {result.budget_epochs} epochs: " + (
            f"score {best.score:.4f} in {best.epochs} epochs via {' -> '.join(best.nodes)}"
            if best else "no searched path fits"))
    print(f"wrote {run_dir / 'schedule.yaml'} and {run_dir / RESULT_FILE}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="search the training schedule (the paper's planner)",
                       description="Train the state graph's edges until their knees, keep the best "
                                   "model per state, and write the best schedule. Running again "
                                   "into the same --out resumes.")
    add_config_arguments(p)
    p.add_argument("--out", metavar="RUN", help="run directory (default: the config's out)")
    p.add_argument("--resume", action="store_true",
                   help="continue the plan in RUN (CONFIG defaults to RUN/config.yaml)")
    p.add_argument("--executor", choices=["inprocess", "process", "ray"],
                   help="where edges train (default: plan.executor)")
    p.add_argument("--workers", type=int, help="edges trained at once (process/ray)")
    p.add_argument("--ray-address", help="Ray cluster address (default: a local Ray)")
    p.add_argument("--budget", type=int, metavar="EPOCHS",
                   help="also report the best searched path whose replay fits EPOCHS")
    p.add_argument("--simulate", action="store_true",
                   help="use the simulated trainer (plan.simulate) instead of training videos")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

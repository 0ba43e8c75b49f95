"""``optplan plan``: search the training schedule of a config's state graph.

Writes into the run directory: ``plan.sqlite`` (every edge, epoch and decision, as it goes),
``config.yaml``, ``result.json`` and ``schedule.yaml`` (what ``optplan train --schedule``
replays). Running again into the same directory resumes (and retries failed edges); another
config there is refused. A plan with failed or skipped edges exits 1 unless --allow-failures.
The work is :func:`optplan.plan.runner.run_plan`; this module reads arguments and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optplan.cli.common import add_config_arguments, config_and_overrides, config_from_args
from optplan.errors import OptplanError


def _load(args: argparse.Namespace):
    """The config (CONFIG, or RUN/config.yaml with --resume) with the command-line options."""
    from optplan.config import load_config

    run_dir = Path(args.out) if args.out else None
    if args.resume and args.config is None:
        if run_dir is None or not (run_dir / "config.yaml").is_file():
            raise OptplanError("--resume without CONFIG needs --out RUN holding a config.yaml "
                               "from an earlier 'optplan plan'")
        cfg = load_config(run_dir / "config.yaml", config_and_overrides(args)[1])
    else:
        cfg = config_from_args(args)
    plan = {k: v for k, v in (("executor", args.executor), ("workers", args.workers),
                              ("ray_address", args.ray_address), ("budget_epochs", args.budget))
            if v is not None}
    return cfg.model_copy(update={"plan": cfg.plan.model_copy(update=plan),
                                  "out": run_dir or cfg.out})


def run(args: argparse.Namespace) -> int:
    from optplan.plan.result import RESULT_FILE
    from optplan.plan.runner import SCHEDULE_FILE, require_store, run_plan

    cfg = _load(args)
    if args.dry_run:
        from optplan.plan.dryrun import dry_run
        from optplan.plan.graph import StateGraph
        from optplan.plan.runner import model_validator

        print(dry_run(cfg, StateGraph.from_config(cfg.plan, validator=model_validator(cfg))).table())
        return 0
    run_dir = Path(cfg.out)
    if args.resume:
        require_store(run_dir)
    result = run_plan(cfg, run_dir, simulate=args.simulate, progress=not args.quiet)
    print(result.table())
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.budget_epochs is not None:
        best = result.budget
        print(f"budget {result.budget_epochs} epochs: " + (
            f"score {best.score:.4f} in {best.epochs} epochs via {' -> '.join(best.nodes)}"
            if best else "no searched path fits"))
    print(f"wrote {run_dir / SCHEDULE_FILE} and {run_dir / RESULT_FILE}")
    failed = result.failed_edges
    if failed and not args.allow_failures:
        print(f"optplan plan: error: {len(failed)} of {len(result.edges)} edges failed or were skipped "
              f"({', '.join(e.id for e in failed[:4])}{', ...' if len(failed) > 4 else ''}), so the "
              "schedule comes from a pruned graph; run again to retry them, or pass --allow-failures "
              "to accept it", file=sys.stderr)
        return 1
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
    p.add_argument("--dry-run", action="store_true",
                   help="print the edges, their epoch and GFLOPs bounds and the disk the plan needs; train nothing")
    p.add_argument("--allow-failures", action="store_true",
                   help="exit 0 even when edges failed or were skipped (default: exit 1)")
    p.add_argument("--quiet", action="store_true", help="no progress or epoch bars")
    p.set_defaults(func=run)

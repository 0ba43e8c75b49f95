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

from optplan.cli.common import add_config_arguments, config_and_overrides
from optplan.errors import OptplanError


def _load(args: argparse.Namespace):
    """The config (CONFIG, or RUN/config.yaml with --resume or --from-records RUN) with the
    command-line options."""
    from optplan.config import load_config

    run_dir = Path(args.out) if args.out else None
    path, overrides = config_and_overrides(args)  # a CONFIG that looks like an override is one
    if args.from_records is not None:
        records = Path(args.from_records)
        if args.simulate:
            raise OptplanError("--from-records replays measured curves; --simulate draws others: pick one")
        if run_dir is None or run_dir.resolve() == records.resolve():
            raise OptplanError("--from-records RUN needs --out NEW, a run directory of its own (the "
                               "records in RUN stay as they are)")
        if path is None and not (records / "config.yaml").is_file():
            raise OptplanError(f"--from-records {records}: no config.yaml there; name the finished "
                               "run directory of an earlier 'optplan plan'")
        path = path or records / "config.yaml"
    elif args.resume and path is None:
        if run_dir is None or not (run_dir / "config.yaml").is_file():
            raise OptplanError("--resume without CONFIG needs --out RUN holding a config.yaml "
                               "from an earlier 'optplan plan'")
        path = run_dir / "config.yaml"
    cfg = load_config(path, overrides)
    plan = {k: v for k, v in (("executor", args.executor), ("workers", args.workers),
                              ("ray_address", args.ray_address), ("budget_epochs", args.budget))
            if v is not None}
    return cfg.model_copy(update={"plan": cfg.plan.model_copy(update=plan),
                                  "out": run_dir or cfg.out})


def _records(run_dir: Path):
    """The finished plan whose curves ``--from-records`` plans again."""
    from optplan.plan.result import RESULT_FILE, PlanResult

    if not (run_dir / RESULT_FILE).is_file():
        raise OptplanError(f"--from-records {run_dir}: no {RESULT_FILE} there; name the run directory of "
                           "a finished 'optplan plan'")
    return PlanResult.load(run_dir)


def _check_records(recorded, result, allow_failures: bool) -> int:
    """Exit status of a plan made from records: 1 when it is no answer (an edge needed epochs the
    record lacks, or a node's recorded winner was cut short, past which no record says what
    training would have measured)."""
    from optplan.plan.simulate import recorded_winner_cut

    if result.failed_edges and not allow_failures:
        first = ((result.failed_edges[0].error or "").strip().splitlines() or [""])[-1]
        print(f"optplan plan: error: {len(result.failed_edges)} edges could not be replayed from the "
              f"records ({', '.join(e.id for e in result.failed_edges[:4])}): these settings train longer "
              "than the recorded search, or train edges it did not; only a rule that trains less "
              f"(racing, a lower knee.max_epochs) on the same graph can be asked of records; first: {first}",
              file=sys.stderr)
        return 1
    cut = recorded_winner_cut(recorded, result)
    saved = (recorded.search_gflops or 0) - (result.search_gflops or 0)
    print(f"from the records: {result.search_epochs} of {recorded.search_epochs} search epochs"
          + (f", {saved:,.0f} GFLOPs saved" if recorded.search_gflops else ""))
    if cut:
        print(f"optplan plan: error: the recorded winner of {', '.join(cut)} ended earlier here, so "
              "every edge after it would have trained from another model, which no record holds: "
              "this plan is not what these settings would have found", file=sys.stderr)
        return 1
    print("every node kept its recorded winner: this is the plan these settings would have found")
    return 0


def run(args: argparse.Namespace) -> int:
    from optplan.plan.result import RESULT_FILE
    from optplan.plan.runner import SCHEDULE_FILE, require_store, run_plan
    from optplan.plan.simulate import RecordedTrainer

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
    recorded = _records(Path(args.from_records)) if args.from_records is not None else None
    if recorded is not None and cfg.plan.climb_limit is not None and not any(e.losses for e in recorded.edges):
        raise OptplanError(f"plan.climb_limit judges the training losses of edges from scratch, and the records "
                           f"of {args.from_records} hold none (a plan made before optplan recorded them, or "
                           "a trainer that reports none); plan it again with training")
    result = run_plan(cfg, run_dir, simulate=args.simulate, progress=not args.quiet,
                      trainer=RecordedTrainer(recorded) if recorded is not None else None)
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
    if recorded is not None:
        return _check_records(recorded, result, args.allow_failures)
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
    p.add_argument("--from-records", metavar="RUN",
                   help="plan again from the curves a finished plan in RUN measured, training nothing "
                        "(CONFIG defaults to RUN/config.yaml; --out must be new): what racing or a "
                        "lower knee.max_epochs would have planned; exit 1 where the record cannot say")
    p.add_argument("--dry-run", action="store_true",
                   help="print the edges, their epoch and GFLOPs bounds and the disk the plan needs; train nothing")
    p.add_argument("--allow-failures", action="store_true",
                   help="exit 0 even when edges failed or were skipped (default: exit 1)")
    p.add_argument("--quiet", action="store_true", help="no progress or epoch bars")
    p.set_defaults(func=run)

"""``optplan export``: a planned schedule as MMAction2's or PySlowFast's config fragment.

The work is :func:`optplan.train.export.export_schedule`; this module reads the schedule and
writes the text.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="write a schedule as an MMAction2 or PySlowFast config fragment",
        description="Write SCHEDULE (the schedule.yaml a plan writes, or a run directory holding "
                    "one) as a config fragment of another framework: MMAction2's param_scheduler, "
                    "optim_wrapper lr and train_cfg, or PySlowFast's SOLVER steps_with_relative_lrs. "
                    "Per-stage clip settings and what the framework cannot express are comments.")
    p.add_argument("schedule", type=Path, metavar="SCHEDULE", help="schedule YAML/JSON, or a plan's run directory")
    p.add_argument("--to", required=True, choices=["mmaction2", "pyslowfast"], help="target framework")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here (default: print)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optplan.plan.runner import SCHEDULE_FILE
    from optplan.train.export import export_schedule
    from optplan.train.schedule import load_schedule

    path = args.schedule / SCHEDULE_FILE if args.schedule.is_dir() else args.schedule
    text = export_schedule(load_schedule(path), args.to)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0

"""``optplan report RUN``: the HTML report of a plan (figures embedded, plus the PNGs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML report of a plan's run directory",
        description="Draw the state graph, every edge's curve with its knee and its losses, "
                    "why each edge stopped, the planned schedule with the command that replays "
                    "it, the search cost and the test's confusion matrix of the plan in RUN into "
                    "one self-contained HTML file (RUN/report/index.html by default) and PNGs "
                    "beside it. A plan that has not finished gets a partial report of its edges "
                    "so far, and the command exits 1.")
    parser.add_argument("run", type=Path, metavar="RUN", help="run directory of 'optplan plan'")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output directory (default: RUN/report)")
    parser.add_argument("--open", action="store_true", help="open the report in a web browser")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optplan.report import load_run, write_report
    from optplan.report.build import REPORT_DIR
    from optplan.report.html import unfinished_line

    data = load_run(args.run)
    index = write_report(data, args.out if args.out is not None else args.run / REPORT_DIR)
    print(index)
    if args.open:
        import webbrowser

        webbrowser.open(index.resolve().as_uri())
    if data.unfinished is not None:  # a partial report is written, but the plan is not done
        print(f"optplan report: {args.run}: {unfinished_line(data)}; the report shows the edges so "
              f"far. Finish the plan with 'optplan plan --resume --out {args.run}', then report again",
              file=sys.stderr)
        return 1
    return 0

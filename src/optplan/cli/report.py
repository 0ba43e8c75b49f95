"""``optplan report RUN``: the HTML report of a plan (figures embedded, plus the PNGs)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML report of a plan's run directory",
        description="Draw the state graph, every edge's curve with its knee, the planned "
                    "schedule and the search cost of the plan in RUN into one self-contained "
                    "HTML file (RUN/report/index.html by default) and PNGs beside it.")
    parser.add_argument("run", type=Path, metavar="RUN", help="run directory of 'optplan plan'")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output directory (default: RUN/report)")
    parser.add_argument("--open", action="store_true", help="open the report in a web browser")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optplan.report import build_report

    index = build_report(args.run, args.out)
    print(index)
    if args.open:
        import webbrowser

        webbrowser.open(index.resolve().as_uri())
    return 0

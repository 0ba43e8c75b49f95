"""``optplan demo``: plan the built-in dataset end to end (the README's main command)."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from optplan.demo import run_demo

    summary = run_demo(args.quick, data_dir=args.data, out=args.out, overrides=args.overrides,
                       quiet=args.quiet or args.json)
    print(json.dumps(summary.to_dict(), indent=1) if args.json else summary.text())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="generate the built-in dataset, plan it, test and report (start here)",
        description="Generate the built-in video dataset if absent, plan a state graph "
                    "scaled for CPU (tiny DG-P3D; configs/demo.yaml, the settings that won the benchmark), test the final model on the test split with "
                    "multi-view evaluation, write the HTML report and print a summary. Running "
                    "again into the same --out resumes.")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides on top of the shipped demo config, e.g. knee.patience=4")
    p.add_argument("--quick", action="store_true",
                   help="a smaller graph and dataset (about 2 minutes on 2 CPU cores)")
    p.add_argument("--data", metavar="DIR", help="dataset directory (default: data/synth; "
                   "generated when absent")
    p.add_argument("--out", metavar="RUN", help="run directory (default: runs/demo, runs/demo-quick)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (implies --quiet)")
    p.set_defaults(func=run)

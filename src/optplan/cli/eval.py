"""``optplan eval``: the multi-view test of a checkpoint, written as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from optplan.cli.common import add_config_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="multi-view test of a checkpoint (top-1/top-5, confusion matrix)",
        description="Test a checkpoint on the test list (or --split val): data.test_clips clips x "
                    "data.test_crops crops of data.test_crop_size pixels per video, class scores "
                    "averaged over views as data.test_average says (softmax or logits). The model "
                    "and clip setting come from the checkpoint, the data settings from CONFIG.")
    add_config_arguments(p)
    p.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT", help="an optplan checkpoint")
    p.add_argument("--split", choices=["test", "val"], default="test", help="which list (default: test)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE.json",
                   help="write the result here (default: next to the checkpoint, <name>.<split>.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (train.progress=false)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optplan.train.multiview import default_out, evaluate

    cfg = config_from_args(args)
    out = args.out or default_out(args.checkpoint, args.split)
    result = evaluate(cfg, args.checkpoint, split=args.split, out=out)
    shown = {k: v for k, v in result.items() if k != "confusion"}
    print(json.dumps(shown, indent=2))
    print(f"{result['split']}: top-1 {result['top1']:.4f}, top-5 {result['top5']:.4f} "
          f"over {result['videos']} videos x {result['views']} views; written to {out}")
    return 0

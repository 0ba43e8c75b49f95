"""``optplan data``: write the built-in dataset, check a dataset's videos."""

from __future__ import annotations

import argparse
from pathlib import Path

from optplan.data.annotations import FORMATS
from optplan.data.synth import REGIMES
from optplan.errors import OptplanError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="create the built-in dataset or check a dataset's videos",
                                   description="Create the built-in video dataset, or decode every "
                                               "listed video of a dataset and report problems.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = sub.add_parser("synth", help="write the built-in dataset (H.264 MP4 + annotation files)",
                           description="Write moving handwritten-digit videos: a digit oscillates with "
                                       "one movement (horizontal, vertical, circle) and then another, "
                                       "plus UCF101-style lists (classInd.txt, trainlist01.txt, "
                                       "testlist01.txt) and Kinetics-style CSVs (train.csv, test.csv). "
                                       "The regime sets what a class needs: 'mixed' (default) the digit "
                                       "and the order of the two movements (2 digits x 6 orders); "
                                       "'appearance' (Kinetics-like) mostly the digit (10 digits x 2 "
                                       "orders: one frame reaches at most 50%); 'motion' "
                                       "(Something-Something-like) only the order (6 classes; the digit "
                                       "shown carries no label information, one frame is at chance); "
                                       "'scene' (UCF101-like) mostly one frame (2 digits split by order "
                                       "+ 8 digits of either order: one frame reaches 10/12).")
    synth.add_argument("dir", type=Path, metavar="DIR", help="output directory (created if needed)")
    synth.add_argument("--regime", default="mixed", choices=list(REGIMES),
                       help="what a label needs: appearance (digit; 20 classes), motion (order of "
                            "movements; 6 classes), mixed (both; 12 classes) or scene (mostly the "
                            "digit; 12 classes); default mixed")
    synth.add_argument("--classes", type=int, default=None,
                       help="number of classes (default: 20 appearance, 6 motion, 12 mixed, 12 scene); "
                            "allowed: appearance an even number 2..20, motion 2..6, mixed 1..60, scene 5..12")
    synth.add_argument("--videos-per-class", type=int, default=30, help="videos per class, train and test together (default 30)")
    synth.add_argument("--test-share", type=float, default=0.25,
                       help="fraction of each class written to the test list, 0 < x < 1 (default 0.25)")
    synth.add_argument("--frames", type=int, default=32, help="frames per video, at 25 fps (default 32)")
    synth.add_argument("--size", type=int, default=64, help="frame side in pixels, even (default 64)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same videos (default 0)")
    synth.set_defaults(func=run_synth)

    check = sub.add_parser("check", help="decode every listed video and list the problems by file",
                           description="Decode every video of a dataset's training, validation and "
                                       "test lists (found from DIR as 'plan' finds them, or set with "
                                       "--config and data.* overrides, or given with --annotations) "
                                       "completely; print one row per problem file, and the lists' "
                                       "own problems (a video listed under two classes, a class with "
                                       "no training video). Exit status 1 if there is any problem.")
    check.add_argument("dir", type=Path, nargs="?", metavar="DIR",
                       help="dataset root, as data.root (default: the config's data.root)")
    check.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="config overrides, e.g. data.train_list=LIST data.split=2 data.class_names=MAP")
    check.add_argument("--config", type=Path, metavar="CONFIG", help="YAML config whose data section is used")
    check.add_argument("--annotations", type=Path, action="append", metavar="FILE",
                       help="annotation file to check (repeatable; default: the configured or found lists)")
    check.add_argument("--format", default=None, choices=["auto", *FORMATS],
                       help="annotation format (default: data.format, detected)")
    check.add_argument("--min-frames", type=int, default=1,
                       help="report videos with fewer frames as 'short' (default 1)")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=run_check)


def run_synth(args: argparse.Namespace) -> int:
    from optplan.data.synth import synthesize

    summary = synthesize(args.dir, videos_per_class=args.videos_per_class, frames=args.frames,
                         size=args.size, seed=args.seed, num_classes=args.classes, regime=args.regime,
                         test_share=args.test_share)
    print(f"wrote {summary['videos']} videos ({len(summary['classes'])} classes, {summary['train']} train / "
          f"{summary['test']} test, {args.frames} frames of {args.size}x{args.size}, {args.regime} regime) "
          f"to {args.dir} in {summary['seconds']:.1f} s")
    return 0


def _check_config(args: argparse.Namespace):
    """The data section ``plan`` would use, with DIR and --format on top; a DIR that is a
    ``key=value`` override is one."""
    from optplan.config import load_config

    overrides = list(args.overrides)
    if args.dir is not None and "=" in str(args.dir) and not args.dir.exists():
        args.dir, overrides = None, [str(args.dir), *overrides]
    data = load_config(args.config, overrides).data
    update = {k: v for k, v in (("root", args.dir), ("format", args.format)) if v is not None}
    return data.model_copy(update=update)


def run_check(args: argparse.Namespace) -> int:
    """Check the lists (conflicting labels; empty classes of the training list, which is known
    only without --annotations), then decode every listed video."""
    from optplan.data.annotations import read_annotations
    from optplan.data.check import check_records, format_problems, list_problems
    from optplan.data.splits import read_lists

    data = _check_config(args)
    if not Path(data.root).is_dir():
        raise OptplanError(f"dataset directory {str(data.root)!r} does not exist")
    if args.annotations:
        lists = [read_annotations(f, data.root, data.format, split=data.split,
                                  allow_outside_root=data.allow_outside_root) for f in args.annotations]
        train = None
    else:
        found = read_lists(data)
        lists, train = [part for part in found if part is not None], found.train
    problems = list_problems(lists, train)
    checked, bad = check_records([r for part in lists for r in part.records], min_frames=args.min_frames,
                                 progress=not args.quiet)
    problems += bad
    print(format_problems(problems, checked))
    return 1 if problems else 0

"""``optplan bench``: the compute-fair benchmark (see :mod:`optplan.bench`).

Prints one line per row as it finishes and the tables at the end; ``OUT/summary.json`` and
``OUT/table.md`` are rewritten after every row. Running again into the same ``--out`` skips the
rows already finished.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from optplan.bench.config import load_bench_config
    from optplan.bench.runner import TABLE_FILE, run_bench
    from optplan.cli.common import config_and_overrides, is_override
    from optplan.errors import OptplanError

    # --regimes and --seeds take every word after them: overrides written after them are
    # overrides all the same
    for option, example in (("regimes", "--regimes appearance"), ("seeds", "--seeds 0 1 2")):
        words = getattr(args, option)
        if words is None:
            continue
        setattr(args, option, [w for w in words if not is_override(w)])
        args.overrides = [*args.overrides, *(w for w in words if is_override(w))]
        if not getattr(args, option):
            raise OptplanError(f"--{option} names no {option[:-1]}, only overrides; name one (e.g. {example}) "
                               f"or leave --{option} out for the default")
    bad = [s for s in args.seeds if not s.lstrip("-").isdigit()]
    if bad:
        raise OptplanError(f"--seeds takes integers (train.seed values), got {bad}")
    bench = load_bench_config(*config_and_overrides(args))
    run_bench(bench, args.out, [int(s) for s in args.seeds], regimes=args.regimes, jobs=args.jobs)
    print((Path(args.out) / TABLE_FILE).read_text())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark the planner against hand-tuned schedules and searchers",
                       description="For every data regime and seed: plan, replay the planned path, "
                                   "train hand-tuned schedules at its training GFLOPs and PBT, ASHA and "
                                   "random search at its search GFLOPs; test every model. Resumable "
                                   "row by row. Rows (rows=[...]): planned, search_model, cosine, step, "
                                   "plateau, linear (KIND@CLIP for one clip, KIND@CLIPxM for one clip at "
                                   "M times its base lr), short_long, multigrid, pbt, asha, random; "
                                   "random_x3 (random search at 3x the search GFLOPs) runs only when named.")
    p.add_argument("config", nargs="?", metavar="CONFIG",
                   help="bench YAML (default: the shipped configs/bench.yaml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="dotted overrides into the bench file, e.g. rows=[planned,cosine] "
                        "config.knee.patience=3")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (resumes if it exists)")
    p.add_argument("--seeds", nargs="+", default=["0", "1", "2"], help="train.seed values (default 0 1 2)")
    p.add_argument("--regimes", nargs="+", default=None, help="only these regimes (default: all in CONFIG)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run N rows at once in worker processes, each seed's planned row first, then "
                        "the longest rows first (default 1: one row after the other; with the shipped "
                        "1-thread rows, 2-3 keep 2 cores busy); PBT and ASHA rows still run one at a time")
    p.set_defaults(func=run)

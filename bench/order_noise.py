"""How much of a benchmark row's test top-1 is the order of its data: retrain one finished row's
schedule with its states renamed, which changes only the epochs' seeds (clip order, crops,
dropout), not the initial model, the validation split, the clips or the learning rates.

    .venv/bin/python bench/order_noise.py OUT --regime appearance --seed 0 --row linear@16 \
        --names c16_x1 order_b order_c

OUT is an `optplan bench` output directory (its shipped bench config and data); each name
trains into OUT/<regime>/seed<s>/order-noise/<row>/<name> (resumable) and prints its test top-1 beside
the row's own. One thread per process, as the benchmark's rows.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

from optplan.bench.config import load_bench_config
from optplan.bench.runner import regime_root, row_file, unit_config, unit_dir
from optplan.train.multiview import evaluate
from optplan.train.replay import train_schedule
from optplan.train.session import TrainSession


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a finished `optplan bench` output directory")
    parser.add_argument("--regime", default="appearance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--row", default="linear@16", help="a finished hand-tuned row of that regime and seed")
    parser.add_argument("--names", nargs="+", required=True, help="state names to train the schedule under")
    args = parser.parse_args()
    bench = load_bench_config()
    if args.regime not in bench.regimes:
        parser.error(f"unknown regime {args.regime!r}; the shipped bench config has {sorted(bench.regimes)}")
    found = row_file(args.out, args.regime, args.seed, args.row)
    if not found.is_file():
        parser.error(f"{found} does not exist: run the row first (optplan bench --out {args.out})")
    root = regime_root(args.out, args.regime, bench.regimes[args.regime])
    cfg = unit_config(bench, args.regime, root, args.seed)
    row = json.loads(found.read_text())
    session, load = TrainSession(cfg), os.getloadavg()[0]
    print(f"{args.regime} seed {args.seed} {args.row} as run: test top-1 {row['top1']:.4f} (load {load:.2f})")
    for name in args.names:
        schedule = copy.deepcopy(row["schedule"])
        for stage in schedule["stages"]:
            stage["state"]["name"] = name if len(schedule["stages"]) == 1 else f"{name}_{stage['state']['name']}"
        work = unit_dir(args.out, args.regime, args.seed) / "order-noise" / args.row / name
        result = train_schedule(schedule, cfg, work, session=session)
        test = evaluate(cfg, result.checkpoint, split="test", session=session)
        print(f"  renamed {name!r}: test top-1 {test['top1']:.4f}, validation {result.final_score:.3f}", flush=True)


if __name__ == "__main__":
    main()

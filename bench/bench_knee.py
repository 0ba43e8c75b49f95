"""Knee rules on real training curves, and short vs long clips on the built-in dataset.

Three jobs (each prints a markdown table; run from the repository root):

  curves  train fixed-length runs of the tiny default model and save every validation curve
          as bench/curves/<name>.csv (epoch,score; row 0 = the start score). Two-stage runs
          give a second curve that starts from a trained model at a 10x lower lr, like a
          planner edge.
  knee    replay each knee rule (paper / stable / kneedle) over every saved curve, epoch by
          epoch: epochs it spends before stopping, the epoch it keeps, and how far that epoch's
          real score falls below the best score seen on the whole curve.
  clips   train the same state with short and with long clips for the same epochs and report
          validation and multi-view test top-1 (the built-in classes need long-range motion).
  collect copy every edge curve of the planner rows (--row, default planned) of an `optplan bench` output directory to
          bench/curves/regimes/<regime>_s<seed>_<source>-<target>.csv (what the knee job, and
          the test of the cap rate, read).
  ends    for every finished plan of an `optplan bench` output directory: which incoming edge
          wins each node and which node is best, with the knee scores as recorded and as
          `knee.clip_score: true` limits them (re-decided on the recorded curves). Where no
          node's winner changes, the search would have trained the same edges from the same
          models, so the plan with clipped scores is the recorded one, ending at the other node.

  python bench/bench_knee.py curves --root data/synth --out bench/curves
  python bench/bench_knee.py curves --root data/synth --tag _seed1 train.seed=1
  python bench/bench_knee.py knee --curves bench/curves --patience 10 5
  python bench/bench_knee.py clips --root data/synth --epochs 30 --clips 4 16
  python bench/bench_knee.py collect --bench runs/bench --out bench/curves/regimes
  python bench/bench_knee.py collect --bench runs/bench --row planned:plateau_knee --out bench/curves/regimes-plateau
  python bench/bench_knee.py ends --bench runs/bench

Everything runs on one thread (torch.set_num_threads(1)) so several engineers can share cores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from optplan.knee import METHODS, first_stop, read_curve, write_curve

# name -> stages (state fields, epochs); the curves job trains each from scratch.
RUNS = {
    "c8_lr0.02": [({"lr": 0.02, "clip_length": 8}, 40), ({"lr": 0.002, "clip_length": 8}, 25)],
    "c4_lr0.05": [({"lr": 0.05, "clip_length": 4}, 40), ({"lr": 0.005, "clip_length": 4}, 25)],
    "c8_lr0.005": [({"lr": 0.005, "clip_length": 8}, 40)],
    "c16_lr0.01": [({"lr": 0.01, "clip_length": 16}, 30), ({"lr": 0.001, "clip_length": 16}, 20)],
}


def _config(root: str, out: str, extra: list[str]):
    from optplan.config import load_config

    return load_config(None, [f"data.root={root}", "data.num_workers=0", "train.threads=1",
                              "train.progress=false", f"out={out}", *extra])


def _stage(name: str, fields: dict, epochs: int) -> dict:
    return {"state": {"name": name, "batch_size": 8, **fields}, "epochs": epochs}


def job_curves(args: argparse.Namespace) -> None:
    from optplan.train.replay import train_schedule

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| run | stage | epochs | start | best (epoch) | last | seconds |\n|---|---|---|---|---|---|---|")
    for name, stages in RUNS.items():
        if args.only and name not in args.only:
            continue
        label = name + args.tag
        cfg = _config(args.root, str(Path(args.runs) / label), args.override)
        schedule = {"stages": [_stage(f"{label}_s{i}", f, e) for i, (f, e) in enumerate(stages)]}
        tic = time.perf_counter()
        result = train_schedule(schedule, cfg, cfg.out)
        for i, curve in enumerate(result.curves):
            write_curve(out / f"{label}_s{i}.csv", curve)
            best = int(np.nanargmax(curve))
            print(f"| {label} | {i} | {len(curve) - 1} | {curve[0]:.3f} | {curve[best]:.3f} ({best}) "
                  f"| {curve[-1]:.3f} | {time.perf_counter() - tic:.0f} |", flush=True)


def job_knee(args: argparse.Namespace) -> None:
    paths = sorted(Path(args.curves).glob("*.csv"))
    if not paths:
        sys.exit(f"no curves in {args.curves}; run the curves job first")
    print("| curve | T | rule | epochs spent | kept epoch | real score kept | best seen | gap | reported score |")
    print("|---|---|---|---|---|---|---|---|---|")
    decisions: dict[tuple[str, int, str], object] = {}
    for path in paths:
        curve = read_curve(path)
        best = max(curve)
        for patience in args.patience:
            for method in METHODS:
                knee = decisions[path.stem, patience, method] = first_stop(curve, patience, method)
                if knee is None:
                    print(f"| {path.stem} | {patience} | {method} | >{len(curve) - 1} (no stop) | - | - "
                          f"| {best:.3f} | - | - |")
                    continue
                real = curve[knee.epoch]
                print(f"| {path.stem} | {patience} | {method} | {knee.epochs} | {knee.epoch} | {real:.3f} "
                      f"| {best:.3f} | {best - real:.3f} | {knee.score:.3f} |")
    # Compare rules on the curves where the paper rule decided (its decision is the reference).
    print("\n| T | rule | stopped (all curves) | on the paper-decided curves: mean epochs spent "
          "| same kept epoch (+-1) as paper | mean gap to best |\n|---|---|---|---|---|---|")
    curves = {p.stem: read_curve(p) for p in paths}
    for patience in args.patience:
        decided = [c for c in curves if decisions[c, patience, "paper"] is not None]
        for method in METHODS:
            stopped = sum(decisions[c, patience, method] is not None for c in curves)
            spent, gaps, same = [], [], 0
            for c in decided:
                knee, paper = decisions[c, patience, method], decisions[c, patience, "paper"]
                if knee is None:  # never stopped: it spent the whole recorded curve at least
                    spent.append(len(curves[c]) - 1)
                    continue
                spent.append(knee.epochs)
                gaps.append(max(curves[c]) - curves[c][knee.epoch])
                same += abs(knee.epoch - paper.epoch) <= 1
            print(f"| {patience} | {method} | {stopped}/{len(curves)} | {np.mean(spent) if spent else math.nan:.1f} "
                  f"| {same}/{len(decided)} | {np.mean(gaps) if gaps else math.nan:.3f} |")


def job_collect(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    found = 0
    row = args.row.replace(":", "_")
    for result in sorted(Path(args.bench).glob(f"*/seed*/runs/{row}/plan/result.json")):
        regime, seed = result.parts[-6], result.parts[-5].removeprefix("seed")
        for edge in json.loads(result.read_text())["edges"]:
            if edge["status"] == "done":
                write_curve(out / f"{regime}_s{seed}_{edge['source']}-{edge['target']}.csv", edge["curve"])
                found += 1
    print(f"{found} curves written to {out}")


def job_ends(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from optplan.config import load_config
    from optplan.knee import KneeRule

    print("| plan | end (recorded scores) | its val score | end (clipped scores) | its val score | "
          "nodes whose winning edge changes |\n|---|---|---|---|---|---|")
    row = args.row.replace(":", "_")
    for result in sorted(Path(args.bench).glob(f"*/seed*/runs/{row}/plan/result.json")):
        plan = result.parent
        rule = replace(KneeRule.from_config(load_config(plan / "config.yaml").knee), clip_score=True)
        nodes = {}  # node -> {edge: (recorded score, clipped score, measured score at the kept epoch)}
        for e in json.loads(result.read_text())["edges"]:
            if e["status"] == "done":
                clipped = rule.decide(e["curve"]).score
                nodes.setdefault(e["target"], {})[f"{e['source']}->{e['target']}"] = (
                    e["score"], clipped, e["curve"][e["knee"]["epoch"]])
        ends = []
        for k in (0, 1):
            winners = {n: max(cands.items(), key=lambda kv: kv[1][k]) for n, cands in nodes.items()}
            end = max(winners, key=lambda n: winners[n][1][k])
            ends.append((end, winners[end][1][2], {n: w[0] for n, w in winners.items()}))
        changed = [n for n in ends[0][2] if ends[0][2][n] != ends[1][2][n]]
        name = f"{result.parts[-6]} seed {result.parts[-5].removeprefix('seed')}"
        print(f"| {name} | {ends[0][0]} | {ends[0][1]:.3f} | {ends[1][0]} | {ends[1][1]:.3f} | "
              f"{', '.join(changed) or 'none'} |")


def job_clips(args: argparse.Namespace) -> None:
    from optplan.train.logging import read_log
    from optplan.train.multiview import evaluate
    from optplan.train.replay import train_schedule
    from optplan.train.session import TrainSession

    out = Path(args.out)
    print("| clip | epochs | lr | best val score | final val score | val top-1 (1 view) | test top-1 "
          "(multi-view) | test top-5 | train seconds |\n|---|---|---|---|---|---|---|---|---|")
    for clip in args.clips:
        cfg = _config(args.root, str(out / f"clip{clip}"), args.override)
        session = TrainSession(cfg)
        stage = _stage(f"c{clip}", {"lr": args.lr, "clip_length": clip}, args.epochs)
        result = train_schedule({"stages": [stage]}, cfg, cfg.out, session=session)
        last = read_log(cfg.out)[-1]
        test = evaluate(cfg, result.checkpoint, out=Path(cfg.out) / "test.json", session=session)
        curve = result.curves[0]
        print(f"| {clip} | {args.epochs} | {args.lr} | {max(curve):.3f} | {curve[-1]:.3f} | {last['top1']:.3f} "
              f"| {test['top1']:.3f} | {test['top5']:.3f} | {result.cost.seconds:.0f} |", flush=True)
        (Path(cfg.out) / "summary.json").write_text(json.dumps({"curve": curve, "test": test}, indent=2))
        Path(args.curves).mkdir(parents=True, exist_ok=True)
        write_curve(Path(args.curves) / f"clip{clip}_lr{args.lr}.csv", curve)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="job", required=True)
    c = sub.add_parser("curves")
    c.add_argument("--root", default="data/synth")
    c.add_argument("--out", default="bench/curves", help="where the curve CSVs go")
    c.add_argument("--runs", default="/tmp/optplan_bench/curves", help="run directories (checkpoints)")
    c.add_argument("--only", nargs="*", default=None, help="run names to train (default: all)")
    c.add_argument("--tag", default="", help="suffix of the run names, e.g. _seed1 with train.seed=1")
    c.add_argument("override", nargs="*", help="config overrides, e.g. data.crop_size=48")
    k = sub.add_parser("knee")
    k.add_argument("--curves", default="bench/curves")
    k.add_argument("--patience", type=int, nargs="+", default=[10, 5])
    s = sub.add_parser("clips")
    s.add_argument("--root", default="data/synth")
    s.add_argument("--out", default="/tmp/optplan_bench/clips", help="run directories")
    s.add_argument("--curves", default="bench/curves", help="where the curve CSVs go")
    s.add_argument("--epochs", type=int, default=30)
    s.add_argument("--lr", type=float, default=0.02)
    s.add_argument("--clips", type=int, nargs="+", default=[4, 16])
    s.add_argument("override", nargs="*")
    g = sub.add_parser("collect")
    g.add_argument("--bench", required=True, help="an `optplan bench --out` directory")
    g.add_argument("--out", default="bench/curves/regimes")
    g.add_argument("--row", default="planned", help="the planner row whose plans to read, e.g. planned:paper")
    e = sub.add_parser("ends")
    e.add_argument("--bench", required=True, help="an `optplan bench --out` directory")
    args = parser.parse_args()
    {"curves": job_curves, "knee": job_knee, "clips": job_clips, "collect": job_collect,
     "ends": job_ends}[args.job](args)


if __name__ == "__main__":
    main()

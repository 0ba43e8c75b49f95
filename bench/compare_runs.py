"""Do two `optplan bench` output directories agree, row by row? (Is the benchmark repeatable?)

For every (regime, seed, row) finished in both OUTs: test top-1 and training GFLOPs of each,
and whether they are the same. Rows that train a fixed schedule from a fixed seed (the plan,
its replay, the hand-tuned rows) should repeat on the same machine when their budget is the
same; PBT and ASHA depend on when trials finish and need not.

  python bench/compare_runs.py OUT_A OUT_B [--tol 0.0005]
  python bench/compare_runs.py OUT_A OUT_B [OUT_C ...] --pool

An OUT may also be a committed results folder that holds only ``summary*.json`` files (such as
``bench/results/cpu2-cap20``): its rows are read from the summaries' per-seed figures.

Prints a markdown table per regime and a count of the rows that agree. ``--pool`` instead treats
each (OUT, seed) of two or more OUTs as one paired draw (two runs whose data differ in a few encoded videos train
differently from the first epoch on, and their plans and budgets differ): per regime and row,
the mean paired difference to the planned row of the same draw with a 95% t-interval, and on
how many draws the row is ahead of the planner.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(out: Path) -> dict[tuple[str, int, str], dict]:
    """(regime, seed, row) -> the row's JSON, for every finished row of ``out`` (or, where
    ``out`` holds no row files, what its ``summary*.json`` files say of each row and seed)."""
    found = {}
    for path in sorted(out.glob("*/seed*/*.json")):
        regime, seed = path.parent.parent.name, path.parent.name
        if not seed.removeprefix("seed").isdigit():
            continue
        found[(regime, int(seed.removeprefix("seed")), path.stem)] = json.loads(path.read_text())
    return found or summarised(out)


def summarised(out: Path) -> dict[tuple[str, int, str], dict]:
    """(regime, seed, row) -> the figures a summary keeps per seed (top-1, GFLOPs), for every
    ``summary*.json`` in ``out``."""
    found = {}
    for path in sorted(out.glob("summary*.json")):
        for regime, table in json.loads(path.read_text())["regimes"].items():
            for row in table["rows"]:
                for seed in row["seeds"]:
                    found[(regime, int(seed), row["name"])] = {
                        "name": row["name"], **{k: row[k][str(seed)] for k in ("top1", "train_gflops")}}
    return found


def pooled(outs: dict[str, dict[tuple[str, int, str], dict]]) -> None:
    """Per regime: each row's paired difference to the planned row over every (OUT, seed)."""
    from optplan.bench.rows import row_label
    from optplan.bench.summary import paired_interval

    draws, seen = {}, {}
    for name, found in outs.items():
        for (regime, seed, row), result in sorted(found.items()):
            if row != "planned":
                continue
            # the same plan on the same seed is the same draw (every fixed row then repeats too)
            key = (regime, seed, round(result["top1"], 6), round(result["train_gflops"], 3))
            if key not in seen:
                seen[key] = name
                draws[(name, regime, seed)] = found
    if not draws:
        raise SystemExit(f"no finished planned row in {' or '.join(outs)}: nothing to pair the other rows with")
    for regime in sorted({k[1] for k in draws}):
        mine = [(name, seed) for (name, r, seed) in sorted(draws) if r == regime]
        print(f"\n#### {regime} ({len(mine)} draws: " + ", ".join(f"{n} seed {s}" for n, s in mine) + ")\n")
        labels = {row: row_label(result.get("name", row)) for found in outs.values()
                  for (r, _, row), result in found.items() if r == regime}
        print("| row | draws | test top-1 (mean) | Δ vs planned [95% CI] | ahead of the planner |")
        print("|---|---|---|---|---|")
        names = sorted({row for found in outs.values() for (r, _, row) in found if r == regime},
                       key=lambda n: (n != "planned", n))
        for row in names:
            pairs = [(outs[n][(regime, s, row)]["top1"], outs[n][(regime, s, "planned")]["top1"])
                     for n, s in mine if (regime, s, row) in outs[n]]
            if not pairs:
                continue
            d = paired_interval([a - b for a, b in pairs])
            ci = f" [{d['lo']:+.3f}, {d['hi']:+.3f}]" if d["lo"] is not None else ""
            print(f"| {labels[row]} | {len(pairs)} | {sum(a for a, _ in pairs) / len(pairs):.3f} | "
                  f"{d['mean']:+.3f}{ci} | {sum(a > b for a, b in pairs)}/{len(pairs)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("more", type=Path, nargs="*", help="further OUTs (with --pool only)")
    parser.add_argument("--tol", type=float, default=5e-4,
                        help="largest top-1 difference counted as the same (default: under one test video in 1,200)")
    parser.add_argument("--pool", action="store_true", help="pool both OUTs' seeds as paired draws")
    args = parser.parse_args()
    if args.pool:
        pooled({str(out): rows(out) for out in (args.a, args.b, *args.more)})
        return
    if args.more:
        parser.error("row by row compares exactly two OUTs; pool more with --pool")
    a, b = rows(args.a), rows(args.b)
    common = sorted(set(a) & set(b))
    if not common:
        raise SystemExit(f"no finished row is in both {args.a} and {args.b}")
    same_total, by_row = 0, {}
    for regime in sorted({k[0] for k in common}):
        print(f"\n#### {regime}\n")
        print("| row | seed | top-1 A | top-1 B | train GFLOPs A | train GFLOPs B | same |")
        print("|---|---|---|---|---|---|---|")
        for key in (k for k in common if k[0] == regime):
            ra, rb = a[key], b[key]
            same = (abs(ra["top1"] - rb["top1"]) <= args.tol
                    and abs(ra["train_gflops"] - rb["train_gflops"]) <= 1e-3 * max(1.0, ra["train_gflops"]))
            same_total += same
            by_row.setdefault(key[2], []).append(same)
            print(f"| {key[2]} | {key[1]} | {ra['top1']:.3f} | {rb['top1']:.3f} | {ra['train_gflops']:,.0f} "
                  f"| {rb['train_gflops']:,.0f} | {'yes' if same else 'no'} |")
    print(f"\n{same_total} of {len(common)} rows agree; per row: "
          + ", ".join(f"{name} {sum(v)}/{len(v)}" for name, v in sorted(by_row.items())))


if __name__ == "__main__":
    main()

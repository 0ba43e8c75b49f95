"""Do two `optplan bench` output directories agree, row by row? (Is the benchmark repeatable?)

For every (regime, seed, row) finished in both OUTs: test top-1 and training GFLOPs of each,
and whether they are the same. Rows that train a fixed schedule from a fixed seed (the plan,
its replay, the hand-tuned rows) should repeat on the same machine when their budget is the
same; PBT and ASHA depend on when trials finish and need not.

  python bench/compare_runs.py OUT_A OUT_B [--tol 0.0005]

Prints a markdown table per regime and a count of the rows that agree.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(out: Path) -> dict[tuple[str, int, str], dict]:
    """(regime, seed, row) -> the row's JSON, for every finished row of ``out``."""
    found = {}
    for path in sorted(out.glob("*/seed*/*.json")):
        regime, seed = path.parent.parent.name, path.parent.name
        if not seed.removeprefix("seed").isdigit():
            continue
        found[(regime, int(seed.removeprefix("seed")), path.stem)] = json.loads(path.read_text())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--tol", type=float, default=5e-4,
                        help="largest top-1 difference counted as the same (default: under one test video in 1,200)")
    args = parser.parse_args()
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

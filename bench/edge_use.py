"""Which edges of a planner's graph earn their search GFLOPs? (What can a cheaper graph drop?)

For every finished search of one planner row in one or more `optplan bench` output directories,
each edge kind (``source->target``, the same across seeds) with: the search GFLOPs it cost per
unit, how often it won its node (the kept candidate the DP builds on), how often it lay on the
chosen path, and how often ``knee.max_epochs`` stopped it. An edge that never wins its node
changes nothing downstream, since every later edge trains from the node's winner with a seed
fixed by (train.seed, state, epoch): dropping it gives the same plan, bit for bit, for its
GFLOPs less. That is the argument for ``plan.start_lr_levels=2`` in bench/RESULTS.md.

  python bench/edge_use.py OUT [OUT ...] [--row planned] [--regimes appearance scene]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def plan_dirs(outs: list[Path], row: str = "planned", regimes: list[str] | None = None) -> list[Path]:
    """The plan directory of every finished ``row`` search under ``outs`` (regime, then seed)."""
    found = sorted(p.parent for out in outs for p in out.glob(f"*/seed*/runs/{row}/plan/result.json"))
    found = [d for d in found if regimes is None or d.parents[3].name in regimes]
    if not found:
        raise SystemExit(f"no finished '{row}' search under {', '.join(map(str, outs))}")
    return found


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options both scripts share: bench OUTs, the planner row, the regimes."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("outs", nargs="+", type=Path, help="optplan bench output directories")
    parser.add_argument("--row", default="planned", help="the planner row (a variant's name for a variant)")
    parser.add_argument("--regimes", nargs="+", help="only these regimes (default: every one found)")
    return parser


def edge_table(results: list[dict]) -> list[dict]:
    """Per edge kind over ``results``: units, GFLOPs per unit, node wins, path uses, cap stops."""
    kinds: dict[str, dict] = defaultdict(lambda: {"units": 0, "gflops": 0.0, "wins": 0, "path": 0, "cap": 0})
    for result in results:
        winners = {d["name"]: d["candidates"][0]["edge"] for d in result["decisions"] if d["candidates"]}
        names = ["start"] + [stage["name"] for stage in result["path"]]
        on_path = {f"{a}->{b}" for a, b in zip(names, names[1:])}
        for edge in result["edges"]:
            name = f"{edge['source']}->{edge['target']}"
            kind = kinds[name]
            kind["units"] += 1
            kind["gflops"] += edge["epochs"] * result["epoch_gflops"][edge["target"]]
            kind["wins"] += winners.get(edge["target"]) == name
            kind["path"] += name in on_path
            kind["cap"] += result["stop_reasons"].get(name) == "cap"
    return [{"edge": name, **k, "gflops": k["gflops"] / k["units"]}
            for name, k in sorted(kinds.items(), key=lambda item: -item[1]["gflops"])]


def main() -> None:
    args = arguments(__doc__).parse_args()
    found: dict[str, list[dict]] = defaultdict(list)
    for plan_dir in plan_dirs(args.outs, args.row, args.regimes):
        found[plan_dir.parents[3].name].append(json.loads((plan_dir / "result.json").read_text()))
    for regime, results in sorted(found.items()):
        table = edge_table(results)
        total = sum(k["gflops"] * k["units"] for k in table) / len(results)
        idle = [k for k in table if k["wins"] == 0]
        print(f"\n#### {regime}: {len(results)} searches, {total:,.0f} search GFLOPs per unit\n")
        print("| edge | searches | GFLOPs per unit | won its node | on the path | stopped by the cap |")
        print("|---|---:|---:|---:|---:|---:|")
        for k in table:
            print(f"| {k['edge']} | {k['units']} | {k['gflops']:,.0f} | {k['wins']} | {k['path']} | {k['cap']} |")
        spent = sum(k["gflops"] * k["units"] for k in idle) / len(results)
        print(f"\nnever won its node: {', '.join(k['edge'] for k in idle) or 'none'} "
              f"({spent:,.0f} GFLOPs per unit, {spent / total:.0%} of the search)")


if __name__ == "__main__":
    main()

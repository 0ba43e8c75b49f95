"""A rule that only ever trains an edge less, asked of the real curves of finished searches.

For racing (issue 10, item 5), a lower knee.max_epochs, an earlier knee: every finished planner
search under the given `optplan bench` output directories is planned again from its own recorded
curves (:class:`optplan.plan.simulate.RecordedTrainer`, no training) with its own config, first
as recorded (which must give its plan back: the check that the replay is faithful), then with
each set of overrides asked (``--what``; default: ``plan.racing`` judged after 3, 6 and 9
epochs). The benchmark's planner rows run their edges one at a time (``plan.executor:
inprocess``), as the replay does, so where no node's winner is cut short the replanned plan *is*
what the live search would have planned, for the search GFLOPs reported. A search whose recorded
winner of some node ended earlier is counted as changed: what its later edges would have
measured is in no record. (bench/bench_racing.py asks racing of simulated surfaces instead.)

    python bench/replan_recorded.py OUT [OUT ...] [--row planned] [--regimes R ...] [--what "plan.racing=true plan.race_after=9" ...]
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

from edge_use import arguments, plan_dirs  # bench/ is the script's own directory


def replan(plan_dir: Path, overrides: list[str]):
    """The search in ``plan_dir`` planned again from its recorded curves, with ``overrides``."""
    from optplan.config import load_config
    from optplan.plan import PlanResult, RecordedTrainer, run_plan

    recorded = PlanResult.load(plan_dir)
    cfg = load_config(plan_dir / "config.yaml", ["plan.executor=inprocess", *overrides])
    with tempfile.TemporaryDirectory() as tmp:
        return run_plan(cfg, tmp, trainer=RecordedTrainer(recorded), progress=False)


def main() -> None:
    from optplan.plan import PlanResult, recorded_winner_cut

    parser = arguments(__doc__)
    parser.add_argument("--what", action="append", help="overrides to ask, space-separated (repeatable)")
    args = parser.parse_args()
    plans = plan_dirs(args.outs, args.row, args.regimes)
    settings = args.what or [f"plan.racing=true plan.race_after={after}" for after in (3, 6, 9)]
    rows: dict[tuple, dict] = defaultdict(lambda: defaultdict(float))
    for plan_dir in plans:
        regime = plan_dir.parents[3].name
        recorded = PlanResult.load(plan_dir)
        again = replan(plan_dir, [])
        if (again.nodes, again.path_epochs) != (recorded.nodes, recorded.path_epochs):
            raise SystemExit(f"{plan_dir}: its own curves planned {again.nodes} {again.path_epochs}, not the "
                             f"recorded {recorded.nodes} {recorded.path_epochs}: the replay is not faithful")
        for what in settings:
            raced = replan(plan_dir, what.split())
            row = rows[(regime, what)]
            row["searches"] += 1
            row["gflops"] += recorded.search_gflops
            row["raced_gflops"] += raced.search_gflops
            row["edges"] += len(raced.edges)
            row["raced"] += sum(e.knee is not None and e.knee.stop == "race" for e in raced.edges)
            row["cap"] += sum(reason == "cap" for reason in raced.stop_reasons.values())
            cut = recorded_winner_cut(recorded, raced)
            row["cut"] += bool(cut)
            row["same"] += not cut and (raced.nodes, raced.path_epochs) == (recorded.nodes, recorded.path_epochs)
            print(f"{plan_dir}: {what}: {raced.search_gflops:,.0f} of "
                  f"{recorded.search_gflops:,.0f} GFLOPs; winners cut: {', '.join(cut) or 'none'}", flush=True)
    print("\n| regime | asked | searches | search GFLOPs saved | edges raced "
          "| edges at the cap | searches with a winner cut | same plan (exact) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (regime, what), r in sorted(rows.items()):
        print(f"| {regime} | `{what}` | {r['searches']:.0f} | {1 - r['raced_gflops'] / r['gflops']:.1%} "
              f"| {r['raced']:.0f} / {r['edges']:.0f} | {r['cap']:.0f} | {r['cut']:.0f} | {r['same']:.0f} |")


if __name__ == "__main__":
    main()

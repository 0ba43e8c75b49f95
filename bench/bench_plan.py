"""Planner benchmarks: DP and bookkeeping on a 1,000-node graph, the planner's share of a real
plan's wall time, and the process-pool speed-up on the paper graph.

    .venv/bin/python bench/bench_plan.py                 # all three (about a minute)
    .venv/bin/python bench/bench_plan.py --only dp
    .venv/bin/python bench/bench_plan.py --only overhead --run RUN   # a finished 'optplan plan'

1. ``dp``: a grid of 10 learning rates x 10 clip lengths x 10 frame steps (1,000 states, each
   move one level along one field) planned with a zero-cost simulated trainer whose edges end
   after one epoch without a curve fit (``max_epochs=1``), so what is timed is the planner:
   scheduling, node decisions, records, the store, the result and its Pareto front. Goal < 1 s.
2. ``overhead``: for a real plan, wall time outside edge runs over total wall time (goal < 2%).
3. ``pool``: the paper's 3 x 3 graph with a simulated trainer sleeping ``--sleep`` s per epoch,
   in-process vs a process pool; also the ideal speed-up (epochs / epochs on the critical path).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def bench_dp(repeats: int = 3) -> None:
    from optplan.plan import InMemoryStore, Planner, SimulatedTrainer, SQLiteStore, grid_graph

    axes = {"lr": [0.1 * 0.5 ** i for i in range(10)], "clip_length": [4 + 2 * i for i in range(10)],
            "frame_step": list(range(1, 11))}
    t0 = time.perf_counter()
    graph = grid_graph(axes, rules=["monotone_lr", "monotone_clip", "forward", "one_change", "adjacent"])
    build = time.perf_counter() - t0
    print(f"dp: graph of {len(graph.states)} states and {len(graph.edges)} edges built in {build:.3f} s")
    trainer = SimulatedTrainer()
    for name in ("memory", "sqlite"):
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                store = InMemoryStore() if name == "memory" else SQLiteStore(Path(tmp) / "plan.sqlite")
                t0 = time.perf_counter()
                r = Planner(graph, trainer, store, patience=10, max_epochs=1).run()
                total = time.perf_counter() - t0
                store.close()
            print(f"dp[{name}]: {total:.3f} s total, planner {total - r.train_seconds:.3f} s, "
                  f"inside edge runs {r.train_seconds:.3f} s ({len(r.edges)} edges, "
                  f"{len(r.pareto)} Pareto points, path of {len(r.path)} states)")


def bench_overhead(run: Path | None) -> None:
    from optplan.plan import PlanResult

    if run is None:
        print("overhead: pass --run RUN (a directory written by 'optplan plan')")
        return
    r = PlanResult.load(run)
    share = r.overhead_seconds / r.search_seconds if r.search_seconds else 0.0
    print(f"overhead: {run}: {r.search_seconds:.2f} s wall, {r.train_seconds:.2f} s in "
          f"{len(r.edges)} edge runs, planner {r.overhead_seconds:.3f} s = {100 * share:.2f}%")


def critical_path_epochs(result) -> int:
    """Epochs on the longest chain of edges, each waiting for its source node's decision."""
    ready = {result.decisions[0].name: 0}  # node -> epoch count when decided
    by_target: dict[str, list] = {}
    for e in result.edges:
        by_target.setdefault(e.target, []).append(e)
    for d in result.decisions[1:]:
        ready[d.name] = max(ready[e.source] + e.epochs for e in by_target[d.name])
    return max(ready.values())


def bench_pool(workers: list[int], sleep: float) -> None:
    from optplan.plan import Planner, ProcessExecutor, SimulatedTrainer, StateGraph

    graph = StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    trainer = SimulatedTrainer(speed=1.0, overfit=0.015, epoch_seconds=sleep)
    t0 = time.perf_counter()
    ref = Planner(graph, trainer, patience=4).run()
    serial = time.perf_counter() - t0
    ideal = ref.search_epochs / critical_path_epochs(ref)
    print(f"pool: paper graph, {ref.search_epochs} epochs x {sleep} s sleep; in-process {serial:.2f} s; "
          f"ideal speed-up {ideal:.2f}x (critical path {critical_path_epochs(ref)} epochs)")
    for n in workers:
        with ProcessExecutor(n) as pool:
            pool.submit(trainer, _warm_job()).result()  # time the plan, not the workers' start
            t0 = time.perf_counter()
            r = Planner(graph, trainer, patience=4, executor=pool).run()
            wall = time.perf_counter() - t0
        same = r.nodes == ref.nodes and r.score == ref.score
        print(f"pool[{n} workers]: {wall:.2f} s, speed-up {serial / wall:.2f}x, same result: {same}")


def _warm_job():
    from optplan.plan import EdgeJob
    from optplan.train.state import State

    return EdgeJob("warm-up", None, State(name="w", lr=0.1, clip_length=4), patience=1, max_epochs=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["dp", "overhead", "pool"])
    p.add_argument("--run", type=Path, help="run directory of a real plan (overhead)")
    p.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    p.add_argument("--sleep", type=float, default=0.1, help="simulated seconds per epoch (pool)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.only in (None, "dp"):
        bench_dp()
    if args.only in (None, "overhead"):
        bench_overhead(args.run)
    if args.only in (None, "pool"):
        bench_pool(args.workers, args.sleep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

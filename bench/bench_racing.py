"""Racing (issue 10, item 5): search epochs and GFLOPs saved, and whether the chosen path
changes, on random simulated surfaces.

    .venv/bin/python bench/bench_racing.py                      # 12 surfaces, T = 4 and 10
    .venv/bin/python bench/bench_racing.py --seeds 30 --patience 10

Each surface (``SimulatedTrainer.random(seed)``) is planned on the 'auto' 3 x 3 graph twice,
without and with ``plan.racing`` (margin 0.01; an edge judged after T epochs, the default, or
after 5), noise-free (the curves follow the knee model: the case the racing bound is sound
for) and with Gaussian noise of std 0.01 and 0.03 per score (where it is not guaranteed). Both plans of a surface fit the same curves until an edge is cut, so
knee fits are memoised by curve (exact: a fit is a pure function of the curve).
"""

from __future__ import annotations

import argparse
import functools


def memoise_fits() -> None:
    from optplan import knee

    fit = functools.lru_cache(maxsize=None)(knee._fit_params)
    knee._fit_params = lambda scores: fit(tuple(float(s) for s in scores))


def compare(seeds: int, patience: int, noise: float, after: int | None) -> str:
    """One row: both plans of every surface, the path compared for both ``plan.final``s."""
    from optplan.plan import Planner, SimulatedTrainer, StateGraph
    from optplan.plan.racing import RACE, Racing

    graph = StateGraph.preset("auto", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    epochs, gflops = [0, 0], [0.0, 0.0]
    changed, raced, edges, drop = [0, 0], 0, 0, 0.0
    for seed in range(seeds):
        trainer = SimulatedTrainer.random(seed, noise=noise, seed=seed)
        for i, end in enumerate(("graph", "best")):
            full = Planner(graph, trainer, patience=patience, end=end).run()
            race = Planner(graph, trainer, patience=patience, end=end, racing=Racing(after=after)).run()
            if race.nodes != full.nodes or race.path_epochs != full.path_epochs:
                changed[i] += 1
                drop += full.score - race.score
        for i, r in enumerate((full, race)):  # the same edges train whatever the end node
            epochs[i] += r.search_epochs
            gflops[i] += r.search_gflops
        raced += sum(e.knee is not None and e.knee.stop == RACE for e in race.edges)
        edges += len(race.edges)
    return (f"| {patience} | {after or 'T'} | {noise:g} | {seeds} | {epochs[0]} -> {epochs[1]} "
            f"({1 - epochs[1] / epochs[0]:.1%}) | {1 - gflops[1] / gflops[0]:.1%} | "
            f"{raced}/{edges} | {changed[0]} / {changed[1]} | {drop / max(sum(changed), 1):+.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12, help="random surfaces per row")
    parser.add_argument("--patience", type=int, nargs="+", default=[4, 10], help="knee T values")
    args = parser.parse_args()
    memoise_fits()
    print("| T | judged after | noise | surfaces | search epochs (saved) | search GFLOPs saved "
          "| edges raced | paths changed (final node / best node) | mean score lost where changed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for patience in args.patience:
        for after in [None] + ([5] if patience > 5 else []):
            for noise in (0.0, 0.01, 0.03):
                print(compare(args.seeds, patience, noise, after), flush=True)


if __name__ == "__main__":
    main()

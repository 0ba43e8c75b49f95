"""Run the benchmark: every regime x seed x row, each row cached as it finishes.

``OUT/<regime>/seed<s>/<row>.json`` holds a finished row (delete it to measure again) and
``OUT/<regime>/seed<s>/runs/`` its run directories (a killed row resumes there: plans from their
store, replays from ``last.pt``); ``runs/settings.json`` records what the finished rows were
measured with, and a run with other settings is refused (:mod:`optplan.bench.settings`).
``OUT/summary.json`` and ``OUT/table.md`` are rewritten after every row, so they always show
what is finished.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

from optplan.bench.config import ROW_KINDS, BenchConfig, RegimeSpec, parse_row
from optplan.bench.rows import RowContext, expand_rows, run_row
from optplan.bench.settings import check_unit
from optplan.bench.summary import markdown, summarize
from optplan.errors import OptplanError
from optplan.records_io import write_atomic

SUMMARY_FILE, TABLE_FILE = "summary.json", "table.md"
RAY_LOCK = "ray.lock"
RAY_ROWS = ("pbt", "asha")  # rows that run a local Ray


def regime_root(out: Path, name: str, spec: RegimeSpec) -> Path:
    """The regime's dataset: ``spec.root``, or the built-in one generated into OUT/data/NAME
    (made once; a directory made with other arguments is refused)."""
    if spec.root is not None:
        if not spec.root.is_dir():
            raise OptplanError(f"regime {name!r}: dataset root {str(spec.root)!r} does not exist")
        return spec.root
    from optplan.data.synth import synthesize

    root = out / "data" / name
    args = spec.synth.model_dump()
    marker = root / "bench-synth.json"
    if marker.is_file():
        if json.loads(marker.read_text()) != args:
            raise OptplanError(f"{root} was generated with other arguments than regime {name!r} now "
                               f"asks for; delete it or use another --out")
        return root
    print(f"[bench] generating regime {name!r} into {root} ...", file=sys.stderr, flush=True)
    synthesize(root, **args)
    marker.write_text(json.dumps(args))
    return root


def run_bench(bench: BenchConfig, out: str | Path, seeds: list[int], *, regimes: list[str] | None = None,
              jobs: int = 1, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the benchmark into ``out``; returns the summary (also ``summary.json``).

    ``jobs`` > 1 runs that many rows at once in worker processes (each trains with the config's
    own thread count, 1 in the shipped bench file), so one command keeps every core busy to the
    end; the rows and tables are the same as with ``jobs=1``, which runs the (regime, seed)
    units one after the other."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    if jobs < 1:
        raise OptplanError(f"--jobs must be at least 1, got {jobs}")
    chosen = regimes or list(bench.regimes)
    unknown = [r for r in chosen if r not in bench.regimes]
    if unknown:
        raise OptplanError(f"unknown regimes {unknown}; the bench config has {list(bench.regimes)}")
    (out / "bench.json").write_text(json.dumps(bench.model_dump(mode="json"), indent=1))
    roots = {regime: regime_root(out, regime, bench.regimes[regime]) for regime in chosen}
    # seed-major: a partial run still covers every regime
    units = [(regime, roots[regime], seed) for seed in seeds for regime in chosen]
    for regime, root, seed in units:  # before anything trains: never mix rows of other settings
        cfg = unit_config(bench, regime, root, seed)
        check_unit(unit_dir(out, regime, seed), bench, cfg, _unit_rows(bench, cfg), finished_rows(out, regime, seed))

    def refresh() -> dict[str, Any]:
        results: dict[str, dict[str, dict[int, dict[str, Any]]]] = {r: {} for r in chosen}
        collect(out, chosen, seeds, results)
        return write_outputs(out, bench, results)

    if jobs == 1:
        for unit in units:
            run_unit(bench, out, *unit, log=log, on_row=refresh)
        return refresh()
    _run_rows_in_parallel(bench, out, units, jobs, refresh)
    return refresh()


def unit_config(bench: BenchConfig, regime: str, root: Path, seed: int) -> Any:
    """The optplan config every row of one (regime, seed) unit trains from: the bench's config
    with the regime's overrides, its data at ``root`` (absolute, so a row's stored config runs
    from anywhere) and the seed; no progress bars or TensorBoard in a benchmark's workers."""
    return bench.base([*bench.regimes[regime].overrides, f"data.root={root.resolve()}", f"train.seed={seed}",
                       "train.progress=false", "train.tensorboard=false"])


def _unit_rows(bench: BenchConfig, cfg: Any) -> list[str]:
    return expand_rows(bench.rows, bench.variants, list(cfg.plan.clip_lengths))


def _is_ray(name: str) -> bool:
    return name.partition("@")[0] in RAY_ROWS


def unit_dir(out: Path, regime: str, seed: int) -> Path:
    """The folder of one (regime, seed) unit: its rows' results and, under ``runs/``, their runs."""
    return out / regime / f"seed{seed}"


def row_file(out: Path, regime: str, seed: int, name: str) -> Path:
    """Where row ``name`` of one (regime, seed) unit keeps its result; its presence marks the row
    done when a run resumes."""
    return unit_dir(out, regime, seed) / f"{name.replace(':', '_')}.json"


def _longest_first(name: str) -> tuple[int, int]:
    """The order rows start in, so a ``--jobs`` run does not end on one long row alone: the
    search's own model first (a test of seconds, so a stopped run has it), the Ray rows whenever
    none runs (they take turns, 18 of 4-5 minutes in the shipped benchmark), then the rows that
    took longest in the timed run (bench/RESULTS.md): random search, planner variants, the
    multi-clip schedules, single clips (the short ones are slower per GFLOP)."""
    kind, clip, _ = parse_row(name)
    order = ("search_model", "asha", "pbt", "random_x3", "random", "planned:", "short_long", "multigrid")
    rank = next((i for i, k in enumerate(order) if kind.startswith(k)), len(order))
    return rank, clip or 0


def _run_rows_in_parallel(bench: BenchConfig, out: Path, units: list[tuple[str, Path, int]], jobs: int,
                          refresh: Callable[[], Any]) -> None:
    """Every unfinished row of every unit as its own task on ``jobs`` worker processes.

    A unit's planned row goes first (every other budget comes from it); then its rows join one
    queue, longest first, and no two Ray rows run at once (each starts a local Ray). Rows are
    independent of the order they run in, so the tables are those of ``jobs=1``."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    from optplan.plan.executors import die_with_driver

    todo = [(unit, name) for unit in units for name in _unit_rows(bench, unit_config(bench, *unit))
            if not row_file(out, unit[0], unit[2], name).is_file()]
    planned = {unit: row_file(out, unit[0], unit[2], "planned").is_file() for unit in units}

    def next_task(ray_busy: bool) -> tuple[tuple[str, Path, int], str] | None:
        ready = [t for t in todo if (t[1] == "planned" or planned[t[0]]) and not (ray_busy and _is_ray(t[1]))]
        return min(ready, key=lambda t: (t[1] != "planned", _longest_first(t[1]), units.index(t[0])),
                   default=None)

    context = multiprocessing.get_context("spawn")
    running: dict[Future, tuple[tuple[str, Path, int], str]] = {}
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=die_with_driver,
                             initargs=(os.getpid(),)) as pool:
        while todo or running:
            while len(running) < jobs:
                task = next_task(any(_is_ray(name) for _, name in running.values()))
                if task is None:
                    break
                todo.remove(task)
                running[pool.submit(run_unit, bench, out, *task[0], names=[task[1]])] = task
            done, _ = wait(running, timeout=30, return_when=FIRST_COMPLETED)
            refresh()  # rows finished by any worker so far
            for future in done:
                unit, name = running.pop(future)
                future.result()  # a failed row stops the run (finished rows stay cached)
                planned[unit] = planned[unit] or name == "planned"


def run_unit(bench: BenchConfig, out: Path, regime: str, root: Path, seed: int, *,
             names: Collection[str] | None = None, log: Callable[[str], None] | None = None,
             on_row: Callable[[], Any] | None = None) -> None:
    """Every row of one (regime, seed), or only ``names``, each cached in
    ``OUT/<regime>/seed<s>/<row>.json`` as it finishes (rows already there are skipped; a
    finished planned row is read back, since every other row's budget comes from it)."""
    from optplan.train.session import TrainSession

    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    cfg = unit_config(bench, regime, root, seed)
    work = unit_dir(out, regime, seed)
    ctx = RowContext(cfg, TrainSession(cfg), work / "runs", seed, bench)
    for name in _unit_rows(bench, cfg):
        path = row_file(out, regime, seed, name)
        if name != "planned" and (path.is_file() or names is not None and name not in names):
            continue
        plan_dir = work / "runs" / "planned" / "plan"
        if name == "planned" and path.is_file():  # later rows need the plan itself
            from optplan.plan.result import RESULT_FILE, PlanResult

            if not (plan_dir / RESULT_FILE).is_file():
                raise OptplanError(f"{path} is finished but its plan {plan_dir / RESULT_FILE} is "
                                   f"missing; delete {path} to plan this seed again")
            ctx.plan = PlanResult.load(plan_dir)
            continue
        if names is not None and name not in names:
            raise OptplanError(f"{regime} seed {seed}: rows {sorted(names)} need the planned row first")
        log(f"[bench {time.strftime('%H:%M:%S')}] {regime} seed {seed}: {name} ...")
        # Ray rows start a local Ray of their own: one at a time per OUT, whatever --jobs says
        with _exclusive(out / RAY_LOCK) if _is_ray(name) else nullcontext():
            row = run_row(name, ctx)
        write_atomic(path, json.dumps(row, indent=1, default=str) + "\n")  # read by refresh() meanwhile
        log(f"[bench] {regime} seed {seed}: {name}: test top-1 {row['top1']:.3f}, "
            f"{row['train_gflops']:,.0f} train GFLOPs, {row['wall_seconds']:.0f} s "
            f"(load {row['load'][0]} -> {row['load'][1]})")
        if on_row is not None:
            on_row()


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Wait for and hold an exclusive ``flock`` on ``path`` (released when the holder dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def finished_rows(out: Path, regime: str, seed: int) -> set[str]:
    """The names of the rows finished in one unit."""
    return {json.loads(path.read_text()).get("name", path.stem) for path in unit_dir(out, regime, seed).glob("*.json")}


def collect(out: Path, regimes: list[str], seeds: list[int], results: dict) -> None:
    """Read the rows already finished under ``out`` into ``results[regime][row][seed]``."""
    for regime in regimes:
        for seed in seeds:
            for path in sorted(unit_dir(out, regime, seed).glob("*.json")):
                row = json.loads(path.read_text())
                results[regime].setdefault(row["name"], {})[seed] = row


def write_outputs(out: Path, bench: BenchConfig, results: dict) -> dict[str, Any]:
    """``summary.json`` and ``table.md`` from the rows finished so far."""
    regimes = {}
    for regime, rows in results.items():
        ordered = {n: rows[n] for n in sorted(rows, key=row_order)}
        regimes[regime] = {"rows": summarize(ordered, bench.budget_tolerance), "about": _about(rows)}
    summary = {"regimes": regimes, "budget_tolerance": bench.budget_tolerance}
    write_atomic(out / SUMMARY_FILE, json.dumps(summary, indent=1, default=str) + "\n")
    write_atomic(out / TABLE_FILE, markdown(regimes))
    return summary


def row_order(name: str) -> tuple[int, str, int, float]:
    """Planner rows first, then the kinds in :data:`ROW_KINDS` order, single clips by length,
    each at its base lr before its lr multipliers."""
    kind, clip, scale = parse_row(name)
    base = kind.partition(":")[0]
    return ROW_KINDS.index(base) if base in ROW_KINDS else len(ROW_KINDS), kind, clip or 0, scale or 0.0


def _about(rows: dict[str, dict[int, dict[str, Any]]]) -> str:
    """One line on the planned rows: test videos, knee metric, paths chosen, and the replays
    that fell :data:`~optplan.train.schedule.SHORTFALL` or more below the search's run of the
    same schedule (a stalled run the table's mean would otherwise hide)."""
    from optplan.train.schedule import SHORTFALL

    planned = rows.get("planned", {})
    if not planned:
        return ""
    any_row = next(iter(planned.values()))
    paths = "; ".join(f"seed {s}: {' -> '.join(r['nodes'])}" for s, r in sorted(planned.items()))
    short = [f"seed {s} ({r['val_score'] + r['replay_shortfall']:.3f} -> {r['val_score']:.3f})"
             for s, r in sorted(planned.items()) if (r.get("replay_shortfall") or 0.0) >= SHORTFALL]
    fell = (f" Replays that ended {SHORTFALL} or more below their search's run on validation: "
            f"{', '.join(short)}.") if short else ""
    draws = sorted({r.get("replay_draw", 0) for r in planned.values()})
    drawn = "" if draws == [0] else (
        f" The replays train an independent run of each plan (train.draw {', '.join(map(str, draws))}), "
        f"the search's-model row the search's own run.")
    shares = sorted({r.get("average_last", 0.0) for r in planned.values()} - {0.0})
    averaged = "" if not shares else (
        f" Every replayed schedule (the planned, hand-tuned and random-search rows) ends on the average "
        f"of the weights of its last {', '.join(f'{s:.0%}' for s in shares)} of epochs within its last stage "
        f"(train.average_last).")
    return (f"{any_row.get('test_videos')} test videos; knee metric {any_row.get('knee_metric')}; "
            f"planned paths: {paths}.{drawn}{averaged}{fell}")

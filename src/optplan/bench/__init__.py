"""The compute-fair benchmark: the planner against hand-tuned schedules and other searchers.

``run_bench(bench_config, out, seeds)`` plans every data regime for every seed, replays the
planned path from scratch, trains every hand-tuned schedule at the planned replay's training
GFLOPs, runs PBT, ASHA and random search over whole schedules at the planner's search GFLOPs,
tests every final model on the test split and writes ``summary.json`` and ``table.md``. Rows
are cached one file each, so an interrupted benchmark resumes row by row. ``optplan bench`` is
the command-line form.
"""

from __future__ import annotations

from optplan._lazy import lazy_exports

_names, __getattr__, __dir__ = lazy_exports(__name__, {
    "config": ["BenchConfig", "load_bench_config"],
    "runner": ["run_bench"],
    "summary": ["summarize", "markdown"],
})
__all__ = _names

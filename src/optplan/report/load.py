"""Read a run directory of ``optplan plan`` into :class:`~optplan.report.data.ReportData`.

Everything about the plan comes from the planner's own result (:func:`optplan.plan.runner.load_result`:
``RUN/result.json``, or what the store holds so far for a plan that has not finished), which
carries the graph, the chosen path and why each edge stopped. Beside it: each edge's per-epoch
log (``log.jsonl`` in the edge's directory, where the video trainer writes its losses) and two
optional files: the test of the final model (``RUN/eval.json``, or what ``optplan eval`` writes
beside the model by default; e.g. ``{"top1": 0.71, "confusion": [[...]], "classes": [...]}``)
and ``RUN/baselines.json`` (``[{"name": ..., "top1": ..., "epochs": ...}, ...]``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optplan.errors import OptplanError
from optplan.plan.records import EdgeRecord
from optplan.plan.result import PlanResult
from optplan.plan.runner import EVAL_FILE, SCHEDULE_FILE, eval_command, load_result, replay_command, resume_command
from optplan.report.data import EdgeView, ReportData
from optplan.train.logging import read_log
from optplan.train.multiview import default_out

BASELINES_FILE = "baselines.json"


def edge_losses(record: EdgeRecord, run_dir: Path | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(training loss, validation loss) per epoch of an edge from its ``log.jsonl``, which lies
    beside the edge's kept model (or its snapshot, while it trains); ((), ()) when the trainer
    keeps no files. A resumed epoch logged twice counts as its last record."""
    checkpoint = record.checkpoint or record.snapshot
    path = checkpoint.file(run_dir) if checkpoint is not None and record.epochs > 0 else None
    if path is None:
        return (), ()
    by_epoch = {r["epoch"]: r for r in read_log(path.parent) if isinstance(r.get("epoch"), int)}
    if not by_epoch:
        return (), ()

    def series(key: str) -> tuple[float, ...]:
        values = [by_epoch.get(epoch, {}).get(key) for epoch in range(1, record.epochs + 1)]
        return tuple(float(v) if isinstance(v, (int, float)) else math.nan for v in values)
    return series("loss"), series("val_loss")


def edge_view(record: EdgeRecord, stop: str = "", run_dir: Path | None = None) -> EdgeView:
    """The report's view of one recorded edge that stopped for the reason ``stop`` (NaN scores
    become None); its losses are read from its log under ``run_dir``."""
    knee = record.knee
    score = knee.score if knee is not None and math.isfinite(knee.score) else None
    train_loss, val_loss = edge_losses(record, run_dir)
    return EdgeView(source=record.source, target=record.target, curve=tuple(record.curve),
                    epochs=record.epochs, status=record.status,
                    knee_epoch=knee.epoch if knee is not None else None, knee_score=score,
                    knee_params=tuple(knee.params) if knee is not None and knee.params else None,
                    seconds=record.seconds, slot=record.slot, stop=stop,
                    train_loss=train_loss, val_loss=val_loss)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise OptplanError(f"{path} is not readable JSON ({err}); fix or remove it") from None


def read_baselines(path: Path) -> list[dict[str, Any]]:
    """Baseline rows, each a mapping with at least a ``name``; [] when the file is absent."""
    if not path.is_file():
        return []
    rows = _read_json(path)
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "name" in r for r in rows):
        raise OptplanError(f"{path} must hold a list of objects with a 'name' (and e.g. 'top1', "
                           "'epochs'), like [{\"name\": \"cosine\", \"top1\": 0.61, \"epochs\": 60}]")
    return rows


def read_evaluation(run_dir: Path, result: PlanResult) -> dict[str, Any] | None:
    """Test metrics of the final model: ``RUN/eval.json``, else the file ``optplan eval``
    writes beside the final model by default; None when neither exists."""
    model = result.model_path
    for path in (run_dir / EVAL_FILE, *([default_out(model, "test")] if model is not None else [])):
        if path.is_file():
            metrics = _read_json(path)
            if not isinstance(metrics, dict):
                raise OptplanError(f"{path} must hold an object of metrics, e.g. {{\"top1\": 0.71}}")
            return metrics
    return None


def load_run(run_dir: str | Path) -> ReportData:
    """Everything the report shows about the plan in ``run_dir``, finished or not.

    Raises :class:`OptplanError` when ``run_dir`` holds no plan.
    """
    run = Path(run_dir)
    result = load_result(run)
    graph = result.graph
    evaluation = read_evaluation(run, result)
    finished = result.unfinished is None
    stops = result.stop_reasons
    name = run.resolve().name
    return ReportData(
        start=graph.start, final=graph.final, states=dict(graph.states),
        edges=[edge_view(r, stops[r.id], run) for r in result.edges], path=list(result.chosen),
        stages=list(result.stages), score=result.score, search_epochs=result.search_epochs,
        search_seconds=result.search_seconds, search_gflops=result.search_gflops,
        replay_gflops=result.replay_gflops, knee_metric=result.knee_metric, score_clip=result.score_clip,
        title=f"optplan report: {name}" if finished else f"optplan report: {name} (unfinished)",
        baselines=read_baselines(run / BASELINES_FILE), evaluation=evaluation,
        notes=list(result.notes), pareto=list(result.pareto_gflops),
        budget_gflops=result.budget_gflops, unfinished=result.unfinished,
        graph_edges=[(e.source, e.target) for e in graph.edges],
        replay_command=replay_command(run) if finished and (run / SCHEDULE_FILE).is_file() else None,
        eval_command=(eval_command(run, result.model_path)
                      if evaluation is None and result.model_path is not None else None),
        resume_command=None if finished else resume_command(run))

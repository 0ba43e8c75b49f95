"""Read a run directory of ``optplan plan`` into :class:`~optplan.report.data.ReportData`.

Everything comes through the planner's own API: ``PlanResult.load`` (``RUN/result.json``) for
the path, edges and cost, and the store's recorded fingerprint (``RUN/plan.sqlite``) for the
graph that was planned. Optional extras beside them:
``RUN/eval.json`` (test metrics of the final model, e.g. ``{"top1": 0.71, ...}``) and
``RUN/baselines.json`` (``[{"name": ..., "top1": ..., "epochs": ...}, ...]``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optplan.errors import OptplanError
from optplan.plan import PlanResult, SQLiteStore, StateGraph
from optplan.plan.records import EdgeRecord, NodeRecord
from optplan.plan.result import RESULT_FILE
from optplan.plan.store import STORE_FILE
from optplan.report.data import EdgeView, ReportData

EVAL_FILE = "eval.json"
BASELINES_FILE = "baselines.json"


def edge_view(record: EdgeRecord) -> EdgeView:
    """The report's view of one stored edge (NaN scores become None)."""
    knee = record.knee
    score = knee.score if knee is not None and math.isfinite(knee.score) else None
    return EdgeView(source=record.source, target=record.target, curve=tuple(record.curve),
                    epochs=record.epochs, status=record.status,
                    knee_epoch=knee.epoch if knee is not None else None, knee_score=score,
                    knee_params=tuple(knee.params) if knee is not None and knee.params else None,
                    seconds=record.seconds, slot=record.slot)


def chosen_nodes(decisions: list[NodeRecord], start: str, final: str) -> list[str]:
    """The chosen path from the nodes' decisions, start excluded and choice nodes included
    (``PlanResult.nodes`` lists states only), by following each best model's parent."""
    by_name = {d.name: d for d in decisions}
    nodes, node, slot = [], final, 0
    while node != start:
        record = by_name.get(node)
        if record is None or slot >= len(record.candidates):
            raise OptplanError(f"the plan's decisions do not lead from {final!r} back to {start!r}")
        nodes.append(node)
        cand = record.candidates[slot]
        node, slot = cand.parent, cand.parent_slot
    return nodes[::-1]


def planned_graph(run_dir: Path) -> StateGraph:
    """The graph the plan ran on, as the planner recorded it in the store."""
    store = SQLiteStore.in_run_dir(run_dir)
    try:
        fingerprint = store.get_meta("config") or {}
    finally:
        store.close()
    if "graph" not in fingerprint:
        raise OptplanError(f"{run_dir / STORE_FILE} records no state graph; is it a plan's store?")
    return StateGraph.from_dict(fingerprint["graph"])


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


def read_evaluation(path: Path) -> dict[str, Any] | None:
    """Test metrics of the final model, or None when the file is absent."""
    if not path.is_file():
        return None
    metrics = _read_json(path)
    if not isinstance(metrics, dict):
        raise OptplanError(f"{path} must hold an object of metrics, e.g. {{\"top1\": 0.71}}")
    return metrics


def load_run(run_dir: str | Path) -> ReportData:
    """Everything the report shows about the plan in ``run_dir``.

    Raises :class:`OptplanError` when ``run_dir`` is not a finished plan's directory.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise OptplanError(f"run directory {str(run)!r} does not exist; give the --out of an "
                           "'optplan plan' run")
    if not (run / STORE_FILE).is_file():
        raise OptplanError(f"{str(run)!r} holds no {STORE_FILE}: it is not a plan's run directory "
                           "(make one with 'optplan plan CONFIG --out RUN')")
    if not (run / RESULT_FILE).is_file():
        raise OptplanError(f"{str(run)!r} holds no {RESULT_FILE}: the plan has not finished; "
                           f"finish it with 'optplan plan --resume --out {run}', then report")
    try:
        result = PlanResult.load(run / RESULT_FILE)
    except (ValueError, KeyError, TypeError) as err:
        raise OptplanError(f"{run / RESULT_FILE} is not a plan result ({err!r}); "
                           "run 'optplan plan --resume' to write it again") from None
    graph = planned_graph(run)
    return ReportData(
        start=graph.start, final=graph.final, states=dict(graph.states),
        edges=[edge_view(r) for r in result.edges],
        path=chosen_nodes(result.decisions, graph.start, graph.final),
        stages=list(result.stages), score=result.score, search_epochs=result.search_epochs,
        search_seconds=result.search_seconds, search_gflops=result.search_gflops,
        replay_gflops=result.replay_gflops, knee_metric=result.knee_metric, score_clip=result.score_clip,
        title=f"optplan report: {run.resolve().name}",
        baselines=read_baselines(run / BASELINES_FILE),
        evaluation=read_evaluation(run / EVAL_FILE), notes=list(result.notes),
        pareto=list(result.pareto_gflops), budget_gflops=result.budget_gflops)

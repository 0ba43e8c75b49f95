"""Plan a config into a run directory: the library form of ``optplan plan``.

Writes ``plan.sqlite`` (every edge, epoch and decision, as it goes), ``config.yaml``,
``result.json`` and ``schedule.yaml`` (what ``optplan train --schedule`` replays). Running
again into the same directory resumes; a directory planned with another config is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from optplan.config import OptplanConfig, dump_config
from optplan.errors import OptplanError
from optplan.knee import KneeRule
from optplan.plan.executors import make_executor
from optplan.plan.graph import StateGraph, Validator
from optplan.plan.objective import Objective
from optplan.plan.planner import Planner
from optplan.plan.protocol import EdgeTrainer
from optplan.plan.racing import Racing
from optplan.plan.result import RESULT_FILE, PlanResult
from optplan.plan.space import BEST
from optplan.plan.store import SQLiteStore
from optplan.train.state import State

SCHEDULE_FILE = "schedule.yaml"

# Keys that change how a plan runs but not what it finds: free to differ on resume.
RUNTIME_KEYS: dict[str, tuple[str, ...] | None] = {
    "out": None, "plan": ("executor", "workers", "ray_address", "budget_epochs"),
    "train": ("progress", "tensorboard"), "data": ("num_workers",)}


def result_config(cfg: OptplanConfig) -> dict[str, Any]:
    """The config as a dict without :data:`RUNTIME_KEYS` (what a resumed run must match)."""
    tree = cfg.model_dump(mode="json")
    for section, keys in RUNTIME_KEYS.items():
        if keys is None:
            tree.pop(section, None)
        else:
            for key in keys:
                tree[section].pop(key, None)
    return tree


def make_trainer(cfg: OptplanConfig, run_dir: Path, simulate: bool = False) -> EdgeTrainer:
    """The video trainer for ``cfg`` (or the simulated one, which trains nothing)."""
    if simulate:
        from optplan.plan.simulate import SimulatedTrainer

        return SimulatedTrainer(cfg.plan.simulate)
    from optplan.train.edge import VideoEdgeTrainer

    return VideoEdgeTrainer(cfg, run_dir)


def model_validator(cfg: OptplanConfig) -> Validator:
    """A graph validator refusing states whose clips the configured model cannot take."""
    from optplan.models import create_model

    model = create_model(cfg.model.name, num_classes=2, **cfg.model.kwargs)
    shortest = getattr(model, "min_clip_length", 1)

    def check(state: State) -> str | None:
        if state.clip_length < shortest:
            return (f"clip_length {state.clip_length} is shorter than model {cfg.model.name!r} "
                    f"accepts ({shortest} frames); raise plan.clip_lengths")
        return None
    return check


def run_plan(cfg: OptplanConfig, run_dir: str | Path | None = None, *, simulate: bool = False,
             trainer: EdgeTrainer | None = None, progress: bool = True) -> PlanResult:
    """Plan ``cfg``'s state graph into ``run_dir`` (default ``cfg.out``) and return the result.

    ``trainer`` replaces the video trainer (a user's own :class:`EdgeTrainer`). With the video
    trainer, states with clips shorter than the model accepts and a dataset that cannot be read
    (missing root or lists, too many bad files) are refused before any training.
    """
    checked = trainer is None and not simulate
    graph = StateGraph.from_config(cfg.plan, validator=model_validator(cfg) if checked else None)
    if checked:
        from optplan.data.splits import load_splits

        load_splits(cfg.data, cfg.train.seed)  # probes every file once (cached), fails fast
    run_dir = Path(run_dir if run_dir is not None else cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    if trainer is None:
        trainer = make_trainer(cfg, run_dir, simulate)
    store = SQLiteStore.in_run_dir(run_dir)
    executor = make_executor(cfg.plan.executor, cfg.plan.workers, cfg.plan.ray_address)
    try:
        planner = Planner(graph, trainer, store, rule=KneeRule.from_config(cfg.knee), executor=executor,
                          beam=cfg.plan.beam,
                          budget_epochs=cfg.plan.budget_epochs, progress=progress,
                          config=result_config(cfg),
                          end="best" if cfg.plan.final == BEST else "graph",
                          objective=Objective.from_config(cfg.plan),
                          racing=Racing(cfg.plan.race_margin, cfg.plan.race_after) if cfg.plan.racing else None)
        store.check_config(planner.fingerprint())  # refuse a foreign run dir before writing
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        result = planner.run()
        # 'auto' resolves once the trainer knows the classes (the video trainer says to what)
        result.knee_metric = getattr(trainer, "knee_metric", cfg.knee.metric)
    finally:
        executor.close()
        store.close()
    result.save(run_dir / RESULT_FILE)
    (run_dir / SCHEDULE_FILE).write_text(yaml.safe_dump(result.schedule, sort_keys=False))
    return result


def require_store(run_dir: Path) -> None:
    """Refuse ``--resume`` of a directory that holds no plan."""
    from optplan.plan.store import STORE_FILE

    if not (run_dir / STORE_FILE).is_file():
        raise OptplanError(f"--resume: {run_dir / STORE_FILE} does not exist; nothing to resume")

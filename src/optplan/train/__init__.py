"""Training engine: one state to its knee, schedule replay, multi-view evaluation.

``train_state(source, state, cfg, run_dir)`` trains a :class:`State` until the knee rule stops
it; ``train_schedule(schedule, cfg, run_dir)`` replays stages from scratch;
``evaluate(cfg, checkpoint)`` runs the multi-view test. Every epoch of either trains in
``optplan.train.epoch.EpochTrainer``. ``optplan.train.edge.VideoEdgeTrainer`` is the planner's
adapter. Names are imported lazily so that ``optplan.train.State`` does not pull
in torch and the video stack.
"""

from __future__ import annotations

from optplan._lazy import lazy_exports
from optplan.state import State

_names, __getattr__, __dir__ = lazy_exports(__name__, {
    "cost": ["Cost", "ClipFlops"],
    "epoch": ["EpochTrainer"],
    "run": ["StateResult", "StateRun", "train_state"],
    "replay": ["ScheduleResult", "train_schedule"],
    "schedule": ["Schedule", "Stage", "load_schedule"],
    "multiview": ["evaluate"],
    "session": ["TrainSession"],
    "edge": ["VideoEdgeTrainer"],
})
__all__ = ["State", *_names]

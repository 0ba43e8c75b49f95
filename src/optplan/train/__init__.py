"""Training engine: one state to its knee, schedule replay, multi-view evaluation.

``train_state(source, state, cfg, run_dir)`` trains a :class:`State` until the knee rule stops
it; ``train_schedule(schedule, cfg, run_dir)`` replays stages from scratch;
``evaluate(cfg, checkpoint)`` runs the multi-view test. ``optplan.train.edge.VideoEdgeTrainer``
is the planner's adapter. Names are imported lazily so that ``optplan.train.state`` (which the
planner's protocol needs) does not pull in torch and the video stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from optplan.train.state import State

_LAZY = {
    "train_state": "optplan.train.run",
    "StateRun": "optplan.train.run",
    "StateResult": "optplan.train.run",
    "Cost": "optplan.train.run",
    "train_schedule": "optplan.train.replay",
    "ScheduleResult": "optplan.train.replay",
    "Schedule": "optplan.train.schedule",
    "Stage": "optplan.train.schedule",
    "load_schedule": "optplan.train.schedule",
    "write_schedule": "optplan.train.schedule",
    "evaluate": "optplan.train.multiview",
    "TrainSession": "optplan.train.session",
    "VideoEdgeTrainer": "optplan.train.edge",
}

__all__ = ["State", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optplan.train' has no attribute {name!r}")

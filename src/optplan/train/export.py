"""A schedule as another framework's config fragment, to train a planned schedule there.

``export_schedule(schedule, "mmaction2")`` gives Python config lines for MMAction2 / MMEngine:
``train_cfg`` (``max_epochs``), the first stage's learning rate in ``optim_wrapper`` and a
``param_scheduler`` of ``MultiStepLR`` entries (one entry, or one per distinct ratio, each with
``begin=0`` and ``by_epoch=True``, so the milestones are absolute epochs and MMEngine's chained
schedulers multiply into each stage's learning rate). ``"pyslowfast"`` gives YAML for PySlowFast's
``SOLVER`` (``LR_POLICY: steps_with_relative_lrs``, ``STEPS`` from 0, ``LRS`` relative to
``BASE_LR``, ``MAX_EPOCH``, no warm-up).

Neither framework changes the clip setting (frames, sampling, batch, frozen BN) at given epochs
of one run (PySlowFast's MULTIGRID cycles shapes on its own rule), so the per-stage clip
settings are written as comments, with the framework's own names, together with everything
else the fragment cannot express: such a stage is trained there as one run per clip setting,
each loading the previous one's checkpoint, or here with ``optplan train --schedule``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from optplan.errors import OptplanError
from optplan.train.schedule import Constant, Schedule, Stage

FRAMEWORKS = ("mmaction2", "pyslowfast")


class Span(NamedTuple):
    """A trained stage and its epochs ``[begin, end)`` counted from the start of the schedule."""

    begin: int
    end: int
    stage: Stage


def spans(schedule: Schedule) -> list[Span]:
    """The stages that train (0-epoch stages dropped) with their absolute epoch ranges."""
    out, begin = [], 0
    for stage in schedule.stages:
        if stage.epochs:
            out.append(Span(begin, begin + stage.epochs, stage))
            begin += stage.epochs
    return out


def _number(x: float) -> str:
    """A float as a config writes it, without the binary noise of a division (0.1, not
    0.09999999999999999)."""
    return repr(float(f"{x:.12g}"))


def _clip(stage: Stage, framework: str) -> str:
    """The stage's clip setting in the framework's own terms."""
    s = stage.state
    if framework == "mmaction2":
        if s.sampling == "uniform":
            sampler = f"dict(type='UniformSample', clip_len={s.clip_length}, num_clips=1)"
        else:
            sampler = f"dict(type='SampleFrames', clip_len={s.clip_length}, frame_interval={s.frame_step}, num_clips=1)"
        return f"{sampler}, batch_size={s.batch_size}, accumulative_counts={s.accumulation}"
    rate = "uniform over the video" if s.sampling == "uniform" else s.frame_step
    batch = (f"{s.effective_batch} ({s.batch_size} x {s.accumulation} accumulated here)"
             if s.accumulation > 1 else s.batch_size)
    return f"DATA.NUM_FRAMES={s.clip_length}, DATA.SAMPLING_RATE={rate}, TRAIN.BATCH_SIZE={batch}"


def _notes(schedule: Schedule, framework: str) -> list[str]:
    """Comment lines: one per stage, then what the fragment cannot express."""
    trained = spans(schedule)
    lines = [f"optplan schedule: {len(trained)} stages, {schedule.epochs} epochs"]
    for i, (begin, end, stage) in enumerate(trained, 1):
        s = stage.state
        bn = ", frozen BN statistics" if s.frozen_bn else ""
        lines.append(f"stage {i} '{s.name}': epochs {begin}-{end}, lr {_number(s.lr)}: {_clip(stage, framework)}{bn}")
    lines.append("Not expressed by this fragment:")
    settings = {(_clip(sp.stage, framework), sp.stage.state.frozen_bn) for sp in trained}
    lines.append("- the clip settings above change at stage boundaries; one run trains one setting, so "
                 "train each stage as its own run loading the previous one's checkpoint"
                 if len(settings) > 1 else "- the clip setting above belongs in the data pipeline")
    if framework == "pyslowfast":
        lines.append("- MULTIGRID cycles clip shapes on its own rule, not at these epochs")
    for i, (_, _, stage) in enumerate(trained, 1):
        if not isinstance(stage.lr_schedule, Constant) or stage.lr_schedule.warmup:
            lines.append(f"- stage {i}'s lr_schedule {stage.lr_schedule.model_dump(by_alias=True)} "
                         "(exported as its constant base lr)")
        if stage.state.extra:
            lines.append(f"- stage {i}'s extra settings {stage.state.extra}")
        if stage.state.sampling == "uniform" and stage.state.frames_per_segment > 1:
            k = stage.state.frames_per_segment
            lines.append(f"- stage {i}'s uniform clips are {stage.state.clip_length // k} segments x {k} frames "
                         "in a row (the framework's uniform sampling takes one frame per segment)")
    if len(trained) > 1:
        lines.append("- the fresh optimiser (momentum reset) at every stage boundary")
    return lines


def _mmaction2(schedule: Schedule) -> list[str]:
    trained = spans(schedule)
    lrs = [sp.stage.state.lr for sp in trained]
    # one MultiStepLR per distinct ratio between consecutive stages; chained, they multiply
    by_ratio: dict[str, list[int]] = {}
    for (prev, nxt), span in zip(zip(lrs, lrs[1:]), trained[1:]):
        if _number(nxt / prev) != _number(1.0):
            by_ratio.setdefault(_number(nxt / prev), []).append(span.begin)
    total = schedule.epochs
    lines = [f"train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={total}, val_begin=1, val_interval=1)",
             f"optim_wrapper = dict(optimizer=dict(lr={_number(lrs[0])}))"]
    entries = [f"    dict(type='MultiStepLR', by_epoch=True, begin=0, end={total}, milestones={milestones}, "
               f"gamma={gamma}),"
               for gamma, milestones in by_ratio.items()]
    if not entries:
        entries = [f"    dict(type='ConstantLR', by_epoch=True, begin=0, end={total}, factor=1.0),"]
    return [*lines, "param_scheduler = [", *entries, "]"]


def _pyslowfast(schedule: Schedule) -> list[str]:
    trained = spans(schedule)
    base = trained[0].stage.state.lr
    steps = ", ".join(str(sp.begin) for sp in trained)
    lrs = ", ".join(_number(sp.stage.state.lr / base) for sp in trained)
    return ["SOLVER:", f"  BASE_LR: {_number(base)}", "  LR_POLICY: steps_with_relative_lrs",
            f"  STEPS: [{steps}]", f"  LRS: [{lrs}]", f"  MAX_EPOCH: {schedule.epochs}",
            "  WARMUP_EPOCHS: 0.0  # the planned stages start at their lr"]


WRITERS: dict[str, Callable[[Schedule], list[str]]] = {"mmaction2": _mmaction2, "pyslowfast": _pyslowfast}


def export_schedule(schedule: Schedule, framework: str) -> str:
    """``schedule`` as ``framework``'s config fragment (see the module docstring), with the
    per-stage clip settings and what cannot be expressed as comments on top."""
    if framework not in WRITERS:
        raise OptplanError(f"cannot export to {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    partial = [i for i, s in enumerate(schedule.stages, 1) if s.epochs and s.last_epoch_share < 1.0]
    if partial:  # epoch-based schedulers have no part of an epoch
        raise OptplanError(f"stage {partial[0]} ends on a part of an epoch (last_epoch_share); "
                           f"{framework} schedules whole epochs: round it to whole epochs to export")
    notes = [f"# {line}" for line in _notes(schedule, framework)]  # '#' comments in Python and YAML
    return "\n".join([*notes, *WRITERS[framework](schedule)]) + "\n"

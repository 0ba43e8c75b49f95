"""``optplan train``: train one state to its knee, or replay a multi-stage schedule from scratch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from optplan.cli.common import add_config_arguments, config_from_args

if TYPE_CHECKING:
    from optplan.train.replay import ScheduleResult
    from optplan.train.schedule import SearchRun

RUN_FILE = "train.json"  # the settings a run directory was made with (see _run_record)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train one state to its knee, or replay a schedule",
        description="Train a model. --state STATE.yaml trains one state (from --source or from "
                    "scratch) until the knee rule (knee.*) stops it and keeps the knee epoch's "
                    "model (with knee.score_clip=longest its epochs are scored on the longest clip "
                    "setting of the plan section's states); --schedule SCHEDULE.yaml replays "
                    "{stages: [{state: ..., epochs: N}]} from scratch (a planned path or a hand-tuned baseline). Re-running into the "
                    "same --out resumes. Multi-process: torchrun --nproc_per_node=N $(which optplan) train ...")
    add_config_arguments(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--state", type=Path, metavar="STATE.yaml", help="a State: name, lr, clip_length, ...")
    what.add_argument("--schedule", type=Path, metavar="SCHEDULE.yaml", help="stages to replay")
    p.add_argument("--source", type=Path, default=None, metavar="CKPT",
                   help="with --state: start from these weights: an optplan, MMAction2 or PySlowFast "
                        "checkpoint or a state dict; a classifier of another class count is re-created "
                        "(default: from scratch or model.pretrained)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default: the config's out)")
    p.add_argument("--test", action="store_true",
                   help="afterwards, run the multi-view test on the test list (writes OUT/test.json)")
    p.add_argument("--quiet", action="store_true", help="no epoch bars (train.progress=false)")
    p.set_defaults(func=run)


def _read_state(path: Path):
    from pydantic import ValidationError

    from optplan.config import format_validation_error, read_yaml
    from optplan.errors import ConfigError
    from optplan.state import State

    tree = read_yaml(path)
    tree = tree.get("state", tree)  # accept {state: {...}} as a schedule stage writes it
    try:
        return State.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, f"state {str(path)!r}")) from None


def _run_record(args: argparse.Namespace, cfg, work) -> dict:
    """What a run directory was made with: the state or schedule, the source and the config
    (without the keys that change only how it runs, as a resumed plan allows)."""
    from optplan.plan.runner import result_config

    what = {"state": work.to_dict()} if args.state is not None else {"schedule": work.to_dict()}
    source = None if args.source is None else str(args.source)
    return json.loads(json.dumps({**what, "source": source, "config": result_config(cfg)}))


def _refuse_another_run(out: Path, record: dict) -> None:
    """Re-running into ``out`` resumes (or returns the finished result) only with the same
    settings; anything else would print the old result as if it were the new one. Options added
    since the run was made count as their defaults (as for a resumed plan)."""
    from optplan.errors import OptplanError
    from optplan.plan.runner import fingerprint_defaults
    from optplan.plan.store import config_diff, differing_keys

    path = out / RUN_FILE
    defaults = {"config": fingerprint_defaults()["config"]}
    if path.is_file() and differing_keys(stored := json.loads(path.read_text()), record, defaults):
        raise OptplanError(f"{out} holds a training run made with other settings:\n  "
                           + "\n  ".join(config_diff(stored, record, defaults=defaults))
                           + "\nuse a new --out, or the settings the run was made with")


def run(args: argparse.Namespace) -> int:
    from optplan.errors import OptplanError
    from optplan.train.schedule import load_schedule
    from optplan.train.session import TrainSession

    cfg = config_from_args(args)
    out = Path(args.out) if args.out is not None else Path(cfg.out)
    if args.source is not None and args.state is None:
        raise OptplanError("--source applies to --state only; a schedule always starts from scratch")
    # Check the state/schedule, and that --out holds no other run, before reading any video.
    work = _read_state(args.state) if args.state is not None else load_schedule(args.schedule)
    record = _run_record(args, cfg, work)
    _refuse_another_run(out, record)
    session = TrainSession(cfg)
    try:
        return _train(args, cfg, out, session, work, record)
    finally:
        if session.dist.active:
            import torch.distributed as dist

            dist.destroy_process_group()


def _space(cfg) -> tuple:
    """The states among which ``knee.score_clip: longest`` looks for the longest clip setting:
    the plan section's (none is needed for 'state')."""
    if cfg.knee.score_clip != "longest":
        return ()
    from optplan.plan.graph import StateGraph

    return tuple(StateGraph.from_config(cfg.plan).states.values())


def _train(args: argparse.Namespace, cfg, out: Path, session, work, record: dict) -> int:
    """Train into ``out`` holding its lock: a second writer is refused naming this process."""
    from optplan.config import dump_config
    from optplan.plan.lock import run_dir_lock

    if not session.dist.is_main:  # rank 0 holds the run directory for the whole group
        return _train_locked(args, cfg, out, session, work, record)
    out.mkdir(parents=True, exist_ok=True)
    with run_dir_lock(out):
        (out / "config.yaml").write_text(dump_config(cfg))
        (out / RUN_FILE).write_text(json.dumps(record, indent=1))
        return _train_locked(args, cfg, out, session, work, record)


def _train_locked(args: argparse.Namespace, cfg, out: Path, session, work, record: dict) -> int:
    """The training itself, its test and its summary (``out`` is held by rank 0)."""
    from optplan.train.multiview import evaluate
    from optplan.train.replay import train_schedule
    from optplan.train.run import train_state

    if args.state is not None:
        result = train_state(args.source, work, cfg, out, session=session, space=_space(cfg))
        knee = result.knee
        line = (f"knee at epoch {knee.epoch} of {result.cost.epochs} (score {knee.score:.4f}"
                f"{', diverged' if knee.diverged else ''}); kept {result.checkpoint}")
    else:
        result = train_schedule(work, cfg, out, session=session)
        averaged = "" if result.averaged is None else (
            f" (the average of the last {result.averaged_epochs} epochs' weights; the last epoch scored "
            f"{result.last_epoch_score:.4f})" if result.averaged_kept else
            f" (the last epoch's model: the average of the last {result.averaged_epochs} epochs' weights "
            f"scored {result.averaged:.4f})")
        line = (f"final validation score {result.final_score:.4f}{averaged} after {result.cost.epochs} epochs; "
                f"model {result.checkpoint}")
    summary = result.to_dict()
    if args.test:
        test = evaluate(cfg, result.checkpoint, out=out / "test.json", session=session)
        line += f"; test top-1 {test['top1']:.4f}, top-5 {test['top5']:.4f} (written to {out / 'test.json'})"
    if session.dist.is_main:
        print(json.dumps(summary, indent=2))
        print(line)
        if args.schedule is not None and result.fell_short:
            print(_shortfall_warning(work.search_run, result), file=sys.stderr)
    return 0


def _shortfall_warning(run: SearchRun, result: ScheduleResult) -> str:
    """What a user needs when a replay stalled: how far below the search's run it ended, that
    this is more than a training run's noise, and the two ways on."""
    model = f" ({run.model})" if run.model else ""
    return (f"warning: this replay ended at validation {run.metric} {result.final_score:.4f}, "
            f"{result.shortfall:.4f} below the {run.score:.4f} that the search's own run of the same "
            f"schedule reached: this training run stalled (on a GPU two runs of one schedule differ by "
            f"a few points, not by this much). Use the search's own model{model}, or replay again "
            f"with another train.draw (train.draw=1: other training randomness, the same split).")

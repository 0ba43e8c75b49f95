"""Plan a config into a run directory: the library form of ``optplan plan``.

Writes ``plan.sqlite`` (every edge, epoch and decision, as it goes), ``config.yaml``,
``result.json`` and ``schedule.yaml`` (what ``optplan train --schedule`` replays). Running
again into the same directory resumes; a directory planned with another config is refused,
and so is a second plan while one runs there (``plan.lock``). :func:`load_result` reads a run
directory back for other tools (the report), finished or not, with the commands that replay
and test its plan.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from optplan.config import OptplanConfig, dump_config, validate
from optplan.errors import OptplanError, space_for
from optplan.knee import KneeRule
from optplan.plan.executors import make_executor
from optplan.plan.graph import StateGraph, Validator
from optplan.plan.lock import run_dir_lock
from optplan.plan.objective import Objective
from optplan.plan.planner import Planner
from optplan.protocol import EdgeTrainer
from optplan.plan.climb import Climb
from optplan.plan.racing import Racing
from optplan.train.schedule import anneal
from optplan.plan.result import RESULT_FILE, PlanResult, planned_runs
from optplan.plan.space import BEST
from optplan.plan.store import STORE_FILE, SQLiteStore
from optplan.state import State
from optplan.train.scoring import describe

SCHEDULE_FILE = "schedule.yaml"
CONFIG_FILE = "config.yaml"
EVAL_FILE = "eval.json"  # the test of the plan's final model (what the demo writes; optional)
MADE_IN = "made_in"  # store meta: the directory a plan was started from (its relative paths' base)
PATH_KEYS = (("data", "root"), ("data", "train_list"), ("data", "val_list"), ("data", "test_list"),
             ("data", "class_names"), ("data", "cache_dir"), ("model", "pretrained_2d"))
"""Config paths that a relative value leaves depending on the working directory."""

# Keys that change how a plan runs but not what it finds: free to differ on resume.
RUNTIME_KEYS: dict[str, tuple[str, ...] | None] = {
    "out": None, "plan": ("executor", "workers", "ray_address", "budget_epochs", "replay_lr"),
    "train": ("progress", "tensorboard", "average_last"), "data": ("num_workers",)}


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


def relative_paths(tree: dict[str, Any]) -> list[str]:
    """Dotted :data:`PATH_KEYS` whose value in the config ``tree`` is a relative path."""
    found = []
    for section, key in PATH_KEYS:
        value = (tree.get(section) or {}).get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            found.append(f"{section}.{key}")
    return found


def fingerprint_defaults() -> dict[str, Any]:
    """What the config and knee keys of a plan's fingerprint hold by default: the values a run
    directory made before a key existed is read with (see :meth:`PlanStore.check_config`)."""
    return {"config": result_config(validate({})), "knee": KneeRule().to_dict()}


def make_trainer(cfg: OptplanConfig, run_dir: Path, graph: StateGraph, simulate: bool = False) -> EdgeTrainer:
    """The video trainer for ``cfg`` over ``graph``'s states (or the simulated one, which trains
    nothing)."""
    if simulate:
        from optplan.plan.simulate import SimulatedTrainer

        return SimulatedTrainer(cfg.plan.simulate)
    from optplan.train.edge import VideoEdgeTrainer

    return VideoEdgeTrainer(cfg, run_dir, space=graph.states.values())


def model_validator(cfg: OptplanConfig) -> Validator:
    """A graph validator refusing states whose clips the configured model cannot take (asked of
    :func:`optplan.models.clip_length_problem`, which builds no model). A ``model.pretrained_2d``
    file is inflated into a model once here, so a missing or foreign file is refused before the
    run directory is made."""
    from optplan.models import clip_length_problem, create_model

    if cfg.model.pretrained_2d is not None:
        create_model(cfg.model.name, num_classes=2, pretrained_2d=cfg.model.pretrained_2d, **cfg.model.kwargs)

    def check(state: State) -> str | None:
        problem = clip_length_problem(state.clip_length, cfg.model)
        return None if problem is None else f"{problem}; raise plan.clip_lengths"
    return check


def check_clip_spans(graph: StateGraph, longest: int | None) -> None:
    """Refuse states whose clips are longer than every video (``longest`` frames; None: some
    container does not say): every clip would be padded, and the planner would search noise."""
    from optplan.data.sampling import ClipSpec

    for name in graph.nodes:
        state = graph.state(name)
        span = ClipSpec.from_state(state).span if state is not None else 0
        if longest is not None and span > longest:
            raise OptplanError(f"state {name}: a clip spans {span} frames but the longest video has "
                               f"{longest}; lower plan.clip_lengths (or plan.frame_steps)")


def run_plan(cfg: OptplanConfig, run_dir: str | Path | None = None, *, simulate: bool = False,
             trainer: EdgeTrainer | None = None, progress: bool = True) -> PlanResult:
    """Plan ``cfg``'s state graph into ``run_dir`` (default ``cfg.out``) and return the result.

    ``trainer`` replaces the video trainer (a user's own :class:`EdgeTrainer`). With the video
    trainer, states with clips shorter than the model accepts and a dataset that cannot be read
    (missing root or lists, too many bad files) are refused before any training. The run
    directory is locked while the plan runs: a second plan into it is refused naming the first.
    """
    checked = trainer is None and not simulate
    graph = StateGraph.from_config(cfg.plan, validator=model_validator(cfg) if checked else None)
    if checked:
        from optplan.data.splits import load_splits

        splits = load_splits(cfg.data, cfg.train.seed)  # probes every file once (cached), fails fast
        check_clip_spans(graph, splits.longest())
    run_dir = Path(run_dir if run_dir is not None else cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_dir_lock(run_dir), space_for(run_dir):
        return _plan_into(run_dir, cfg, graph, trainer or make_trainer(cfg, run_dir, graph, simulate), progress,
                          reads_data=checked)


def _plan_into(run_dir: Path, cfg: OptplanConfig, graph: StateGraph, trainer: EdgeTrainer,
               progress: bool, reads_data: bool = False) -> PlanResult:
    """The plan itself, run by the holder of the run directory's lock."""
    refuse_lost_store(run_dir)
    store = SQLiteStore.in_run_dir(run_dir)
    try:
        _check_made_in(store, run_dir, cfg, reads_data)
    except OptplanError:
        store.close()
        raise
    executor = make_executor(cfg.plan.executor, cfg.plan.workers, cfg.plan.ray_address)
    try:
        # the chance floor needs the data's classes, which only the video trainer knows
        chance = getattr(trainer, "chance_score", None) if cfg.knee.chance_guard else None
        planner = Planner(graph, trainer, store, rule=KneeRule.from_config(cfg.knee, chance), executor=executor,
                          beam=cfg.plan.beam,
                          budget_epochs=cfg.plan.budget_epochs, progress=progress,
                          config=result_config(cfg),
                          end="best" if cfg.plan.final == BEST else "graph",
                          objective=Objective.from_config(cfg.plan),
                          racing=Racing(cfg.plan.race_margin, cfg.plan.race_after) if cfg.plan.racing else None,
                          climb=Climb(cfg.plan.climb_limit, cfg.plan.climb_epochs)
                          if cfg.plan.climb_limit is not None else None)
        # refuse a foreign run dir before writing; a run made before a new option resumes
        store.check_config(planner.fingerprint(), defaults=fingerprint_defaults())
        (run_dir / CONFIG_FILE).write_text(dump_config(cfg))
        result = planner.run()
        # 'auto' resolves once the trainer knows the classes (the video trainer says to what)
        result.knee_metric = getattr(trainer, "knee_metric", cfg.knee.metric)
        result.run_dir = run_dir
        result.score_clip = describe(cfg.knee.score_clip, graph.states.values())
        if cfg.plan.replay_lr != "constant":  # the search is the same; only its replay is smoothed
            result.stages = anneal(result.stages, cfg.plan.replay_lr)
    finally:
        executor.close()
        store.close()
    result.save(run_dir / RESULT_FILE)
    (run_dir / SCHEDULE_FILE).write_text(yaml.safe_dump(result.schedule, sort_keys=False))
    return result


def _check_made_in(store: SQLiteStore, run_dir: Path, cfg: OptplanConfig, reads_data: bool) -> None:
    """Record the directory a plan starts from; refuse to go on from another one when the plan
    reads data through relative paths (they would name other files, or none, and the stored
    config could not tell)."""
    made, here = store.get_meta(MADE_IN), str(Path.cwd())
    if made is None:
        store.set_meta(MADE_IN, here)
    elif made != here and reads_data and (relative := relative_paths(cfg.model_dump(mode="json"))):
        raise OptplanError(
            f"{run_dir} was planned from {made}, and its config gives {', '.join(relative)} as "
            f"relative paths; resume it from there: cd {shlex.quote(made)} && "
            f"{shlex.join(['optplan', 'plan', '--resume', '--out', str(run_dir.resolve())])}")


def refuse_lost_store(run_dir: Path) -> None:
    """Refuse a run directory whose trained edges outlived their records (``plan.sqlite``
    missing or empty): planning on would retrain everything over them without a word."""
    from optplan.plan.store import STORE_FILE

    store, edges = run_dir / STORE_FILE, run_dir / "edges"
    trained = sorted(p.name for p in edges.iterdir()) if edges.is_dir() else []
    if trained and (not store.is_file() or store.stat().st_size == 0):
        raise OptplanError(f"{store} is {'empty' if store.is_file() else 'missing'} but {edges} holds "
                           f"{len(trained)} trained edges ({', '.join(trained[:3])}"
                           f"{', ...' if len(trained) > 3 else ''}): the plan's records are lost. Restore "
                           f"{STORE_FILE} from a copy, or delete {edges} to plan {run_dir} afresh")


def require_store(run_dir: Path) -> None:
    """Refuse ``--resume`` of a directory that holds no plan."""
    from optplan.plan.store import STORE_FILE

    if not (run_dir / STORE_FILE).is_file():
        raise OptplanError(f"--resume: {run_dir / STORE_FILE} does not exist; nothing to resume")


def load_result(run_dir: str | Path) -> PlanResult:
    """The plan in ``run_dir`` as other tools read it: ``result.json`` once the plan finished,
    else what its store holds so far (:meth:`PlanResult.so_far`, ``unfinished`` set).

    A ``result.json`` written before results carried their graph gets the graph the store
    recorded and, as its chosen path, the path's states (choice nodes unmarked), with a note
    saying so. Raises :class:`OptplanError` when ``run_dir`` holds no plan.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise OptplanError(f"run directory {str(run)!r} does not exist; give the --out of an "
                           "'optplan plan' run")
    if not (run / STORE_FILE).is_file():
        raise OptplanError(f"{str(run)!r} holds no {STORE_FILE}: it is not a plan's run directory "
                           "(make one with 'optplan plan CONFIG --out RUN')")
    if not (run / RESULT_FILE).is_file():
        fingerprint, edges, seconds = _recorded(run)
        graph = _recorded_graph(run, fingerprint)
        result = PlanResult.so_far(graph, edges, planned_runs(graph, fingerprint.get("beam", 1)),
                                   max(seconds, sum(e.seconds for e in edges)))
        knee = fingerprint.get("config", {}).get("knee", {})  # {} for a plan made in Python
        result.knee_metric = knee.get("metric")
        result.score_clip = describe(knee["score_clip"], graph.states.values()) if "score_clip" in knee else None
        result.run_dir = run
        return result
    try:
        result = PlanResult.load(run / RESULT_FILE)
    except (ValueError, KeyError, TypeError) as err:
        raise OptplanError(f"{run / RESULT_FILE} is not a plan result ({err!r}); "
                           "run 'optplan plan --resume' to write it again") from None
    if result.graph is None:  # written by an earlier optplan
        result.graph = _recorded_graph(run, _recorded(run)[0])
        result.chosen = list(result.nodes)
        result.notes.append(f"{RESULT_FILE} was written by an earlier optplan: the graph comes from "
                            f"{STORE_FILE} and choice nodes are not marked on the chosen path; "
                            f"'optplan plan --resume --out {run}' writes it anew")
    return result


def _recorded(run_dir: Path) -> tuple[dict[str, Any], list, float]:
    """The store's fingerprint, its edge records and the wall seconds it recorded."""
    store = SQLiteStore.in_run_dir(run_dir)
    try:
        return (store.get_meta("config") or {}, store.edges(),
                float(store.get_meta("wall_seconds") or 0.0))
    finally:
        store.close()


def _recorded_graph(run_dir: Path, fingerprint: dict[str, Any]) -> StateGraph:
    if "graph" not in fingerprint:
        raise OptplanError(f"{run_dir / STORE_FILE} records no state graph: the plan never started "
                           "planning; run 'optplan plan' into it, or give another run directory")
    return StateGraph.from_dict(fingerprint["graph"])


def _from_made_in(run: Path, argv: list[str]) -> str:
    """``argv`` as a shell command, after a ``cd`` to the directory the plan was made from when
    its config has relative paths (so the command runs from anywhere)."""
    command = shlex.join(argv)
    config = run / CONFIG_FILE
    if not config.is_file() or not (run / STORE_FILE).is_file():
        return command
    if not relative_paths(yaml.safe_load(config.read_text()) or {}):
        return command
    store = SQLiteStore.in_run_dir(run)
    try:
        made = store.get_meta(MADE_IN)
    finally:
        store.close()
    return f"cd {shlex.quote(made)} && {command}" if made else command


def replay_command(run_dir: str | Path, out: str | Path | None = None) -> str:
    """The shell command that trains the plan's schedule from scratch with its config into
    ``out`` (default: ``RUN-replay`` beside the run) and tests the model it ends with.
    Absolute paths, so it runs from anywhere (from the plan's own directory when its config has
    relative ones)."""
    run = Path(run_dir).resolve()
    out = Path(out).resolve() if out is not None else run.with_name(f"{run.name}-replay")
    return _from_made_in(run, ["optplan", "train", str(run / CONFIG_FILE), "--schedule",
                               str(run / SCHEDULE_FILE), "--out", str(out), "--test"])


def resume_command(run_dir: str | Path) -> str:
    """The shell command that finishes an unfinished plan in ``run_dir`` (its own config)."""
    run = Path(run_dir).resolve()
    return _from_made_in(run, ["optplan", "plan", "--resume", "--out", str(run)])


def eval_command(run_dir: str | Path, checkpoint: str | Path) -> str:
    """The shell command that tests the plan's own final model (``checkpoint``) into
    ``RUN/eval.json``, where the report finds it."""
    run = Path(run_dir).resolve()
    return _from_made_in(run, ["optplan", "eval", str(run / CONFIG_FILE), "--checkpoint",
                               str(Path(checkpoint).resolve()), "--out", str(run / EVAL_FILE)])

"""Results can be trusted: one writer per run directory, no silent degradation after damage
(lost store, failed edges, kills at awkward moments, damaged cache entries), deterministic loaders."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

import optplan
from optplan.cli import main

SMALL = ["plan.clip_lengths=[4,8]", "plan.base_lrs=[0.1,0.1]", "plan.lr_multipliers=[1,0.1]",
         "plan.batch_sizes=[8,4]", "plan.accumulation=[1,2]", "knee.patience=4",
         "plan.simulate.speed=1.0", "plan.simulate.overfit=0.015"]


def optplan_process(*args: str, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """``optplan ARGS`` in a new process running this checkout's code, leading a process group
    of its own (its loader workers and pool workers join it), so that one ``killpg`` kills all."""
    env = {**os.environ, "PYTHONPATH": str(Path(optplan.__file__).parents[1])}
    code = "import sys; from optplan.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=stderr)


def run_to_end(*args: str) -> float:
    """Run ``optplan ARGS`` to its end (asserting exit 0, showing its stderr if not); its seconds."""
    tic = time.monotonic()
    process = optplan_process(*args, stderr=subprocess.PIPE)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    return time.monotonic() - tic


def wait_for(condition, seconds: float = 120.0) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_second_writer_is_refused_naming_the_first_and_a_dead_ones_lock_is_taken_over(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["plan", "--simulate", "--quiet", "--out", str(run), *SMALL, "plan.simulate.epoch_seconds=0.1"]
    first = optplan_process(*args)
    try:
        lock = run / "plan.lock"
        wait_for(lambda: lock.is_file() and lock.read_text().strip() == str(first.pid))
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"in use by another plan or training run, process {first.pid}" in err and "Traceback" not in err
    finally:
        first.kill()
        first.wait()
    assert main(args) == 0  # the killed writer's lock is stale: taken over, the plan resumes
    assert lock.read_text().strip() == str(os.getpid())


def test_an_empty_store_beside_trained_edges_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "edges" / "start-c4_x1").mkdir(parents=True)
    (run / "plan.sqlite").write_bytes(b"")
    assert main(["plan", "--simulate", "--quiet", "--out", str(run), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "plan.sqlite is empty" in err and "start-c4_x1" in err and "Traceback" not in err
    assert (run / "plan.sqlite").stat().st_size == 0


def test_failed_edges_fail_the_command_and_are_retried_on_a_rerun(tmp_path, capsys, monkeypatch):
    from optplan.plan.result import PlanResult
    from optplan.plan.simulate import SimulatedTrainer

    run, args = tmp_path / "run", ["plan", "--simulate", "--quiet", "--out", str(tmp_path / "run"), *SMALL]
    opened = SimulatedTrainer.open

    def broken(self, source, state):
        if state.name == "c8_x1":
            raise RuntimeError("out of memory")
        return opened(self, source, state)

    monkeypatch.setattr(SimulatedTrainer, "open", broken)
    assert main(args) == 1
    err = capsys.readouterr().err
    lost = {"start->c8_x1", "c4_x1->c8_x1", "c8_x1->c8_x0.1"}
    assert "3 of 6 edges failed or were skipped" in err and "--allow-failures" in err
    assert all(e in err for e in lost)
    assert main([*args, "--allow-failures"]) == 0
    assert {e.id for e in PlanResult.load(run).failed_edges} == lost

    monkeypatch.setattr(SimulatedTrainer, "open", opened)
    assert main(args) == 0  # the failed edge is trained again, and the skipped one after it
    retried = PlanResult.load(run)
    assert not retried.failed_edges
    clean = tmp_path / "clean"
    assert main(["plan", "--simulate", "--quiet", "--out", str(clean), *SMALL]) == 0
    reference = PlanResult.load(clean)
    assert retried.nodes == reference.nodes and retried.score == reference.score
    assert [e.curve for e in retried.edges] == [e.curve for e in reference.edges]


@pytest.mark.slow
def test_a_run_resumed_with_loader_workers_trains_as_one_run_straight_through(tiny_dataset, tmp_path):
    """With persistent loader workers, a session whose loaders are made in epoch 2 (a resumed
    run in a fresh process) trains epoch 2 exactly as the session that made them in epoch 1."""
    import torch

    from optplan.config import load_config
    from optplan.train.run import StateRun
    from optplan.train.session import TrainSession
    from optplan.train.state import State

    cfg = load_config(None, [f"data.root={tiny_dataset}", "data.crop_size=28", "data.short_side=32",
                             "data.num_workers=1", "train.threads=1", "train.progress=false",
                             "train.device=cpu", "model.dropout=0.5"])
    state = State(name="c4", lr=0.02, clip_length=4, batch_size=8)
    straight = StateRun(TrainSession(cfg), state, tmp_path / "straight")
    curve = [straight.initial_score(), straight.train_epoch(), straight.train_epoch()]
    StateRun(TrainSession(cfg), state, tmp_path / "resumed").train_epoch()  # then killed
    resumed = StateRun(TrainSession(cfg), state, tmp_path / "resumed")
    assert resumed.epoch == 1
    assert [*resumed.scores, resumed.train_epoch()] == curve
    weights = resumed.model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in straight.model.state_dict().items())


class Killed(BaseException):
    pass


@pytest.mark.slow
def test_an_edge_killed_while_keeping_its_model_continues_instead_of_restarting(tiny_dataset, tmp_path):
    """Killed after its last epoch was recorded, before or after ``keep()`` removed the
    snapshot: the edge resumes at its knee and trains no epoch again."""
    from optplan.config import load_config
    from optplan.knee import KneeRule
    from optplan.plan.edge import EdgeJob, run_edge
    from optplan.train.edge import VideoEdgeTrainer
    from optplan.train.session import TrainSession
    from optplan.train.state import State

    cfg = load_config(None, [f"data.root={tiny_dataset}", "data.crop_size=28", "data.short_side=32",
                             "data.num_workers=0", "train.threads=1", "train.progress=false",
                             "train.device=cpu", "model.dropout=0.0"])
    job = EdgeJob("start->c4", None, State(name="c4", lr=0.02, clip_length=4, batch_size=8),
                  KneeRule(patience=1, max_epochs=2))
    session, trained = TrainSession(cfg), []
    epoch = session.train_one_epoch
    session.train_one_epoch = lambda *a, **k: trained.append(1) or epoch(*a, **k)

    def trainer(run):
        t = VideoEdgeTrainer(cfg, run)
        t._session = session  # one session for all, so that its epochs are counted
        return t

    reference = run_edge(trainer(tmp_path / "straight"), job)
    assert reference.error is None and len(trained) == 2

    recorded = []

    def record_then_die(scores, snapshot):
        recorded.append((list(scores), snapshot))
        if len(scores) == len(reference.curve):
            raise Killed  # after the knee epoch is recorded, before keep()

    with pytest.raises(Killed):
        run_edge(trainer(tmp_path / "killed"), job, record_then_die)
    scores, snapshot = recorded[-1]
    assert snapshot is not None
    resumed = EdgeJob(job.id, None, job.state, job.rule, scores=scores, snapshot=snapshot)
    trained.clear()
    before_keep = run_edge(trainer(tmp_path / "killed"), resumed)
    assert trained == [] and before_keep.curve == reference.curve and before_keep.knee == reference.knee

    after_keep = run_edge(trainer(tmp_path / "killed"), resumed)  # keep() ended, the record did not
    assert trained == [] and after_keep.curve == reference.curve and after_keep.knee == reference.knee
    assert after_keep.checkpoint.path == reference.checkpoint.path == "edges/start-c4/kept.pt"


def descendants(pid: int) -> set[int]:
    """Live (not zombie) processes below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_process_executor_workers_die_with_a_killed_driver(tmp_path):
    driver = optplan_process("plan", "--simulate", "--quiet", "--executor", "process", "--workers", "2",
                             "--out", str(tmp_path / "run"), *SMALL, "plan.simulate.epoch_seconds=0.2")
    try:
        wait_for(lambda: len(descendants(driver.pid)) >= 3)  # the manager and two busy workers
        wait_for(lambda: any((tmp_path / "run").glob("plan.sqlite*")))
        workers = descendants(driver.pid)
    finally:
        driver.kill()
        driver.wait()
    wait_for(lambda: not any(alive(p) for p in workers), seconds=20)


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"not an array"],
                         ids=["cut short", "overwritten"])
def test_a_damaged_frame_cache_entry_is_named_and_rebuilt(damage, tiny_dataset, tmp_path, caplog):
    import numpy as np

    from optplan.data.cache import FrameCache

    video = next(tiny_dataset.rglob("*.mp4"))
    frames = np.array(FrameCache(tmp_path).frames(video))
    entry = FrameCache(tmp_path).entry(video)
    entry.write_bytes(damage(entry.read_bytes()))
    assert np.array_equal(FrameCache(tmp_path).frames(video), frames)
    assert f"frame cache entry {entry} of {video} is damaged" in caplog.text
    assert np.array_equal(np.load(entry), frames)


def tiny_plan_args(root: Path, cache: Path) -> list[str]:
    """A real plan small enough to kill many times: clips of 4 and 8 frames at one learning
    rate (3 edges), knees after 2 or 3 epochs, one torch thread, a loader worker."""
    return [f"data.root={root}", f"data.cache_dir={cache}", "data.crop_size=28", "data.short_side=32",
            "data.num_workers=1", "train.threads=1", "train.progress=false", "train.tensorboard=false",
            "train.device=cpu", "knee.patience=2", "knee.max_epochs=3", "plan.clip_lengths=[4,8]",
            "plan.base_lrs=[0.02,0.02]", "plan.lr_multipliers=[1]", "plan.batch_sizes=[8,8]",
            "plan.accumulation=[1,1]"]


class Unkilled(NamedTuple):
    """The tiny plan run straight through, and how long that and a restart take (seconds)."""

    run: Path
    seconds: float  # the whole run, from a fresh process to its exit
    restart: float  # a second run into the finished directory: what every restart costs


@pytest.fixture(scope="module")
def unkilled(tiny_dataset, tmp_path_factory) -> Unkilled:
    """The tiny plan run straight through in a fresh process, timed."""
    top = tmp_path_factory.mktemp("unkilled")
    args = ["plan", "--quiet", "--out", str(top / "run"), *tiny_plan_args(tiny_dataset, top / "cache")]
    return Unkilled(top / "run", run_to_end(*args), run_to_end(*args))


def outcome(run: Path) -> dict:
    """What a plan found: path, scores, and per edge its curve, knee and kept model."""
    import torch

    from optplan.plan import PlanResult
    from optplan.train.checkpoint import load_checkpoint

    result = PlanResult.load(run)
    edges = {e.id: (e.status, e.curve, e.knee.epoch, e.knee.score, e.checkpoint.path) for e in result.edges}
    final = load_checkpoint(result.model_path)["model"]
    return {"nodes": result.nodes, "path_epochs": result.path_epochs, "path_scores": result.path_scores,
            "score": result.score, "edges": edges, "final": {k: v.tolist() for k, v in final.items()
                                                             if isinstance(v, torch.Tensor)}}


def epochs_logged(run: Path) -> int:
    """Epoch lines the edges of ``run`` have logged so far (by the driver or a pool worker)."""
    return sum(len(log.read_bytes().splitlines()) for log in run.glob("edges/*/log.jsonl"))


@pytest.mark.slow
def test_a_plan_killed_at_random_moments_resumes_to_the_unkilled_result(unkilled, tiny_dataset, tmp_path):
    """SIGKILL of the whole process group (driver and loader workers, and with the process
    executor its pool workers and their manager) at 6 random moments, each followed by a resume
    in a fresh process, alternately in process and with ``--executor process`` (a runtime
    setting, free to change on resume): the plan ends on the unkilled run's path, knee epochs,
    curves, scores and final weights.

    A restart costs seconds of imports before training goes on, so a moment is drawn from a
    seeded RNG over one epoch of the unkilled run's measured pace, counted from when the
    resumed run has trained again (an epoch logged): each kill lands somewhere in an epoch, its
    checkpoint writes or the records after it, and the plan moves on between kills. Once the
    plan has ended, the remaining kills land in restarts of the finished plan (over the measured
    restart). Exact equality holds because every run is on this machine with the same process
    setup (one torch thread; the executor and the loader workers change where an epoch runs,
    never what it computes)."""
    from optplan.plan import PlanResult

    run = tmp_path / "run"
    args = ["plan", "--quiet", "--out", str(run), *tiny_plan_args(tiny_dataset, tmp_path / "cache")]
    epoch = (unkilled.seconds - unkilled.restart) / PlanResult.load(unkilled.run).search_epochs
    rng = random.Random(11)
    kills, finished, executors = 0, False, {"inprocess": 0, "process": 0}
    while kills < 6:
        executor = "process" if kills % 2 else "inprocess"
        log, logged = tmp_path / f"stderr-{kills}.txt", epochs_logged(run)
        with log.open("wb") as err:
            process = optplan_process(*args, "--executor", executor, stderr=err)
        if finished:
            moment = rng.uniform(0.0, unkilled.restart)
        else:
            wait_for(lambda: process.poll() is not None or epochs_logged(run) > logged)
            moment = rng.uniform(0.0, epoch)
        try:
            process.wait(timeout=moment)  # it ended before its moment came
            assert process.returncode == 0, f"exit {process.returncode} after {kills} kills: {log.read_text()}"
            finished = True
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            kills, executors[executor] = kills + 1, executors[executor] + 1
    assert executors == {"inprocess": 3, "process": 3}
    run_to_end(*args)
    assert outcome(run) == outcome(unkilled.run)


@pytest.mark.slow
def test_replaying_a_planned_path_rebuilds_the_planned_model(unkilled, tmp_path):
    """``optplan train RUN/config.yaml --schedule RUN/schedule.yaml`` (in a fresh process, as a
    user runs it) retraces the planned path from scratch: every stage's curve is its edge's up
    to the knee, the final validation score is the one the plan measured for its final model
    (exactly: CPU, one thread, same machine), and the weights are the plan's."""
    import torch

    from optplan.plan import PlanResult
    from optplan.train.checkpoint import load_checkpoint

    reference = unkilled.run
    result = PlanResult.load(reference)
    replay = tmp_path / "replay"
    run_to_end("train", str(reference / "config.yaml"), "--schedule", str(reference / "schedule.yaml"),
               "--out", str(replay), "--quiet")
    replayed = json.loads((replay / "result.json").read_text())
    # the edges along the path, in order: each one's source is the node before
    edges = {(e.source, e.target): e for e in result.edges}
    path = [edges[pair] for pair in zip(["start", *result.nodes], result.nodes)]
    final = next(e for e in result.edges if e.checkpoint and e.checkpoint.path == result.checkpoint.path)
    assert final is path[-1] and [e.knee.epoch for e in path] == result.path_epochs
    trained = [e for e in path if e.knee.epoch > 0]  # the schedule drops 0-epoch stages
    assert len(replayed["curves"]) == len(trained) >= 1
    assert all(c[1:] == e.curve[1: e.knee.epoch + 1] for e, c in zip(trained, replayed["curves"]))
    assert replayed["final_score"] == final.curve[final.knee.epoch]
    assert replayed["shortfall"] == 0.0  # measured against the search's run that schedule.yaml names
    rebuilt, planned = load_checkpoint(replay / "final.pt")["model"], load_checkpoint(result.model_path)["model"]
    assert rebuilt.keys() == planned.keys() and all(torch.equal(rebuilt[k], planned[k]) for k in planned)

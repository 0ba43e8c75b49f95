"""Each concept exists once: one Stage, one edge id, one model builder, no write-only store table,
one epoch body, one epoch callback, one shortest-clip check, one JSON form of records."""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from optplan.config import load_config
from optplan.knee import Knee
from optplan.models import create_model_from_config
from optplan.plan import EdgeRecord, SQLiteStore
from optplan.plan.graph import Edge
from optplan.plan.result import Stage as PlannedStage
from optplan.plan.runner import SCHEDULE_FILE, run_plan
from optplan.protocol import Checkpoint, edge_id
from optplan.records_io import JsonRecord
from optplan.state import State
from optplan.train.edge import edge_dir, run_id
from optplan.train.cost import Cost
from optplan.train.schedule import Stage, load_schedule

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "optplan"

SMALL = ["plan.clip_lengths=[4,8]", "plan.base_lrs=[0.1,0.1]", "plan.lr_multipliers=[1,0.1]",
         "plan.batch_sizes=[8,4]", "plan.accumulation=[1,2]", "knee.patience=3",
         "plan.simulate.speed=1.0", "plan.simulate.overfit=0.015"]


def test_a_planned_schedule_is_made_of_the_stages_that_replay_it(tmp_path):
    assert PlannedStage is Stage
    result = run_plan(load_config(None, SMALL), tmp_path, simulate=True, progress=False)
    assert result.stages and all(isinstance(s, Stage) for s in result.stages)
    written = load_schedule(tmp_path / SCHEDULE_FILE)  # what the runner wrote, as `train` reads it
    assert list(written.stages) == list(result.stages)
    assert result.schedule["stages"][0].keys() == {"state", "epochs"}  # constant lr is the default


def test_replay_lr_linear_smooths_only_the_written_schedule(tmp_path):
    """plan.replay_lr=linear plans the same path (it is not part of what a stored plan must
    match) and writes its stages with linear decays; the constant schedule comes back after."""
    constant = run_plan(load_config(None, SMALL), tmp_path, simulate=True, progress=False)
    smooth = run_plan(load_config(None, [*SMALL, "plan.replay_lr=linear"]), tmp_path, simulate=True, progress=False)
    assert smooth.nodes == constant.nodes and smooth.replay_gflops == constant.replay_gflops
    written = load_schedule(tmp_path / SCHEDULE_FILE)
    assert [s.lr_schedule.kind for s in written.stages] == ["linear"] * len(written.stages)
    assert written.stages[-1].lr_schedule.final == 0.0
    assert [(s.state, s.epochs) for s in written.stages] == [(s.state, s.epochs) for s in constant.stages]
    # only the path the search ran carries what that run reached: a smoothed one is another schedule
    assert written.search_run is None and "search_run" not in smooth.schedule
    again = run_plan(load_config(None, SMALL), tmp_path, simulate=True, progress=False)
    assert list(load_schedule(tmp_path / SCHEDULE_FILE).stages) == list(again.stages) == list(constant.stages)
    assert load_schedule(tmp_path / SCHEDULE_FILE).search_run.score == constant.measured_score is not None
    # weight averaging changes only replays too: the stored plan resumes with it, the same path
    averaged = run_plan(load_config(None, [*SMALL, "train.average_last=0.25"]), tmp_path, simulate=True,
                        progress=False)
    assert averaged.nodes == constant.nodes and list(averaged.stages) == list(constant.stages)


def test_one_edge_id_names_graph_edges_planner_runs_and_trainer_runs(tmp_path):
    assert Edge("a", "b").name == edge_id("a", "b") == "a->b"
    record = EdgeRecord("a", "b", slot=1)
    assert record.id == edge_id("a", "b", 1) == "a->b#1"
    state = State(name="c8", lr=0.1, clip_length=8)
    assert run_id(None, state) == edge_id("start", "c8")
    source = Checkpoint(path="/runs/x/kept.pt", meta={"state": "c4"})
    digest = run_id(source, state).rpartition("#")[2]
    assert run_id(source, state) == edge_id("c4", "c8", digest) and len(digest) == 6
    # the trainer's directories keep the layout of earlier runs, so their edges resume
    assert edge_dir(tmp_path, None, state) == tmp_path / "edges" / "start-c8"
    assert edge_dir(tmp_path, source, state) == tmp_path / "edges" / f"c4.{digest}-c8"


def test_a_session_builds_its_model_with_create_model_from_config(tiny_dataset):
    from optplan.train.session import TrainSession

    cfg = load_config(None, [f"data.root={tiny_dataset}", "data.num_workers=0", "train.threads=1",
                             "train.device=cpu", "model.dropout=0.5", "model.kwargs={dropout: 0.25}"])
    session = TrainSession(cfg)
    built = session.new_model()
    torch.manual_seed(cfg.train.seed)
    expected = create_model_from_config(cfg.model, len(session.classes))
    assert {m.p for m in built.modules() if isinstance(m, torch.nn.Dropout)} == {0.25}  # kwargs win
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), expected.state_dict().values()))


def test_the_store_keeps_no_node_table_and_still_reads_old_stores(tmp_path):
    store = SQLiteStore(tmp_path / "new.sqlite")
    store.put_edge(EdgeRecord("start", "c4_x1", status="done", curve=[0.0, 0.5]))
    store.close()
    tables = {r[0] for r in sqlite3.connect(tmp_path / "new.sqlite").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"meta", "edges"}

    old = sqlite3.connect(tmp_path / "new.sqlite")  # as a store of an earlier version: with nodes
    old.executescript("CREATE TABLE nodes (name TEXT PRIMARY KEY, score REAL, record TEXT NOT NULL);"
                      "INSERT INTO nodes VALUES ('c4_x1', 0.5, '{}');")
    old.close()
    store = SQLiteStore(tmp_path / "new.sqlite")
    assert [(e.id, e.curve) for e in store.edges()] == [("start->c4_x1", [0.0, 0.5])]
    store.close()


def _sources_with(pattern: str) -> list[str]:
    """The package's modules (paths under ``src/optplan``) whose text matches ``pattern``."""
    return sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                  if re.search(pattern, p.read_text(), re.M))


def test_the_search_and_its_replay_train_every_epoch_in_one_epoch_trainer(tiny_dataset, tmp_path, monkeypatch):
    """One epoch body: a state run (a plan's edge, ``optplan train --state``) and a replayed
    schedule both train, score, charge, save and log each epoch in ``EpochTrainer.train``, so
    the replay retraces the search bit for bit (one process) and their log rows keep their
    formats."""
    from optplan.train import train_schedule, train_state
    from optplan.train.epoch import EpochTrainer
    from optplan.train.logging import read_log
    from optplan.train.session import TrainSession

    assert _sources_with(r"\.train_one_epoch\(") == ["train/epoch.py"]  # nothing else trains an epoch
    cfg = load_config(None, [f"data.root={tiny_dataset}", f"data.val_list={tiny_dataset / 'trainlist01.txt'}",
                             "data.crop_size=28", "data.short_side=32", "data.num_workers=0", "train.threads=1",
                             "train.progress=false", "train.device=cpu", "model.dropout=0.0",
                             "knee.patience=10", "knee.max_epochs=2"])
    session, seen, original = TrainSession(cfg), [], EpochTrainer.train

    def spy(self, epoch, lr, **kwargs):
        seen.append((self.tag, epoch))
        return original(self, epoch, lr, **kwargs)

    monkeypatch.setattr(EpochTrainer, "train", spy)
    state = State(name="c4", lr=0.02, clip_length=4, batch_size=4)
    heard = []
    searched = train_state(None, state, cfg, tmp_path / "search", session=session,
                           on_epoch=lambda curve, snapshot: heard.append((len(curve), Path(snapshot.path).name)))
    replay = train_schedule({"stages": [{"state": state.to_dict(), "epochs": 2}]}, cfg, tmp_path / "replay",
                            session=session)
    assert seen == [("c4", 1), ("c4", 2), ("schedule", 1), ("schedule", 2)]
    assert heard == [(2, "last.pt"), (3, "last.pt")]  # the one EpochCallback: curve and resume snapshot
    assert replay.curves[0] == searched.curve  # same process, same inputs: bit-identical
    search_log, replay_log = read_log(tmp_path / "search"), read_log(tmp_path / "replay")
    assert [r["loss"] for r in replay_log] == [r["loss"] for r in search_log]
    assert replay.cost.gflops == pytest.approx(searched.cost.gflops, rel=1e-12)
    assert replay.cost.eval_gflops == pytest.approx(searched.cost.eval_gflops, rel=1e-12)
    rest = ["state", "loss", "score", "top1", "top3", "top5", "val_loss", "lr", "clip_length", "seconds",
            "clips_per_s"]
    assert list(search_log[0]) == ["epoch", *rest]
    assert list(replay_log[1]) == ["stage", "epoch", "global_epoch", "gflops", *rest]
    assert replay_log[1]["global_epoch"] == 2 and replay_log[1]["gflops"] == pytest.approx(replay.cost.gflops)


def test_one_epoch_callback_serves_the_planner_and_train_state():
    from optplan import protocol
    from optplan.plan import edge, executors, planner
    from optplan.plan.edge import run_edge
    from optplan.train import run
    from optplan.train.run import train_state

    assert _sources_with(r"^EpochCallback\s*=") == ["protocol.py"]
    assert edge.EpochCallback is executors.EpochCallback is planner.EpochCallback is run.EpochCallback \
        is protocol.EpochCallback
    for fn in (run_edge, train_state):
        assert inspect.signature(fn).parameters["on_epoch"].annotation == "EpochCallback | None"


def test_the_shortest_clip_is_checked_once_without_building_a_model(tiny_dataset, monkeypatch):
    """The planner's graph validator and a training session ask the one check,
    ``clip_length_problem``, which reads the architecture's arguments and builds no model."""
    from optplan.errors import OptplanError
    from optplan.models import architecture, clip_length_problem, create_model
    from optplan.models.p3d import P3DResNet
    from optplan.models.resnet3d import ResNet3d
    from optplan.plan.runner import model_validator
    from optplan.train.session import TrainSession

    assert _sources_with(r"clip_length_problem\(") == ["models/registry.py", "plan/runner.py", "train/session.py"]
    assert _sources_with(r"[<>]=? *shortest\b") == ["models/registry.py"]
    cfg = load_config(None, [f"data.root={tiny_dataset}", "data.num_workers=0", "train.threads=1",
                             "train.device=cpu"])
    short, fine = State(name="c1", lr=0.1, clip_length=1), State(name="c2", lr=0.1, clip_length=2)

    def refusing(init):
        @functools.wraps(init)  # the same signature, which build() checks overrides against
        def refuse(*args, **kwargs):
            raise AssertionError("the shortest-clip check built a model")
        return refuse

    with monkeypatch.context() as patched:
        for cls in (P3DResNet, ResNet3d):
            patched.setattr(cls, "__init__", refusing(cls.__init__))
        assert architecture("dg_p3d_r50").min_clip_length == 4
        assert architecture("dg_p3d_tiny", stem_kernel_t=3).min_clip_length == 3
        assert architecture("r3d_tiny").min_clip_length == 1
        check = model_validator(cfg)  # no model.pretrained_2d: nothing to inflate, nothing built
        assert check(short) == ("clip_length 1 is shorter than model 'dg_p3d_tiny' accepts (2 frames); "
                                "raise plan.clip_lengths")
        assert check(fine) is None
        problem = clip_length_problem(1, cfg.model)
    assert create_model("dg_p3d_tiny", stem_kernel_t=3).min_clip_length == 3  # the built model agrees
    session = TrainSession(cfg)
    with pytest.raises(OptplanError, match=re.escape(f"state 'c1': {problem}")):
        session.check_state(short)
    session.check_state(fine)


@dataclass
class Probe(JsonRecord):
    """A record with every kind of field the JSON form handles."""

    curve: list[float]
    knee: Knee
    where: Path
    cost: Cost = field(default_factory=Cost)
    bound: float | None = None
    params: tuple[float, ...] = ()
    source: Checkpoint | None = None


def test_records_share_one_json_form_with_nan_as_null():
    from optplan.plan.objective import Objective
    from optplan.plan.racing import Racing
    from optplan.plan.records import Candidate, NodeRecord
    from optplan.plan.result import ParetoPoint, PlanResult
    from optplan.knee import KneeRule
    from optplan.train.replay import ScheduleResult
    from optplan.train.run import StateResult

    probe = Probe([0.0, math.nan, 0.5], Knee(epoch=2, score=math.nan, params=(1.0, 2.0)), Path("runs/a/kept.pt"),
                  bound=math.inf, params=(0.25, 0.5), source=Checkpoint("kept.pt", {"score": math.nan}))
    data = probe.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data  # strict JSON
    assert list(data) == ["curve", "knee", "where", "cost", "bound", "params", "source"]
    assert data["curve"] == [0.0, None, 0.5] and data["knee"]["score"] is None and data["knee"]["params"] == [1.0, 2.0]
    assert data["where"] == "runs/a/kept.pt" and data["bound"] is None and data["params"] == [0.25, 0.5]
    assert data["source"] == {"path": "kept.pt", "meta": {"score": None}}
    back = Probe.from_dict({**data, "added_later": 1})  # keys a record does not know are ignored
    assert math.isnan(back.curve[1]) and back.curve[2] == 0.5 and math.isnan(back.knee.score)
    assert back.bound is None and back.params == (0.25, 0.5) and back.knee.params == (1.0, 2.0)
    assert back.where == Path("runs/a/kept.pt") and back.cost == Cost()
    assert back.source == Checkpoint("kept.pt", {"score": None}) and back.to_dict() == data
    before = {k: v for k, v in data.items() if k not in ("cost", "bound", "source")}  # fields added since
    assert Probe.from_dict(before).cost == Cost() and Probe.from_dict(before).source is None
    with pytest.raises(ValueError, match="Probe record needs 'curve'"):
        Probe.from_dict({"knee": data["knee"], "where": "x"})
    # every record is one; nothing redoes NaN <-> None by hand
    for cls in (Knee, KneeRule, Cost, Checkpoint, StateResult, ScheduleResult, EdgeRecord, Candidate, NodeRecord,
                ParetoPoint, PlanResult, Objective, Racing):
        assert issubclass(cls, JsonRecord) and not {"to_dict", "from_dict"} & set(vars(cls)), cls
    assert _sources_with(r"math\.nan if .* is None|None if not math\.isfinite") == []


# Written by the code before records_io (json.dumps(result.to_dict(), indent=2)): they must load
# and write back byte for byte.
STATE_RESULT = """{
  "curve": [
    0.0,
    0.4375,
    null
  ],
  "knee": {
    "epoch": 1,
    "score": 0.4375,
    "params": [],
    "reached": true,
    "diverged": true,
    "method": "paper",
    "epochs": 2,
    "stop": "diverged"
  },
  "checkpoint": "runs/c4/kept.pt",
  "cost": {
    "epochs": 2,
    "seconds": 3.5,
    "clips": 96,
    "gflops": 1.25,
    "eval_gflops": 0.5
  }
}"""
SCHEDULE_RESULT = """{
  "curves": [
    [
      0.0,
      0.25
    ],
    [],
    [
      0.25,
      null
    ]
  ],
  "final_score": null,
  "checkpoint": "runs/replay/final.pt",
  "cost": {
    "epochs": 2,
    "seconds": 2.0,
    "clips": 96,
    "gflops": 3.0,
    "eval_gflops": 1.0
  }
}"""


def test_result_files_of_the_earlier_format_load_and_write_back_the_same(tmp_path):
    from optplan.plan.result import PlanResult
    from optplan.train.replay import ScheduleResult
    from optplan.train.run import StateResult

    state = StateResult.from_dict(json.loads(STATE_RESULT))
    assert state.curve[:2] == [0.0, 0.4375] and math.isnan(state.curve[2]) and state.knee.params == ()
    assert state.checkpoint == Path("runs/c4/kept.pt") and state.cost.clips == 96
    assert json.dumps(state.to_dict(), indent=2) == STATE_RESULT
    replay = ScheduleResult.from_dict(json.loads(SCHEDULE_RESULT))
    assert math.isnan(replay.final_score) and replay.curves[1] == [] and replay.cost.gflops == 3.0
    # the earlier keys come back the same and in their order; the replay's shortfall (None: a
    # schedule no search ran, as every schedule of the earlier format) and its weight averaging
    # (none: the earlier format's replays ended on their last epoch) follow them
    written, earlier = json.loads(json.dumps(replay.to_dict())), json.loads(SCHEDULE_RESULT)
    assert list(written)[:len(earlier)] == list(earlier) and {k: written[k] for k in earlier} == earlier
    assert {k: written[k] for k in list(written)[len(earlier):]} == {
        "shortfall": None, "averaged": None, "averaged_epochs": 0, "averaged_kept": False,
        "last_epoch_checkpoint": None}
    old = Path(__file__).parent / "data" / "plan_result_v1.json"  # a simulated 2 x 2 plan's result.json
    plan = PlanResult.load(old)
    assert plan.run_dir == old.parent and plan.edges and plan.decisions and plan.stages
    assert all(isinstance(e, EdgeRecord) and isinstance(e.knee, Knee) for e in plan.edges if e.knee)
    plan.save(tmp_path / "result.json")
    # the earlier keys come back the same and in their order; the report's keys follow them
    written, earlier = json.loads((tmp_path / "result.json").read_text()), json.loads(old.read_text())
    # the schedule now also names what the search's run of it reached (its final model's score)
    run = written["schedule"].pop("search_run")
    assert run["score"] == written["measured_score"] and run["metric"] == earlier["knee_metric"]
    for edge in written["edges"]:  # and each edge the epochs' training losses (none recorded then)
        assert list(edge)[-1] == "losses" and edge.pop("losses") == []
    assert list(written)[:len(earlier)] == list(earlier) and {k: written[k] for k in earlier} == earlier
    assert list(written)[len(earlier):] == ["graph", "chosen", "stop_reasons", "unfinished", "measured_score"]
    assert written["graph"] is None and written["unfinished"] is None  # an earlier file has no graph
    final = next(e for e in plan.edges if e.id == plan.decisions[-1].best.edge)  # its final node's edge
    assert written["measured_score"] == final.curve[final.knee.epoch]

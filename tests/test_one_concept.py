"""Each concept exists once: one Stage, one edge id, one model builder, no write-only store table."""

from __future__ import annotations

import sqlite3

import torch

from optplan.config import load_config
from optplan.models import create_model_from_config
from optplan.plan import EdgeRecord, SQLiteStore
from optplan.plan.graph import Edge
from optplan.plan.result import Stage as PlannedStage
from optplan.plan.runner import SCHEDULE_FILE, run_plan
from optplan.protocol import Checkpoint, edge_id
from optplan.state import State
from optplan.train.edge import edge_dir, run_id
from optplan.train.schedule import Stage, load_schedule

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

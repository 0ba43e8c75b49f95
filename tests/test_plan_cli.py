"""``optplan plan``: the run directory it writes, resume, refusal of a foreign config, and a real
plan of a tiny graph on the built-in videos (killed mid-edge and resumed to the same result)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from optplan.cli import main
from optplan.plan import Planner, PlanResult, Progress, SQLiteStore, StateGraph

SMALL = ["plan.clip_lengths=[4,8]", "plan.base_lrs=[0.1,0.1]", "plan.lr_multipliers=[1,0.1]",
         "plan.batch_sizes=[8,4]", "plan.accumulation=[1,2]", "knee.patience=4",
         "plan.simulate.speed=1.0", "plan.simulate.overfit=0.015"]


def test_simulated_plan_writes_the_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", "--budget", "8", *SMALL]) == 0
    out = capsys.readouterr().out
    assert {p.name for p in run.iterdir()} >= {"plan.sqlite", "config.yaml", "result.json", "schedule.yaml"}
    result = PlanResult.load(run)
    schedule = yaml.safe_load((run / "schedule.yaml").read_text())
    assert schedule == result.schedule and schedule["stages"][0]["state"]["name"] == result.nodes[0]
    assert result.nodes[-1] == "c8_x0.1" and len(result.edges) == 6
    assert yaml.safe_load((run / "config.yaml").read_text())["knee"]["patience"] == 4
    assert "c8_x0.1" in out and "budget 8 epochs: score" in out
    assert result.budget.epochs <= 8

    # the same command again trains nothing and finds the same
    store = SQLiteStore.in_run_dir(run)
    seconds = {e.id: e.seconds for e in store.edges()}
    store.close()
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL]) == 0
    again = json.loads((run / "result.json").read_text())
    assert again["nodes"] == result.nodes and again["score"] == result.score
    assert {e["source"] + "->" + e["target"]: e["seconds"] for e in again["edges"]} == seconds

    # --resume reads RUN/config.yaml; the executor may change, the config may not
    assert main(["plan", "--resume", "--simulate", "--out", str(run), "--quiet",
                 "--executor", "process"]) == 0
    capsys.readouterr()
    # an override after --resume changes RUN/config.yaml, not the defaults
    assert main(["plan", "--resume", "--simulate", "--out", str(run), "--quiet", "knee.patience=5"]) == 2
    err = capsys.readouterr().err
    assert "config.knee.patience: run has 4, now 5" in err and "clip_lengths" not in err
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL, "knee.patience=5"]) == 2
    err = capsys.readouterr().err
    assert "different config" in err and "config.knee.patience: run has 4, now 5" in err


def test_the_climb_rule_is_not_asked_of_records_without_training_losses(tmp_path, capsys):
    run, again = tmp_path / "run", tmp_path / "again"
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL]) == 0  # reports no losses
    assert main(["plan", "--from-records", str(run), "--out", str(again), "--quiet", "plan.climb_limit=1.2"]) == 2
    err = capsys.readouterr().err
    assert "plan.climb_limit judges the training losses" in err and "hold none" in err and "Traceback" not in err
    assert not again.exists()


def _strip_stored(run: Path, *dotted: str) -> None:
    """Make RUN's store look as if written before the ``dotted`` fingerprint keys existed."""
    store = SQLiteStore.in_run_dir(run)
    config = store.get_meta("config")
    for key in dotted:
        *path, last = key.split(".")
        node = config
        for part in path:
            node = node[part]
        del node[last]
    store.set_meta("config", config)
    store.close()


def test_a_run_made_before_a_new_option_resumes(tmp_path, capsys):
    """Options added to the library after a run was made hold their defaults on resume: the
    run goes on without training again; a non-default value for such a key is still refused."""
    run = tmp_path / "run"
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL]) == 0
    before = json.loads((run / "result.json").read_text())
    _strip_stored(run, "config.knee.chance_guard", "knee.floor", "config.plan.start_lr_levels")
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL]) == 0
    after = json.loads((run / "result.json").read_text())
    assert after["nodes"] == before["nodes"] and after["edges"] == before["edges"]
    store = SQLiteStore.in_run_dir(run)
    assert store.get_meta("config")["config"]["knee"]["chance_guard"] is False  # the record took the key
    store.close()

    _strip_stored(run, "config.knee.patience")  # absent from the run, 4 here where the default is 10
    capsys.readouterr()
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "different config" in err and 'config.knee.patience: run has "(absent)", now 4' in err


def test_resume_needs_an_existing_run(tmp_path, capsys):
    assert main(["plan", "--resume", "--simulate", "--out", str(tmp_path / "none"), "--quiet"]) == 2
    assert "config.yaml" in capsys.readouterr().err


def real_args(root):
    """Two clip lengths x two learning rates on the built-in videos with the tiny model."""
    return [f"data.root={root}", f"data.val_list={root / 'trainlist01.txt'}", "data.crop_size=28",
            "data.short_side=32", "data.num_workers=0", "train.threads=1", "train.progress=false",
            "train.device=cpu", "model.dropout=0.0", "knee.patience=2", "knee.max_epochs=3",
            "plan.clip_lengths=[4,8]", "plan.base_lrs=[0.02,0.02]", "plan.lr_multipliers=[1,0.1]",
            "plan.batch_sizes=[8,8]", "plan.accumulation=[1,1]"]


@pytest.fixture(scope="module")
def real_run(tiny_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("real")
    assert main(["plan", "--out", str(run), "--quiet", *real_args(tiny_dataset)]) == 0
    return run


@pytest.mark.slow
def test_real_plan_of_a_tiny_graph(real_run):
    result = PlanResult.load(real_run)
    assert len(result.edges) == 6 and all(e.status == "done" for e in result.edges)
    assert all(2 <= e.epochs <= 3 for e in result.edges)
    assert result.search_epochs == sum(e.epochs for e in result.edges)
    assert result.nodes[-1] == "c8_x0.1" and result.score > 0
    assert result.model_path.is_file() and (real_run / "edges").is_dir()
    assert yaml.safe_load((real_run / "schedule.yaml").read_text()) == result.schedule


@pytest.mark.slow
def test_real_plan_with_a_beam_keeps_each_model_apart(real_run, tiny_dataset, tmp_path):
    """With two kept models per node, each edge from a node trains in its own directory from its
    own source model: the beam's first slot repeats the beam-1 plan's curves exactly."""
    run = tmp_path / "beam"
    assert main(["plan", "--out", str(run), "--quiet", *real_args(tiny_dataset), "plan.beam=2"]) == 0
    beam, single = PlanResult.load(run), PlanResult.load(real_run)
    kept = [e.checkpoint.file(run) for e in beam.edges if e.checkpoint is not None]
    assert len(beam.edges) > len(single.edges) and len(set(kept)) == len(kept) == len(beam.edges)
    assert all(p.is_file() for p in kept)
    first = {(e.source, e.target): e.curve for e in single.edges}
    assert all(first[(e.source, e.target)] == e.curve for e in beam.edges if e.slot == 0)
    assert beam.score >= single.score


class Killed(BaseException):
    pass


class KillAfter(Progress):
    """Stops the plan right after the driver recorded ``epochs`` epochs (like a kill)."""

    def __init__(self, epochs):
        self.left = epochs

    def epoch(self, edge, scores):
        self.left -= 1
        if self.left == 0:
            raise Killed


@pytest.mark.slow
def test_real_plan_killed_mid_edge_resumes_to_the_same_result(real_run, tiny_dataset, tmp_path, monkeypatch):
    """Killed, moved and resumed from another working directory: the same result."""
    from optplan.config import load_config
    from optplan.train.edge import VideoEdgeTrainer

    cfg = load_config(None, real_args(tiny_dataset))
    graph = StateGraph.from_config(cfg.plan)

    def planner(run, progress):
        return Planner(graph, VideoEdgeTrainer(cfg, run), SQLiteStore.in_run_dir(run),
                       patience=2, max_epochs=3, progress=progress)

    monkeypatch.chdir(tmp_path)
    with pytest.raises(Killed):
        planner(Path("first"), KillAfter(5)).run()  # the second edge has 2 of its 3 epochs
    stored = {e.id: e for e in SQLiteStore.in_run_dir("first").edges()}
    assert stored["c4_x1->c4_x0.1"].status == "running" and stored["c4_x1->c4_x0.1"].epochs == 2
    (tmp_path / "first").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path / "moved" / "edges")
    resumed, reference = planner(tmp_path / "moved", False).run(), PlanResult.load(real_run)
    assert resumed.nodes == reference.nodes and resumed.score == reference.score
    assert [(e.id, e.curve, e.knee.epoch) for e in resumed.edges] == \
        [(e.id, e.curve, e.knee.epoch) for e in reference.edges]


@pytest.mark.slow
def test_a_lost_or_truncated_model_is_trained_again(real_run, tiny_dataset, tmp_path):
    """A kept model that later edges or the result need is gone or cut short: its edge is
    trained again (not silently pruned), and the plan ends as it did."""
    from optplan.train.checkpoint import is_intact

    run = tmp_path / "copy"
    shutil.copytree(real_run, run)
    final = PlanResult.load(run).model_path
    final.write_bytes(final.read_bytes()[:1000])
    first = run / "edges" / "start-c4_x1" / "kept.pt"  # every c4 edge starts from it
    first.unlink()
    assert main(["plan", "--out", str(run), "--quiet", *real_args(tiny_dataset)]) == 0
    again, reference = PlanResult.load(run), PlanResult.load(real_run)
    assert again.nodes == reference.nodes and again.score == reference.score
    assert [(e.id, e.curve) for e in again.edges] == [(e.id, e.curve) for e in reference.edges]
    assert is_intact(again.model_path) and is_intact(first)


@pytest.mark.slow
def test_a_full_disk_stops_the_plan_naming_the_file_and_it_resumes_once_freed(
        real_run, tiny_dataset, tmp_path, monkeypatch, capsys):
    import errno
    import os

    fsync, writes = os.fsync, []

    def full(fd):
        writes.append(fd)
        if len(writes) == 9:  # a checkpoint a few epochs into the plan
            raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    run = tmp_path / "run"
    assert main(["plan", "--out", str(run), "--quiet", *real_args(tiny_dataset)]) == 2
    err = capsys.readouterr().err
    assert f"no space left on device at {run / 'edges'}" in err and "Traceback" not in err
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert main(["plan", "--out", str(run), "--quiet", *real_args(tiny_dataset)]) == 0
    again, reference = PlanResult.load(run), PlanResult.load(real_run)
    assert again.nodes == reference.nodes and again.score == reference.score
    assert [(e.id, e.curve) for e in again.edges] == [(e.id, e.curve) for e in reference.edges]


def test_states_the_model_cannot_take_are_refused_before_training(tmp_path, capsys):
    code = main(["plan", "--out", str(tmp_path / "run"), "--quiet", "plan.clip_lengths=[1,8]",
                 "plan.base_lrs=[0.1,0.1]", "plan.batch_sizes=[8,8]", "plan.accumulation=[1,1]"])
    err = capsys.readouterr().err
    assert code == 2 and "c1_x1: clip_length 1 is shorter than model 'dg_p3d_tiny' accepts (2" in err
    assert not (tmp_path / "run" / "plan.sqlite").exists()


def test_an_unreadable_dataset_is_refused_before_the_run_directory_is_made(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["plan", "--out", str(run), "--quiet", f"data.root={tmp_path / 'nowhere'}"]) == 2
    err = capsys.readouterr().err
    assert "data.root" in err and "optplan data synth" in err and "Traceback" not in err
    assert not run.exists()


def test_knee_refits_reach_the_rule_and_the_resume_fingerprint(tmp_path, capsys):
    """``knee.refits`` travels config -> planner -> edge jobs: each edge stops where the stable
    rule with that window first stops on its curve, and a resume with another window is refused."""
    from optplan.knee import first_stop

    stable = [*SMALL, "knee.method=stable", "knee.patience=6"]
    results = {}
    for refits in (2, 5):
        run = tmp_path / f"refits{refits}"
        assert main(["plan", "--simulate", "--out", str(run), "--quiet", *stable, f"knee.refits={refits}"]) == 0
        results[refits] = PlanResult.load(run)
        for edge in results[refits].edges:
            expected = first_stop(edge.curve, 6, "stable", refits=refits)
            assert (edge.knee.epochs, edge.knee.epoch) == (expected.epochs, expected.epoch)
    assert [e.knee.epochs for e in results[2].edges] != [e.knee.epochs for e in results[5].edges]
    capsys.readouterr()
    assert main(["plan", "--simulate", "--out", str(tmp_path / "refits2"), "--quiet", *stable, "knee.refits=5"]) == 2
    assert "config.knee.refits: run has 2, now 5" in capsys.readouterr().err


def test_the_chance_floor_travels_from_the_data_to_the_planner_rule(tiny_dataset, tmp_path):
    """``knee.chance_guard``: the video trainer knows the classes (chance 1/K for top-1), the
    planner's rule gets chance + the margin as its floor (and its fingerprint), and every edge
    whose curve never rose above it trained to the cap."""
    from optplan.config import load_config
    from optplan.knee import CHANCE_MARGIN
    from optplan.plan.runner import run_plan
    from optplan.plan.simulate import SimulatedTrainer
    from optplan.train.edge import VideoEdgeTrainer

    cfg = load_config(None, [*real_args(tiny_dataset), "knee.chance_guard=true"])
    video = VideoEdgeTrainer(cfg, tmp_path / "video")
    assert video.chance_score == pytest.approx(1 / len(video.session.classes))

    class AtChanceUntilLate(SimulatedTrainer):
        chance_score = 0.3  # the simulated surface starts at 0 and rises slowly past 0.32

    sim = load_config(None, [*SMALL, "knee.chance_guard=true", "knee.max_epochs=9", "knee.patience=2",
                             "plan.simulate.speed=0.05"])
    result = run_plan(sim, tmp_path / "sim", trainer=AtChanceUntilLate(sim.plan.simulate), progress=False)
    store = SQLiteStore.in_run_dir(tmp_path / "sim")
    assert store.get_meta("config")["knee"]["floor"] == pytest.approx(0.3 + CHANCE_MARGIN)
    store.close()
    flat = [e for e in result.edges if max(e.curve) <= 0.3 + CHANCE_MARGIN]
    assert flat and all(e.epochs == 9 for e in flat)
    plain = run_plan(load_config(None, [*SMALL, "knee.max_epochs=9", "knee.patience=2", "plan.simulate.speed=0.05"]),
                     tmp_path / "plain", trainer=AtChanceUntilLate(sim.plan.simulate), progress=False)
    assert sum(e.epochs for e in plain.edges) < sum(e.epochs for e in result.edges)


def test_dry_run_bounds_the_plan_and_trains_nothing(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["plan", f"data.root={tiny_dataset}", f"data.cache_dir={tmp_path / 'cache'}", "data.crop_size=28",
            "knee.max_epochs=6", "plan.beam=2", *SMALL, "--out", str(run), "--dry-run"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    # 2 x 2 graph: 6 edges, the 4 from a trained node once per kept model (beam 2)
    assert lines[0] == "10 edge runs to train; 36 train / 12 val / 24 test videos"
    rows = {"".join(line.split()[:3]): line.split()[3:] for line in lines[2:8]}
    assert rows["start->c4_x1"][:3] == ["4", "1", "4..6"] and rows["c4_x1->c8_x1"][:3] == ["8", "2", "4..6"]
    low, high = map(float, rows["start->c4_x1"][3].split(".."))
    assert high == pytest.approx(low * 6 / 4, rel=1e-3)  # GFLOPs scale with the epochs
    eight = float(rows["start->c8_x1"][3].split("..")[0])
    assert 1.5 < eight / low < 2.5  # and with the clip length
    assert lines[8].split()[:3] == ["total", "10", "40..60"]
    assert lines[-3].startswith("checkpoints: ") and "frame cache: about" in lines[-2]
    assert lines[-1] == "nothing trained" and not run.exists() and not (tmp_path / "cache").exists()
    assert main([*args, "knee.score_clip=longest"]) == 0  # c4 states validated on 8-frame clips
    longest = {"".join(line.split()[:3]): line.split()[3:] for line in capsys.readouterr().out.splitlines()[2:8]}
    assert float(longest["start->c4_x1"][3].split("..")[0]) > low
    assert longest["start->c8_x1"] == rows["start->c8_x1"]


def test_commands_for_a_plan_with_relative_paths_run_from_where_it_was_made(tmp_path, monkeypatch):
    """The default data.root is relative: the replay and resume commands go back to the plan's
    directory first, and a plan that reads data refuses to go on from another directory."""
    from optplan.config import validate
    from optplan.errors import OptplanError
    from optplan.plan.runner import _check_made_in, relative_paths, replay_command, resume_command

    made, elsewhere = tmp_path / "made", tmp_path / "elsewhere"
    made.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(made)
    assert main(["plan", "--simulate", "--out", "run", "--quiet", *SMALL]) == 0
    run = made / "run"
    monkeypatch.chdir(elsewhere)
    assert replay_command(run).startswith(f"cd {made} && optplan train {run / 'config.yaml'}")
    assert resume_command(run) == f"cd {made} && optplan plan --resume --out {run}"
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL]) == 0  # trains no data: goes on

    cfg = validate({"data": {"root": "videos", "cache_dir": str(tmp_path)}})
    assert relative_paths(cfg.model_dump(mode="json")) == ["data.root"]
    store = SQLiteStore.in_run_dir(run)
    try:
        _check_made_in(store, run, cfg, reads_data=False)  # a simulated or custom trainer reads no data
        with pytest.raises(OptplanError, match=f"planned from {made}.*data.root.*cd {made} && optplan plan --resume"):
            _check_made_in(store, run, cfg, reads_data=True)
        _check_made_in(store, run, validate({"data": {"root": str(tmp_path)}}), reads_data=True)  # absolute
        monkeypatch.chdir(made)
        _check_made_in(store, run, cfg, reads_data=True)  # back where it was made
    finally:
        store.close()

    absolute = tmp_path / "absolute"  # a config without relative paths: the command as it was
    assert main(["plan", "--simulate", "--out", str(absolute), "--quiet", *SMALL, f"data.root={tmp_path}"]) == 0
    assert replay_command(absolute).startswith("optplan train ")


@pytest.mark.slow
def test_from_records_plans_a_real_search_again_without_training(real_run, tmp_path, capsys):
    recorded = PlanResult.load(real_run)
    again = tmp_path / "again"
    assert main(["plan", "--from-records", str(real_run), "--out", str(again), "--quiet"]) == 0
    out = capsys.readouterr().out
    result = PlanResult.load(again)
    assert (result.nodes, result.path_epochs) == (recorded.nodes, recorded.path_epochs)
    assert [e.curve for e in result.edges] == [e.curve for e in recorded.edges]
    assert not (again / "edges").exists()  # nothing trained, no model written
    assert f"{recorded.search_epochs} of {recorded.search_epochs} search epochs" in out
    assert "kept its recorded winner" in out

    # a lower cap only shortens edges: an answer where no winner ended earlier, a clear 1 where one did
    lower = tmp_path / "lower"
    code = main(["plan", "--from-records", str(real_run), "--out", str(lower), "--quiet", "knee.max_epochs=2"])
    captured = capsys.readouterr()
    shorter = PlanResult.load(lower)
    assert shorter.search_epochs < recorded.search_epochs and all(e.epochs <= 2 for e in shorter.edges)
    winners_cut = any(d.candidates[0].epochs > 2 for d in recorded.decisions if d.candidates and d.candidates[0].edge)
    assert code == (1 if winners_cut else 0)
    assert ("is not what these settings would have found" in captured.err) == winners_cut

    # a rule that trains longer than the record cannot be answered from it
    assert main(["plan", "--from-records", str(real_run), "--out", str(tmp_path / "longer"), "--quiet",
                 "knee.max_epochs=5", "knee.patience=4"]) in (1, 2)
    assert "recorded curve" in capsys.readouterr().err
    # nor can the records' own directory be written into
    assert main(["plan", "--from-records", str(real_run), "--out", str(real_run), "--quiet"]) == 2
    assert "a run directory of its own" in capsys.readouterr().err

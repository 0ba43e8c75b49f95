"""Real training on the built-in videos: a state to its knee, resume, replay, eval, edges."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from optplan.cli import main
from optplan.config import load_config
from optplan.data.sampling import ClipSpec
from optplan.errors import ConfigError, OptplanError
from optplan.knee import KneeRule, read_curve
from optplan.plan.edge import EdgeJob, run_edge
from optplan.plan.protocol import Checkpoint, LossReportingEdgeRun, ResumableEdgeRun, ResumableEdgeTrainer
from optplan.train import State, evaluate, train_schedule, train_state
from optplan.train.checkpoint import load_checkpoint
from optplan.train.edge import VideoEdgeTrainer
from optplan.train.logging import read_log
from optplan.train.multiview import video_scores
from optplan.train.session import TrainSession

# The validation list is the training list: on 48 videos the test is whether the engine
# learns (the score must rise), not whether the tiny model generalises. Batch 4 at lr 0.02
# rose from chance (0.25) to 0.5-0.7 within 8 epochs on every dataset draw tried.
STATE = State(name="c4", lr=0.02, clip_length=4, batch_size=4)


def overrides(root, **over) -> list[str]:
    """The tests' settings as command-line overrides."""
    tree = {"data.root": root, "data.val_list": root / "trainlist01.txt", "data.crop_size": 28,
            "data.short_side": 32, "data.num_workers": 0, "data.test_clips": 2,
            "train.threads": 1, "train.progress": False, "model.dropout": 0.0,
            "knee.patience": 4, "knee.max_epochs": 8, **over}
    return [f"{k}={v}" for k, v in tree.items()]


def config(root, **over):
    return load_config(None, overrides(root, **over))


@pytest.fixture(scope="module")
def session(tiny_dataset):
    return TrainSession(config(tiny_dataset))


@pytest.fixture(scope="module")
def straight(session, tmp_path_factory):
    """One uninterrupted state run, shared by the tests that compare against it."""
    run_dir = tmp_path_factory.mktemp("straight")
    return run_dir, train_state(None, STATE, session.cfg, run_dir, session=session)


def test_state_run_learns_and_stops_at_a_knee(straight):
    run_dir, result = straight
    curve = result.curve
    assert curve[0] == 0.0 and len(curve) == result.cost.epochs + 1
    assert max(curve[1:]) > curve[1] + 0.15, curve  # the score rises
    knee = result.knee  # the paper rule, or the 8-epoch cap on a curve still rising
    assert knee.reached and not knee.diverged and knee.stop in ("knee", "max_epochs")
    assert 2 <= result.cost.epochs <= 8
    assert 0 <= knee.epoch <= result.cost.epochs
    assert result.cost.clips == 48 * result.cost.epochs and result.cost.seconds > 0
    # only the knee's model is kept
    assert result.checkpoint == run_dir / "kept.pt"
    assert sorted(p.name for p in run_dir.glob("*.pt")) == ["kept.pt"]
    kept = load_checkpoint(result.checkpoint)
    assert kept["epoch"] == knee.epoch and kept["state"]["name"] == "c4"
    assert kept["config"]["model"]["name"] == "dg_p3d_tiny"
    log = read_log(run_dir)
    assert [r["epoch"] for r in log] == list(range(1, result.cost.epochs + 1))
    assert [r["score"] for r in log] == pytest.approx(curve[1:])
    assert {"loss", "top1", "lr", "clip_length", "seconds", "clips_per_s"} <= set(log[0])
    assert read_curve(run_dir / "curve.csv") == pytest.approx(curve)
    assert json.loads((run_dir / "result.json").read_text())["knee"]["epoch"] == knee.epoch


def test_killed_run_resumes_to_the_same_checkpoint(straight, session, tmp_path):
    _, reference = straight

    def killed_after_epoch_2(scores, snapshot):
        if len(scores) == 3:  # the start and 2 epochs
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_state(None, STATE, session.cfg, tmp_path, session=session, on_epoch=killed_after_epoch_2)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    resumed = train_state(None, STATE, session.cfg, tmp_path, session=session)
    assert resumed.curve == reference.curve and resumed.knee.epoch == reference.knee.epoch
    a, b = load_checkpoint(resumed.checkpoint)["model"], load_checkpoint(reference.checkpoint)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished run is returned as it is
    assert train_state(None, STATE, session.cfg, tmp_path, session=session).curve == reference.curve


def test_a_stage_may_end_on_a_part_of_an_epoch(session, tmp_path):
    """``last_epoch_share`` trains the first batches of the last epoch's seeded order, rounded up
    to whole optimiser steps, and the cost counts the clips it trained (48 videos in batches of
    4 x 2: 6 steps an epoch; a share of 0.4 is 2.4 steps, so 3 steps, 24 clips)."""
    state = State(name="c4", lr=0.02, clip_length=4, batch_size=4, accumulation=2)
    stage = {"state": state.to_dict(), "epochs": 2, "last_epoch_share": 0.4}
    result = train_schedule({"stages": [stage]}, session.cfg, tmp_path / "part", session=session)
    assert result.cost.epochs == 2 and result.cost.clips == 48 + 24
    assert result.cost.gflops == pytest.approx(session.flops.train(4, 72), rel=1e-9)
    whole = train_schedule({"stages": [{**stage, "last_epoch_share": 1.0}]}, session.cfg, tmp_path / "whole",
                           session=session)
    assert whole.cost.clips == 96 and whole.curves[0][1] == result.curves[0][1]  # the same first epoch
    from optplan.train.schedule import Stage

    assert "last_epoch_share" not in Stage.model_validate({**stage, "last_epoch_share": 1.0}).to_dict()
    with pytest.raises(ValueError, match="last_epoch_share"):
        Stage.model_validate({**stage, "last_epoch_share": 0.0})


def test_schedule_replay_runs_each_stage(session, tmp_path):
    second = State(name="c8_low", lr=0.002, clip_length=8, batch_size=4, accumulation=2, frozen_bn=True)
    schedule = {"stages": [{"state": STATE.to_dict(), "epochs": 2},
                           {"state": {**STATE.to_dict(), "name": "skipped"}, "epochs": 0},
                           {"state": second.to_dict(), "epochs": 1, "lr_schedule": {"kind": "step", "milestones": [1]}}]}
    result = train_schedule(schedule, session.cfg, tmp_path, session=session)
    log = read_log(tmp_path)
    assert [(r["state"], r["epoch"], r["clip_length"]) for r in log] == [("c4", 1, 4), ("c4", 2, 4), ("c8_low", 1, 8)]
    assert [r["lr"] for r in log] == pytest.approx([0.02, 0.02, 0.002])
    assert [len(c) for c in result.curves] == [3, 0, 2] and result.cost.epochs == 3
    assert result.curves[2][0] == result.curves[0][-1]
    final = load_checkpoint(result.checkpoint)
    assert final["state"]["name"] == "c8_low" and final["epoch"] == 3
    assert not (tmp_path / "last.pt").exists()
    # killed inside the first stage, the replay resumes to the same model
    def killed(stage, epoch, curves):
        if (stage, epoch) == (0, 1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_schedule(schedule, session.cfg, tmp_path / "killed", session=session, on_epoch=killed)
    resumed = train_schedule(schedule, session.cfg, tmp_path / "killed", session=session)
    assert resumed.curves == result.curves
    again = load_checkpoint(resumed.checkpoint)["model"]
    assert all(torch.equal(again[k], final["model"][k]) for k in again)
    # the frozen-BN stage (train.frozen_bn: stats) trained the weights and BN affine but left the
    # first stage's BN statistics alone, except the stem's
    first = train_schedule({"stages": schedule["stages"][:1]}, session.cfg, tmp_path / "first", session=session)
    before = load_checkpoint(first.checkpoint)["model"]
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(final["model"][k], before[k]) == (not k.startswith("bn1.")) for k in stats)
    for key in ("conv1.weight", "layer1.0.bn1.weight"):
        assert not torch.equal(final["model"][key], before[key]), key


def test_eval_writes_the_expected_json(straight, session, tmp_path):
    _, result = straight
    out = tmp_path / "eval.json"
    got = evaluate(session.cfg, result.checkpoint, out=out, session=session)
    on_disk = json.loads(out.read_text())
    assert on_disk == got
    k = len(session.classes)
    assert got["videos"] == 24 and got["views"] == 2 * 3 and got["split"] == "test"
    confusion = torch.tensor(got["confusion"])
    assert confusion.shape == (k, k) and confusion.sum() == 24
    assert got["top1"] == pytest.approx(confusion.trace().item() / 24)
    assert 0 <= got["top1"] <= got["top5"] <= 1 and got["classes"] == session.classes


def test_views_average_softmax_or_logits():
    """One confident view outvotes two mild ones when logits are averaged (the reference), not
    when probabilities are."""
    logits = torch.tensor([[[10.0, 0.0], [0.0, 3.0], [0.0, 3.0]]])  # (1 video, 3 views, 2 classes)
    assert video_scores(logits, "logits").argmax(1).item() == 0
    assert video_scores(logits, "softmax").argmax(1).item() == 1
    assert torch.allclose(video_scores(logits, "softmax").sum(1), torch.ones(1))
    with pytest.raises(ValueError, match="average"):
        video_scores(logits, "max")


def test_eval_with_its_own_crop_and_logit_averaging(straight, session, tiny_dataset, tmp_path):
    _, result = straight
    base = evaluate(session.cfg, result.checkpoint, session=session)
    cfg = config(tiny_dataset, **{"data.test_crop_size": 32, "data.test_average": "logits"})
    got = evaluate(cfg, result.checkpoint, out=tmp_path / "e.json")
    assert (base["crop_size"], base["average"]) == (28, "softmax")
    assert (got["crop_size"], got["average"]) == (32, "logits") and got["videos"] == 24
    assert got["gflops"] > base["gflops"]  # counted at 32 x 32, not 28 x 28


def test_cli_eval_and_train_errors(straight, tiny_dataset, tmp_path, capsys):
    _, result = straight
    root = tiny_dataset
    over = [f"data.root={root}", f"data.val_list={root / 'trainlist01.txt'}", "data.crop_size=28",
            "data.short_side=32", "data.num_workers=0", "data.test_clips=1", "data.test_crops=1",
            "train.progress=false"]
    out = tmp_path / "e.json"
    assert main(["eval", *over, "--checkpoint", str(result.checkpoint), "--split", "val", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["videos"] == 48
    assert main(["eval", *over, "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    good_state = tmp_path / "good.yaml"
    good_state.write_text("name: cli\nlr: 0.01\nclip_length: 4\n")
    run = tmp_path / "cli_run"
    assert main(["train", *over, "knee.patience=1", "knee.max_epochs=1", "--state", str(good_state),
                 "--out", str(run), "--test"]) == 0
    assert "knee at epoch" in capsys.readouterr().out
    assert json.loads((run / "result.json").read_text())["cost"]["epochs"] == 1
    assert json.loads((run / "test.json").read_text())["videos"] == 24
    assert (run / "config.yaml").is_file() and (run / "kept.pt").is_file()
    # a run made before an option existed reruns (the option at its default); other settings do not
    record = json.loads((run / "train.json").read_text())
    del record["config"]["knee"]["chance_guard"]
    (run / "train.json").write_text(json.dumps(record))
    again = ["train", *over, "knee.max_epochs=1", "--state", str(good_state), "--out", str(run)]
    assert main([*again, "knee.patience=1"]) == 0
    assert main([*again, "knee.patience=2"]) == 2
    assert "made with other settings" in (err := capsys.readouterr().err) and "knee.patience: run has 1, now 2" in err
    from optplan.plan.lock import run_dir_lock

    (tmp_path / "held").mkdir()
    with run_dir_lock(tmp_path / "held"):  # another writer holds --out: refused, nothing trained
        assert main(["train", *over, "--state", str(good_state), "--out", str(tmp_path / "held")]) == 2
    assert f"in use by another plan or training run, process {os.getpid()}" in capsys.readouterr().err
    assert not (tmp_path / "held" / "result.json").exists()
    bad_state = tmp_path / "s.yaml"
    bad_state.write_text("name: x\nlr: -1\nclip_length: 4\n")
    assert main(["train", *over, "--state", str(bad_state), "--out", str(tmp_path / "r")]) == 2
    assert "lr" in capsys.readouterr().err


def test_edge_trainer_implements_the_resumable_protocol(session, tiny_dataset, tmp_path):
    trainer = VideoEdgeTrainer(session.cfg, tmp_path)
    trainer._session = session  # reuse the module's data (a real worker builds its own)
    clone = pickle.loads(pickle.dumps(trainer))
    assert clone.run_dir == tmp_path and clone._session is None
    other = pickle.loads(pickle.dumps(trainer))  # the next pool job in the same worker process
    assert clone.session is other.session  # built once per process and config, not per job
    assert isinstance(trainer, ResumableEdgeTrainer)

    first = run_edge(trainer, EdgeJob(id="e1", source=None, state=STATE, rule=KneeRule(patience=2, max_epochs=3)))
    assert first.error is None and first.knee.reached
    kept = first.checkpoint
    assert kept.meta["state"] == "c4" and kept.meta["edge"] == "start->c4"
    assert kept.path == "edges/start-c4/kept.pt"  # relative to the run directory, which may move
    assert kept.file(tmp_path) == tmp_path / "edges" / "start-c4" / "kept.pt"

    # edge c4 -> c8 from that checkpoint: interrupted after 1 epoch, resumed by the planner
    target = State(name="c8", lr=0.002, clip_length=8, batch_size=8)
    run = trainer.open(kept, target)
    assert isinstance(run, ResumableEdgeRun)
    start = run.initial_score()
    assert start == session.score(session.load_model(kept.file(tmp_path)), ClipSpec.from_state(target)).score
    curve = [start, run.train_epoch(), run.train_epoch()]
    losses = run.train_losses  # what the climb rule judges (a LossReportingEdgeRun)
    assert isinstance(run, LossReportingEdgeRun) and len(losses) == 2 and all(0 < x < 100 for x in losses)
    assert losses == [row["loss"] for row in read_log(trainer.edge_dir(kept, target))]
    snap = run.snapshot()
    # the planner recorded only one epoch before a crash: the second is replayed, not retrained
    again = trainer.resume(snap, kept, target, curve[:2])
    assert again.train_losses == losses[:1]  # the replayed epoch's loss is handed out with its score
    assert again.train_epoch() == curve[2] and again.train_losses == losses
    third = again.train_epoch()
    straight = trainer.open(kept, target)
    assert [straight.initial_score()] + [straight.train_epoch() for _ in range(3)] == curve + [third]
    assert straight.train_losses[:2] == losses and len(again.train_losses) == 3
    with pytest.raises(ValueError, match="another model config"):
        train_state(None, STATE, config(tiny_dataset, **{"model.name": "p3d_tiny"}), tmp_path, session=session)
    with pytest.raises(Exception, match="does not continue"):
        trainer.resume(straight.snapshot(), kept, target, [0.123, 0.5])
    assert isinstance(straight.keep(0), Checkpoint)


def test_diverging_state_ends_with_the_best_finite_epoch(session, tmp_path):
    wild = State(name="wild", lr=1e6, clip_length=4, batch_size=8)
    result = train_state(None, wild, session.cfg, tmp_path, session=session)
    assert result.knee.diverged and result.knee.stop == "diverged"
    assert result.curve[-1] != result.curve[-1]  # NaN recorded on the curve
    finite = [s for s in result.curve if s == s]
    assert result.knee.score == max(finite) and result.curve[result.knee.epoch] == max(finite)
    assert load_checkpoint(result.checkpoint)["epoch"] == result.knee.epoch
    assert json.loads((tmp_path / "result.json").read_text())["curve"][-1] is None


def test_replaying_a_trained_path_rebuilds_its_model(straight, session, tiny_dataset, tmp_path):
    """Epochs are seeded by state and epoch only, so the replay of start -> c4 -> c8 from
    scratch retraces the two knee-terminated runs and ends on the very same weights."""
    _, first = straight
    assert first.knee.epoch > 0
    low = State(name="c8_low", lr=0.002, clip_length=8, batch_size=8)
    second = train_state(first.checkpoint, low, config(tiny_dataset, **{"knee.max_epochs": 2}),
                         tmp_path / "edge", session=session)
    schedule = {"stages": [{"state": STATE.to_dict(), "epochs": first.knee.epoch},
                           {"state": low.to_dict(), "epochs": second.knee.epoch}]}
    replay = train_schedule(schedule, session.cfg, tmp_path / "replay", session=session)
    assert replay.curves[0][1:] == first.curve[1: first.knee.epoch + 1]
    assert replay.final_score == second.curve[second.knee.epoch] or second.knee.epoch == 0
    rebuilt, kept = load_checkpoint(replay.checkpoint)["model"], load_checkpoint(second.checkpoint)["model"]
    assert all(torch.equal(rebuilt[k], kept[k]) for k in kept)


def test_another_draw_trains_another_run_of_the_schedule_on_the_same_split(straight, session, tiny_dataset,
                                                                           tmp_path):
    """train.draw=1 reseeds the initial weights and every epoch's clips, so a replay is an
    independent run of the schedule (reproducible in its own right); the validation hold-out
    stays train.seed's, so its scores compare with the search's."""
    _, first = straight
    schedule = {"stages": [{"state": STATE.to_dict(), "epochs": 2}]}
    drawn = TrainSession(config(tiny_dataset, **{"train.draw": 1}))
    assert drawn.run_seed != session.run_seed == session.cfg.train.seed
    once = train_schedule(schedule, drawn.cfg, tmp_path / "a", session=drawn)
    again = train_schedule(schedule, drawn.cfg, tmp_path / "b", session=drawn)
    own = train_schedule(schedule, session.cfg, tmp_path / "own", session=session)
    assert own.curves[0][1:] == first.curve[1:3]  # draw 0 is the search's run
    weights = {name: load_checkpoint(r.checkpoint)["model"] for name, r in
               (("once", once), ("again", again), ("own", own))}
    assert all(torch.equal(weights["once"][k], weights["again"][k]) for k in weights["own"])
    assert not all(torch.equal(weights["once"][k], weights["own"][k]) for k in weights["own"])
    held = [load_config(None, [f"data.root={tiny_dataset}", "data.val_fraction=0.25", "train.threads=1",
                               f"train.draw={d}"]) for d in (0, 1)]
    assert [r.path for r in TrainSession(held[0]).splits.val] == [r.path for r in TrainSession(held[1]).splits.val]
    with pytest.raises(ConfigError, match="train.draw"):
        load_config(None, [f"data.root={tiny_dataset}", "train.draw=-1"])


def test_a_replay_far_below_its_search_run_says_so(tiny_dataset, tmp_path, capsys):
    """schedule.yaml of a plan names what the search's run of it reached; a replay that ends
    SHORTFALL or more below it (a run that stalled) warns on stderr, naming the search's model,
    and records how far in result.json; one that reaches it warns of nothing."""
    import yaml

    from optplan.train.schedule import SHORTFALL

    def replay(score: float, out: str) -> dict:
        schedule = {"stages": [{"state": STATE.to_dict(), "epochs": 1}],
                    "search_run": {"score": score, "metric": "top1", "model": "/runs/p/model.pt"}}
        path = tmp_path / f"{out}.yaml"
        path.write_text(yaml.safe_dump(schedule))
        assert main(["train", *overrides(tiny_dataset), "--schedule", str(path), "--out", str(tmp_path / out)]) == 0
        return json.loads((tmp_path / out / "result.json").read_text())

    stalled = replay(1.0, "stalled")  # one epoch on these videos is far from every video right
    err = capsys.readouterr().err
    assert stalled["shortfall"] == pytest.approx(1.0 - stalled["final_score"]) and stalled["shortfall"] >= SHORTFALL
    assert "warning: this replay ended at validation top1" in err and "(/runs/p/model.pt)" in err
    assert f"{stalled['shortfall']:.4f} below the 1.0000" in err
    same = replay(stalled["final_score"], "same")  # the same epoch again: the search's own score
    assert abs(same["shortfall"]) < SHORTFALL / 4 and "warning" not in capsys.readouterr().err


def test_an_averaged_replay_says_which_model_it_kept(tiny_dataset, tmp_path, capsys, monkeypatch):
    """``optplan train --schedule`` with train.average_last names the model it ended on (the
    average of the last N epochs, or the last epoch's where the average validated lower) and the
    other model's validation score, as result.json records them; final.pt holds that model."""
    import yaml

    from optplan.train.replay import ScheduleResult

    second = State(name="c8", lr=0.01, clip_length=8, batch_size=4)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"stages": [{"state": STATE.to_dict(), "epochs": 1},
                                               {"state": second.to_dict(), "epochs": 2}]}))

    def replay(out: str) -> tuple[dict, str]:
        assert main(["train", *overrides(tiny_dataset, **{"train.average_last": 0.7}), "--schedule", str(path),
                     "--out", str(tmp_path / out)]) == 0
        return json.loads((tmp_path / out / "result.json").read_text()), capsys.readouterr().out.splitlines()[-1]

    for kept in (True, False):  # each branch of the validation guard, whatever these videos give
        monkeypatch.setattr(ScheduleResult, "averaged_kept", property(lambda self, kept=kept: kept))
        result, line = replay(f"kept{kept}")
        assert result["averaged_epochs"] == 2 and result["averaged_kept"] is kept
        final, last_score = load_checkpoint(result["checkpoint"])["model"], result["curves"][-1][-1]
        assert result["checkpoint"].endswith("final.pt") and result["final_score"] == (
            result["averaged"] if kept else last_score)
        last = load_checkpoint(result["last_epoch_checkpoint"])["model"]
        assert all(torch.equal(final[k], last[k]) for k in final) is not kept
        if kept:
            assert (f"final validation score {result['averaged']:.4f} (the average of the last 2 epochs' "
                    f"weights; the last epoch scored {last_score:.4f})") in line
        else:
            assert (f"final validation score {last_score:.4f} (the last epoch's model: the "
                    f"average of the last 2 epochs' weights scored {result['averaged']:.4f})") in line


def test_schedule_shortfall_is_measured_only_against_the_same_metric():
    from optplan.train.schedule import Schedule, load_schedule

    stages = [{"state": STATE.to_dict(), "epochs": 2}]
    run = Schedule.model_validate({"stages": stages, "search_run": {"score": 0.8, "metric": "top1"}})
    assert run.shortfall(0.5, "top1") == pytest.approx(0.3) and run.shortfall(0.9, "top1") == pytest.approx(-0.1)
    assert run.shortfall(0.5, "top135") is None  # another metric: no comparison
    assert run.shortfall(float("nan"), "top1") == pytest.approx(0.8)  # a diverged replay fell the whole way
    plain = Schedule.model_validate({"stages": stages})
    assert plain.shortfall(0.5, "top1") is None and "search_run" not in plain.to_dict()
    assert run.to_dict()["search_run"] == {"score": 0.8, "metric": "top1", "model": None}
    with pytest.raises(ConfigError, match="search_run.score"):
        load_schedule({"stages": stages, "search_run": {"score": "high", "metric": "top1"}})


def test_every_epoch_records_its_training_gflops(straight, session):
    """Cost in GFLOPs = forward FLOPs of one clip at the state's T x crop x crop x clips x 3."""
    from optplan.models.flops import model_cost

    _, result = straight
    forward = model_cost("dg_p3d_tiny", (4, 28, 28), num_classes=len(session.classes), dropout=0.0).gflops
    assert forward == pytest.approx(session.flops(4)) and forward > 0
    assert result.cost.gflops == pytest.approx(3 * forward * 48 * result.cost.epochs, rel=1e-9)
    # validation is counted apart: 48 clips per pass, one pass per epoch (from scratch: no epoch 0 pass)
    assert result.cost.eval_gflops == pytest.approx(forward * 48 * result.cost.epochs, rel=1e-9)
    assert session.epoch_gflops(STATE) == pytest.approx(3 * forward * 48)
    # a 16-frame clip of the same model costs about 4x a 4-frame one
    assert 3.0 < session.flops(16) / session.flops(4) < 4.5


@pytest.mark.parametrize("metric", ["top1", "loss"])
def test_knee_metric_sets_what_the_curve_measures(tiny_dataset, session, metric, tmp_path):
    import math

    cfg = config(tiny_dataset, **{"knee.metric": metric, "knee.max_epochs": 2})
    assert session.metric == "top1"  # 'auto' on these few classes
    if metric == session.metric:  # the same metric, named explicitly: the session serves it
        assert session.serves(cfg) is session
    else:
        with pytest.raises(ValueError, match="knee.metric"):
            session.serves(cfg)
    own = TrainSession(cfg)
    result = train_state(None, STATE, cfg, tmp_path, session=own)
    logged = read_log(tmp_path)
    assert len(logged) == result.cost.epochs == 2
    for row, score in zip(logged, result.curve[1:]):
        expected = row["top1"] if metric == "top1" else math.exp(-row["val_loss"])
        assert score == pytest.approx(expected) and 0 < score <= 1


def test_a_session_keeps_its_own_thread_count(session, tiny_dataset):
    """torch's thread count is process-wide and changes the last bits of CPU results: a session
    built later with another count must not change how this one trains and scores."""
    other = TrainSession(config(tiny_dataset, **{"train.threads": 2}))
    assert other.threads == 2 and torch.get_num_threads() == 2
    session.score(session.new_model(), ClipSpec.from_state(STATE))
    assert torch.get_num_threads() == session.threads == 1


@pytest.mark.slow
def test_warm_up_from_scratch_in_the_search_and_its_replay(tiny_dataset, tmp_path):
    """``train.warmup_epochs`` ramps lr over a fresh model's first epochs, in a state run from
    scratch and in the first stage of the replay alike, so the replay still retraces the run; a
    run from a source does not warm up."""
    cfg = config(tiny_dataset, **{"train.warmup_epochs": 2, "knee.max_epochs": 3, "knee.patience": 10})
    session = TrainSession(cfg)
    run = train_state(None, STATE, cfg, tmp_path / "run", session=session)
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([STATE.lr / 3, STATE.lr * 2 / 3, STATE.lr])
    onward = train_state(run.checkpoint, STATE, config(tiny_dataset, **{"train.warmup_epochs": 2,
                         "knee.max_epochs": 1, "knee.patience": 10}), tmp_path / "onward", session=session)
    assert onward.cost.epochs == 1
    assert json.loads((tmp_path / "onward" / "log.jsonl").read_text())["lr"] == pytest.approx(STATE.lr)
    schedule = {"stages": [{"state": STATE.to_dict(), "epochs": 3}]}
    replay = train_schedule(schedule, cfg, tmp_path / "replay", session=session)
    assert replay.curves[0] == run.curve  # same process, same inputs: bit-identical


@pytest.mark.parametrize("mode", ["stats", "all"])
def test_prepare_freezes_bn_after_the_syncbn_conversion(session, tiny_dataset, monkeypatch, mode):
    """Distributed GPU training converts BN to SyncBatchNorm, which drops the freezing hooks:
    the session must freeze after converting. Here the session believes it is one of two GPU
    processes; SyncBatchNorm runs on CPU without a process group, and DDP is left out."""
    import copy

    import optplan.train.session as session_module
    from optplan.train.distributed import DistInfo
    from optplan.train.engine import Precision

    gpu = copy.copy(session)
    gpu.cfg = config(tiny_dataset, **{"train.frozen_bn": mode})
    gpu.dist, gpu.precision = DistInfo(rank=0, world_size=2), Precision(torch.device("cuda"))
    monkeypatch.setattr(session_module, "wrap_model", lambda model, info, device: model)
    model = session.new_model()
    before = copy.deepcopy(model.state_dict())
    optimizer, net = gpu.prepare(model, STATE.model_copy(update={"frozen_bn": True}))
    norms = {n: m for n, m in net.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert norms and all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms.values())
    net.train()
    loss = sum(torch.nn.functional.cross_entropy(o, torch.tensor([0, 1])) for o in net(torch.randn(2, 3, 4, 28, 28)))
    loss.backward()
    optimizer.step()
    after = net.state_dict()
    for name in norms:
        stem = name == "bn1"
        stats_moved = not torch.equal(before[f"{name}.running_mean"], after[f"{name}.running_mean"])
        affine_moved = not torch.equal(before[f"{name}.weight"], after[f"{name}.weight"])
        assert stats_moved == (mode == "stats" and stem), name
        assert affine_moved == (mode == "stats"), name


def test_drop_last_sets_the_clips_of_an_epoch_and_refuses_an_epoch_without_a_step(session, tiny_dataset):
    import copy

    clips = len(session.splits.train)
    too_big = STATE.model_copy(update={"batch_size": clips + 1})
    too_long = STATE.model_copy(update={"batch_size": 4, "accumulation": clips // 4 + 1})
    for state in (too_big, too_long):
        with pytest.raises(OptplanError, match="would make no optimiser step"):
            session.check_state(state)
    keep = copy.copy(session)
    keep.cfg = config(tiny_dataset, **{"train.drop_last": False, "train.drop_last_accumulation": False})
    for state in (too_big, too_long):
        keep.check_state(state)
    odd = STATE.model_copy(update={"batch_size": 5})  # what an epoch trains is what it costs
    assert (session.epoch_clips(odd), keep.epoch_clips(odd)) == (clips - clips % 5, clips)
    assert session.epoch_gflops(odd) == pytest.approx(keep.epoch_gflops(odd) * (clips - clips % 5) / clips)


def test_a_plan_drops_a_start_whose_training_loss_climbs(session, tiny_dataset, tmp_path):
    # Two starts into 4-frame clips after a 1-epoch warm-up: at lr 0.02 the tiny model's training
    # loss rose 30-36% from epoch 1 to 2 (and on to +40-50% by epoch 4) on two seeds tried; lr
    # 0.002 is the gentlest start of that setting, never judged. (At lr 0.3-3 the loss explodes
    # within epoch 1 and then falls: a start the rule does not judge, the knee rule's to stop.)
    from optplan.plan.runner import run_plan

    states = [{"name": "calm", "lr": 0.002, "clip_length": 4, "batch_size": 4},
              {"name": "wild", "lr": 0.02, "clip_length": 4, "batch_size": 4}]
    cfg = config(tiny_dataset, **{"plan.preset": "custom", "plan.states": json.dumps(states),
                                  "plan.edges": '[["start", "calm"], ["start", "wild"], ["wild", "calm"]]',
                                  "plan.final": "calm",
                                  "plan.climb_limit": 1.15, "train.warmup_epochs": 1, "knee.max_epochs": 3,
                                  "knee.patience": 2})
    result = run_plan(cfg, tmp_path / "plan", progress=False)
    wild = next(e for e in result.edges if e.target == "wild")
    assert (wild.status, wild.checkpoint) == ("dropped", None) and 2 <= wild.epochs <= 4
    assert len(wild.losses) == wild.epochs and wild.losses[-1] > 1.15 * wild.losses[0]  # in the store too
    assert "training loss rose from" in wild.error and "plan.climb_limit=1.15" in wild.error
    assert result.nodes == ["calm"] and [e.status for e in result.edges if e.target == "calm"] == ["done", "skipped"]
    assert any("start->wild dropped" in note for note in result.notes)
    edges = tmp_path / "plan" / "edges"
    assert not list((edges / "start-wild").glob("*.pt")) and (edges / "start-wild" / "curve.csv").is_file()
    assert list((edges / "start-calm").glob("kept.pt"))  # a kept start keeps its model


def test_a_replay_averages_the_weights_of_its_last_epochs(session, tiny_dataset, tmp_path, monkeypatch):
    """train.average_last=0.5 of a 4-epoch schedule averages the models that end epochs 3 and 4
    (the second stage's), measures BatchNorm statistics for them on one pass of the training
    clips (counted as forward GFLOPs) and scores that model, the final one where it validates at
    least as well as the last epoch's (else that one stays); training itself is unchanged, a
    killed replay resumes to the same average, and a resume point of other averaging is refused."""
    from optplan.train.replay import ScheduleResult

    second = State(name="c8", lr=0.01, clip_length=8, batch_size=4)
    schedule = {"stages": [{"state": STATE.to_dict(), "epochs": 2}, {"state": second.to_dict(), "epochs": 2}]}
    epoch_models = []

    def keep(stage, epoch, curves):
        epoch_models.append(load_checkpoint(tmp_path / "plain" / "last.pt")["model"])

    plain = train_schedule(schedule, session.cfg, tmp_path / "plain", session=session, on_epoch=keep)
    assert plain.averaged is None and plain.final_score == plain.last_epoch_score
    averaging = TrainSession(config(tiny_dataset, **{"train.average_last": 0.5}))
    monkeypatch.setattr(ScheduleResult, "averaged_kept", property(lambda self: self.averaged is not None))
    result = train_schedule(schedule, averaging.cfg, tmp_path / "avg", session=averaging)
    assert result.curves == plain.curves  # the same training
    assert result.final_score == result.averaged and 0.0 <= result.averaged <= 1.0 and result.averaged_epochs == 2
    assert json.loads((tmp_path / "avg" / "result.json").read_text())["averaged"] == result.averaged
    final = load_checkpoint(result.checkpoint)["model"]
    for key in ("conv1.weight", "heads.0.fc.weight"):
        mean = (epoch_models[2][key] + epoch_models[3][key]) / 2
        assert torch.allclose(final[key], mean, atol=1e-6), key
        assert not torch.allclose(final[key], epoch_models[3][key], atol=1e-6), key
    stats = [k for k in final if k.endswith("running_mean")]
    assert stats and not any(torch.allclose(final[k], (epoch_models[2][k] + epoch_models[3][k]) / 2) for k in stats)
    assert result.cost.gflops == pytest.approx(plain.cost.gflops + averaging.flops(8) * 48, rel=1e-9)
    last = load_checkpoint(result.last_epoch_checkpoint)["model"]  # kept beside it, for comparison
    assert plain.last_epoch_checkpoint is None and all(torch.equal(last[k], epoch_models[3][k]) for k in last)
    monkeypatch.setattr(ScheduleResult, "averaged_kept", property(lambda self: False))  # the average lagged
    lagging = train_schedule(schedule, averaging.cfg, tmp_path / "lagging", session=averaging)
    assert lagging.averaged == result.averaged and lagging.final_score == lagging.last_epoch_score
    assert lagging.cost.gflops == pytest.approx(result.cost.gflops, rel=1e-9)  # its pass was spent all the same
    kept = load_checkpoint(lagging.checkpoint)["model"]
    assert all(torch.equal(kept[k], epoch_models[3][k]) for k in kept)
    monkeypatch.undo()
    assert ScheduleResult([[0.0, 0.5]], tmp_path, averaged=0.5).averaged_kept
    assert not ScheduleResult([[0.0, 0.5]], tmp_path, averaged=0.49).averaged_kept
    assert ScheduleResult([[0.0, 0.5]], tmp_path, averaged=0.49).final_score == 0.5

    def killed(stage, epoch, curves):
        if (stage, epoch) == (1, 1):  # inside the averaged epochs
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_schedule(schedule, averaging.cfg, tmp_path / "killed", session=averaging, on_epoch=killed)
    with pytest.raises(OptplanError, match="train.average_last=0.5"):
        train_schedule(schedule, session.cfg, tmp_path / "killed", session=session)
    resumed = train_schedule(schedule, averaging.cfg, tmp_path / "killed", session=averaging)
    assert resumed.averaged == result.averaged
    again = load_checkpoint(resumed.checkpoint)["model"]
    same = final if resumed.averaged_kept else epoch_models[3]
    assert all(torch.equal(again[k], same[k]) for k in final)
    with pytest.raises(ConfigError, match="train.average_last"):
        config(tiny_dataset, **{"train.average_last": 1.5})


def test_batchnorm_statistics_are_measured_again_for_averaged_weights():
    """refresh_batchnorm sets each training BN layer's running mean to the mean of its inputs
    over the pass (equal batches: the mean of the batch means) and leaves a frozen layer's."""
    from optplan.models.layers import set_frozen_bn
    from optplan.train.average import averaged_epochs, refresh_batchnorm
    from optplan.train.engine import Precision

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4))
    batches = [(torch.randn(2, 3, 2, 4, 4) * 3 + 1, torch.zeros(2, dtype=torch.long)) for _ in range(5)]
    assert refresh_batchnorm(net, batches, Precision(torch.device("cpu"), None)) == 10
    with torch.no_grad():
        inputs = torch.cat([net[0](x) for x, _ in batches])
    assert torch.allclose(net[1].running_mean, inputs.mean(dim=(0, 2, 3, 4)), atol=1e-5)
    assert net[1].momentum == 0.1
    set_frozen_bn(net, True, "all")
    before = net[1].running_mean.clone()
    assert refresh_batchnorm(net, [(x * 5, y) for x, y in batches], Precision(torch.device("cpu"), None)) == 0
    assert torch.equal(net[1].running_mean, before)
    assert [averaged_epochs(20, s, 20) for s in (0.0, 0.25, 0.26, 1.0)] == [0, 5, 6, 20]
    assert averaged_epochs(20, 0.5, 4) == 4 and averaged_epochs(20, 0.25, 1) == averaged_epochs(3, 0.1, 3) == 0

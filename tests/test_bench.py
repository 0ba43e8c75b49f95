"""The compute-fair benchmark on a tiny built-in regime: rows at equal GFLOPs, resume, tables,
intervals, bad input; PBT and ASHA at the planner's search GFLOPs."""

from __future__ import annotations

import json
import math
import os

import pytest
import yaml

from optplan.bench.config import load_bench_config
from optplan.bench.rows import expand_rows
from optplan.bench.runner import run_bench
from optplan.bench.schedules import fit_budget, multigrid, schedule_gflops, short_long, single_clip
from optplan.bench.search import random_schedule
from optplan.bench.summary import paired_interval
from optplan.cli import main
from optplan.config import load_config
from optplan.data.synth import plan_videos
from optplan.errors import ConfigError, OptplanError
from optplan.plan.graph import StateGraph
from optplan.train.schedule import SHORTFALL

TINY = {
    "config": {
        "data": {"crop_size": 28, "short_side": 32, "test_clips": 1, "test_crops": 1, "num_workers": 0},
        "model": {"name": "dg_p3d_tiny", "dropout": 0.0},
        "knee": {"patience": 2, "max_epochs": 3, "metric": "top135"},  # as bench.yaml: the paper's row
        "plan": {"preset": "paper", "clip_lengths": [4, 8], "batch_sizes": [8, 8], "accumulation": [1, 1],
                 "base_lrs": [0.05, 0.05], "lr_multipliers": [1.0, 0.1]},
        # a dozen training clips in batches of 8: keep the short batch, or an epoch drops a third
        "train": {"threads": 1, "drop_last": False},
    },
    "regimes": {"mixed": {"synth": {"regime": "mixed", "num_classes": 4, "videos_per_class": 8, "frames": 16,
                                    "size": 32, "test_share": 0.5}}},
    "rows": ["planned", "search_model", "cosine", "cosine@8x0.1", "short_long", "multigrid", "random"],
    "variants": {"best": ["plan.final=best", "knee.metric=top1"], "smooth": ["plan.replay_lr=linear", "train.average_last=1.0"]},
}


def write(tmp_path, tree, name="bench.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "out"
    summary = run_bench(load_bench_config(write(tmp, TINY)), out, [0, 1])
    return tmp, out, summary


def rows_of(summary):
    return {r["name"]: r for r in summary["regimes"]["mixed"]["rows"]}


@pytest.mark.slow
def test_every_row_runs_on_every_seed_and_is_tested(tiny_bench):
    _, out, summary = tiny_bench
    rows = rows_of(summary)
    assert list(rows) == ["planned", "planned:best", "planned:smooth", "search_model", "cosine@4", "cosine@8",
                          "cosine@8x0.1", "short_long", "multigrid", "random"]
    assert rows["cosine@8x0.1"]["label"] == "single clip 8 at lr x0.1, cosine + 1-epoch warm-up"
    for name, r in rows.items():
        assert r["seeds"] == [0, 1], name
        assert all(0.0 <= v <= 1.0 for v in r["top1"].values()) and all(v > 0 for v in r["train_gflops"].values())
    planned = json.loads((out / "mixed" / "seed0" / "planned.json").read_text())
    assert planned["test_videos"] == 16 and planned["knee_metric"] == "top135"
    assert planned["search_gflops"] > planned["train_gflops"] > 0
    assert json.loads((out / "mixed" / "seed0" / "planned_best.json").read_text())["knee_metric"] == "top1"
    # the search model is the plan's own: its training cost is the planned path's
    assert rows["search_model"]["train_gflops"][0] == pytest.approx(planned["replay_gflops"])
    assert (out / "table.md").read_text().count("| optplan") == 4
    # a variant that only replays differently starts from the planner row's search: same path and
    # search GFLOPs, no edge trained again, the path's stages decaying linearly
    smooth = json.loads((out / "mixed" / "seed0" / "planned_smooth.json").read_text())
    assert smooth["nodes"] == planned["nodes"] and smooth["search_gflops"] == planned["search_gflops"]
    # ... and averages its last stage's weights (train.average_last=1.0) where it has two epochs
    # or more, testing its last epoch's model too; its BatchNorm pass costs a forward pass more
    last_stage = [s["epochs"] for s in smooth["schedule"]["stages"] if s["epochs"]][-1]
    assert (smooth.get("averaged_epochs") == last_stage) == (last_stage >= 2)
    assert ("last_epoch_top1" in smooth) == (last_stage >= 2) and "averaged_epochs" not in planned
    assert smooth["train_gflops"] == pytest.approx(planned["train_gflops"], rel=1e-6) or (
        last_stage >= 2 and planned["train_gflops"] < smooth["train_gflops"] < 1.2 * planned["train_gflops"])
    assert [s["lr_schedule"]["kind"] for s in smooth["schedule"]["stages"]] == ["linear"] * len(planned["schedule"]["stages"])
    assert "lr_schedule" not in planned["schedule"]["stages"][0]
    assert smooth["search_seconds"] < planned["search_seconds"] / 5  # a stored plan read back
    # the replay is measured against the search's run of the same path (on one CPU thread the
    # same bits); a smoothed replay is not that path, so it has nothing to be measured against
    assert planned["schedule"]["search_run"]["score"] == planned["val_score"]
    assert abs(planned["replay_shortfall"]) < SHORTFALL / 4 and smooth["replay_shortfall"] is None
    assert "Replays that ended" not in (out / "table.md").read_text()


def test_the_table_names_replays_that_fell_far_below_their_search():
    """A replay that stalled is named with the score its search reached, so a mean that one
    stalled run pulls down is not read as the schedule's."""
    from optplan.bench.runner import _about

    rows = {"planned": {s: {"nodes": ["c8_x1", "c16_x0.1"], "test_videos": 1200, "knee_metric": "top1",
                            "val_score": v, "replay_shortfall": f} for s, (v, f) in
                        enumerate([(0.425, 0.44), (0.80, 0.09), (0.83, None)])}}
    about = _about(rows)
    assert "Replays that ended 0.1 or more below their search's run on validation: seed 0 (0.865 -> 0.425)." in about
    assert "seed 1 (" not in about and "seed 2 (" not in about
    del rows["planned"][0]
    assert "Replays" not in _about(rows) and "average" not in _about(rows)
    rows["planned"][1]["average_last"] = 0.25  # the replays' final models averaged their last epochs
    assert "weights of its last 25% of epochs within its last stage (train.average_last)" in _about(rows)

@pytest.mark.slow
def test_hand_tuned_rows_train_the_planned_budget(tiny_bench):
    _, out, _ = tiny_bench
    for seed in (0, 1):
        budget = json.loads((out / "mixed" / f"seed{seed}" / "planned.json").read_text())["train_gflops"]
        for name in ("cosine@4", "cosine@8", "cosine@8x0.1", "short_long", "multigrid"):
            row = json.loads((out / "mixed" / f"seed{seed}" / f"{name}.json").read_text())
            if row["epochs"] < sum(s["epochs"] for s in row["schedule"]["stages"]):
                assert not math.isfinite(row["val_score"] or math.nan), name  # only a diverged replay stops early
                continue
            per_epoch = row["train_gflops"] / row["epochs"]
            # whole epochs: each stage is within half an epoch of its share of the budget
            stages = len(row["schedule"]["stages"])
            assert abs(row["train_gflops"] - budget) <= stages * per_epoch * 1.0 + 1e-9, (name, row["train_gflops"], budget)
            assert row["within_budget"] == (abs(row["train_gflops"] / budget - 1) <= 0.05)
        # a hand-tuned row at an lr multiplier: the same schedule at that share of the clip's base lr
        base, scaled = (json.loads((out / "mixed" / f"seed{seed}" / f"{n}.json").read_text())["schedule"]["stages"][0]
                        for n in ("cosine@8", "cosine@8x0.1"))
        assert scaled["state"]["lr"] == pytest.approx(0.1 * base["state"]["lr"]) and base["state"]["lr"] == 0.05
        assert scaled["epochs"] == base["epochs"] and scaled["lr_schedule"] == base["lr_schedule"]
        random = json.loads((out / "mixed" / f"seed{seed}" / "random.json").read_text())
        plan = json.loads((out / "mixed" / f"seed{seed}" / "planned.json").read_text())
        count = min(8, max(1, round(plan["search_gflops"] / budget)))
        assert len(random["detail"]["schedules"]) == count
        # the search GFLOPs split evenly over whole schedules, so the row spends the planner's search
        assert random["detail"]["schedule_gflops"] == pytest.approx(plan["search_gflops"] / count)


@pytest.mark.slow
def test_a_second_run_resumes_without_training(tiny_bench, capsys):
    tmp, out, summary = tiny_bench
    before = {p: p.stat().st_mtime_ns for p in out.glob("mixed/seed*/*.json")}
    assert main(["bench", str(tmp / "bench.yaml"), "--out", str(out), "--seeds", "0", "1"]) == 0
    assert "| optplan: planned path" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("mixed/seed*/*.json")} == before
    assert json.loads((out / "summary.json").read_text())["regimes"]["mixed"]["rows"] == \
        json.loads(json.dumps(summary["regimes"]["mixed"]["rows"], default=str))


def test_paired_interval_is_the_t_interval():
    d = paired_interval([0.1, 0.2, 0.3])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert d["mean"] == pytest.approx(0.2) and d["lo"] == pytest.approx(0.2 - half) and d["hi"] == pytest.approx(0.2 + half)
    assert paired_interval([0.05]) == {"mean": 0.05, "lo": None, "hi": None}


def test_budget_builders_spend_the_budget():
    cfg = load_config(None, ["plan.clip_lengths=[4,8,16]", "plan.base_lrs=[0.1,0.1,0.1]"])
    cost = lambda state: 10.0 * state.clip_length  # noqa: E731  (GFLOPs per epoch)
    budget = 4000.0
    cos = single_clip("cosine", cfg, 2, budget, cost)
    assert cos.stages[0].epochs == 25 and cos.stages[0].last_epoch_share == 1.0
    assert cos.stages[0].lr_schedule.warmup == 1
    assert single_clip("linear", cfg, 0, budget, cost).stages[0].epochs == 100
    scaled = single_clip("cosine", cfg, 2, budget, cost, lr_scale=0.3)  # KIND@16x0.3: the lr, not the budget
    assert scaled.stages[0].state.lr == pytest.approx(0.03) and scaled.stages[0].epochs == 25
    sl = short_long(cfg, budget, cost)  # 50, 12.5 and 6.25 epochs: partial last epochs, not rounded
    assert [(s.epochs, s.last_epoch_share) for s in sl.stages] == [(50, 1.0), (13, 0.5), (7, 0.25)]
    assert [s.state.clip_length for s in sl.stages] == [4, 8, 16]
    assert [s.state.lr for s in sl.stages] == pytest.approx([0.1, 0.01, 0.001])
    assert schedule_gflops(cos, cost) == schedule_gflops(sl, cost) == pytest.approx(budget)
    assert schedule_gflops(single_clip("step", cfg, 1, 1234.5, cost), cost) == pytest.approx(1234.5)
    mg = multigrid(cfg, budget, cost)
    assert schedule_gflops(mg, cost) == pytest.approx(budget)
    assert {s.state.clip_length * s.state.effective_batch for s in mg.stages} == {4 * 16 * 2, 8 * 8 * 2, 16 * 4 * 2}
    assert fit_budget(1.0, cos.stages[0].state, cost) == (1, pytest.approx(1 / 160))  # a part of one epoch
    # a budget of 3 epochs at 8 frames: every phase's per-clip share is a part of an epoch, and
    # the schedule still spends the whole budget
    small = multigrid(cfg, 240.0, cost)
    assert schedule_gflops(small, cost) == pytest.approx(240.0) and len(small.stages) == 9


def test_random_schedules_follow_the_graph_and_the_budget():
    import numpy as np

    graph = StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    paths = [[graph.state(n).name for n in p if graph.state(n) is not None] for p in graph.paths()]
    cost = lambda state: 10.0 * state.clip_length  # noqa: E731
    rng = np.random.default_rng(0)
    for _ in range(10):
        s = random_schedule(graph, 5000.0, cost, rng)
        assert [st.state.name for st in s.stages] in paths
        assert schedule_gflops(s, cost) == pytest.approx(5000.0)


@pytest.mark.parametrize("ratio", [0.7, 1.0, 2.6, 3.4, 3.5, 20.0])
def test_random_search_splits_the_search_gflops_over_whole_schedules(ratio, monkeypatch, tmp_path):
    """Schedules of exactly the replay's budget, round(ratio) of them, missed the search GFLOPs by
    up to half a schedule (3.4 -> 3 schedules: -12%); an even split of the search spends it."""
    from types import SimpleNamespace

    from optplan.bench import search
    from optplan.train import replay

    cost = lambda state: 10.0 * state.clip_length  # noqa: E731
    trained = []

    def fake_train(schedule, cfg, run_dir, session):  # the GFLOPs a replay spends, no training
        trained.append(schedule_gflops(schedule, cost))
        return SimpleNamespace(final_score=-len(trained), checkpoint=run_dir, cost=SimpleNamespace(gflops=trained[-1]))

    monkeypatch.setattr(replay, "train_schedule", fake_train)
    graph = StateGraph.preset("auto", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    budget = 1000.0
    out = search.random_search(None, graph, tmp_path, SimpleNamespace(epoch_gflops=cost), budget=budget,
                               search_budget=ratio * budget, seed=0, max_schedules=8)
    count = min(8, max(1, round(ratio)))
    assert len(trained) == count and out.search_gflops == pytest.approx(ratio * budget)
    assert out.train_gflops == pytest.approx(ratio * budget / count) and out.val_score == -1


def test_bad_bench_configs_name_the_field(tmp_path, capsys):
    with pytest.raises(ConfigError, match="rows"):
        load_bench_config(write(tmp_path, {**TINY, "rows": ["planned", "grid"]}))
    for bad in ("cosine@8x", "cosine@8x0", "cosine@x0.3", "short_long@8", "linear@8xfast"):
        with pytest.raises(ConfigError, match=r"KIND@CLIPxM at M times the clip's base lr"):
            load_bench_config(write(tmp_path, {**TINY, "rows": ["planned", bad]}))
    with pytest.raises(ConfigError, match="planner variants are named in 'variants'"):
        load_bench_config(write(tmp_path, {**TINY, "rows": ["planned", "planned:best"]}))
    with pytest.raises(ConfigError, match="'planned' must be a row"):
        load_bench_config(write(tmp_path, {**TINY, "rows": ["cosine"]}))
    with pytest.raises(ConfigError, match="exactly one of"):
        load_bench_config(write(tmp_path, {**TINY, "regimes": {"x": {}}}))
    with pytest.raises(ConfigError, match="knee.patience"):
        load_bench_config(write(tmp_path, TINY), ["config.knee.patience=0"])
    bench = load_bench_config(write(tmp_path, {**TINY, "regimes": {"mine": {"root": str(tmp_path / "nope")}}}))
    with pytest.raises(OptplanError, match="does not exist"):
        run_bench(bench, tmp_path / "out", [0])
    assert main(["bench", str(write(tmp_path, TINY)), "--out", str(tmp_path / "o2"), "--regimes", "ucf"]) == 2
    assert "unknown regimes ['ucf']" in capsys.readouterr().err
    # an override after --regimes is an override, not a regime name
    assert main(["bench", str(write(tmp_path, TINY)), "--out", str(tmp_path / "o3"), "--regimes", "ucf",
                 "rows=[planned, bogus]"]) == 2
    err = capsys.readouterr().err  # refused as a bad row, before anything is written
    assert "bogus" in err and "unknown regimes" not in err and not (tmp_path / "o3").exists()
    assert main(["bench", str(write(tmp_path, TINY)), "--out", str(tmp_path / "o4"), "--regimes",
                 "rows=[planned]"]) == 2
    assert "--regimes names no regime" in capsys.readouterr().err
    # ... and after --seeds (an integer list) as well
    assert main(["bench", str(write(tmp_path, TINY)), "--out", str(tmp_path / "o5"), "--seeds", "0",
                 "rows=[planned, bogus]"]) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "invalid int" not in err and not (tmp_path / "o5").exists()
    assert main(["bench", str(write(tmp_path, TINY)), "--out", str(tmp_path / "o6"), "--seeds", "zero"]) == 2
    assert "--seeds takes integers (train.seed values), got ['zero']" in capsys.readouterr().err
    assert main(["bench", str(write(tmp_path, TINY)), "--out", str(tmp_path / "o7"), "--seeds", "rows=[planned]"]) == 2
    assert "--seeds names no seed" in capsys.readouterr().err and not (tmp_path / "o7").exists()
    assert load_bench_config().rows[0] == "planned"  # the shipped config is valid


def test_the_shipped_regimes_are_sized_alike_with_test_sets_that_separate_rows():
    """Every shipped regime: 1,200 test videos (SE of top-1 <= 1.45 points at 50%) and the same 960
    training videos, so no regime is favoured by its data; counted, not rendered."""
    bench = load_bench_config()
    assert set(bench.regimes) == {"appearance", "motion", "mixed"}
    for name, regime in bench.regimes.items():
        specs = plan_videos(**regime.synth.model_dump())
        test = sum(s.split == "test" for s in specs)
        assert (test, len(specs) - test) == (1200, 960), name
        assert regime.synth.size == 16 and bench.config["data"]["crop_size"] == 14


def test_the_shipped_hand_tuned_rows_train_at_every_lr_the_planner_may_start_at():
    """A 16-frame hand-tuned row at the base lr alone left the planner a lead that was mostly the
    lr it found (bench/RESULTS.md): every such schedule also runs at each start lr level."""
    bench = load_bench_config()
    plan = bench.base().plan
    levels = plan.lr_multipliers[:plan.start_lr_levels]
    assert levels == [1.0, 0.3]
    for kind in ("cosine", "linear", "step", "plateau"):
        want = {f"{kind}@16" if m == 1.0 else f"{kind}@16x{m:g}" for m in levels}
        assert want <= set(expand_rows(bench.rows, {}, plan.clip_lengths)), kind


def test_the_shipped_planner_row_starts_at_x1_and_x03_and_the_paper_variant_does_not():
    """bench.yaml's planner row links the start to every clip at x1 and x0.3 (18 edges: 1 h 58 min
    for the whole benchmark, bench/RESULTS.md) and drops the starts that climb; the paper variant
    its header documents must undo the links, or it would plan from scratch at x0.3 as no paper
    graph does."""
    bench = load_bench_config()
    graph = StateGraph.from_config(bench.base().plan)
    assert {e.target for e in graph.outgoing("start")} == {f"c{c}_x{m}" for c in (4, 8, 16) for m in ("1", "0.3")}
    assert len(graph.edges) == 18
    assert bench.base().plan.climb_limit == 1.15  # starts whose training loss climbs are dropped
    assert bench.base().train.average_last == 0.25  # every replayed schedule ends on its average
    from optplan.configs import config_path

    header = config_path("bench").read_text()
    assert "plan.preset=paper, plan.start_lr_levels=1, plan.climb_limit=null," in header
    assert "train.warmup_epochs=0, train.average_last=0," in header  # the paper's replay averages nothing
    paper_cfg = bench.base(["plan.preset=paper", "plan.start_lr_levels=1", "plan.climb_limit=null"])
    assert paper_cfg.plan.climb_limit is None  # the paper's planner drops no start
    paper = StateGraph.from_config(paper_cfg.plan)
    assert {e.target for e in paper.outgoing("start")} == {"c4_x1", "c8_x1"}


@pytest.mark.slow
def test_pbt_and_asha_spend_the_search_budget(tiny_bench, capfd):
    tmp, out, _ = tiny_bench
    summary = run_bench(load_bench_config(write(tmp, TINY), ["rows=[planned,pbt,asha,random_x3]"]), out, [0])
    printed = "".join(capfd.readouterr())
    assert "snapshotting has been triggered" not in printed  # Tune's per-trial warning
    assert "Failed to fetch metrics" not in printed  # a line per trial ASHA never started
    assert "View detailed results here" not in printed  # Tune's setup table, of a folder deleted after
    rows = rows_of(summary)
    search = rows["planned"]["search_gflops"][0]
    budget = rows["planned"]["train_gflops"][0]
    # issue 10's goal 3: random search at 3x the planner's search GFLOPs, whole schedules of the budget
    x3 = json.loads((out / "mixed" / "seed0" / "random_x3.json").read_text())
    assert x3["search_factor"] == 3.0 and rows["random_x3"]["label"].endswith("at 3x search GFLOPs")
    assert len(x3["detail"]["schedules"]) == min(24, max(1, round(3 * search / budget)))
    assert x3["search_gflops"] == pytest.approx(sum(s["gflops"] for s in x3["detail"]["schedules"]))
    for name in ("pbt", "asha"):
        row = json.loads((out / "mixed" / "seed0" / f"{name}.json").read_text())
        # the stopper ends the search once the planner's search GFLOPs are spent (up to 2 trials'
        # last epochs over); PBT's trials stop at a quarter each, none lost to a deleted checkpoint
        assert search * 0.75 <= row["search_gflops"] <= search * 1.25, name
        assert row["detail"]["errored_trials"] == 0, name
        # trials run on reused actors (two cores: two at a time), not a fresh process each
        assert row["detail"]["processes"] < row["detail"]["trials"], name
        assert row["detail"]["niceness"] == [os.nice(0)], name  # as the driver; Ray's default +15 starved them
        assert not (out / "mixed" / "seed0" / "runs" / name / "ray").exists()  # only the best model is kept
        assert 0 < row["train_gflops"] <= row["search_gflops"] and 0 <= row["top1"] <= 1
        assert rows[name]["seeds"] == [0]


def test_the_tables_hold_rows_of_a_seed_whose_planned_row_is_being_measured_again():
    """Deleting a seed's planned.json (the way to plan it again) leaves that seed's other rows
    unpaired until the planner row is back: the tables show them without a difference."""
    from optplan.bench.summary import markdown, summarize

    row = {"top1": 0.8, "top5": 1.0, "train_gflops": 10.0, "wall_seconds": 1.0}
    rows = summarize({"planned": {0: row}, "cosine@16": {0: {**row, "top1": 0.7}, 1: row}}, 0.05)
    assert rows[1]["diff_to_planned"]["mean"] == pytest.approx(-0.1)
    alone = summarize({"cosine@16": {1: row}}, 0.05)
    assert alone[0]["diff_to_planned"] is None
    assert "| 0.800 | - |" in markdown({"mixed": {"rows": alone, "about": ""}})


def test_a_finished_plan_row_without_its_plan_is_refused(tmp_path):
    out = tmp_path / "out"
    row = out / "mixed" / "seed0" / "planned.json"
    row.parent.mkdir(parents=True)
    row.write_text(json.dumps({"name": "planned"}))
    with pytest.raises(OptplanError, match="delete .*planned.json"):
        run_bench(load_bench_config(write(tmp_path, TINY)), out, [0])


@pytest.mark.slow
def test_jobs_run_rows_side_by_side_and_keep_finished_rows(tiny_bench):
    """``--jobs 2``: rows run as separate tasks in two worker processes, in another order than
    ``jobs=1`` ran them; a row measured again that way gives the same figures, rows already
    finished are not trained again and the tables gain the new rows of both seeds."""
    tmp, out, _ = tiny_bench
    again = [out / "mixed" / "seed1" / f"{name}.json" for name in ("short_long", "cosine@8")]
    first = {p: json.loads(p.read_text()) for p in again}
    for path in again:
        path.unlink()
    before = {p: p.stat().st_mtime_ns for p in out.glob("mixed/seed*/*.json")}
    bench = load_bench_config(write(tmp, TINY, "jobs.yaml"), ["rows=[planned,cosine,linear,short_long]"])
    summary = run_bench(bench, out, [0, 1], jobs=2)
    rows = rows_of(summary)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    for path, row in first.items():
        remeasured = json.loads(path.read_text())
        assert remeasured["top1"] == pytest.approx(row["top1"], abs=1e-9), path.name
        assert remeasured["train_gflops"] == pytest.approx(row["train_gflops"], rel=1e-9), path.name
    for name in ("linear@4", "linear@8"):
        assert rows[name]["seeds"] == [0, 1]
        assert all(0.0 <= v <= 1.0 for v in rows[name]["top1"].values())
    assert "linear decay" in (out / "table.md").read_text()
    with pytest.raises(OptplanError, match="--jobs"):
        run_bench(bench, out, [0], jobs=0)


def test_a_record_file_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """With ``--jobs`` the tabulating process reads row files while workers write them; a row
    read half-written once stopped a run with a JSONDecodeError. A record file is written beside
    and moved in: the old content stays whole until then, and a failed write leaves no debris."""
    import optplan.records_io as records_io

    path = tmp_path / "unit" / "cosine@16.json"
    records_io.write_atomic(path, '{"top1": 0.5}\n')
    assert json.loads(path.read_text()) == {"top1": 0.5}

    def gone(*_):
        raise OSError("disk gone")

    monkeypatch.setattr(records_io.os, "replace", gone)
    with pytest.raises(OSError, match="disk gone"):
        records_io.write_atomic(path, '{"top1": 0.9}\n')
    assert json.loads(path.read_text()) == {"top1": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["cosine@16.json"]


@pytest.mark.slow
def test_rows_and_tables_are_written_whole(tiny_bench, monkeypatch):
    """Every row file and table the runner writes goes through the whole-file writer."""
    import optplan.bench.runner as runner

    tmp, out, _ = tiny_bench
    written, real = [], runner.write_atomic
    monkeypatch.setattr(runner, "write_atomic", lambda path, text: written.append(path.name) or real(path, text))
    row = out / "mixed" / "seed0" / "cosine@4.json"
    first = json.loads(row.read_text())
    row.unlink()
    run_bench(load_bench_config(write(tmp, TINY)), out, [0, 1])
    assert written.count("cosine@4.json") == 1 and {"summary.json", "table.md"} <= set(written)
    assert json.loads(row.read_text())["top1"] == pytest.approx(first["top1"], abs=1e-9)


@pytest.mark.slow
def test_replay_draw_replays_an_independent_run_of_the_same_plan(tiny_bench):
    """``replay_draw: 1``: the planner row's search is read back untouched and its path replayed
    with other training randomness on the same split (the hand-tuned rows are one run of their
    schedules too); the search's-model row stays the search's own run."""
    import shutil

    import torch

    from optplan.train.checkpoint import load_checkpoint

    tmp, out, _ = tiny_bench
    drawn = tmp / "drawn"
    shutil.copytree(out / "mixed" / "seed0", drawn / "mixed" / "seed0")
    own = json.loads((drawn / "mixed" / "seed0" / "planned.json").read_text())
    (drawn / "mixed" / "seed0" / "planned.json").unlink()
    tree = {**TINY, "regimes": {"mixed": {"root": str(out / "data" / "mixed")}},  # the plan's own data
            "rows": ["planned", "search_model"], "variants": {}}
    bench = load_bench_config(write(tmp, tree, "drawn.yaml"), ["replay_draw=1"])
    run_bench(bench, drawn, [0])
    row = json.loads((drawn / "mixed" / "seed0" / "planned.json").read_text())
    assert own["replay_draw"] == 0 and row["replay_draw"] == 1
    assert row["nodes"] == own["nodes"] and row["search_gflops"] == own["search_gflops"]
    assert row["search_seconds"] < own["search_seconds"] / 5  # the finished search, read back
    assert row["train_gflops"] == pytest.approx(own["train_gflops"], rel=1e-6)  # the same schedule
    runs = drawn / "mixed" / "seed0" / "runs" / "planned"
    replayed = load_checkpoint(runs / "replay-draw1" / "final.pt")["model"]
    searched = load_checkpoint(runs / "replay" / "final.pt")["model"]
    assert not all(torch.equal(replayed[k], searched[k]) for k in searched)
    assert row["replay_shortfall"] == pytest.approx(row["schedule"]["search_run"]["score"] - row["val_score"])
    assert "independent run of each plan (train.draw 1)" in (drawn / "table.md").read_text()
    with pytest.raises(ConfigError, match="replay_draw"):
        load_bench_config(write(tmp, TINY, "bad.yaml"), ["replay_draw=-1"])


def test_a_unit_is_not_resumed_with_settings_other_than_its_finished_rows(tmp_path):
    """Rows already measured are kept on resume, so settings that would have changed them are
    refused (never one table of two benchmarks); rows not measured yet take the new settings."""
    from optplan.bench.runner import unit_config, _unit_rows
    from optplan.bench.settings import SETTINGS_FILE, check_unit

    unit, root = tmp_path / "mixed" / "seed0", tmp_path / "data"

    def check(finished, *overrides):
        bench = load_bench_config(write(tmp_path, TINY), list(overrides))
        cfg = unit_config(bench, "mixed", root, 0)
        check_unit(unit, bench, cfg, _unit_rows(bench, cfg), set(finished))

    check([])  # a new unit records its settings
    done = ["planned", "planned:best", "cosine@4", "random"]
    with pytest.raises(OptplanError, match=r"knee.patience: run has 2, now 3") as err:
        check(done, "config.knee.patience=3")
    assert "use a new --out" in str(err.value) and str(unit) in str(err.value)
    with pytest.raises(OptplanError, match=r"row planned: replay_draw: run has 0, now 1"):
        check(done, "replay_draw=1")
    with pytest.raises(OptplanError, match=r"row planned:smooth: variant"):
        check(["planned:smooth"], "variants.smooth=[plan.replay_lr=budget]")
    with pytest.raises(OptplanError, match=r"row random: search.pbt_population"):
        check(done, "search.pbt_population=6")
    with pytest.raises(OptplanError, match=r"plan.replay_lr"):  # a plan may change it; a replay row may not
        check(["cosine@4"], "config.plan.replay_lr=linear")
    with pytest.raises(OptplanError, match=r"train.average_last: run has 0.0, now 0.25"):  # likewise
        check(["cosine@4"], "config.train.average_last=0.25")
    check(["cosine@4"], "replay_draw=1", "search.pbt_population=6")  # rows they change are not finished
    record = json.loads((unit / "runs" / SETTINGS_FILE).read_text())
    assert record["rows"]["planned"] == {"replay_draw": 1} and record["rows"]["cosine@4"] == {}
    check(["cosine@4", "planned"], "replay_draw=1", "variants.fresh=[knee.patience=3]")  # a new variant: free
    assert record["config"]["knee"]["patience"] == 2
    # a unit measured before the record (or before an option existed) is adopted as it is
    (unit / "runs" / SETTINGS_FILE).unlink()
    check(done, "config.knee.patience=3")
    record = json.loads((unit / "runs" / SETTINGS_FILE).read_text())
    del record["config"]["plan"]["climb_limit"]  # an option the unit's run did not have yet
    (unit / "runs" / SETTINGS_FILE).write_text(json.dumps(record))
    with pytest.raises(OptplanError, match="climb_limit: run has \"\\(absent\\)\", now 1.15"):
        check(done, "config.knee.patience=3", "config.plan.climb_limit=1.15")
    check(done, "config.knee.patience=3")  # its default is what the unit's run did


@pytest.mark.slow
def test_bench_refuses_to_resume_an_out_with_other_settings(tiny_bench, capsys):
    tmp, out, _ = tiny_bench
    before = {p: p.stat().st_mtime_ns for p in out.glob("mixed/seed*/*.json")}
    assert main(["bench", str(tmp / "bench.yaml"), "config.knee.max_epochs=4", "--out", str(out),
                 "--seeds", "0", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds rows measured with other settings" in err and "knee.max_epochs: run has 3, now 4" in err
    assert {p: p.stat().st_mtime_ns for p in out.glob("mixed/seed*/*.json")} == before

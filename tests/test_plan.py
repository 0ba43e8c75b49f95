"""The planner with the simulated trainer: the DP against exhaustive search, the knee-rule
cost, beams and choices, divergence and failures, crash-safe resume, the executors, the
budgeted objective against exhaustive search under the budget, racing, and dropping starts
that climb."""

from __future__ import annotations

import math

import pytest

from optplan.config import validate
from optplan.errors import ConfigError, OptplanError
from optplan.knee import KneeRule, first_stop
from optplan.plan import (Checkpoint, Climb, CountingEdgeTrainer, EdgeJob, InMemoryStore, Objective,
                          ParetoPoint, Planner, ProcessExecutor, Progress, Racing, RecordedTrainer,
                          SimulatedTrainer, SQLiteStore, StateGraph, pareto_front, recorded_winner_cut, run_edge)
from optplan.plan.simulate import CurveEnded
from optplan.plan.records import DIVERGED, DROPPED, FAILED, SKIPPED
from optplan.plan.result import stop_reason

T = 4  # patience; with FAST the knee settles, so every edge stops at exactly knee + T
FAST = dict(speed=1.0, overfit=0.015)


def paper(**kwargs):
    return StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1, 0.1, 0.1], **kwargs)


def small(**kwargs):
    return StateGraph.preset("paper", clip_lengths=[4, 8], base_lrs=[0.1, 0.1],
                             lr_multipliers=[1, 0.1], **kwargs)


def essence(result):
    """Everything a plan found, without wall-clock times."""
    return (result.nodes, result.path_epochs, result.score, result.search_epochs,
            result.schedule, [(e.id, e.status, e.curve, e.knee and e.knee.epoch,
                               e.knee and e.knee.score, e.checkpoint) for e in result.edges],
            [(p.score, p.epochs, p.nodes) for p in result.pareto])


@pytest.fixture(scope="module")
def paper_result():
    return Planner(paper(), SimulatedTrainer(**FAST), patience=T).run()


def best_by_enumeration(graph, trainer, patience):
    """Train every start-to-final path (prefixes shared) and return (score, path)."""
    found = []

    def walk(node, checkpoint, score, nodes):
        if node == graph.final:
            found.append((score, nodes))
        for e in graph.outgoing(node):
            out = run_edge(trainer, EdgeJob(e.name, checkpoint, graph.state(e.target), KneeRule(patience=patience)))
            walk(e.target, out.checkpoint, out.knee.score, [*nodes, e.target])

    walk(graph.start, None, math.nan, [])
    return max(found)


def test_dp_finds_the_best_path_of_exhaustive_search(paper_result):
    score, nodes = best_by_enumeration(paper(), SimulatedTrainer(**FAST), T)
    assert paper_result.nodes == nodes
    # Two separate knee fits of the same curve: equal up to the BLAS kernel's last bits.
    assert paper_result.score == pytest.approx(score, abs=1e-5)
    assert paper_result.score == pytest.approx(max(e.score for e in paper_result.edges), abs=1e-5)  # monotone


def test_search_cost_is_knee_plus_patience_per_edge(paper_result):
    r = paper_result
    assert len(r.edges) == 14 and all(e.status == "done" for e in r.edges)
    assert r.search_epochs == sum(e.knee.epoch + T for e in r.edges) == 113
    for e in r.edges:  # each edge stopped at the rule's first decision on its own curve
        assert e.epochs == e.knee.epochs == first_stop(e.curve, patience=T).epochs


def test_result_path_stages_and_schedule(paper_result):
    r = paper_result
    assert [s.name for s in r.path] == r.nodes and r.nodes[-1] == "c16_x0.01"
    kept = [(s.state.name, s.epochs) for s in r.stages]
    assert kept == [(n, k) for n, k in zip(r.nodes, r.path_epochs) if k > 0]
    assert r.schedule == {"stages": [{"state": s.state.to_dict(), "epochs": s.epochs} for s in r.stages]}
    assert r.replay_epochs == sum(r.path_epochs) > 0
    chosen = {d.name: d.best for d in r.decisions}
    for node, k in zip(r.nodes, r.path_epochs):  # every stage is its node's winning edge knee
        edge = next(e for e in r.edges if e.id == chosen[node].edge)
        assert edge.knee.epoch == k and edge.checkpoint == chosen[node].checkpoint
    assert r.checkpoint == chosen["c16_x0.01"].checkpoint
    assert r.overhead_seconds <= r.search_seconds
    final = next(e for e in r.edges if e.id == chosen["c16_x0.01"].edge)
    # the paper knee's score is the fit's value; the measured one is the curve's at the kept epoch
    assert r.measured_score == final.curve[final.knee.epoch]
    assert r.to_dict()["measured_score"] == r.measured_score
    assert ("measured" in r.table()) == (abs(r.measured_score - r.score) >= 5e-5)


def test_pareto_front_and_budget(paper_result):
    front = paper_result.pareto
    assert all(a.epochs < b.epochs and a.score < b.score for a, b in zip(front, front[1:]))
    assert front[-1].score == pytest.approx(paper_result.score, abs=1e-5)  # fitted: kernels differ
    for p in front:
        assert p.epochs == sum(s.epochs for s in p.stages)
    small_budget = front[1].epochs
    best = paper_result.best_within(small_budget)
    assert best == front[1] and best.schedule["stages"]
    assert paper_result.best_within(0) is None or paper_result.best_within(0).epochs == 0


def test_pareto_front_keeps_points_nothing_beats():
    points = [ParetoPoint(score, epochs, (), (), f"e{i}") for i, (score, epochs) in
              enumerate([(0.5, 10), (0.4, 12), (0.6, 20), (0.6, 25), (0.7, 30), (0.45, 30)])]
    assert [(p.score, p.epochs) for p in pareto_front(points)] == [(0.5, 10), (0.6, 20), (0.7, 30)]


def test_choice_between_sampling_subgraphs():
    better = {f"u{c}_x{m:g}": {"ceiling": 0.6} for c in (4, 8) for m in (1, 0.1)}
    r = Planner(small(sampling="both"), SimulatedTrainer(**FAST, states=better), patience=T).run()
    assert r.nodes[-1] == "u8_x0.1" and all(n.startswith("u") for n in r.nodes)
    into_final = [e for e in r.edges if e.target == "final"]
    assert len(into_final) == 2 and all(e.epochs == 0 for e in into_final)
    assert r.score == max(e.score for e in into_final)


def test_beam_keeps_k_models_per_node():
    trainer = SimulatedTrainer(**FAST, noise=0.01, seed=4)  # a seed where the beam pays off
    one = Planner(paper(), trainer, patience=T).run()
    two = Planner(paper(), trainer, patience=T, beam=2).run()
    assert all(len(d.candidates) <= 2 for d in two.decisions)
    assert len(two.edges) > len(one.edges)
    assert two.score > one.score and two.nodes != one.nodes  # a runner-up model did better
    for d in two.decisions[1:]:
        assert [c.score for c in d.candidates] == sorted((c.score for c in d.candidates), reverse=True)


class Flaky:
    """Raises in ``open`` for the named states, ``times`` times each."""

    def __init__(self, inner, states, times):
        self.inner, self.left = inner, {s: times for s in states}
        self.opened = 0

    def open(self, source, state):
        self.opened += 1
        if self.left.get(state.name, 0) > 0:
            self.left[state.name] -= 1
            raise RuntimeError(f"boom in {state.name}")
        return self.inner.open(source, state)


def test_failing_edges_are_retried_once_then_recorded():
    once = Planner(small(), Flaky(SimulatedTrainer(**FAST), ["c8_x1"], times=1), patience=T).run()
    reference = Planner(small(), SimulatedTrainer(**FAST), patience=T).run()
    assert once.nodes == reference.nodes and once.score == reference.score
    assert {e.id: e.attempts for e in once.edges if e.attempts > 1} == {"start->c8_x1": 2}

    flaky = Flaky(SimulatedTrainer(**FAST), ["c4_x0.1"], times=99)
    r = Planner(small(), flaky, patience=T).run()
    failed = [e for e in r.edges if e.status == FAILED]
    assert [e.id for e in failed] == ["c4_x1->c4_x0.1"] and failed[0].attempts == 2
    assert "RuntimeError: boom in c4_x0.1" in failed[0].error
    skipped = next(d for d in r.decisions if d.name == "c4_x0.1")
    assert skipped.skipped and "c4_x1->c4_x0.1 failed" in skipped.note
    assert [e.status for e in r.edges if e.source == "c4_x0.1"] == [SKIPPED]
    assert r.nodes == ["c4_x1", "c8_x1", "c8_x0.1"] or r.nodes == ["c8_x1", "c8_x0.1"]
    assert any("c4_x0.1 skipped" in n for n in r.notes)


@pytest.mark.parametrize("kwargs, message", [(dict(knee_method="elbow"), "unknown knee method"),
                                             (dict(beam=0), "at least 1")])
def test_bad_planner_settings_are_refused(kwargs, message):
    with pytest.raises(OptplanError, match=message):
        Planner(small(), SimulatedTrainer(), **kwargs)


def test_no_path_to_the_final_is_an_error():
    flaky = Flaky(SimulatedTrainer(**FAST), ["c8_x0.1"], times=99)
    with pytest.raises(OptplanError, match="no usable path reaches the final node 'c8_x0.1'"):
        Planner(small(), flaky, patience=T).run()


def test_diverged_edges_score_their_best_finite_epoch():
    trainer = SimulatedTrainer(**FAST, diverge_lr=0.05, diverge_after=3)
    r = Planner(small(), trainer, patience=T).run()
    diverged = {e.id: e for e in r.edges if e.status == DIVERGED}
    assert set(diverged) == {"start->c4_x1", "c4_x1->c8_x1", "start->c8_x1"}  # lr 0.1 > 0.05
    for e in diverged.values():
        assert e.epochs == 3 and math.isnan(e.curve[-1])
        assert e.knee.epoch == 2 and e.score == e.curve[2] == max(e.curve[:3])
    assert r.nodes[-1] == "c8_x0.1" and math.isfinite(r.score)


# -- store and resume ---------------------------------------------------------------------

class Killed(BaseException):
    """A kill: not an Exception, so no retry catches it."""


class Counting:
    """Counts epochs trained; raises :class:`Killed` once ``budget`` epochs are spent."""

    def __init__(self, inner, budget=None, resumable=True):
        self.inner, self.budget, self.epochs = inner, budget, 0
        if resumable:
            self.resume = self._resume

    def open(self, source, state):
        return CountingRun(self, self.inner.open(source, state))

    def _resume(self, snapshot, source, state, scores):
        return CountingRun(self, self.inner.resume(snapshot, source, state, scores))


class CountingRun:
    def __init__(self, trainer, run):
        self.trainer, self.run = trainer, run
        self.initial_score, self.keep = run.initial_score, run.keep
        if hasattr(trainer, "resume"):
            self.snapshot = run.snapshot

    def train_epoch(self):
        if self.trainer.budget is not None and self.trainer.epochs >= self.trainer.budget:
            raise Killed
        self.trainer.epochs += 1
        return self.run.train_epoch()


@pytest.fixture(scope="module")
def small_result():
    return Planner(small(), SimulatedTrainer(**FAST), patience=T).run()


@pytest.mark.parametrize("kill_after", [1, 8, 12, 30, 51])  # 51: in the last edge's last epoch
def test_resume_after_a_kill_gives_the_same_result(tmp_path, small_result, kill_after):
    first = Counting(SimulatedTrainer(**FAST), budget=kill_after)
    with pytest.raises(Killed):
        Planner(small(), first, SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()
    second = Counting(SimulatedTrainer(**FAST))
    r = Planner(small(), second, SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()
    assert essence(r) == essence(small_result)
    assert first.epochs + second.epochs == small_result.search_epochs == 52  # none twice


def test_resume_of_the_paper_graph_with_two_kills(tmp_path, paper_result):
    for kill_after in (20, 40):
        with pytest.raises(Killed):
            Planner(paper(), Counting(SimulatedTrainer(**FAST), budget=kill_after),
                    SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()
    last = Counting(SimulatedTrainer(**FAST))
    r = Planner(paper(), last, SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()
    assert essence(r) == essence(paper_result) and last.epochs == paper_result.search_epochs - 60


def test_resume_without_snapshots_restarts_the_interrupted_edge(tmp_path, small_result):
    first = Counting(SimulatedTrainer(**FAST), budget=10, resumable=False)
    with pytest.raises(Killed):
        Planner(small(), first, SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()
    second = Counting(SimulatedTrainer(**FAST), resumable=False)
    r = Planner(small(), second, SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()
    assert essence(r) == essence(small_result)
    done_before = small_result.edges[0].epochs  # start->c4_x1 ended; c4_x1->c4_x0.1 restarts
    assert done_before == 8 and second.epochs == small_result.search_epochs - done_before


def test_finished_plan_reruns_without_training(tmp_path):
    store = SQLiteStore(tmp_path / "plan.sqlite")
    r1 = Planner(small(), Counting(SimulatedTrainer(**FAST)), store, patience=T).run()
    rows = store._db.execute("SELECT status, count(*) FROM edges GROUP BY status").fetchall()
    assert rows == [("done", 6)]
    never = Counting(SimulatedTrainer(**FAST), budget=0)
    r2 = Planner(small(), never, SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()
    assert essence(r2) == essence(r1) and never.epochs == 0
    assert r2.search_seconds >= r1.search_seconds


def test_a_store_made_with_another_config_is_refused(tmp_path):
    Planner(small(), SimulatedTrainer(**FAST), SQLiteStore(tmp_path / "p.sqlite"), patience=T).run()
    with pytest.raises(OptplanError, match=r"patience: run has 4, now 5"):
        Planner(small(), SimulatedTrainer(**FAST), SQLiteStore(tmp_path / "p.sqlite"), patience=5).run()
    with pytest.raises(OptplanError, match=r"graph.edges"):
        Planner(paper(), SimulatedTrainer(**FAST), SQLiteStore(tmp_path / "p.sqlite"), patience=T).run()


def test_in_memory_store_copies_records():
    store = InMemoryStore()
    r = Planner(small(), SimulatedTrainer(**FAST), store, patience=T).run()
    rec = store.get_edge("start->c4_x1")
    rec.curve.append(1.0)
    assert store.get_edge("start->c4_x1").curve == r.edges[0].curve
    assert next(d for d in r.decisions if d.name == "c8_x0.1").best.score == r.score


# -- executors ----------------------------------------------------------------------------

class EpochLog(Progress):
    def __init__(self):
        self.epochs = []

    def epoch(self, edge, scores):
        self.epochs.append((edge, len(scores) - 1))


def test_process_pool_workers_report_every_epoch(tmp_path, small_result):
    log = EpochLog()
    store = SQLiteStore(tmp_path / "plan.sqlite")
    with ProcessExecutor(2, poll_seconds=0.05) as pool:
        r = Planner(small(), SimulatedTrainer(**FAST), store, patience=T, executor=pool,
                    progress=log).run()
    assert essence(r) == essence(small_result)
    assert sorted(log.epochs) == sorted((e.id, k) for e in r.edges for k in range(1, e.epochs + 1))


def test_a_plan_killed_in_a_pool_worker_resumes_mid_edge(tmp_path, small_result):
    with ProcessExecutor(2, poll_seconds=0.05) as pool:  # each job's copy dies at its 6th epoch
        with pytest.raises(Killed):
            Planner(small(), Counting(SimulatedTrainer(**FAST), budget=5),
                    SQLiteStore(tmp_path / "plan.sqlite"), patience=T, executor=pool).run()
    # both first edges were in flight; the one that died first has all 5 epochs recorded, the
    # other what reached the driver before the plan stopped
    partial = [e for e in SQLiteStore(tmp_path / "plan.sqlite").edges() if e.status == "running"]
    assert max(e.epochs for e in partial) == 5
    assert all(e.snapshot.meta == {"epoch": e.epochs} for e in partial)
    rest = Counting(SimulatedTrainer(**FAST))
    r = Planner(small(), rest, SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()
    assert essence(r) == essence(small_result)
    assert rest.epochs == small_result.search_epochs - sum(e.epochs for e in partial)


@pytest.mark.slow
def test_ray_equals_in_process(small_result):
    ray = pytest.importorskip("ray")
    from optplan.plan import RayExecutor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    log = EpochLog()
    try:
        with RayExecutor(2, poll_seconds=0.05) as executor:
            r = Planner(small(), SimulatedTrainer(**FAST), patience=T, executor=executor,
                        progress=log).run()
    finally:
        ray.shutdown()
    assert essence(r) == essence(small_result)
    assert sorted(log.epochs) == sorted((e.id, k) for e in r.edges for k in range(1, e.epochs + 1))


def test_simulated_trainer_is_deterministic_and_resumable():
    trainer = SimulatedTrainer(noise=0.02, seed=5)
    state = paper().state("c8_x1")
    source = Checkpoint(meta={"score": 0.3, "lineage": "x"})
    a = trainer.open(source, state)
    curve = [a.initial_score()] + [a.train_epoch() for _ in range(6)]
    b = trainer.resume(Checkpoint(meta={"epoch": 3}), source, state, curve[:4])
    assert [b.train_epoch() for _ in range(3)] == curve[4:]
    assert curve[0] == 0.3 and a.keep(4).meta["score"] == curve[4] and a.keep(0) == source
    other = SimulatedTrainer(noise=0.02, seed=6).open(source, state)
    assert [other.train_epoch() for _ in range(6)] != curve[1:]




def best_node_by_enumeration(graph, trainer, patience, rule=None):
    """Train every path from the start (prefixes shared); return (score, path) of the best
    model at ANY node, the objective of ``end='best'``."""
    found = []
    rule = rule or KneeRule(patience=patience)

    def walk(node, checkpoint, nodes):
        for e in graph.outgoing(node):
            if graph.is_choice(e.target):  # trains nothing: its model is the best one entering it
                continue
            out = run_edge(trainer, EdgeJob(e.name, checkpoint, graph.state(e.target), rule))
            found.append((out.knee.score, [*nodes, e.target]))
            walk(e.target, out.checkpoint, [*nodes, e.target])

    walk(graph.start, None, [])
    return max(found)


def test_a_custom_graph_with_several_ends_plans_to_its_best_node():
    """``plan.final: best`` needs no final state: a graph's end states join in a choice node
    (only when there are several), and the plan ends where exhaustive search finds the best
    model."""
    from optplan.defaults import PlanConfig

    states = [{"name": f"c{c}_x{m:g}", "lr": 0.1 * m, "clip_length": c} for c in (4, 8, 16) for m in (1, 0.1)]
    edges = [("start", "c4_x1"), ("start", "c8_x1"), ("c4_x1", "c4_x0.1"), ("c4_x1", "c8_x1"),
             ("c8_x1", "c8_x0.1"), ("c8_x1", "c16_x1"), ("c16_x1", "c16_x0.1")]  # ends: x0.1 of each clip
    cfg = PlanConfig(preset="custom", states=states, edges=edges, final="best")
    graph = StateGraph.from_config(cfg)
    assert graph.is_choice(graph.final) and sorted(e.source for e in graph.incoming(graph.final)) == \
        ["c16_x0.1", "c4_x0.1", "c8_x0.1"]
    with pytest.raises(OptplanError, match=r"3 end nodes .*plan.final: best"):
        StateGraph.from_config(cfg.model_copy(update={"final": None}))
    grid = PlanConfig(preset="grid", grid={"lr": [0.1, 0.01], "clip_length": [4, 8]}, final="best")
    assert StateGraph.from_config(grid).final == "lr0.01_c8"  # one end: no choice node
    for seed in (0, 1):
        trainer = SimulatedTrainer.random(seed, noise=0.02, seed=seed)
        result = Planner(graph, trainer, patience=T, end="best").run()
        score, nodes = best_node_by_enumeration(graph, trainer, T)
        assert result.nodes == nodes and result.score == pytest.approx(score, abs=1e-5)


def test_auto_preset_links_the_start_to_every_clip():
    g = StateGraph.preset("auto", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    assert sorted(e.target for e in g.outgoing(g.start)) == ["c16_x1", "c4_x1", "c8_x1"]
    assert len(g.edges) == len(paper().edges) + 1 and g.final == paper().final


def test_end_at_the_best_node_matches_exhaustive_search():
    # The longest clip overfits fast here, so the best model sits before the final node.
    trainer = SimulatedTrainer(**FAST, states={"c16_x0.1": {"ceiling": 0.2}, "c16_x0.01": {"ceiling": 0.2}})
    graph = StateGraph.preset("auto", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    best = Planner(graph, trainer, patience=T, end="best").run()
    fixed = Planner(graph, trainer, patience=T).run()
    score, nodes = best_node_by_enumeration(graph, trainer, T)
    assert best.nodes == nodes and best.score == pytest.approx(score, abs=1e-5)
    assert best.nodes[-1] != graph.final and fixed.nodes[-1] == graph.final
    assert best.score > fixed.score
    assert best.search_epochs == fixed.search_epochs  # the same edges were trained
    with pytest.raises(OptplanError, match="end must be"):
        Planner(graph, trainer, end="last")


def test_clipped_knee_scores_keep_the_best_node_exact():
    """``knee.clip_score`` changes the scores the DP compares, not the DP: on noisy curves with a
    cap, where fits overshoot their curves, the best node is still the one exhaustive search
    finds under the same rule, and no edge's score exceeds what its curve reached."""
    graph = StateGraph.preset("auto", clip_lengths=[4, 8], base_lrs=[0.1, 0.1], lr_multipliers=[1, 0.1])
    trainer = SimulatedTrainer(noise=0.05, seed=5, speed=0.15)  # slow, noisy curves that hit the cap
    rule = KneeRule(patience=3, max_epochs=8, clip_score=True)
    result = Planner(graph, trainer, rule=rule, end="best").run()
    score, nodes = best_node_by_enumeration(graph, trainer, 3, rule)
    assert result.nodes == nodes and result.score == pytest.approx(score, abs=1e-5)
    assert all(e.knee.score <= max(e.curve) for e in result.edges)
    fitted = Planner(graph, trainer, rule=KneeRule(patience=3, max_epochs=8), end="best").run()
    assert fitted.search_epochs == result.search_epochs  # the same edges, trained as long
    assert max(e.knee.score - max(e.curve) for e in fitted.edges) > 0.005  # the paper's fits overshoot (0.013)


# -- cost-aware objective and racing ------------------------------------------------------

def every_path(graph, trainer, patience):
    """Train every path from the start (prefixes shared): {nodes: (score, replay GFLOPs)}."""
    found = {}

    def walk(node, checkpoint, gflops, nodes):
        for e in graph.outgoing(node):
            state = graph.state(e.target)
            out = run_edge(trainer, EdgeJob(e.name, checkpoint, state, KneeRule(patience=patience)))
            cost = gflops + out.knee.epoch * trainer.epoch_gflops(state)
            found[(*nodes, e.target)] = (out.knee.score, cost)
            walk(e.target, out.checkpoint, cost, (*nodes, e.target))

    walk(graph.start, None, 0.0, ())
    return found


@pytest.mark.parametrize("seed", [0, 2])
def test_budgeted_dp_equals_exhaustive_search_under_the_budget(seed):
    graph, trainer = paper(), SimulatedTrainer.random(seed)
    every = every_path(graph, trainer, T)
    for end in ("graph", "best"):
        paths = {p: v for p, v in every.items() if end == "best" or p[-1] == graph.final}
        costs = sorted(cost for _, cost in paths.values())
        for budget in (costs[0], costs[len(costs) // 2], costs[-1]):
            r = Planner(graph, trainer, patience=T, end=end,
                        objective=Objective("score_at_budget", budget_gflops=budget)).run()
            best = max(score for score, cost in paths.values() if cost <= budget)
            score, cost = paths[tuple(r.nodes)]  # the chosen path, as exhaustive search trained it
            # separate knee fits of the same curves: equal up to the BLAS kernel's last bits
            assert r.score == pytest.approx(best, abs=1e-5) and score == pytest.approx(best, abs=1e-5)
            assert r.replay_gflops == pytest.approx(cost) and cost <= budget
            assert r.budget_gflops == budget
            fits = [p for p in r.pareto_gflops if p.gflops <= budget]  # the front agrees with the DP
            assert fits[-1].score == pytest.approx(r.score, abs=1e-5)
        unbounded = Planner(graph, trainer, patience=T, end=end).run()
        assert r.score == pytest.approx(unbounded.score, abs=1e-5)  # the whole budget: the paper's DP
        with pytest.raises(OptplanError, match=r"no path to the final node .* fits plan.budget_gflops=%g"
                           % (costs[0] / 2)):
            Planner(graph, trainer, patience=T, end=end,
                    objective=Objective("score_at_budget", budget_gflops=costs[0] / 2)).run()


def test_a_budget_needs_a_trainer_that_counts_compute():
    class Uncounted:  # an EdgeTrainer without epoch_gflops
        def open(self, source, state):
            return SimulatedTrainer().open(source, state)

    assert isinstance(SimulatedTrainer(), CountingEdgeTrainer)
    assert not isinstance(Uncounted(), CountingEdgeTrainer)
    with pytest.raises(OptplanError, match="counts compute"):
        Planner(small(), Uncounted(), objective=Objective("score_at_budget", budget_gflops=100.0))


def test_pareto_front_of_complete_paths_in_gflops(paper_result):
    front = paper_result.pareto_gflops
    assert front and all(p.nodes[-1] == "c16_x0.01" for p in front)
    assert all(a.gflops < b.gflops and a.score < b.score for a, b in zip(front, front[1:]))
    for p in front:  # an epoch of c-frame clips costs c GFLOPs on the default surface
        assert p.gflops == pytest.approx(sum(s.epochs * s.state.clip_length for s in p.stages))
    assert paper_result.replay_gflops == pytest.approx(front[-1].gflops)
    assert paper_result.search_gflops == pytest.approx(
        sum(e.epochs * paper().state(e.target).clip_length for e in paper_result.edges))


@pytest.mark.parametrize("kwargs, message", [
    (dict(objective="score_at_budget"), "needs a positive plan.budget_gflops"),
    (dict(budget_gflops=100.0), "plan.budget_gflops is used only by plan.objective=score_at_budget"),
    (dict(objective="score_at_budget", budget_gflops=100.0, beam=2), "leave plan.beam at 1")])
def test_objective_settings_are_validated_naming_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        validate({"plan": kwargs})
    with pytest.raises((ValueError, OptplanError), match=message):
        beam = kwargs.pop("beam", 1)
        Planner(small(), SimulatedTrainer(), beam=beam,
                objective=Objective(kwargs.get("objective", "score"), kwargs.get("budget_gflops")))


@pytest.mark.parametrize("end", ["graph", "best"])
def test_racing_keeps_the_chosen_path_and_saves_epochs(end):
    # Noise-free surfaces follow the knee model, the case in which the racing bound holds.
    saved = raced = 0
    for seed in range(4):
        graph, trainer = StateGraph.preset("auto", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3), SimulatedTrainer.random(seed)
        full = Planner(graph, trainer, patience=T, end=end).run()
        race = Planner(graph, trainer, patience=T, end=end, racing=Racing()).run()
        assert race.nodes == full.nodes and race.path_epochs == full.path_epochs
        assert race.score == pytest.approx(full.score, abs=1e-5)
        assert race.search_epochs <= full.search_epochs
        lost = [e for e in race.edges if e.knee.stop == "race"]
        assert all(e.score < max(r.score for r in race.edges if r.target == e.target) for e in lost)
        saved += full.search_epochs - race.search_epochs
        raced += len(lost)
        assert (f"({len(lost)} stopped by racing)" in race.table()) == bool(lost)
    assert raced > 0 and saved > 0


def test_a_race_is_judged_only_against_a_bar_and_after_patience():
    bending = [0.0, 0.3, 0.45, 0.52, 0.56, 0.58, 0.59]  # fitted maximum ~0.599
    rule = KneeRule(patience=4)
    assert Racing().lost(bending, rule) is None  # no competitor has finished
    assert Racing().against(0.9).lost(bending[:4], rule) is None  # too young to judge
    assert Racing().against(0.6).lost(bending, rule) is None  # within reach (+ margin)
    assert Racing().against(0.9).lost(bending[:6], rule) is None  # the fit still runs off upwards
    lost = Racing().against(0.9).lost(bending, rule)
    assert lost.stop == "race" and lost.epoch == 6 and lost.score == 0.59 and lost.reached
    assert Racing(margin=0.5).against(0.9).lost(bending, rule) is None
    patient = KneeRule(patience=10)  # judged after T epochs by default, or after ``after``
    assert Racing().against(0.9).lost(bending, patient) is None
    assert Racing(after=6).against(0.9).lost(bending, patient).stop == "race"


@pytest.mark.parametrize("kill_after", [10, 40])
def test_a_racing_plan_resumes_to_the_same_result(tmp_path, kill_after):
    graph, trainer = StateGraph.preset("auto", clip_lengths=[4, 8], base_lrs=[0.1] * 2), SimulatedTrainer.random(1)
    whole = Planner(graph, trainer, patience=T, racing=Racing()).run()
    assert any(e.knee.stop == "race" for e in whole.edges)
    with pytest.raises(Killed):
        Planner(graph, Counting(trainer, budget=kill_after), SQLiteStore(tmp_path / "plan.sqlite"),
                patience=T, racing=Racing()).run()
    rest = Counting(trainer)
    r = Planner(graph, rest, SQLiteStore(tmp_path / "plan.sqlite"), patience=T, racing=Racing()).run()
    assert essence(r) == essence(whole) and rest.epochs == whole.search_epochs - kill_after
    with pytest.raises(OptplanError, match="racing"):  # racing changes what a plan finds
        Planner(graph, trainer, SQLiteStore(tmp_path / "plan.sqlite"), patience=T).run()


def test_recorded_curves_plan_a_search_again_and_answer_racing_exactly():
    # A finished search's own curves give its plan back; racing replayed on them only ever
    # shortens edges, and wherever no node's winner was cut the raced plan is the search's.
    graph = StateGraph.preset("auto", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3)
    raced_edges = saved = 0.0
    for seed in range(4):
        searched = Planner(graph, SimulatedTrainer.random(seed, noise=0.03, seed=seed), patience=T, end="best").run()
        recorded = RecordedTrainer(searched)
        again = Planner(graph, recorded, patience=T, end="best").run()
        assert (again.nodes, again.path_epochs, again.search_epochs, again.schedule) == \
            (searched.nodes, searched.path_epochs, searched.search_epochs, searched.schedule)
        assert again.score == pytest.approx(searched.score, abs=1e-9)  # a knee fit: no == on floats
        assert again.search_gflops == pytest.approx(searched.search_gflops)
        raced = Planner(graph, recorded, patience=T, end="best", racing=Racing()).run()
        curves = {e.id: e.curve for e in searched.edges}
        assert all(e.curve == curves[e.id][:len(e.curve)] for e in raced.edges)
        lost = {f"{e.source}->{e.target}" for e in raced.edges if e.knee.stop == "race"}
        cut = recorded_winner_cut(searched, raced)
        assert {d.name for d in searched.decisions if d.candidates and d.candidates[0].edge in lost} <= set(cut)
        if not cut:
            assert (raced.nodes, raced.path_epochs) == (searched.nodes, searched.path_epochs)
        raced_edges += len(lost)
        saved += searched.search_gflops - raced.search_gflops
    assert raced_edges > 0 and saved > 0


def test_a_rule_that_trains_longer_than_the_record_fails_those_edges_clearly():
    graph = small()
    searched = Planner(graph, SimulatedTrainer(**FAST), patience=T).run()
    with pytest.raises(OptplanError, match=r"start->c4_x1 failed: CurveEnded: the recorded curve into c4_x1 "
                                           r"ends after \d+ epochs; the rule asked for epoch"):
        Planner(graph, RecordedTrainer(searched), patience=T + 3).run()
    with pytest.raises(CurveEnded, match="no curve was recorded for start -> c8_x0.1"):
        RecordedTrainer(searched).open(None, graph.states["c8_x0.1"])
    beam = Planner(graph, SimulatedTrainer(**FAST), patience=T, beam=2).run()
    with pytest.raises(OptplanError, match="plan.beam > 1 cannot be replayed"):
        RecordedTrainer(beam)


# -- dropping starts that climb ------------------------------------------------------------

class Climbing:
    """A simulated trainer whose runs report training losses: rising by 30% per epoch from
    epoch 1 in the ``climbing`` states, falling elsewhere."""

    def __init__(self, inner, climbing):
        self.inner, self.climbing = inner, set(climbing)
        if hasattr(inner, "resume"):
            self.resume = lambda snapshot, source, state, scores: ClimbingRun(
                inner.resume(snapshot, source, state, scores), state.name in self.climbing, len(scores) - 1)

    def open(self, source, state):
        return ClimbingRun(self.inner.open(source, state), state.name in self.climbing)


class ClimbingRun:
    def __init__(self, run, climbs, epochs=0):
        self.run, self.climbs, self.epochs = run, climbs, epochs
        self.initial_score, self.keep, self.snapshot = run.initial_score, run.keep, run.snapshot

    def train_epoch(self):
        self.epochs += 1
        return self.run.train_epoch()

    @property
    def train_losses(self):
        return [(1.3 if self.climbs else 0.9) ** k for k in range(self.epochs)]


def test_the_climb_rule_judges_epochs_two_to_its_window():
    rule = Climb(limit=1.15, epochs=4)
    assert rule.climbed([5.0]) is None  # epoch 1 is the reference
    assert rule.climbed([5.0, 5.7]) is None and rule.climbed([5.0, 4.0, 5.5, 5.75]) is None  # 1.15x: not above
    why = rule.climbed([5.0, 4.0, 5.9])
    assert why.startswith("training loss rose from 5 in epoch 1 to 5.9 in epoch 3 (+18%")
    assert "plan.climb_limit=1.15" in why
    assert rule.climbed([5.0, 4.0, 4.0, 4.0, 9.0]) is None  # past the window: the knee rule's to judge
    assert "not finite" in rule.climbed([5.0, math.nan])
    assert rule.climbed([math.nan, 9.0]) is None
    for bad in (dict(limit=1.0), dict(limit=math.inf), dict(epochs=1)):
        with pytest.raises(ValueError, match="limit > 1 and epochs >= 2"):
            Climb(**bad)


def two_starts():
    """Clips 4 and 8 at lr x1 and x0.1, the start linked to both levels of both clips."""
    return StateGraph.preset("paper", clip_lengths=[4, 8], base_lrs=[0.1, 0.1], lr_multipliers=[1, 0.1],
                             start_lr_levels=2)


def test_a_climbing_start_is_dropped_with_its_branch_and_only_faster_starts_are_judged():
    graph = two_starts()
    trainer = Climbing(SimulatedTrainer(**FAST), ["c4_x1", "c8_x0.1", "c4_x0.1"])
    r = Planner(graph, trainer, patience=T, climb=Climb()).run()
    dropped = [e for e in r.edges if e.status == DROPPED]
    assert [(e.id, e.epochs, e.score, e.checkpoint) for e in dropped] == [("start->c4_x1", 2, None, None)]
    assert dropped[0].error.startswith("training loss rose from 1 in epoch 1 to 1.3 in epoch 2 (+30%")
    assert stop_reason(dropped[0]) == "dropped"
    assert any("start->c4_x1 dropped: training loss rose" in n for n in r.notes)
    assert "edges (1 dropped for a climbing loss) in" in r.table()
    # c4_x1 has no other way in: its branch is skipped; c4_x0.1 and c8_x0.1 climb too, but
    # start->c4_x0.1 is the gentlest start into 4-frame clips and c8_x0.1 is entered at lr x0.1
    # from scratch (the gentlest) or from trained models (a move the graph offers on purpose)
    assert {e.id for e in r.edges if e.status == SKIPPED} == {"c4_x1->c4_x0.1", "c4_x1->c8_x1"}
    alone = Planner(graph, SimulatedTrainer(**FAST), patience=T).run()
    assert {e.id for e in alone.edges if e.epochs} - {e.id for e in r.edges if e.epochs} == \
        {"c4_x1->c4_x0.1", "c4_x1->c8_x1"}
    assert r.search_epochs < alone.search_epochs
    # a trainer whose runs report no losses is never judged
    assert essence(Planner(graph, SimulatedTrainer(**FAST), patience=T, climb=Climb()).run()) == essence(alone)


def test_a_dropped_start_stays_dropped_on_resume_and_the_rule_is_part_of_the_plan(tmp_path):
    graph, store = two_starts(), tmp_path / "plan.sqlite"
    whole = Planner(graph, Climbing(SimulatedTrainer(**FAST), ["c4_x1"]), patience=T, climb=Climb()).run()
    assert [e.id for e in whole.edges if e.status == DROPPED] == ["start->c4_x1"]
    with pytest.raises(Killed):  # killed after start->c4_x1 was dropped
        Planner(graph, Climbing(Counting(SimulatedTrainer(**FAST), budget=5), ["c4_x1"]), SQLiteStore(store),
                patience=T, climb=Climb()).run()
    rest = Counting(SimulatedTrainer(**FAST))
    r = Planner(graph, Climbing(rest, ["c4_x1"]), SQLiteStore(store), patience=T, climb=Climb()).run()
    assert essence(r) == essence(whole) and rest.epochs == whole.search_epochs - 5
    with pytest.raises(OptplanError, match="climb"):  # the rule changes what a plan finds
        Planner(graph, SimulatedTrainer(**FAST), SQLiteStore(store), patience=T).run()


def test_when_every_start_climbs_the_gentlest_start_of_each_clip_setting_stays():
    everything = ["c4_x1", "c4_x0.1", "c8_x1", "c8_x0.1"]
    r = Planner(two_starts(), Climbing(SimulatedTrainer(**FAST), everything), patience=T, climb=Climb()).run()
    assert sorted(e.id for e in r.edges if e.status == DROPPED) == ["start->c4_x1", "start->c8_x1"]
    assert r.nodes[-1] == "c8_x0.1" and math.isfinite(r.score)
    assert Planner(small(), Climbing(SimulatedTrainer(**FAST), everything), patience=T,
                   climb=Climb()).run().nodes == ["c4_x1", "c8_x1", "c8_x0.1"]  # one lr per start: none judged


def test_the_climb_rule_asked_of_a_search_s_records_gives_the_plan_it_would_have_made():
    # Records answer exactly where every node that still trains kept its recorded winner; where a
    # dropped branch had won a later node (c4_x1 -> c4_x0.1), the records cannot say what training
    # from the new winner would have measured, and recorded_winner_cut names that node.
    graph = two_starts()
    for draw in range(3):
        for climbing, cut in ((["c8_x1"], []), (["c4_x1", "c8_x1"], ["c4_x0.1", "c8_x0.1"])):
            trainer = Climbing(SimulatedTrainer.random(draw), climbing)
            searched = Planner(graph, trainer, patience=T).run()
            assert [len(e.losses) for e in searched.edges] == [e.epochs for e in searched.edges]
            replanned = Planner(graph, RecordedTrainer(searched), patience=T, climb=Climb()).run()
            assert replanned.search_epochs < searched.search_epochs
            assert recorded_winner_cut(searched, replanned) == cut  # the skipped x1 nodes are not cut
            if not cut:
                direct = Planner(graph, trainer, patience=T, climb=Climb()).run()
                assert essence(replanned)[:4] == essence(direct)[:4]
                assert [e.status for e in replanned.edges] == [e.status for e in direct.edges]

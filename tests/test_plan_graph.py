"""State graphs: the paper's presets (checked against the reference code's edge lists), grids
with move rules, user-written graphs, and the graphs that must be refused."""

from __future__ import annotations

import pytest

from optplan.config import load_config
from optplan.errors import OptplanError
from optplan.plan import PlanConfig, StateGraph, grid_graph
from optplan.train.state import State

CLIPS, LRS = [16, 32, 64], [0.01, 0.01, 0.001]
# The reference's node ids: 0 start, then (clip i, multiplier j) -> 1 + 3 i + j.
REF_NODES = ["start"] + [f"c{c}_x{m:g}" for c in CLIPS for m in (1, 0.1, 0.01)]
REF_EXT_EDGES = list(zip([0, 0, 1, 1, 4, 4, 2, 4, 7, 2, 5, 5, 7, 3, 5, 8, 6, 8],
                         [1, 4, 4, 2, 2, 7, 5, 5, 5, 3, 3, 8, 8, 6, 6, 6, 9, 9]))
REF_BASE_EDGES = [REF_EXT_EDGES[i] for i in [0, 1, 2, 3, 5, 6, 7, 9, 11, 12, 13, 14, 16, 17]]


def _named(pairs):
    return {(REF_NODES[a], REF_NODES[b]) for a, b in pairs}


@pytest.mark.parametrize("preset, ref", [("paper", REF_BASE_EDGES), ("paper-ext", REF_EXT_EDGES)])
def test_paper_presets_have_the_reference_edges(preset, ref):
    g = StateGraph.preset(preset, clip_lengths=CLIPS, base_lrs=LRS, batch_sizes=[16, 8, 4],
                          accumulation=[4, 8, 16])
    assert {(e.source, e.target) for e in g.edges} == _named(ref)
    assert len(g.edges) == (14 if preset == "paper" else 18)
    assert g.start == "start" and g.final == "c64_x0.01"
    s = g.state("c64_x0.1")
    assert (s.lr, s.clip_length, s.batch_size, s.accumulation, s.frozen_bn) == (0.0001, 64, 4, 16, True)
    assert not g.state("c32_x1").frozen_bn and g.state("c32_x1").effective_batch == 64
    rank = {n: i for i, n in enumerate(g.order)}
    assert all(rank[e.source] < rank[e.target] for e in g.edges)


def test_paths_are_every_start_to_final_walk():
    g = StateGraph.preset("paper", clip_lengths=CLIPS, base_lrs=LRS)
    paths = list(g.paths())
    # from (0,0): C(4,2) = 6 lattice walks to (2,2); from (1,0): C(3,1) = 3
    assert len(paths) == 9 and len({tuple(p) for p in paths}) == 9
    edges = {(e.source, e.target) for e in g.edges}
    for p in paths:
        assert p[0] == "start" and p[-1] == g.final
        assert all((a, b) in edges for a, b in zip(p, p[1:]))


def test_both_samplings_share_the_start_and_end_in_a_choice():
    g = StateGraph.preset("paper", clip_lengths=[4, 8], base_lrs=[0.1, 0.1], lr_multipliers=[1, 0.1],
                          sampling="both")
    assert g.final == "final" and g.is_choice("final") and g.state("final") is None
    assert {e.source for e in g.incoming("final")} == {"c8_x0.1", "u8_x0.1"}
    assert {e.target for e in g.outgoing("start")} == {"c4_x1", "c8_x1", "u4_x1", "u8_x1"}
    assert g.state("u4_x0.1").sampling == "uniform" and len(g.states) == 8
    assert len(g.edges) == 2 * 6 + 2  # per sampling: 2 from the start, 2 lr, 2 clip moves


def test_the_start_can_enter_lower_lr_levels():
    base = StateGraph.preset("auto", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3, lr_multipliers=[1, 0.3, 0.1])
    g = StateGraph.preset("auto", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3, lr_multipliers=[1, 0.3, 0.1],
                          start_lr_levels=2)
    assert {e.target for e in base.outgoing("start")} == {"c4_x1", "c8_x1", "c16_x1"}
    assert {e.target for e in g.outgoing("start")} == {f"c{c}_x{m}" for c in (4, 8, 16) for m in ("1", "0.3")}
    assert len(g.edges) == len(base.edges) + 3
    # the paper's preset keeps its two started clips
    paper = StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3, start_lr_levels=3)
    assert {e.target for e in paper.outgoing("start")} == {f"c{c}_x{m}" for c in (4, 8) for m in ("1", "0.1", "0.01")}
    cfg = load_config(overrides=["plan.preset=auto", "plan.start_lr_levels=3"]).plan
    assert len(StateGraph.from_config(cfg).outgoing("start")) == 9


def test_frames_per_segment_is_a_clip_setting_of_the_presets():
    g = StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3, sampling="both")
    assert {g.state(f"u{c}_x1").frames_per_segment for c in (4, 8, 16)} == {4}  # the reference's
    assert {g.state(f"c{c}_x1").frames_per_segment for c in (4, 8, 16)} == {1}
    one = StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3, sampling="uniform",
                            frames_per_segment=[1, 2, 4])
    assert [one.state(f"u{c}_x0.1").frames_per_segment for c in (4, 8, 16)] == [1, 2, 4]
    cfg = load_config(overrides=["plan.sampling=uniform", "plan.frames_per_segment=[1,1,1]"])
    assert {s.frames_per_segment for s in StateGraph.from_config(cfg.plan).states.values()} == {1}
    with pytest.raises(OptplanError, match="plan.frames_per_segment has 2 values"):
        StateGraph.preset("paper", clip_lengths=[4, 8, 16], base_lrs=[0.1] * 3, sampling="uniform",
                          frames_per_segment=[1, 2])


def test_round_trip_through_dict():
    g = StateGraph.preset("paper-ext", clip_lengths=CLIPS, base_lrs=LRS, sampling="both")
    h = StateGraph.from_dict(g.to_dict())
    assert h.to_dict() == g.to_dict() and h.edges == g.edges


def test_grid_with_rules():
    g = grid_graph({"lr": [0.1, 0.01, 0.001], "clip_length": [4, 8]}, base={"batch_size": 4})
    assert g.final == "lr0.001_c8" and len(g.states) == 6
    assert {e.target for e in g.outgoing("start")} == {"lr0.1_c4"}
    assert len(g.edges) == 1 + 7  # 3 clip moves + 2 lr moves per clip
    assert all(s.batch_size == 4 for s in g.states.values())
    # lr may fall two levels at once without "adjacent"
    loose = grid_graph({"lr": [0.1, 0.01, 0.001], "clip_length": [4, 8]},
                       rules=["monotone_lr", "monotone_clip", "one_change"])
    assert ("lr0.1_c4", "lr0.001_c4") in {(e.source, e.target) for e in loose.edges}


def test_grid_fields_outside_state_go_to_extra_and_need_a_direction():
    with pytest.raises(OptplanError, match="clip_length = .*Field required"):
        grid_graph({"lr": [0.1, 0.01]})
    with pytest.raises(OptplanError, match="cycle"):
        grid_graph({"lr": [0.1, 0.01], "mixup": [0.0, 0.2]}, base={"clip_length": 4})
    g = grid_graph({"lr": [0.1, 0.01], "mixup": [0.0, 0.2]}, base={"clip_length": 4},
                   rules=["forward", "one_change"])
    assert g.state(g.final).extra == {"mixup": 0.2} and g.state(g.final).lr == 0.01


def test_from_config_custom_and_grid():
    cfg = PlanConfig(preset="custom", states=[{"name": "a", "lr": 0.1, "clip_length": 4},
                                              {"name": "b", "lr": 0.01, "clip_length": 8}],
                     edges=[("start", "a"), ("a", "b"), ("start", "b")])
    g = StateGraph.from_config(cfg)
    assert g.final == "b" and len(list(g.paths())) == 2
    cfg = PlanConfig(preset="grid", grid={"lr": [0.1, 0.01], "clip_length": [4, 8]})
    assert StateGraph.from_config(cfg).final == "lr0.01_c8"
    cfg = PlanConfig(preset="grid", grid={"lr": [0.1, 0.01], "clip_length": [4, 8]},
                     rules=["monotone_lr", "monotone_clip"], final="lr0.01_c4")
    g = StateGraph.from_config(cfg)  # states that cannot lead to the named final are dropped
    assert sorted(g.states) == ["lr0.01_c4", "lr0.1_c4"] and len(g.edges) == 2
    assert len(StateGraph.from_config(PlanConfig()).edges) == 14


def _custom(edges, final=None, validator=None):
    states = [State(name=n, lr=0.1, clip_length=c) for n, c in (("a", 4), ("b", 8), ("c", 16))]
    return StateGraph(states, edges, final=final, validator=validator)


@pytest.mark.parametrize("edges, final, message", [
    ([("start", "a"), ("a", "b"), ("b", "a"), ("b", "c")], None, r"cycle: (a -> b -> a|b -> a -> b)"),
    ([("start", "a"), ("b", "c")], "c", "cannot be reached"),
    ([("start", "a"), ("a", "b"), ("a", "c")], "b", "off every path.*c"),
    ([("start", "a"), ("a", "b"), ("a", "c")], None, "2 end nodes"),
    ([("start", "a"), ("a", "x")], None, "no node named 'x'"),
    ([("start", "a"), ("a", "a")], None, "loops"),
    ([("start", "a"), ("a", "start")], None, "enters the start"),
    ([("start", "a"), ("a", "b"), ("a", "b"), ("b", "c")], None, "listed twice"),
])
def test_invalid_graphs_are_refused(edges, final, message):
    with pytest.raises(OptplanError, match=message):
        _custom(edges, final)


def test_states_the_trainer_cannot_run_are_refused():
    def min_clip_8(state):
        return f"clip_length {state.clip_length} < the model's minimum 8" if state.clip_length < 8 else None

    with pytest.raises(OptplanError, match="a: clip_length 4 < the model's minimum 8"):
        _custom([("start", "a"), ("a", "b"), ("b", "c")], validator=min_clip_8)
    with pytest.raises(OptplanError, match="c4_x1"):
        StateGraph.preset("paper", clip_lengths=[4, 8], base_lrs=[0.1, 0.1], validator=min_clip_8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(clip_lengths=[4, 8], base_lrs=[0.1]), "base_lrs has 1 values"),
    (dict(clip_lengths=[8, 4], base_lrs=[0.1, 0.1]), "shortest first"),
    (dict(clip_lengths=[4], base_lrs=[0.1], lr_multipliers=[0.1, 1]), "must decrease"),
    (dict(clip_lengths=[4], base_lrs=[0.1], batch_sizes=[8, 4]), "batch_sizes has 2"),
    (dict(clip_lengths=[4], base_lrs=[0.1], lr_multipliers=[1, 0.1], start_lr_levels=3), "start_lr_levels must be 1..2"),
])
def test_bad_presets_are_refused(kwargs, message):
    with pytest.raises(OptplanError, match=message):
        StateGraph.preset("paper", **kwargs)

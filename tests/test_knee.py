"""Knee point: the paper's fit and stopping rule, the faster rules and the edge cases."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from optplan.bench.config import load_bench_config
from optplan.cli import main
from optplan.knee import (Knee, KneeFitError, KneeRule, curve, first_stop, fit_knee, knee_reached,
                          read_curve, write_curve)

# A curve that rises and then slowly overfits; its maximum over 0..999 is at x = 11.
PARAMS = (0.7, 0.3, -0.002, 0.0005, 0.75)
TRUE_KNEE = int(np.argmax(curve(np.arange(1000.0), *PARAMS)))


def formula(n_points: int, params=PARAMS) -> list[float]:
    return list(curve(np.arange(n_points, dtype=float), *params))


def test_true_knee_of_the_formula_curve():
    assert TRUE_KNEE == 11


@pytest.mark.parametrize("params", [PARAMS, (0.5, 0.15, -0.01, 0.0004, 0.6), (0.9, 0.5, 0.001, 0.0, 0.9)])
def test_fit_knee_recovers_known_parameters_and_knee(params):
    y = formula(25, params)
    knee = fit_knee(y)
    xs = np.arange(1000.0)
    expected = int(np.argmax(curve(xs, *params)))
    assert knee.epoch == expected
    assert knee.score == pytest.approx(float(curve(expected, *params)), abs=1e-6)
    assert np.allclose(knee.params, params, atol=1e-3)
    assert np.allclose(curve(xs[:25], *knee.params), y, atol=1e-5)
    assert not knee.reached and knee.epochs == 24


def test_paper_rule_stops_exactly_at_knee_plus_patience():
    y = formula(40)
    for n in range(1, TRUE_KNEE + 10):
        assert knee_reached(y[: n + 1], patience=10) is None, n
    knee = knee_reached(y[: TRUE_KNEE + 11], patience=10)
    assert knee is not None and knee.reached and knee.stop == "knee"
    assert knee.epoch == TRUE_KNEE and knee.epochs == TRUE_KNEE + 10
    assert first_stop(y, patience=4).epochs == TRUE_KNEE + 4


def test_paper_rule_waits_for_patience_even_with_an_early_knee():
    y = formula(30, (0.0, 1.0, 0.01, 0.0002, 0.5))  # knee at epoch 0: only gets worse
    assert fit_knee(y[:8]).epoch == 0
    assert knee_reached(y[:10], patience=10) is None
    knee = knee_reached(y[:11], patience=10)
    assert knee.epoch == 0 and knee.epochs == 10


def test_paper_score_is_the_fitted_value_even_above_one():
    # A steep rise whose fit runs past 1.0: the paper keeps f(x*); the other rules clip.
    y = [0.0, 0.6, 0.9, 0.97, 1.0, 1.0, 0.99, 0.98, 0.96, 0.94, 0.92, 0.9, 0.88, 0.86]
    paper = first_stop(y, patience=5)
    assert paper is not None and paper.score == pytest.approx(fit_knee(y[: paper.epochs + 1]).score)
    stable = first_stop(y, patience=5, method="stable")
    assert stable is not None and stable.score <= max(y)
    capped = knee_reached([0.0, 0.5, 1.2, 1.3, 1.35, 1.4], patience=10, method="stable", max_epochs=5)
    assert capped.score <= 1.4


def test_stable_rule_takes_the_same_decision_with_fewer_epochs():
    y = formula(40)
    paper, stable = first_stop(y, 10), first_stop(y, 10, "stable")
    assert stable.epoch == paper.epoch == TRUE_KNEE
    assert stable.epochs < paper.epochs
    assert stable.method == "stable" and stable.score <= max(y)


def test_stable_rule_never_trains_longer_than_the_paper_rule():
    rng = np.random.default_rng(3)
    for _ in range(3):
        y = np.array(formula(60)) + rng.normal(0, 0.03, 60)
        paper, stable = first_stop(y, 10), first_stop(y, 10, "stable")
        assert paper is not None and stable is not None
        assert stable.epochs <= paper.epochs


def test_a_curve_is_fitted_once_and_its_failure_is_remembered_too(monkeypatch):
    """Fits are cached by the curve's values (the stable rule refits its last prefixes every
    epoch): the same values fit once whether they come as a list or an array, a changed value
    fits anew, and a curve the fit cannot handle raises every time it is asked."""
    from optplan import knee as knee_module

    y = formula(12)
    knee_module._fit_curve.cache_clear()
    first = fit_knee(y)
    assert fit_knee(np.array(y)) == first
    info = knee_module._fit_curve.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    other = fit_knee([*y[:-1], y[-1] + 0.01])
    assert other.params != first.params and knee_module._fit_curve.cache_info().misses == 2
    import scipy.optimize

    calls = []

    def no_convergence(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(scipy.optimize, "curve_fit", no_convergence)
    for _ in range(2):
        with pytest.raises(KneeFitError, match="curve_fit failed: Optimal parameters not found"):
            fit_knee([*y, 0.5])
    assert len(calls) == 1
    knee_module._fit_curve.cache_clear()  # no other test may see the failure


def test_kneedle_finds_the_elbow_before_the_maximum():
    y = formula(40)
    knee = first_stop(y, patience=5, method="kneedle")
    assert knee is not None and knee.method == "kneedle"
    assert 2 <= knee.epoch < TRUE_KNEE
    assert knee.epochs == knee.epoch + 5
    assert knee.score == pytest.approx(y[knee.epoch])


def test_noisy_curve_knee_close_to_the_truth():
    rng = np.random.default_rng(0)
    y = np.array(formula(60)) + rng.normal(0, 0.02, 60)
    for method in ("paper", "stable"):
        knee = first_stop(y, 10, method)
        assert abs(knee.epoch - TRUE_KNEE) <= 2, method
        assert abs(knee.score - curve(TRUE_KNEE, *PARAMS)) < 0.03


def test_flat_curve_stops_with_its_level():
    for level in (0.0, 0.5):
        for method in ("paper", "stable", "kneedle"):
            knee = first_stop([level] * 40, patience=5, method=method)
            assert knee is not None, (level, method)
            assert knee.score == pytest.approx(level, abs=1e-3)
            assert knee.epochs <= 5 + knee.epoch
    assert first_stop([0.3] * 40, patience=5, method="kneedle").epoch == 0


def test_rising_curve_does_not_stop_without_a_cap_and_stops_with_one():
    y = list(np.linspace(0.0, 0.6, 40))
    assert first_stop(y, patience=10) is None
    assert fit_knee(y).epoch == 999  # the fitted maximum runs off
    knee = first_stop(y, patience=10, max_epochs=25)
    assert knee.stop == "max_epochs" and knee.epochs == 25
    assert knee.epoch == 25  # the best fitted epoch inside the trained range
    assert knee.score == pytest.approx(y[25], abs=0.01)


def test_diverged_curve_ends_with_the_best_finite_score():
    for bad in (math.nan, math.inf, -math.inf):
        y = [0.1, 0.3, 0.5, 0.4, bad]
        for method in ("paper", "stable", "kneedle"):
            knee = knee_reached(y, patience=10, method=method)
            assert knee is not None and knee.diverged and knee.reached
            assert knee.epoch == 2 and knee.score == 0.5 and knee.stop == "diverged"
    knee = knee_reached([math.nan], patience=10)
    assert knee.diverged and knee.epoch == 0 and knee.score == 0.0
    with pytest.raises(KneeFitError):
        fit_knee([0.1, 0.2, math.nan, 0.3, 0.4, 0.5])


def test_short_curves_are_fitted_as_the_reference_does_at_small_patience():
    """With T <= 3 the reference fits once T epochs are in, on fewer points than parameters."""
    from scipy.optimize import OptimizeWarning, curve_fit

    y = [0.5, 0.45, 0.4, 0.38]  # the start model is the best: the knee is epoch 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # no covariance from 4 points
        popt, _ = curve_fit(curve, np.arange(4.0), np.array(y), bounds=([0, 0, -np.inf, 0, 0], [np.inf] * 5))
    assert fit_knee(y).params == pytest.approx(tuple(popt), rel=1e-6, abs=1e-9)
    knee = first_stop(y, patience=3)
    assert knee is not None and (knee.epochs, knee.epoch) == (3, 0)  # stops at x* + T = 3
    assert knee_reached([0.5, 0.4], patience=1).epoch == 0  # two points fit (T = 1)
    with pytest.raises(KneeFitError, match="at least 2 points"):
        fit_knee([0.5])


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown knee method"):
        knee_reached([0.0, 1.0], method="elbow")
    with pytest.raises(ValueError, match="patience"):
        knee_reached([0.0, 1.0], patience=0)


def test_knee_to_dict_is_json_ready():
    d = Knee(epoch=3, score=math.nan, params=(1.0, 2.0)).to_dict()
    assert d["score"] is None and d["params"] == [1.0, 2.0] and d["method"] == "paper"


def test_curve_csv_round_trip_and_bare_numbers(tmp_path):
    path = tmp_path / "curve.csv"
    write_curve(path, [0.0, 0.25, 0.5])
    assert read_curve(path) == [0.0, 0.25, 0.5]
    bare = tmp_path / "bare.csv"
    bare.write_text("0\n0.5\n\n0.75\n")
    assert read_curve(bare) == [0.0, 0.5, 0.75]
    bad = tmp_path / "bad.csv"
    bad.write_text("score\n0.1\nabc\n")
    with pytest.raises(ValueError, match="line 3"):
        read_curve(bad)


def test_cli_prints_the_knee_and_plots(tmp_path, capsys):
    path = tmp_path / "curve.csv"
    write_curve(path, formula(30))
    png = tmp_path / "out" / "knee.png"
    assert main(["knee", str(path), "--patience", "10", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"knee at epoch {TRUE_KNEE}" in out and f"decided after {TRUE_KNEE + 10} epochs" in out
    assert png.stat().st_size > 1000
    assert main(["knee", str(tmp_path / "missing.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_gain_rule_stops_a_slowly_rising_curve_the_paper_rule_does_not():
    """A curve still rising by 0.001 an epoch: the paper's knee runs off to x = 999, the gain
    rule stops once T more epochs promise < min_gain and keeps the best trained epoch."""
    x = np.arange(31, dtype=float)
    y = list(0.6 - 0.5 * np.exp(-0.5 * x) + 0.001 * x)
    assert first_stop(y, patience=5, method="paper") is None
    knee = first_stop(y, patience=5, method="gain", min_gain=0.01)
    assert knee is not None and knee.stop == "gain" and knee.method == "gain"
    assert 5 <= knee.epochs < 30 and knee.epoch == knee.epochs  # rising: the last epoch is best
    assert knee.score <= max(y[: knee.epochs + 1]) + 1e-12
    # a stricter threshold waits longer; a settled curve is decided no later than by the paper rule
    stricter = first_stop(y, patience=5, method="gain", min_gain=0.001)
    assert stricter is None or stricter.epochs > knee.epochs
    settled = list(0.8 - 0.7 * np.exp(-0.6 * x) - 0.004 * x)
    paper, gain = first_stop(settled, 5, "paper"), first_stop(settled, 5, "gain")
    assert gain.epochs <= paper.epochs


def test_plateau_rule_stops_once_the_best_measured_score_is_t_epochs_old():
    """A curve that saturates: the plateau rule keeps the first epoch at the top, with its
    measured score, T epochs later; a curve still setting new bests trains on to the cap."""
    saturated = [0.0, 0.4, 0.8, 1.0, 1.0, 0.98, 1.0, 1.0, 0.99, 1.0, 1.0, 1.0]
    knee = first_stop(saturated, patience=3, method="plateau")
    assert (knee.epoch, knee.epochs, knee.score, knee.stop) == (3, 6, 1.0, "plateau")
    assert knee.method == "plateau" and knee.params == ()
    paper = first_stop(saturated, patience=3, method="paper")
    assert paper is None or paper.epochs >= knee.epochs
    x = np.arange(31, dtype=float)
    rising = list(0.6 - 0.5 * np.exp(-0.5 * x) + 0.001 * x)  # a new best every epoch
    assert first_stop(rising, patience=3, method="plateau") is None
    capped = first_stop(rising, patience=3, method="plateau", max_epochs=15)
    assert capped.stop == "max_epochs" and capped.epochs == 15
    assert knee_reached([0.0, 0.5, 0.4, 0.3], 3, "plateau") is None  # the best is 2 epochs old
    assert knee_reached([0.0, 0.5, 0.4, 0.3, 0.45], 3, "plateau").epoch == 1  # 3 epochs old


def test_plateau_rule_is_the_paper_rule_or_earlier_on_real_regime_edges():
    """On every edge curve the benchmark's planners trained (recorded under the paper rule,
    T = 3, cap 15) the plateau rule stops no later than the paper rule; where it waits for the
    paper's knee it keeps the paper's epoch; and it ends fewer edges at the cap in every regime."""
    paper_caps: dict[str, int] = {}
    plateau_caps: dict[str, int] = {}
    for path in sorted(REGIME_CURVES.glob("*.csv")):
        scores = read_curve(path)
        paper = first_stop(scores, 3, "paper", 15)
        plateau = first_stop(scores, 3, "plateau", 15)
        if paper is None:  # decided by the plan's own fit on another processor: see the cap test
            continue
        assert plateau is not None and plateau.epochs <= paper.epochs, path.name
        if plateau.epochs == paper.epochs and plateau.stop == paper.stop:
            assert plateau.epoch == paper.epoch and plateau.score <= max(scores) + 1e-12
        regime = path.name.split("_s")[0]
        paper_caps[regime] = paper_caps.get(regime, 0) + (paper.stop == "max_epochs")
        plateau_caps[regime] = plateau_caps.get(regime, 0) + (plateau.stop == "max_epochs")
    assert set(plateau_caps) == {"appearance", "mixed", "motion"}
    assert all(plateau_caps[r] < paper_caps[r] for r in paper_caps), (plateau_caps, paper_caps)
    assert all(n < 45 / 4 for n in plateau_caps.values()), plateau_caps  # measured 0 / 6 / 7 of 45


@pytest.mark.parametrize(("curves", "cap"), [("regimes-plateau", 15), ("regimes-16px", 15), ("regimes-cap20", 20)])
def test_the_plateau_planner_ends_fewer_than_one_edge_in_four_at_the_cap(curves, cap):
    """Issue 10's cap criterion, on the plans the plateau rule made itself, 3 regimes x 3 seeds:
    the 32 px regimes' ``planned:plateau_knee`` row (15 edges per plan, cap 15; measured 1 / 9 / 3
    of 45 edges capped on appearance / motion / mixed; the paper rule's own plans: 6 / 17 / 16),
    the 16 px benchmark's planner row of 2026-11-26 (15 edges, cap 15: 10 / 6 / 5; the paper
    rule's: 12 / 10 / 13) and the shipped row since 2026-11-27 (18 edges with the x0.3 start
    edges, cap 20: 8 / 1 / 6 of 54; with cap 15 the same row capped 17 / 6 / 9 of 54).
    Replayed epoch by epoch, the rule ends every edge curve exactly where the plan stopped it, and
    by the cap on fewer than 1 in 4 edges of every regime."""
    capped: dict[str, int] = {}
    edges: dict[str, int] = {}
    elsewhere = []  # the knee fit on the deciding epoch may tip on another processor's last bits
    for path in sorted((REGIME_CURVES.parent / curves).glob("*.csv")):
        scores = read_curve(path)
        knee = first_stop(scores, 3, "plateau", cap)
        if knee is None or knee.epochs != len(scores) - 1:
            elsewhere.append(path.name)
            continue
        regime = path.name.split("_s")[0]
        edges[regime] = edges.get(regime, 0) + 1
        capped[regime] = capped.get(regime, 0) + (knee.stop == "max_epochs")
    assert len(elsewhere) <= 3, elsewhere  # 0 where recorded
    assert sorted(capped) == ["appearance", "mixed", "motion"]
    assert all(capped[r] < edges[r] / 4 for r in capped), (capped, edges)


def test_knee_rule_is_one_value_from_the_config():
    from optplan.config import load_config
    from optplan.knee import KneeRule

    cfg = load_config(None, ["knee.method=gain", "knee.patience=4", "knee.min_gain=0.02", "knee.max_epochs=9"])
    rule = KneeRule.from_config(cfg.knee)
    assert rule == KneeRule(method="gain", patience=4, max_epochs=9, min_gain=0.02)
    assert KneeRule.from_config(load_config(None, ["knee.clip_score=true"]).knee).clip_score
    y = [0.0, 0.3, 0.5, 0.55, 0.56, 0.57, 0.575, 0.58, 0.58, 0.58]
    assert rule.decide(y) == knee_reached(y, 4, "gain", 9, None, 0.02)
    with pytest.raises(ValueError, match="unknown knee method"):
        KneeRule(method="elbow")


def test_the_one_knee_loop_stops_where_the_rule_first_stops():
    """``train_to_knee`` (planner edges and ``optplan train --state`` alike) trains exactly the
    epochs ``first_stop`` replays on the same curve, and resumes a curve without retraining it."""
    from optplan.knee import KneeRule, first_stop, train_to_knee

    curve = [0.0, 0.3, 0.5, 0.6, 0.64, 0.65, 0.655, 0.656, 0.657, 0.657, 0.656, 0.657, 0.658]
    rule = KneeRule(patience=3, max_epochs=12)
    seen, feed = [], iter(curve[1:])
    scores = [curve[0]]
    knee = train_to_knee(lambda: next(feed), scores, rule.decide, lambda c: seen.append(len(c)))
    expected = first_stop(curve, 3, "paper", 12)
    assert (knee.epoch, knee.epochs) == (expected.epoch, expected.epochs)
    assert scores == curve[: expected.epochs + 1] and seen == list(range(2, expected.epochs + 2))
    resumed = list(scores)
    assert train_to_knee(lambda: pytest.fail("a decided curve trains nothing"), resumed, rule.decide) == knee


REGIME_CURVES = Path(__file__).resolve().parent.parent / "bench" / "curves" / "regimes"


def test_a_clipped_knee_score_lets_the_measured_better_node_win():
    """Motion seed 2 of the benchmark: the capped edge start->c16_x1 fits to 1.04 on a curve
    that reached 0.958, so the DP ended there (test top-1 0.964) though its successor edge into
    c16_x0.3 measured 0.979 (test 0.998). ``clip_score`` limits the fit to the curve's range."""

    capped = read_curve(REGIME_CURVES / "motion_s2_start-c16_x1.csv")
    after = read_curve(REGIME_CURVES / "motion_s2_c16_x1-c16_x0.3.csv")
    paper, clipped = KneeRule(patience=3, max_epochs=15), KneeRule(patience=3, max_epochs=15, clip_score=True)
    stop = first_stop(capped, 3, "paper", 15)
    assert stop.stop == "max_epochs"
    fitted = paper.decide(capped[: stop.epochs + 1])
    limited = clipped.decide(capped[: stop.epochs + 1])
    assert fitted.score > 1.0 > max(capped)  # the fit's peak lies above anything measured
    assert limited.score == pytest.approx(max(capped)) and limited.epoch == fitted.epoch
    successor = first_stop(after, 3, "paper", 15)
    succ = clipped.decide(after[: successor.epochs + 1])
    assert succ.score == pytest.approx(paper.decide(after[: successor.epochs + 1]).score)  # inside its range
    assert fitted.score > succ.score > limited.score  # the DP's ranking of the two nodes flips


def test_the_bench_cap_is_a_safety_cap_on_real_regime_edges():
    """Issue 10: ``knee.max_epochs`` is a safety cap, not the usual stop. The shipped bench's
    rule is the one whose own plans ``regimes-cap20`` recorded (the plateau knee, T = 3, cap 20:
    the test above holds its cap rate on them). Its stopping rule, replayed over every edge curve
    the paper-rule planner trained on the 32 px regimes (3 seeds x 15 edges each, 2026-11-26,
    recorded under a 15-epoch cap with ``bench/bench_knee.py collect``, so replayed with that
    cap), stops them within their curves, by the cap on fewer than 1 in 4 edges of every regime
    (measured 0 / 6 / 7 of 45 on appearance / motion / mixed; the paper rule that made those
    plans: 30 of 135, mixed 13 of 45: bench/RESULTS.md)."""
    from dataclasses import replace

    shipped = KneeRule.from_config(load_bench_config().base().knee)
    assert (shipped.method, shipped.patience, shipped.max_epochs) == ("plateau", 3, 20)
    rule = replace(shipped, max_epochs=15)
    stops: dict[str, list[str]] = {}
    for path in sorted(REGIME_CURVES.glob("*.csv")):
        scores = read_curve(path)
        knee = first_stop(scores, rule.patience, rule.method, rule.max_epochs, rule.refits, rule.min_gain)
        # None: the knee did not decide by the curve's last epoch (the plan's own fit did; another
        # processor's last bits may tip a fit made on the deciding epoch)
        stops.setdefault(path.name.split("_s")[0], []).append(knee.stop if knee else "undecided")
    assert {regime: len(reasons) for regime, reasons in stops.items()} == {"appearance": 45, "mixed": 45, "motion": 45}
    assert sum(reasons.count("undecided") for reasons in stops.values()) <= 3, stops  # 0 where recorded
    capped = {regime: reasons.count("max_epochs") for regime, reasons in stops.items()}
    assert all(n < 45 / 4 for n in capped.values()), capped


# start -> c16_x1 of the motion regime at 500 training videos (6 classes, T = 3, cap 15; seed 2,
# 2026-11-26): at chance for 4 epochs, then stopped by the plateau and paper rules alike.
AT_CHANCE = [0.0, 0.17, 0.17, 0.17, 0.17]


@pytest.mark.parametrize("method", ["paper", "plateau", "gain", "stable", "kneedle"])
def test_the_chance_guard_trains_a_curve_at_chance_on_until_it_takes_off_or_the_cap(method):
    """Without the floor the plateau rule stops the flat start; with it (1/6 + 0.02) the curve trains
    on, a take-off is then judged by the rule as usual, and a curve that never leaves chance
    ends at the cap."""
    floor = 1 / 6 + 0.02
    if method == "plateau":  # as recorded
        assert first_stop(AT_CHANCE, 3, method, 15).stop == "plateau"
    assert all(knee_reached(AT_CHANCE[:n], 3, method, 15, floor=floor) is None for n in range(2, 6))
    never = AT_CHANCE + [0.17, 0.16] * 6
    assert first_stop(never, 3, method, 15, floor=floor).epochs == 15  # the rule or the cap decides there
    took_off = AT_CHANCE + [0.45, 0.8, 0.9, 0.93] + [0.94] * 8
    knee = first_stop(took_off, 3, method, 15, floor=floor)
    if method == "kneedle":  # it reads the flat start as the elbow once the curve leaves it
        assert knee.epochs == 5
    else:
        assert knee.score > 0.9 and knee.epoch > 6
    # an edge that starts from a trained model above chance is judged as usual, even at chance
    fell = [0.23, 0.17, 0.17, 0.18, 0.17, 0.17, 0.17]
    assert first_stop(fell, 3, method, 15, floor=floor) == first_stop(fell, 3, method, 15)


def test_the_chance_floor_comes_from_the_config_and_the_classes():
    from optplan.config import load_config
    from optplan.knee import CHANCE_MARGIN
    from optplan.train.engine import chance_score

    assert chance_score("top1", 6) == pytest.approx(1 / 6)
    assert chance_score("top135", 12) == pytest.approx((1 / 12 + 3 / 12 + 5 / 12) / 3)
    assert chance_score("top135", 4) == pytest.approx((1 / 4 + 3 / 4 + 1) / 3)
    assert chance_score("loss", 6) is None
    on = load_config(None, ["knee.chance_guard=true", "knee.max_epochs=15"]).knee
    assert KneeRule.from_config(on, 1 / 6).floor == pytest.approx(1 / 6 + CHANCE_MARGIN)
    assert KneeRule.from_config(on, None).floor is None  # loss: inactive
    assert KneeRule.from_config(load_config(None, ["knee.max_epochs=15"]).knee, 1 / 6).floor is None  # off
    with pytest.raises(ValueError, match="needs max_epochs"):
        KneeRule(floor=0.2)


def test_the_chance_guard_without_a_cap_is_refused_naming_the_fix(capsys):
    assert main(["config", "knee.chance_guard=true"]) == 2
    assert "knee.chance_guard=true needs knee.max_epochs" in capsys.readouterr().err

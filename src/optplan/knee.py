"""When has a training state given what it can? The knee point of a validation curve.

A state trains epoch by epoch; after each epoch the model is scored on the validation list.
``scores[0]`` is the score of the starting model (0.0 from scratch) and ``scores[i]`` the
score after epoch ``i``, so a curve of ``n + 1`` points means ``n`` epochs trained.

Five stopping rules, chosen by ``method``:

``"paper"`` (default, exactly the reference code of Qiu et al., ICML 2021)
    Once at least ``patience`` (T) epochs are trained, least-squares fit
    ``f(x) = -a*exp(-b*x) - c*x - d*x**2 + e`` (a, b, d, e >= 0, c free) with
    ``scipy.optimize.curve_fit`` (default start, bounds as in the reference), take the knee
    ``x*`` = the first argmax of ``f`` over the integers 0..999 and stop once the epochs trained
    reach ``x* + T``. The state's score is ``f(x*)``, the fitted value, which can exceed what
    the model really reached (even 1.0); it is kept as the reference computes it. A failed fit
    means "train one more epoch".

``"stable"``
    The same fit and the same minimum of T epochs, but stop as soon as the knee estimate has
    stopped moving: the knee fitted on each of the last ``refits`` (k) prefixes of the curve
    lies within one epoch of the latest one, and at least k epochs were trained past it (so
    every one of those fits saw points beyond the knee). It thus stops at ``max(T, x* + k)``
    instead of ``x* + T`` when the estimate is settled, saving up to T - k epochs per state,
    and never trains longer than the paper rule (whose condition also stops it). The score is
    ``f(x*)`` clipped to the range of scores really observed, so it cannot exceed the best seen.
    On noisy curves with a small T (k = 2) it can settle early on a premature knee; measured
    in bench/RESULTS.md ("Trainer and knee rules").

``"kneedle"``
    Kneedle (Satopaa et al., 2011; the ``kneed`` library) on the observed curve, read as
    concave and increasing: the knee is where returns start to diminish, usually earlier than
    the fitted maximum. Stop once ``patience`` epochs are trained past that knee. The score is
    the observed score at the knee. A flat curve has its knee at epoch 0; a curve without a
    knee (straight or convex) trains on (see ``max_epochs``).

``"gain"``
    The paper's rule, or earlier: once T epochs are trained and the fitted curve promises less
    than ``min_gain`` (score units) over the next T epochs, stop and keep the best fitted
    epoch trained so far (score clipped as in "stable"). A slowly rising curve, on which the
    paper's knee runs off towards x = 999, thus ends by the rule rather than by ``max_epochs``,
    which becomes a safety cap.

``"plateau"``
    The paper's rule, or earlier: once T epochs are trained and the best score *observed* is T
    epochs old (no epoch since has matched it), keep that best epoch, with its measured score.
    Classic patience-based early stopping next to the fitted knee: on a curve that flattens
    while its fit still rises slowly (the paper's knee then runs off towards x = 999) the state
    ends on what was measured instead of at ``max_epochs``; a curve still setting new bests
    trains on. Inside the benchmark's plans (T = 3, cap 15) it ended 13 of 135 edges at the cap
    (the paper rule: 39) with 22% less search, but stopped some noisy curves early enough to
    plan shorter, weaker paths (bench/RESULTS.md, "The plateau knee rule as a planner variant").

Shared outcomes. A curve with a NaN or infinite score (a diverged run) ends the state at once:
the knee is the epoch of the best finite score, which is the state's score, and
``diverged=True``. ``max_epochs`` (off by default so the paper rule stays exact) ends a state
whose fitted maximum keeps running off towards x = 999 (a curve still rising slowly): the knee
is then the best fitted epoch inside the trained range (the best observed one when no fit
succeeds). Like the reference, the fit runs on as few points as the rule has once T epochs are
trained, fewer than the model's five parameters when T <= 3: ``curve_fit``'s bounded solver then
returns one of the many exact fits, the one its default start leads to. A single point cannot be
fitted: :func:`fit_knee` raises :class:`KneeFitError` and the rules wait for more epochs.

A chance floor (``floor``, from ``knee.chance_guard``; off by default): while no score of the
curve, its start included, is above chance plus :data:`CHANCE_MARGIN`, no rule stops it, only
``max_epochs``. A model trained from scratch on an order task can sit at chance for several
epochs before it takes off; every rule reads that flat start as a plateau (on the benchmark's
motion regime with 500 training videos, ``start -> c16_x1`` scored 0.17 = 1/6 for 4 epochs and
was stopped, and the plan ended at 0.26 where cosine @16 reached 0.94 at its budget). A curve
that starts from a trained model above chance is judged as usual, even if it falls to chance.
Once a curve leaves chance the rules judge all of it: the fitted ones and the plateau rule wait
for its new level, but ``kneedle`` reads the flat start as the elbow and stops at once.
"""

from __future__ import annotations

import csv
import functools
import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from optplan.records_io import JsonRecord

Method = Literal["paper", "stable", "kneedle", "gain", "plateau"]
METHODS: tuple[str, ...] = ("paper", "stable", "kneedle", "gain", "plateau")
MIN_GAIN = 0.01  # the 'gain' rule's default: a hundredth of the score scale over the next T epochs
CHANCE_MARGIN = 0.02  # knee.chance_guard: a curve within this of chance has not started learning

HORIZON = 1000  # the reference searches the knee over x = 0..999
NUM_PARAMS = 5  # a, b, c, d, e
MIN_FIT_POINTS = 2  # the reference fits from T + 1 >= 2 points (T >= 1), even below NUM_PARAMS
# Bounds of (a, b, c, d, e) exactly as the reference passes them to curve_fit.
_BOUNDS = ([0.0, 0.0, -np.inf, 0.0, 0.0], [np.inf] * NUM_PARAMS)


class KneeFitError(RuntimeError):
    """The curve could not be fitted (too few points, non-finite scores, no convergence)."""


@dataclass(frozen=True)
class Knee(JsonRecord):
    """The knee of a curve, and whether a stopping rule has decided the state is spent.

    ``epoch`` is the chosen epoch (0 = the starting model) and ``score`` the state's score
    (units of the curve, e.g. accuracy in 0..1). ``params`` are the fitted (a, b, c, d, e), or
    ``()`` when the knee was not fitted (kneedle, divergence, cap without a fit). ``epochs`` is
    how many epochs had been trained when the knee was computed. ``stop`` says why a rule
    stopped: ``"knee"``, ``"max_epochs"`` or ``"diverged"`` (``""`` while not reached).
    """

    epoch: int
    score: float
    params: tuple[float, ...]
    reached: bool = False
    diverged: bool = False
    method: str = "paper"
    epochs: int = 0
    stop: str = ""


def curve(x: np.ndarray | float, a: float, b: float, c: float, d: float, e: float) -> np.ndarray:
    """The paper's curve model ``f(x) = -a*exp(-b*x) - c*x - d*x**2 + e`` (x in epochs)."""
    return -a * np.exp(-b * x) - c * x - d * x * x + e


def _fit_params(scores: Sequence[float]) -> tuple[float, ...]:
    """Least-squares (a, b, c, d, e) for the curve, as the reference calls curve_fit."""
    y = np.asarray(scores, dtype=float)
    if y.ndim != 1 or len(y) < MIN_FIT_POINTS:
        raise KneeFitError(f"need at least {MIN_FIT_POINTS} points to fit the knee, got {len(y)}")
    if not np.all(np.isfinite(y)):
        raise KneeFitError("the curve holds NaN or infinite scores")
    params = _fit_curve(tuple(float(v) for v in y))
    if isinstance(params, str):
        raise KneeFitError(params)
    return params


@functools.lru_cache(maxsize=16384)
def _fit_curve(y: tuple[float, ...]) -> tuple[float, ...] | str:
    """The fit of one curve, or why it failed. Cached because the same prefixes are fitted again:
    the stable rule refits the prefixes it fitted in the epochs before, and replays of recorded
    curves (``first_stop``, the benchmark's knee studies) fit each prefix under several rules; a
    bounded fit costs tens of milliseconds."""
    from scipy.optimize import OptimizeWarning, curve_fit

    x = np.arange(len(y), dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            popt, _ = curve_fit(curve, x, np.asarray(y), bounds=_BOUNDS)
    except (RuntimeError, ValueError) as err:
        return f"curve_fit failed: {err}"
    return tuple(float(p) for p in popt)


def _argmax(params: Sequence[float], stop: int = HORIZON) -> tuple[int, float]:
    """First integer x in 0..stop-1 maximising the fitted curve, and f(x) there."""
    values = curve(np.arange(stop, dtype=float), *params)
    x = int(np.argmax(values))  # first maximum, as list.index(max(...)) in the reference
    return x, float(values[x])


def fit_knee(scores: Sequence[float]) -> Knee:
    """Fit the curve model to ``scores`` and return its knee (argmax over x = 0..999).

    The returned knee is not a decision (``reached=False``); see :func:`knee_reached`.
    Raises :class:`KneeFitError` for fewer than 2 points, non-finite scores or no convergence.
    """
    params = _fit_params(scores)
    epoch, score = _argmax(params)
    return Knee(epoch=epoch, score=score, params=params, epochs=len(scores) - 1)


def _diverged_knee(y: np.ndarray, method: str) -> Knee:
    """The state ends on a non-finite score: keep the best finite epoch (0.0 if none)."""
    finite = np.isfinite(y)
    if finite.any():
        epoch = int(np.argmax(np.where(finite, y, -np.inf)))
        score = float(y[epoch])
    else:
        epoch, score = 0, 0.0
    return Knee(epoch=epoch, score=score, params=(), reached=True, diverged=True, method=method,
                epochs=len(y) - 1, stop="diverged")


def _clip(score: float, y: np.ndarray) -> float:
    """A fitted score limited to the observed range, so it never exceeds the best seen."""
    return float(min(max(score, float(y.min())), float(y.max())))


def _capped_knee(y: np.ndarray, method: str) -> Knee:
    """``max_epochs`` reached: the best fitted epoch inside the trained range."""
    n = len(y) - 1
    try:
        params = _fit_params(y)
    except KneeFitError:
        epoch = int(np.argmax(y))
        return Knee(epoch=epoch, score=float(y[epoch]), params=(), reached=True, method=method,
                    epochs=n, stop="max_epochs")
    epoch, score = _argmax(params, stop=n + 1)
    if method != "paper":
        score = _clip(score, y)
    return Knee(epoch=epoch, score=score, params=params, reached=True, method=method,
                epochs=n, stop="max_epochs")


def _paper(y: np.ndarray, patience: int) -> Knee | None:
    n = len(y) - 1
    if n < patience:
        return None
    try:
        knee = fit_knee(y)
    except KneeFitError:
        return None
    if n >= knee.epoch + patience:
        return replace(knee, reached=True, stop="knee")
    return None


def default_refits(patience: int) -> int:
    """Refits the stable rule needs by default: 40% of the patience, at least 2 (4 for T=10)."""
    return max(2, math.ceil(0.4 * patience))


def _stable(y: np.ndarray, patience: int, refits: int | None) -> Knee | None:
    k = refits or default_refits(patience)
    n = len(y) - 1
    paper = _paper(y, patience)
    if paper is not None:  # never train longer than the paper rule
        return replace(paper, method="stable", score=_clip(paper.score, y))
    if n < max(k, patience) or len(y) - k + 1 < NUM_PARAMS:  # every refit determined
        return None
    knees = []
    for end in range(len(y) - k + 1, len(y) + 1):  # the last k prefixes, the whole curve last
        try:
            knees.append(fit_knee(y[:end]))
        except KneeFitError:
            return None
    last = knees[-1]
    if n < last.epoch + k or any(abs(kn.epoch - last.epoch) > 1 for kn in knees):
        return None
    return replace(last, reached=True, method="stable", stop="knee", score=_clip(last.score, y))


def _kneedle(y: np.ndarray, patience: int) -> Knee | None:
    from kneed import KneeLocator

    n = len(y) - 1
    if n < patience:
        return None
    if np.ptp(y) == 0:  # a flat curve: nothing was gained after the start
        found = 0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kneed warns "no knee found" on early prefixes
            found = KneeLocator(np.arange(len(y)), y, curve="concave", direction="increasing").knee
    if found is None or n < int(found) + patience:
        return None
    epoch = int(found)
    return Knee(epoch=epoch, score=float(y[epoch]), params=(), reached=True, method="kneedle",
                epochs=n, stop="knee")


def _gain(y: np.ndarray, patience: int, min_gain: float) -> Knee | None:
    """The paper's rule, or earlier: once the fitted curve promises less than ``min_gain`` over
    the next ``patience`` epochs, keep the best fitted epoch trained so far. A curve still rising
    slowly (where the paper's knee runs off towards x = 999) then stops on its own terms instead
    of at ``max_epochs``."""
    paper = _paper(y, patience)
    if paper is not None:
        return replace(paper, method="gain", score=_clip(paper.score, y))
    n = len(y) - 1
    if n < patience:
        return None
    try:
        params = _fit_params(y)
    except KneeFitError:
        return None
    epoch, best = _argmax(params, stop=n + 1)
    if float(curve(float(n + patience), *params)) - best >= min_gain:
        return None
    return Knee(epoch=epoch, score=_clip(best, y), params=params, reached=True, method="gain",
                epochs=n, stop="gain")


def _plateau(y: np.ndarray, patience: int) -> Knee | None:
    """The paper's rule, or earlier: the best observed score is ``patience`` epochs old. Ties
    keep the earliest best, so a curve saturated at its ceiling stops T epochs after reaching
    it."""
    paper = _paper(y, patience)
    if paper is not None:
        return replace(paper, method="plateau", score=_clip(paper.score, y))
    n = len(y) - 1
    best = int(np.argmax(y))
    if n < patience or n - best < patience:
        return None
    return Knee(epoch=best, score=float(y[best]), params=(), reached=True, method="plateau",
                epochs=n, stop="plateau")


@dataclass(frozen=True)
class KneeRule(JsonRecord):
    """The whole stopping rule as one value, built once from the ``knee`` config section and
    passed whole to the planner, its edge jobs and ``optplan train --state``.

    ``method`` one of :data:`METHODS`; ``patience`` T (epochs); ``max_epochs`` an optional cap
    per state; ``refits`` the stable rule's window; ``min_gain`` the gain rule's threshold (score
    units over the next T epochs); ``clip_score`` limits the paper rule's fitted score to the
    range the curve reached (the other rules always do).
    """

    method: str = "paper"
    patience: int = 10
    max_epochs: int | None = None
    refits: int | None = None
    min_gain: float = MIN_GAIN
    clip_score: bool = False
    floor: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown knee method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.patience < 1 or (self.max_epochs is not None and self.max_epochs < 1):
            raise ValueError("patience and max_epochs must be at least 1 epoch")
        if self.floor is not None and self.max_epochs is None:
            raise ValueError("a chance floor needs max_epochs, the cap that ends a curve which never leaves it")

    @classmethod
    def from_config(cls, knee: Any, chance: float | None = None) -> "KneeRule":
        """From a ``knee`` config section (:class:`~optplan.train.config.KneeConfig`); ``chance``
        is what the curves score at chance on the data (the trainer knows the classes), which
        ``knee.chance_guard`` turns into the rule's ``floor``."""
        floor = chance + CHANCE_MARGIN if knee.chance_guard and chance is not None else None
        return cls(method=knee.method, patience=knee.patience, max_epochs=knee.max_epochs,
                   refits=knee.refits, min_gain=knee.min_gain, clip_score=knee.clip_score, floor=floor)

    def decide(self, scores: Sequence[float]) -> Knee | None:
        """The decision after the latest epoch (see :func:`knee_reached`)."""
        return knee_reached(scores, self.patience, self.method, self.max_epochs, self.refits, self.min_gain,
                            self.clip_score, self.floor)


def knee_reached(scores: Sequence[float], patience: int = 10, method: Method = "paper",
                 max_epochs: int | None = None, refits: int | None = None,
                 min_gain: float = MIN_GAIN, clip_score: bool = False,
                 floor: float | None = None) -> Knee | None:
    """The decision after the latest epoch: a reached :class:`Knee`, or None to train on.

    ``scores[0]`` is the start score and ``len(scores) - 1`` epochs have been trained.
    ``patience`` is T (epochs), ``max_epochs`` an optional hard cap of epochs per state and
    ``refits`` the stable rule's window (default :func:`default_refits`). ``clip_score``
    limits the paper rule's fitted score to the curve's range: a five-parameter fit on a few
    noisy epochs can peak above anything measured (1.04 on a curve that reached 0.95 in the
    benchmark), and the DP would rank that node first on the fit alone. ``floor`` (with
    ``max_epochs``): while no score of the curve, its start included, is above it, no rule stops
    the curve, only the cap (a model still at chance has not started; see ``knee.chance_guard``).
    """
    if method not in METHODS:
        raise ValueError(f"unknown knee method {method!r}; choose one of {', '.join(METHODS)}")
    if patience < 1:
        raise ValueError(f"patience must be >= 1 epoch, got {patience}")
    y = np.asarray(scores, dtype=float)
    if len(y) == 0:
        raise ValueError("a curve needs at least its start score")
    if not np.all(np.isfinite(y)):
        return _diverged_knee(y, method)
    if floor is not None and float(np.max(y)) <= floor and len(y) - 1 < (max_epochs or 0):
        return None  # not started: nothing for a rule to judge yet
    if method == "paper":
        knee = _paper(y, patience)
    elif method == "stable":
        knee = _stable(y, patience, refits)
    elif method == "gain":
        knee = _gain(y, patience, min_gain)
    elif method == "plateau":
        knee = _plateau(y, patience)
    else:
        knee = _kneedle(y, patience)
    if knee is None and max_epochs is not None and len(y) - 1 >= max_epochs:
        knee = _capped_knee(y, method)
    if knee is not None and clip_score:
        knee = replace(knee, score=_clip(knee.score, y))
    return knee


def train_to_knee(train_epoch: Callable[[], float], scores: list[float],
                  decide: Callable[[list[float]], "Knee | None"],
                  after_epoch: Callable[[list[float]], None] | None = None) -> Knee:
    """The knee loop, the one both the planner's edges and ``optplan train --state`` run: train
    one more epoch (``train_epoch`` returns its score, appended to ``scores`` in place) until
    ``decide`` (a :meth:`KneeRule.decide`, or a planner's rule with racing) returns a knee.
    ``scores`` may already hold a resumed curve; a start score alone decides nothing.
    ``after_epoch`` sees the curve after every epoch, the deciding one too (a kill between
    that epoch and keeping its model then resumes at the knee)."""
    knee = decide(scores) if len(scores) > 1 else None
    while knee is None:
        scores.append(float(train_epoch()))
        knee = decide(scores)
        if after_epoch is not None:
            after_epoch(scores)
    return knee


def first_stop(scores: Sequence[float], patience: int = 10, method: Method = "paper",
               max_epochs: int | None = None, refits: int | None = None,
               min_gain: float = MIN_GAIN, floor: float | None = None) -> Knee | None:
    """Replay a recorded curve epoch by epoch: the first decision the rule would have taken
    (None if it never stops within the curve). ``Knee.epochs`` is the epochs it spent."""
    for n in range(1, len(scores)):
        knee = knee_reached(scores[: n + 1], patience, method, max_epochs, refits, min_gain, floor=floor)
        if knee is not None:
            return knee
    return None


def read_curve(path: str | Path) -> list[float]:
    """Scores from a CSV: a ``score`` column (any other columns ignored) or one bare number per
    line. The first row is epoch 0 (the start score). Raises ValueError naming the bad line."""
    p = Path(path)
    rows = [r for r in csv.reader(p.read_text().splitlines()) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{p}: no scores found")
    header = [c.strip().lower() for c in rows[0]]
    column = header.index("score") if "score" in header else None
    if column is not None:
        rows = rows[1:]
    elif len(header) > 1:
        raise ValueError(f"{p}: several columns but none named 'score'")
    scores = []
    for i, row in enumerate(rows, start=2 if column is not None else 1):
        try:
            scores.append(float(row[column or 0]))
        except (ValueError, IndexError):
            raise ValueError(f"{p}, line {i}: {','.join(row)!r} is not a score") from None
    return scores


def write_curve(path: str | Path, scores: Sequence[float]) -> None:
    """Write ``epoch,score`` rows (what :func:`read_curve` and ``optplan knee`` read)."""
    lines = ["epoch,score"] + [f"{i},{float(s)!r}" for i, s in enumerate(scores)]
    Path(path).write_text("\n".join(lines) + "\n")

"""State spaces: the paper's presets, grids with move rules, and user-written graphs.

The paper's graph (Qiu et al., read from the reference code): clip settings i = 0..n-1 times
learning-rate multipliers j = 0..m-1, node (i, j) training clip i at ``base_lrs[i] * mult[j]``.
Base edges: (i, j) -> (i, j+1) (lr x0.1) and (i, j) -> (i+1, j) (next longer clip); the start
links to (0, 0) and (1, 0). 'paper-ext' adds (i, j) -> (i-1, j+1) (next shorter clip, lr
x0.1). The final node is (n-1, m-1). On the 3 x 3 space that is 14 base edges (18 ext).
'auto' is 'paper' with the start linked to every clip setting at the first lr level, so that a
dataset whose classes need long clips from the start can be planned that way (the paper's start
edges force the two shortest clips first). ``start_lr_levels`` links the start to the first k lr
levels of each started clip setting as well, so that training from scratch at a lower lr (what
PBT's best trials did in the benchmark) is a path the planner can choose.

The builders here return a :class:`Space` (states and moves, unchecked); :class:`StateGraph`
(``optplan.plan.graph``) turns one into a checked DAG. The arrow runs graph -> space only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any, Sequence

from pydantic import ValidationError

from optplan.config import format_validation_error
from optplan.errors import ConfigError, OptplanError
from optplan.protocol import edge_id
from optplan.state import UNIFORM_FRAMES_PER_SEGMENT, State

PRESETS = ("paper", "paper-ext", "auto")
SAMPLING_PREFIX = {"consecutive": "c", "uniform": "u"}
CHOICE_NODE = "final"  # the virtual node choosing between the sampling subgraphs
BEST = "best"  # plan.final: end the path at the best-scoring node, not at a named one
# Short names of State fields in generated node names ("c8_lr0.01").
_ABBREV = {"clip_length": "c", "lr": "lr", "batch_size": "b", "frame_step": "s",
           "accumulation": "acc", "sampling": "", "frozen_bn": "fbn", "frames_per_segment": "k"}


@dataclass(frozen=True, order=True)
class Edge:
    """An allowed move ``source -> target`` (node names)."""

    source: str
    target: str

    @property
    def name(self) -> str:
        return edge_id(self.source, self.target)


@dataclass(frozen=True)
class Space:
    """States and allowed moves as a builder wrote them, before :class:`StateGraph` checks them
    (the arguments of its constructor, less the trainer's validator)."""

    states: list[State]
    edges: list[Edge]
    start: str = "start"
    final: str | None = None
    choices: tuple[str, ...] = ()
    prune: bool = False


def _per_clip(values: Sequence[Any] | None, name: str, n: int, default: Any) -> list[Any]:
    if values is None:
        return [default] * n
    if len(values) != n:
        raise OptplanError(f"plan.{name} has {len(values)} values but plan.clip_lengths has {n}; "
                           "give one per clip setting")
    return list(values)


def paper_states(prefix: str, *, clip_lengths: Sequence[int], base_lrs: Sequence[float],
                 lr_multipliers: Sequence[float], batch_sizes: Sequence[int],
                 accumulation: Sequence[int], frame_steps: Sequence[int],
                 frames_per_segment: Sequence[int | None], sampling: str,
                 frozen_bn_longest: bool) -> list[list[State]]:
    """The (clip i, multiplier j) grid of states, as rows by clip setting (``frames_per_segment``
    applies to uniform sampling; None: the State's default)."""
    longest = len(clip_lengths) - 1
    return [[State(name=f"{prefix}{clip}_x{mult:g}", lr=base_lrs[i] * mult, clip_length=clip,
                   sampling=sampling, frame_step=frame_steps[i], batch_size=batch_sizes[i],
                   accumulation=accumulation[i],
                   frames_per_segment=frames_per_segment[i] if sampling == "uniform" else None,
                   frozen_bn=frozen_bn_longest and longest > 0 and i == longest)
             for mult in lr_multipliers]
            for i, clip in enumerate(clip_lengths)]


def paper_edges(grid: list[list[State]], start: str, ext: bool, starts: int = 2,
                start_lr_levels: int = 1) -> list[Edge]:
    """Base (and optionally ext) moves over a grid from :func:`paper_states`; the start links
    to the first ``starts`` clip settings at each of the first ``start_lr_levels`` lr levels."""
    n, m = len(grid), len(grid[0])
    edges = [Edge(start, grid[i][j].name) for i in range(min(starts, n)) for j in range(min(start_lr_levels, m))]
    for i, j in itertools.product(range(n), range(m)):
        u = grid[i][j].name
        if j + 1 < m:
            edges.append(Edge(u, grid[i][j + 1].name))
        if i + 1 < n:
            edges.append(Edge(u, grid[i + 1][j].name))
        if ext and i > 0 and j + 1 < m:
            edges.append(Edge(u, grid[i - 1][j + 1].name))
    return edges


def paper_space(preset: str, *, clip_lengths: Sequence[int], base_lrs: Sequence[float],
                lr_multipliers: Sequence[float] = (1.0, 0.1, 0.01),
                batch_sizes: Sequence[int] | None = None, accumulation: Sequence[int] | None = None,
                frame_steps: Sequence[int] | None = None, frames_per_segment: Sequence[int] | None = None,
                sampling: str = "consecutive", frozen_bn_longest: bool = True,
                start_lr_levels: int = 1, start: str = "start") -> Space:
    """The paper's graph. ``sampling='both'`` builds one grid per sampling ('c...' and 'u...'
    nodes) sharing the start, joined by a choice node ``final`` that keeps the better one.
    ``frames_per_segment`` (per clip setting) shapes the uniform states only (None: 4 each, the
    reference's)."""
    if preset not in PRESETS:
        raise OptplanError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    n = len(clip_lengths)
    if n == 0 or not lr_multipliers:
        raise OptplanError("plan.clip_lengths and plan.lr_multipliers need at least one value each")
    if list(clip_lengths) != sorted(set(clip_lengths)):
        raise OptplanError(f"plan.clip_lengths must be distinct and shortest first, got {list(clip_lengths)}")
    if any(b >= a for a, b in zip(lr_multipliers, lr_multipliers[1:])):
        raise OptplanError(f"plan.lr_multipliers must decrease, got {list(lr_multipliers)}")
    if not 1 <= start_lr_levels <= len(lr_multipliers):
        raise OptplanError(f"plan.start_lr_levels must be 1..{len(lr_multipliers)} (one per lr multiplier), "
                           f"got {start_lr_levels}")
    common = dict(clip_lengths=clip_lengths, lr_multipliers=lr_multipliers,
                  base_lrs=_per_clip(base_lrs, "base_lrs", n, None),
                  batch_sizes=_per_clip(batch_sizes, "batch_sizes", n, 8),
                  accumulation=_per_clip(accumulation, "accumulation", n, 1),
                  frame_steps=_per_clip(frame_steps, "frame_steps", n, 1),
                  frames_per_segment=_per_clip(frames_per_segment, "frames_per_segment", n, None),
                  frozen_bn_longest=frozen_bn_longest)
    if sampling not in (*SAMPLING_PREFIX, "both"):
        raise OptplanError(f"plan.sampling must be consecutive, uniform or both, got {sampling!r}")
    if sampling != "consecutive":  # refused here, naming the setting, rather than by State
        for clip, k in zip(clip_lengths, common["frames_per_segment"]):
            if clip % (k or UNIFORM_FRAMES_PER_SEGMENT):
                shown = k or f"{UNIFORM_FRAMES_PER_SEGMENT} (the default)"
                raise OptplanError(f"plan.frames_per_segment: a uniform clip of {clip} frames cannot take "
                                   f"{shown} frames per segment; give a divisor of each clip length "
                                   "(1 takes single frames)")
    samplings = list(SAMPLING_PREFIX) if sampling == "both" else [sampling]
    states, edges, finals = [], [], []
    for s in samplings:
        grid = paper_states(SAMPLING_PREFIX[s], sampling=s, **common)
        states += [st for row in grid for st in row]
        edges += paper_edges(grid, start, ext=preset == "paper-ext", starts=n if preset == "auto" else 2,
                             start_lr_levels=start_lr_levels)
        finals.append(grid[-1][-1].name)
    if len(finals) == 1:
        return Space(states, edges, start=start, final=finals[0])
    edges += [Edge(f, CHOICE_NODE) for f in finals]
    return Space(states, edges, start=start, final=CHOICE_NODE, choices=(CHOICE_NODE,))


def _grid_name(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{_ABBREV.get(key, key)}{shown}")
    return "_".join(parts)


def _move_allowed(u: dict[str, Any], v: dict[str, Any], axes: dict[str, list[Any]],
                  rules: Sequence[str]) -> bool:
    changed = [k for k in axes if u[k] != v[k]]
    if not changed:
        return False
    if "one_change" in rules and len(changed) != 1:
        return False
    if "adjacent" in rules and any(abs(axes[k].index(u[k]) - axes[k].index(v[k])) != 1 for k in changed):
        return False
    if "monotone_lr" in rules and "lr" in axes and v["lr"] > u["lr"]:
        return False
    if "monotone_clip" in rules and "clip_length" in axes and v["clip_length"] < u["clip_length"]:
        return False
    if "forward" in rules and any(axes[k].index(v[k]) < axes[k].index(u[k]) for k in changed):
        return False
    return True


def grid_space(axes: dict[str, list[Any]], *, base: dict[str, Any] | None = None,
               rules: Sequence[str] = ("monotone_lr", "monotone_clip", "one_change", "adjacent"),
               final: str | None = None, start: str = "start") -> Space:
    """Every combination of ``axes`` values (State fields; other keys go to ``State.extra``)
    with ``base`` fields, linked where ``rules`` allow a move:

    ``monotone_lr`` (lr never rises), ``monotone_clip`` (clip never shrinks), ``one_change``
    (one field per move), ``adjacent`` (one list position per move), ``forward`` (every field
    moves forward in its listed order). The start links to every state no move enters; states
    off the paths to ``final`` are dropped (default: the only end state; several are an error).
    """
    if not axes or any(not values for values in axes.values()):
        raise OptplanError("plan.grid needs at least one field with at least one value")
    for key, values in axes.items():
        if len(set(map(repr, values))) != len(values):
            raise OptplanError(f"plan.grid.{key} lists a value twice: {values}")
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    fields = set(State.model_fields) - {"name", "extra"}
    states = []
    for combo in combos:
        spec = {**(base or {}), **{k: v for k, v in combo.items() if k in fields}}
        extra = {**spec.pop("extra", {}), **{k: v for k, v in combo.items() if k not in fields}}
        states.append(_state({"name": _grid_name(combo), "extra": extra, **spec},
                             f"grid state {_grid_name(combo)}"))
    moves = [Edge(su.name, sv.name) for (u, su), (v, sv) in itertools.permutations(zip(combos, states), 2)
             if _move_allowed(u, v, axes, rules)]
    entered = {e.target for e in moves}
    edges = [Edge(start, s.name) for s in states if s.name not in entered] + moves
    return Space(states, edges, start=start, final=final, prune=final is not None)


def _state(spec: dict[str, Any], where: str) -> State:
    try:
        return State.model_validate(spec)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None


def space_from_config(cfg: Any) -> Space:
    """The space of a :class:`~optplan.defaults.PlanConfig`."""
    if cfg.preset in PRESETS:
        return paper_space(cfg.preset, clip_lengths=cfg.clip_lengths, base_lrs=cfg.base_lrs,
                           lr_multipliers=cfg.lr_multipliers, batch_sizes=cfg.batch_sizes,
                           frame_steps=cfg.frame_steps, frames_per_segment=cfg.frames_per_segment,
                           accumulation=cfg.accumulation, sampling=cfg.sampling,
                           frozen_bn_longest=cfg.frozen_bn_longest, start_lr_levels=cfg.start_lr_levels)
    final = None if cfg.final == BEST else cfg.final
    if cfg.preset == "grid":
        space = grid_space(cfg.grid, base=cfg.grid_base, rules=cfg.rules, final=final)
    else:
        if not cfg.states or not cfg.edges:
            raise OptplanError("plan.preset 'custom' needs plan.states (State fields each) and "
                               "plan.edges ([source, target] pairs)")
        states = [_state(spec, f"plan.states[{i}]") for i, spec in enumerate(cfg.states)]
        space = Space(states, [Edge(*e) for e in cfg.edges], start=cfg.start, final=final)
    return _joined_ends(space) if cfg.final == BEST else space


def _joined_ends(space: Space) -> Space:
    """``plan.final: best`` on a graph with several end states: they join in a choice node
    (:data:`CHOICE_NODE`, which trains nothing), so the graph has the one final node it needs
    while the plan may end at any node, as it does on the presets."""
    sources = {e.source for e in space.edges}
    ends = [s.name for s in space.states if s.name not in sources]
    if len(ends) < 2 or any(s.name == CHOICE_NODE for s in space.states):
        return space  # one end, or a state already called so (the graph names the conflict)
    return replace(space, edges=[*space.edges, *(Edge(n, CHOICE_NODE) for n in ends)], final=CHOICE_NODE,
                   choices=(CHOICE_NODE,))

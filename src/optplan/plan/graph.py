"""The state graph: training states as nodes of a DAG whose edges are the allowed moves.

Three kinds of node: the *start* (the initial model, no state), *states* (train in this
:class:`~optplan.state.State` until the knee) and *choices* (no training: keep the best of the
incoming models, e.g. the better of the consecutive and the uniform subgraph's final state).
A graph is checked when built: unknown names, cycles, a final node the start cannot reach,
states off every start-to-final path (unless ``prune`` drops them) and states the trainer
cannot run are refused with an :class:`~optplan.errors.OptplanError` that names them.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, Iterable, Iterator

from optplan.errors import OptplanError
from optplan.plan.space import Edge, Space, grid_space, paper_space, space_from_config
from optplan.state import State

Validator = Callable[[State], "str | None"]
"""Says why a trainer cannot run a state (e.g. a clip shorter than the model's minimum), or None."""


class StateGraph:
    """A DAG of training states from ``start`` to ``final``.

    ``edges`` are listed in a deterministic topological order (by target, then source), the
    order in which the in-process planner trains them; ``order`` lists the nodes topologically.
    """

    def __init__(self, states: Iterable[State], edges: Iterable[Edge | tuple[str, str]], *,
                 start: str = "start", final: str | None = None, choices: Iterable[str] = (),
                 validator: Validator | None = None, prune: bool = False) -> None:
        self.start = start
        self.states: dict[str, State] = {}
        for state in states:
            if state.name in self.states or state.name == start:
                raise OptplanError(f"state name {state.name!r} is used twice; node names must be unique")
            self.states[state.name] = state
        self.choices: tuple[str, ...] = tuple(choices)
        for name in self.choices:
            if name in self.states or name == start:
                raise OptplanError(f"choice node {name!r} has the name of another node")
        self._nodes = [start, *self.states, *self.choices]
        raw = [e if isinstance(e, Edge) else Edge(*e) for e in edges]
        self._check_edges(raw)
        self._incoming: dict[str, list[Edge]] = {n: [] for n in self._nodes}
        self._outgoing: dict[str, list[Edge]] = {n: [] for n in self._nodes}
        for e in raw:
            self._incoming[e.target].append(e)
            self._outgoing[e.source].append(e)
        self.order = self._topological_order()
        self.final = final if final is not None else self._only_sink()
        if self.final not in self._incoming or self.final == start:
            raise OptplanError(f"final node {self.final!r} is not a state of the graph")
        self._check_reachable(prune)
        rank = {n: i for i, n in enumerate(self.order)}
        raw = [e for e in raw if e.source in rank and e.target in rank]  # pruned ones gone
        self.edges: list[Edge] = sorted(raw, key=lambda e: (rank[e.target], rank[e.source]))
        for adjacency in (self._incoming, self._outgoing):  # list neighbours in that order too
            for edges in adjacency.values():
                edges.sort(key=lambda e: (rank[e.target], rank[e.source]))
        if validator is not None:
            self._check_states(validator)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str, *, validator: Validator | None = None, **settings: Any) -> "StateGraph":
        """The paper's graph ('paper': base edges; 'paper-ext': plus next-shorter-clip edges).

        Node (i, j) trains clip ``clip_lengths[i]`` at ``base_lrs[i] * lr_multipliers[j]``; the
        other per-clip settings (batch, accumulation, frame step, frames per segment) and
        ``sampling`` ('both' adds a uniform-sampling copy and a choice node ``final``) are the
        keyword arguments of :func:`optplan.plan.space.paper_space`, passed on as they are.
        """
        return cls.from_space(paper_space(name, **settings), validator)

    @classmethod
    def from_config(cls, cfg: Any, validator: Validator | None = None) -> "StateGraph":
        """Build the graph a :class:`~optplan.defaults.PlanConfig` describes."""
        return cls.from_space(space_from_config(cfg), validator)

    @classmethod
    def from_space(cls, space: Space, validator: Validator | None = None) -> "StateGraph":
        """Check a builder's :class:`~optplan.plan.space.Space` into a graph."""
        return cls(space.states, space.edges, start=space.start, final=space.final,
                   choices=space.choices, validator=validator, prune=space.prune)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (stored with every run; :meth:`from_dict` inverts it)."""
        return {"start": self.start, "final": self.final, "choices": list(self.choices),
                "states": [s.to_dict() for s in self.states.values()],
                "edges": [[e.source, e.target] for e in self.edges]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StateGraph":
        return cls([State.from_dict(s) for s in data["states"]], [tuple(e) for e in data["edges"]],
                   start=data["start"], final=data["final"], choices=data.get("choices", ()))

    # -- queries -----------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        """Every node name, in topological order."""
        return list(self.order)

    def state(self, name: str) -> State | None:
        """The state of a node (None for the start and for choice nodes)."""
        return self.states.get(name)

    def is_choice(self, name: str) -> bool:
        return name in self.choices

    def incoming(self, name: str) -> list[Edge]:
        return list(self._incoming[name])

    def outgoing(self, name: str) -> list[Edge]:
        return list(self._outgoing[name])

    def paths(self) -> Iterator[list[str]]:
        """Every start-to-final path as a list of node names (start included)."""
        stack: list[tuple[str, list[str]]] = [(self.start, [self.start])]
        while stack:
            node, path = stack.pop()
            if node == self.final:
                yield path
                continue
            for e in reversed(self._outgoing[node]):
                stack.append((e.target, [*path, e.target]))

    def __len__(self) -> int:
        return len(self._nodes)

    def __repr__(self) -> str:
        return (f"StateGraph({len(self.states)} states, {len(self.edges)} edges, "
                f"{self.start!r} -> {self.final!r})")

    # -- checks ------------------------------------------------------------------------------

    def _check_edges(self, edges: list[Edge]) -> None:
        known = set(self._nodes)
        seen: set[Edge] = set()
        for e in edges:
            for end in (e.source, e.target):
                if end not in known:
                    raise OptplanError(f"edge {e.name}: no node named {end!r} "
                                       f"(known: {', '.join(sorted(known))})")
            if e.source == e.target:
                raise OptplanError(f"edge {e.name} loops on one node; a move must change state")
            if e.target == self.start:
                raise OptplanError(f"edge {e.name} enters the start node {self.start!r}")
            if e in seen:
                raise OptplanError(f"edge {e.name} is listed twice")
            seen.add(e)

    def _topological_order(self) -> list[str]:
        """Kahn's algorithm, ties broken by the order nodes were given (deterministic)."""
        index = {n: i for i, n in enumerate(self._nodes)}
        indegree = {n: len(self._incoming[n]) for n in self._nodes}
        ready = [(index[n], n) for n in self._nodes if indegree[n] == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, node = heapq.heappop(ready)
            order.append(node)
            for e in self._outgoing[node]:
                indegree[e.target] -= 1
                if indegree[e.target] == 0:
                    heapq.heappush(ready, (index[e.target], e.target))
        if len(order) < len(self._nodes):
            cycle = self._find_cycle({n for n in self._nodes if indegree[n] > 0})
            raise OptplanError("the state graph has a cycle: " + " -> ".join(cycle)
                               + "; moves must never return to an earlier state")
        return order

    def _find_cycle(self, nodes: set[str]) -> list[str]:
        """One cycle among ``nodes`` (each has an incoming edge from inside the set)."""
        node, seen = next(iter(sorted(nodes))), []
        while node not in seen:
            seen.append(node)
            node = next(e.source for e in self._incoming[node] if e.source in nodes)
        cycle = seen[seen.index(node):]
        return [*reversed(cycle), cycle[-1]]

    def _only_sink(self) -> str:
        sinks = [n for n in self._nodes if n != self.start and not self._outgoing[n]]
        if len(sinks) != 1:
            raise OptplanError(f"the graph has {len(sinks)} end nodes ({', '.join(sinks) or 'none'}); "
                               "name the final one (plan.final: NAME), or let the plan end at the "
                               "best node of all (plan.final: best)")
        return sinks[0]

    def _check_reachable(self, prune: bool) -> None:
        forward = closure(self.start, lambda n: [e.target for e in self._outgoing[n]])
        if self.final not in forward:
            raise OptplanError(f"the final node {self.final!r} cannot be reached from "
                               f"{self.start!r}; add edges leading to it")
        backward = closure(self.final, lambda n: [e.source for e in self._incoming[n]])
        off = [n for n in self._nodes if n not in forward or n not in backward]
        if off and prune:
            self._drop(set(off))
        elif off:
            raise OptplanError(f"nodes off every path from {self.start!r} to {self.final!r}: "
                               f"{', '.join(off)}; remove them or connect them")

    def _drop(self, nodes: set[str]) -> None:
        """Remove ``nodes`` and their edges (``prune``: generated states off every path)."""
        for name in nodes:
            self.states.pop(name, None)
        self.choices = tuple(c for c in self.choices if c not in nodes)
        self._nodes = [n for n in self._nodes if n not in nodes]
        self.order = [n for n in self.order if n not in nodes]
        for adjacency in (self._incoming, self._outgoing):
            for name in nodes:
                del adjacency[name]
            for name, edges in adjacency.items():
                edges[:] = [e for e in edges if e.source not in nodes and e.target not in nodes]

    def _check_states(self, validator: Validator) -> None:
        problems = [f"{s.name}: {why}" for s in self.states.values() if (why := validator(s))]
        if problems:
            raise OptplanError("the trainer cannot run these states:\n  " + "\n  ".join(problems))


def closure(root: str, step: Callable[[str], list[str]]) -> set[str]:
    """Every node reachable from ``root`` (itself included) by repeated ``step``."""
    seen, todo = {root}, [root]
    while todo:
        for nxt in step(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def grid_graph(axes: dict[str, list[Any]], *, validator: Validator | None = None,
               **options: Any) -> StateGraph:
    """The checked graph of :func:`optplan.plan.space.grid_space` (``options``: its keywords)."""
    return StateGraph.from_space(grid_space(axes, **options), validator)

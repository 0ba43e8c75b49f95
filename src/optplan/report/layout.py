"""Where each node of the state graph is drawn (no graphviz: plain coordinates for matplotlib).

The paper's graphs are a grid, and read best as one: columns are clip settings (short to long,
left to right) and rows learning-rate levels (high on top), so every base edge points right or
down. Any other DAG is drawn in layers by topological depth.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from optplan.errors import OptplanError
from optplan.state import State

Position = tuple[float, float]


def grid_layout(start: str, states: dict[str, State],
                others: Sequence[str] = ()) -> dict[str, Position] | None:
    """x = clip-setting index, y = minus the lr level within that clip setting (0 = highest lr).

    A second sampling subgraph (the paper's 'both') is drawn below the first; the start sits
    left of the top rows, nodes without a state (``others``, e.g. the choice between subgraphs)
    right of the grid. Returns None when two states would share a cell.
    """
    clips = sorted({s.clip_length for s in states.values()})
    samplings = sorted({s.sampling for s in states.values()})
    lrs: dict[tuple[str, int], list[float]] = defaultdict(list)
    for s in states.values():
        lrs[s.sampling, s.clip_length].append(s.lr)
    levels = max(len(set(v)) for v in lrs.values()) if lrs else 1
    pos: dict[str, Position] = {}
    for name, s in states.items():
        level = sorted(set(lrs[s.sampling, s.clip_length]), reverse=True).index(s.lr)
        row = level + samplings.index(s.sampling) * (levels + 1)
        pos[name] = (float(clips.index(s.clip_length)), -float(row))
    if len(set(pos.values())) < len(pos):
        return None
    top_rows = [-float(i * (levels + 1)) for i in range(len(samplings))] or [0.0]
    pos[start] = (-1.0, sum(top_rows) / len(top_rows))
    middle = (top_rows[0] + top_rows[-1] - 2 * (levels - 1)) / 2
    for i, name in enumerate(others):
        pos[name] = (float(len(clips)), middle - i)
    return pos


def layered_layout(start: str, nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, Position]:
    """x = longest-path depth from the start; within a layer, nodes sorted by the mean height of
    their parents (a one-pass barycentre ordering that keeps most edges from crossing)."""
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for u, v in edges:
        parents[v].append(u)
        children[u].append(v)
    depth = {n: 0 for n in nodes}
    pending = {n: len(parents[n]) for n in nodes}
    ready = [n for n in nodes if pending[n] == 0]
    seen = 0
    while ready:
        u = ready.pop()
        seen += 1
        for v in children[u]:
            depth[v] = max(depth[v], depth[u] + 1)
            pending[v] -= 1
            if pending[v] == 0:
                ready.append(v)
    if seen < len(nodes):
        raise OptplanError("the state graph of this run has a cycle; it cannot be drawn in layers")
    layers: dict[int, list[str]] = defaultdict(list)
    for n in nodes:
        layers[depth[n]].append(n)
    pos: dict[str, Position] = {}
    for d in sorted(layers):
        def height(n: str) -> float:
            ys = [pos[p][1] for p in parents[n] if p in pos]
            return sum(ys) / len(ys) if ys else 0.0
        layer = sorted(layers[d], key=lambda n: (-height(n), n))
        for i, n in enumerate(layer):
            pos[n] = (float(d), (len(layer) - 1) / 2 - i)
    return pos


def node_positions(start: str, states: dict[str, State], edges: list[tuple[str, str]],
                   grid: bool) -> dict[str, Position]:
    """Grid layout when asked for and possible, layered otherwise; every node gets a position.

    ``states`` maps the nodes that train to their state; any other node named by ``edges``
    (besides ``start``) is a node without a state, such as a choice node.
    """
    nodes = list(dict.fromkeys([start, *states, *(n for e in edges for n in e)]))
    others = [n for n in nodes if n != start and n not in states]
    pos = grid_layout(start, states, others) if grid else None
    if pos is None or any(n not in pos for n in nodes):
        pos = layered_layout(start, nodes, edges)
    return pos

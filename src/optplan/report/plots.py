"""The report's figures, one function each: ``plot_X(data, path) -> path`` writes one PNG.

Figures are made with :class:`matplotlib.figure.Figure` directly (Agg canvas, no pyplot), so
drawing never touches a global backend or opens a window, and works in worker processes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.ticker import MaxNLocator

from optplan.knee import NUM_PARAMS, curve
from optplan.report.data import PLANNED, EdgeView, ReportData
from optplan.report.layout import Position, node_positions

PATH_COLOR = "#d95f02"
EDGE_COLOR = "#7f7f7f"
STATUS_COLORS = {"diverged": "#7570b3", "failed": "#e7298a"}
DPI = 110


def _figure(**kwargs) -> Figure:
    """A figure on its own Agg canvas (``kwargs`` go to :class:`Figure`)."""
    fig = Figure(dpi=DPI, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def _state_label(data: ReportData, name: str) -> str:
    state = data.states.get(name)
    if state is None:
        return name
    sampling = "" if state.sampling == "consecutive" else f" \u00b7 {state.sampling}"
    return f"{name}\n{state.clip_length} fr{sampling} \u00b7 lr {state.lr:.3g}"


def _box_sizes(ax, boxes: dict, pad_pt: float = 3.0) -> dict[str, tuple[float, float]]:
    """Half width and half height of each node's box in data units (axis limits must be final)."""
    renderer = ax.figure.canvas.get_renderer()
    to_data = ax.transData.inverted()
    pad = pad_pt * ax.figure.dpi / 72
    sizes = {}
    for name, text in boxes.items():
        ext = text.get_window_extent(renderer)
        (x0, y0), (x1, y1) = to_data.transform([[ext.x0 - pad, ext.y0 - pad], [ext.x1 + pad, ext.y1 + pad]])
        sizes[name] = (abs(x1 - x0) / 2, abs(y1 - y0) / 2)
    return sizes


def _border_point(centre: Position, half: tuple[float, float], towards: Position) -> Position:
    """Where the segment from a box's centre towards another point leaves the box."""
    dx, dy = towards[0] - centre[0], towards[1] - centre[1]
    t = min(half[0] / abs(dx) if dx else math.inf, half[1] / abs(dy) if dy else math.inf, 1.0)
    return centre[0] + t * dx, centre[1] + t * dy


def _arc_point(p0: Position, p1: Position, rad: float, t: float) -> Position:
    """The point at parameter ``t`` of matplotlib's 'arc3' connection from p0 to p1: a
    quadratic Bezier whose control point lies ``rad`` chords beside the chord's midpoint."""
    cx = (p0[0] + p1[0]) / 2 + rad * (p1[1] - p0[1])
    cy = (p0[1] + p1[1]) / 2 - rad * (p1[0] - p0[0])
    a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t ** 2
    return a * p0[0] + b * cx + c * p1[0], a * p0[1] + b * cy + c * p1[1]


def _bend(source: Position, target: Position) -> tuple[float, float]:
    """(arc3 ``rad``, label position ``t``) of an edge drawn from ``source`` to ``target``.

    Edges that go back a column ('ext': to a shorter clip) or skip one along a row bend, so
    they pass beside the nodes in between; a diagonal skipping edge is labelled near its
    source, away from the labels of the edges it crosses."""
    (x0, y0), (x1, y1) = source, target
    skips = x1 - x0 > 1
    return (0.2 if x1 < x0 else -0.3 if skips and y0 == y1 else 0.0,
            0.2 if skips and y0 != y1 else 0.5)


def _score(edge: EdgeView) -> float:
    return -math.inf if edge.knee_score is None else edge.knee_score


def _best_per_pair(edges: list[EdgeView]) -> list[EdgeView]:
    """One edge per (source, target): with a beam, the best-scoring of its slots."""
    best: dict[tuple[str, str], EdgeView] = {}
    for e in edges:
        kept = best.get((e.source, e.target))
        if kept is None or _score(e) > _score(kept):
            best[e.source, e.target] = e
    return list(best.values())


def plot_graph(data: ReportData, path: Path) -> Path:
    """The state graph: every edge labelled 'score / epochs', the chosen path in colour."""
    recorded = [(e.source, e.target) for e in data.edges]
    pos = node_positions(data.start, data.states, data.graph_edges or recorded, grid=data.grid_layout)
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    fig = _figure(figsize=(2.6 * (max(xs) - min(xs) + 1) + 1, 1.5 * (max(ys) - min(ys) + 1) + 0.8))
    ax = fig.add_subplot()
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_axis_off()
    on_path = {data.start, *data.path}
    boxes = {}
    for name, (x, y) in pos.items():
        chosen = name in on_path
        boxes[name] = ax.text(
            x, y, _state_label(data, name), ha="center", va="center", fontsize=8, zorder=3,
            fontweight="bold" if chosen else "normal",
            bbox=dict(boxstyle="round,pad=0.4", lw=2 if chosen else 1,
                      ec=PATH_COLOR if chosen else EDGE_COLOR,
                      fc="#fde0c5" if chosen else "white"))
    half = _box_sizes(ax, boxes)
    for source, target in sorted(set(data.graph_edges) - set(recorded)):  # not trained yet
        ax.add_patch(FancyArrowPatch(
            _border_point(pos[source], half[source], pos[target]),
            _border_point(pos[target], half[target], pos[source]), arrowstyle="-|>",
            mutation_scale=10, color="#cccccc", lw=1, linestyle=":", shrinkA=0, shrinkB=0,
            connectionstyle=f"arc3,rad={_bend(pos[source], pos[target])[0]}", zorder=1))
    for edge in _best_per_pair(data.edges):
        chosen = (edge.source, edge.target) in data.path_edges
        color = PATH_COLOR if chosen else STATUS_COLORS.get(edge.status, EDGE_COLOR)
        rad, t = _bend(pos[edge.source], pos[edge.target])
        ax.add_patch(FancyArrowPatch(
            _border_point(pos[edge.source], half[edge.source], pos[edge.target]),
            _border_point(pos[edge.target], half[edge.target], pos[edge.source]),
            arrowstyle="-|>", mutation_scale=12, color=color, lw=2.5 if chosen else 1.2,
            linestyle="-" if edge.status == "done" else "--", shrinkA=0, shrinkB=0,
            connectionstyle=f"arc3,rad={rad}", zorder=2))
        mx, my = _arc_point(pos[edge.source], pos[edge.target], rad, t)
        label = "\u2014" if edge.knee_score is None else f"{edge.knee_score:.3f}"
        if edge.target in data.states:  # a move into a choice node trains nothing
            label += f"\n{edge.epochs} ep"
        if edge.status != "done":
            label += f"\n{edge.status}"
        ax.text(mx, my, label, ha="center", va="center", fontsize=7, color=color, zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    ax.set_title("State graph: edge labels are knee score / epochs trained; "
                 "the chosen path in orange", fontsize=9)
    return _save(fig, path)


def _plot_edge_curve(ax, edge: EdgeView, chosen: bool) -> None:
    scores = np.asarray(edge.curve, dtype=float)
    epochs = np.arange(len(scores))
    finite = np.isfinite(scores)
    ax.plot(epochs, np.where(finite, scores, np.nan), "o-", ms=2.5, lw=1, color="#1b9e77",
            label="validation score")
    lost = epochs[~finite]
    if len(lost):  # NaN/inf scores (a diverged run) have no height: mark them on the x axis
        ax.plot(lost, [0.04] * len(lost), "x", ms=7, mew=2, color=STATUS_COLORS["diverged"],
                transform=ax.get_xaxis_transform(), label="not finite")
    if edge.knee_params is not None and len(edge.knee_params) == NUM_PARAMS and len(epochs) > 1:
        x = np.linspace(0, epochs[-1], 200)
        ax.plot(x, curve(x, *edge.knee_params), "-", lw=1.2, color="#444444", label="fit")
    if edge.knee_epoch is not None:
        ax.axvline(edge.knee_epoch, color=PATH_COLOR, ls=":", lw=1)
        if edge.knee_score is not None:
            ax.plot([edge.knee_epoch], [edge.knee_score], "*", ms=10, color=PATH_COLOR, label="knee")
    status = "" if edge.status == "done" else f" [{edge.status}]"
    ax.set_title(edge.name + status, fontsize=8, fontweight="bold" if chosen else "normal",
                 color=PATH_COLOR if chosen else "black")
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def plot_curves(data: ReportData, path: Path, columns: int = 4) -> Path:
    """Small multiples: each edge's score per epoch, its fitted knee curve and the knee (star)."""
    edges = data.trained_edges
    cols = min(columns, max(len(edges), 1))
    rows = math.ceil(max(len(edges), 1) / cols)
    fig = _figure(figsize=(3.0 * cols, 2.3 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax, edge in zip(axes.flat, edges):
        _plot_edge_curve(ax, edge, (edge.source, edge.target) in data.path_edges)
    for ax in list(axes.flat)[len(edges):]:
        ax.set_axis_off()
    legend: dict[str, object] = {}  # one entry per kind of mark, from whichever panel has it
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(legend.values(), legend.keys(), loc="outside upper center", ncols=len(legend),
                   fontsize=8, frameon=False)
    fig.supxlabel("epochs in the target state", fontsize=9)
    fig.supylabel("validation score", fontsize=9)
    return _save(fig, path)


def plot_losses(data: ReportData, path: Path, columns: int = 4) -> Path:
    """Small multiples: each logged edge's mean training loss per epoch and its validation loss
    after each epoch (mean cross-entropy), knee epoch marked."""
    edges = [e for e in data.trained_edges if e.has_losses]
    cols = min(columns, max(len(edges), 1))
    rows = math.ceil(max(len(edges), 1) / cols)
    fig = _figure(figsize=(3.0 * cols, 2.3 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, edge in zip(axes.flat, edges):
        chosen = (edge.source, edge.target) in data.path_edges
        for values, style, label in ((edge.train_loss, "o-", "training loss"),
                                     (edge.val_loss, "s--", "validation loss")):
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, np.asarray(values, dtype=float), style, ms=2.5, lw=1, label=label,
                    color="#1b9e77" if label.startswith("training") else "#7570b3")
        if edge.knee_epoch:
            ax.axvline(edge.knee_epoch, color=PATH_COLOR, ls=":", lw=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(edge.name + ("" if edge.stop in ("knee", "") else f" [{edge.stop}]"), fontsize=8,
                     fontweight="bold" if chosen else "normal", color=PATH_COLOR if chosen else "black")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(edges):]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), fontsize=8,
                   frameon=False)
    fig.supxlabel("epochs in the target state", fontsize=9)
    fig.supylabel("cross-entropy", fontsize=9)
    return _save(fig, path)


def plot_confusion(data: ReportData, path: Path) -> Path:
    """The test's confusion matrix: rows the true class, columns the predicted one, each cell
    the share of the row's videos (counts written in when the classes are few)."""
    names, matrix = data.confusion
    counts = np.asarray(matrix, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(names)
    side = min(max(3.5, 0.45 * k + 2), 14)
    fig = _figure(figsize=(side + 1, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Oranges", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class's videos")
    if k <= 30:
        ticks = np.arange(k)
        ax.set_xticks(ticks, names, rotation=90, fontsize=7)
        ax.set_yticks(ticks, names, fontsize=7)
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=6,
                            color="white" if shares[i, j] > 0.6 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    top1 = _number((data.evaluation or {}).get("top1"))
    ax.set_title(f"Test confusion matrix ({int(counts.sum())} videos"
                 + ("" if math.isnan(top1) else f", top-1 {top1:.3f}") + ")", fontsize=9)
    return _save(fig, path)


def plot_schedule(data: ReportData, path: Path) -> Path:
    """The replayable schedule as two staircases over epochs: learning rate (log) and clip length."""
    bounds = np.cumsum([0] + [s.epochs for s in data.stages])
    lrs = [s.state.lr for s in data.stages]
    clips = [s.state.clip_length for s in data.stages]
    fig = _figure(figsize=(8, 4.2), layout="constrained")
    ax_lr, ax_clip = fig.subplots(2, 1, sharex=True)
    if data.stages:
        ax_lr.stairs(lrs, bounds, color=PATH_COLOR, lw=2, baseline=None)
        ax_clip.stairs(clips, bounds, color="#1b9e77", lw=2, baseline=None)
        for lo, hi, stage in zip(bounds[:-1], bounds[1:], data.stages):
            ax_lr.text((lo + hi) / 2, stage.state.lr, f"{stage.state.name}\n{stage.epochs} ep",
                       ha="center", va="bottom", fontsize=7)
        for ax in (ax_lr, ax_clip):
            for b in bounds[1:-1]:
                ax.axvline(b, color="#bbbbbb", lw=0.8, ls="--")
        ax_lr.set_ylim(min(lrs) / 3, max(lrs) * 6)
        ax_clip.set_ylim(0, max(clips) * 1.25)
        ax_clip.set_yticks(sorted(set(clips)))
        ax_clip.set_xlim(0, bounds[-1])
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate")
    ax_clip.set_ylabel("clip length (frames)")
    ax_clip.set_xlabel("epoch of the replayed schedule")
    ax_lr.set_title(f"Planned schedule: {len(data.stages)} stages, {data.schedule_epochs} epochs",
                    fontsize=9)
    for ax in (ax_lr, ax_clip):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_cost(data: ReportData, path: Path) -> Path:
    """Search cost per edge: epochs trained (knee epoch marked) and wall seconds, with totals."""
    edges = data.trained_edges
    names = [e.name for e in edges]
    y = np.arange(len(names))
    colors = [PATH_COLOR if (e.source, e.target) in data.path_edges
              else STATUS_COLORS.get(e.status, EDGE_COLOR) for e in edges]
    fig = _figure(figsize=(9, 0.28 * len(names) + 1.4), layout="constrained")
    ax_ep, ax_s = fig.subplots(1, 2, sharey=True)
    ax_ep.barh(y, [e.epochs for e in edges], color=colors)
    knees = [(i, e.knee_epoch) for i, e in enumerate(edges) if e.knee_epoch is not None]
    if knees:
        ax_ep.plot([k for _, k in knees], [i for i, _ in knees], "|", ms=10, mew=2, color="black",
                   label="knee epoch")
        ax_ep.legend(fontsize=7, loc="lower right")
    ax_s.barh(y, [e.seconds for e in edges], color=colors)
    ax_ep.set_yticks(y, names, fontsize=7)
    ax_ep.invert_yaxis()
    ax_ep.set_xlabel("epochs trained")
    ax_s.set_xlabel("wall seconds")
    for ax in (ax_ep, ax_s):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Search cost: {data.search_epochs} epochs, {data.search_seconds:.1f} s over "
                 f"{len(names)} edges (replaying the chosen path: {data.schedule_epochs} epochs)",
                 fontsize=9)
    return _save(fig, path)


def plot_pareto(data: ReportData, path: Path) -> Path:
    """The Pareto front of validation score vs replay GFLOPs, the chosen path marked (with its
    test top-1 when evaluated) and the plan's GFLOPs budget when it had one."""
    front = data.pareto
    fig = _figure(figsize=(6, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.step([p.gflops for p in front], [p.score for p in front], where="post", color=EDGE_COLOR,
            marker="o", label="Pareto front (validation score)")
    if data.replay_gflops is not None:
        ax.plot([data.replay_gflops], [data.score], "o", ms=10, color=PATH_COLOR,
                label="chosen path (validation score)")
        top1 = _number((data.evaluation or {}).get("top1"))
        if not math.isnan(top1):
            ax.plot([data.replay_gflops], [top1], "D", ms=8, color=PATH_COLOR, label="chosen path (test top-1)")
    if data.budget_gflops is not None:
        ax.axvline(data.budget_gflops, ls="--", color="black", lw=1, label="GFLOPs budget")
    ax.set_xlabel("training GFLOPs of the replay")
    ax.set_ylabel(f"score ({data.knee_metric or 'validation'})")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _number(value: object) -> float:
    """A JSON value as a float for plotting (NaN when it is missing or not a number)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def plot_baselines(data: ReportData, path: Path) -> Path:
    """Test top-1 of each baseline schedule beside the planned one, with their training epochs."""
    rows = data.comparison
    fig = _figure(figsize=(max(5.0, 1.1 * len(rows) + 2), 3.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    top1 = [_number(r.get("top1")) for r in rows]
    colors = [PATH_COLOR if r["name"] == PLANNED else EDGE_COLOR for r in rows]
    bars = ax.bar(x, top1, color=colors)
    labels = [f"{t:.3g}\n{r['epochs']} ep" if "epochs" in r else f"{t:.3g}" for t, r in zip(top1, rows)]
    ax.bar_label(bars, labels, fontsize=7)
    ax.set_xticks(x, [str(r["name"]) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test top-1")
    finite = [t for t in top1 if not math.isnan(t)]
    ax.set_ylim(0, max(finite, default=1.0) * 1.25 or 1.0)
    ax.set_title("Comparison with baseline schedules", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)

"""``optplan plan --dry-run``: what a plan will cost before anything trains.

Reads the graph, the annotation lists (no video is decoded; a few are probed for their size)
and the model's FLOPs on the meta device, and bounds each edge: the knee rule trains at least
``knee.patience`` epochs and at most ``knee.max_epochs`` (without it, the paper's rule may run
to its knee search range, 999 epochs, plus the patience). Disk: float32 checkpoints (a kept
model per trained edge; while an edge trains, its epoch files and a snapshot with the optimiser's
momentum) and the decoded frame cache, uint8 at ``data.decode_short_side``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optplan.config import OptplanConfig
from optplan.data.cache import cache_path, estimate_bytes, free_bytes
from optplan.data.splits import hold_out, read_lists
from optplan.knee import HORIZON
from optplan.plan.graph import StateGraph
from optplan.train.cost import ClipFlops
from optplan.train.scoring import scoring_clip

FLOAT_BYTES = 4


@dataclass(frozen=True)
class EdgeBound:
    """One edge to train, ``runs`` times (one per kept model of its source), with its epoch
    range and its GFLOPs (training plus one validation pass per epoch, on the clip setting
    ``knee.score_clip`` picks) at both ends."""

    source: str
    target: str
    clip_length: int
    runs: int
    epochs: tuple[int, int]
    gflops: tuple[float, float]


@dataclass(frozen=True)
class DryRun:
    """The bounds of a plan; :meth:`table` is what the command prints."""

    edges: list[EdgeBound]
    videos: dict[str, int]
    model_bytes: int
    transient_bytes: int
    cache_bytes: int | None
    cache_dir: Path
    free_bytes: int | None

    def total(self, field: str) -> tuple[float, float]:
        return tuple(sum(getattr(e, field)[i] * e.runs for e in self.edges) for i in (0, 1))

    def table(self) -> str:
        v = self.videos
        runs = sum(e.runs for e in self.edges)
        row = "{:<28} {:>4} {:>4} {:>12} {:>22}".format
        lines = [f"{runs} edge runs to train; {v['train']} train / {v['val']} val / {v['test']} test videos",
                 row("edge", "clip", "runs", "epochs", "GFLOPs (train + val)")]
        for e in self.edges:
            lines.append(row(f"{e.source} -> {e.target}", e.clip_length, e.runs, _range(e.epochs, ".0f"),
                             _range(e.gflops)))
        lines.append(row("total", "", runs, _range(self.total("epochs"), ".0f"), _range(self.total("gflops"))))
        mb = 1 / 2**20
        lines.append(f"checkpoints: {self.model_bytes * mb:.1f} MB per model; {self.model_bytes * runs * mb:.1f} MB "
                     f"kept (one per edge run), up to {self.transient_bytes * mb:.1f} MB more per edge while it trains")
        cache = ("unknown (no listed video could be probed)" if self.cache_bytes is None
                 else f"about {self.cache_bytes * mb:.1f} MB")
        free = "" if self.free_bytes is None else f"; {self.free_bytes * mb:,.0f} MB free there"
        lines.append(f"frame cache: {cache} in {self.cache_dir}{free}")
        lines.append("nothing trained")
        return "\n".join(lines)


def _range(bounds: tuple[float, float], spec: str = ".4g") -> str:
    return f"{bounds[0]:{spec}}..{bounds[1]:{spec}}"


def dry_run(cfg: OptplanConfig, graph: StateGraph) -> DryRun:
    """The bounds of planning ``graph`` with ``cfg``'s data, model and knee rule."""
    from optplan.models.flops import model_cost

    lists = read_lists(cfg.data)
    train = lists.train.records
    if lists.val is None:
        train, val = hold_out(train, cfg.data.val_fraction, cfg.train.seed)
    else:
        val = lists.val.records
    test = lists.test.records if lists.test else []
    classes = len(lists.train.classes)
    flops = ClipFlops(cfg.model.name, classes, cfg.data.crop_size, {"dropout": cfg.model.dropout, **cfg.model.kwargs})
    knee = cfg.knee
    most = knee.max_epochs or HORIZON - 1 + knee.patience
    least = min(knee.patience, most)
    edges = []
    for edge in graph.edges:
        state = graph.state(edge.target)
        if state is None:  # a choice node passes its source's model on: nothing trains
            continue
        scored = scoring_clip(state, knee.score_clip, graph.states.values()).clip_length  # the validation clip
        per_epoch = flops.train(state.clip_length, len(train)) + flops(scored) * len(val)
        runs = 1 if edge.source == graph.start else cfg.plan.beam
        edges.append(EdgeBound(edge.source, edge.target, state.clip_length, runs, (least, most),
                                (least * per_epoch, most * per_epoch)))
    params = model_cost(cfg.model.name, num_classes=classes, **cfg.model.kwargs).params
    model_bytes = FLOAT_BYTES * params
    # epoch files while they may become the knee, plus the snapshot (model and momentum)
    transient = model_bytes * (min(most, knee.patience) + 1) + 2 * model_bytes
    paths = list(dict.fromkeys(r.path for r in [*train, *val, *test]))
    cache_dir = cache_path(cfg.data)
    cache = estimate_bytes(paths, cfg.data.decode_short_side) if cfg.data.cache else 0
    return DryRun(edges, {"train": len(train), "val": len(val), "test": len(test)}, model_bytes,
                  transient, cache, cache_dir, free_bytes(cache_dir))

"""The report page: one self-contained HTML file (figures as base64 data URIs, no scripts, no
network), so it can be mailed, archived or opened from a cluster's shared disk as it is."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from optplan.report.data import ReportData

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th { background: #f4f4f4; } td.t, th.t { text-align: left; }
tr.path td { background: #fdebd9; font-weight: 600; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
ul.notes li { color: #8a4b00; }
"""


@dataclass(frozen=True)
class Figure:
    """One embedded figure: its PNG file and the caption that says how to read it."""

    key: str
    path: Path
    caption: str


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None/NaN as a dash, all text escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2014"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def table(key: str, header: Iterable[str], rows: Iterable[Iterable[Any]], text_columns: int = 1,
          highlight: Iterable[bool] | None = None) -> str:
    """An HTML table with id ``key``; the first ``text_columns`` columns are left-aligned, the
    rest numbers. Rows whose ``highlight`` flag is true get the 'path' style."""
    def cells(values: Iterable[Any], tag: str) -> str:
        return "".join(f'<{tag}{" class=t" if i < text_columns else ""}>{fmt(v)}</{tag}>'
                       for i, v in enumerate(values))
    rows = list(rows)
    flags = list(highlight) if highlight is not None else [False] * len(rows)
    body = "".join(f'<tr{" class=path" if flag else ""}>{cells(r, "td")}</tr>'
                   for r, flag in zip(rows, flags))
    head = cells(header, "th")
    return f'<table id="{html.escape(key)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def data_uri(path: Path) -> str:
    """The PNG at ``path`` as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def summary_rows(data: ReportData) -> list[tuple[str, Any]]:
    """The numbers a reader wants first: the outcome, then what it cost."""
    counts: dict[str, int] = {}
    for edge in data.edges:
        counts[edge.status] = counts.get(edge.status, 0) + 1
    rows: list[tuple[str, Any]] = [
        ("final state", next((n for n in reversed(data.path) if n in data.states), data.final)),
        ("chosen path", " \u2192 ".join([data.start, *data.path])),
        ("path score (validation, knee fit)", data.score),
        ("validation metric of the knee", data.knee_metric or "top135"),
        ("validation clip of the knee", data.score_clip or "state: each state's own clip setting"),
        ("epochs of the replayed schedule", data.schedule_epochs),
        ("training GFLOPs of the replayed schedule", data.replay_gflops),
        ("search cost (epochs, all edges)", data.search_epochs),
        ("search cost (training GFLOPs, all edges)", data.search_gflops),
        ("search cost (wall seconds)", data.search_seconds),
        ("edges trained", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "0"),
    ]
    for key, value in (data.evaluation or {}).items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            rows.append((f"test {key}", value))
    return rows


def stage_rows(data: ReportData) -> list[list[Any]]:
    """One row per stage of the schedule, with the epoch at which it ends."""
    rows, end = [], 0
    for i, stage in enumerate(data.stages, start=1):
        s = stage.state
        end += stage.epochs
        rows.append([i, s.name, s.clip_length, s.sampling, s.frame_step, s.lr,
                     f"{s.batch_size}\u00d7{s.accumulation}", "yes" if s.frozen_bn else "no",
                     stage.epochs, end])
    return rows


def edge_rows(data: ReportData) -> list[list[Any]]:
    """One row per edge, in the order the planner trained them ('#k': from the source's k-th
    kept model, with a beam)."""
    return [[e.source + (f" #{e.slot}" if e.slot else ""), e.target, e.status, e.epochs,
             e.knee_epoch, e.knee_score, e.seconds] for e in data.edges]


def baseline_rows(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    """Baselines as given (name first, then every key any row has), the planned result last."""
    rows = data.comparison
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "name"))
    return ["name", *keys], [[r.get("name"), *(r.get(k) for k in keys)] for r in rows]


def _figure(fig: Figure) -> str:
    return (f'<figure><img src="{data_uri(fig.path)}" alt="{html.escape(fig.caption)}">'
            f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>")


def _sections(data: ReportData) -> list[tuple[str, str, str]]:
    """(figure key, heading, table shown under the figure) in page order."""
    header, rows = baseline_rows(data)
    return [
        ("schedule", "Planned schedule",
         table("stages", ["stage", "state", "clip (frames)", "sampling", "frame step", "lr",
                          "batch\u00d7accum", "frozen BN", "epochs", "ends at epoch"],
               stage_rows(data), text_columns=2)),
        ("graph", "State graph", ""),
        ("curves", "Training curves", ""),
        ("cost", "Search cost per edge",
         table("edges", ["source", "target", "status", "epochs", "knee epoch", "score", "seconds"],
               edge_rows(data), text_columns=3,
               highlight=[(e.source, e.target) in data.path_edges for e in data.edges])),
        ("pareto", "Score vs replay cost", ""),
        ("baselines", "Baselines", table("baselines", header, rows) if data.baselines else ""),
    ]


def render_html(data: ReportData, figures: list[Figure]) -> str:
    """The whole page as a string; every figure embedded, every piece of text escaped."""
    by_key = {fig.key: fig for fig in figures}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(data.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        '<p class="sub">Optimization planning (Qiu et al., ICML 2021): every edge trained to its '
        "knee, the best path chosen by dynamic programming.</p>",
        "<h2>Summary</h2>", table("summary", ["", "value"], summary_rows(data), text_columns=2),
    ]
    if data.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
                     + "</ul>")
    for key, heading, below in _sections(data):
        fig = by_key.get(key)
        if fig is not None or below:
            parts += [f'<h2 id="{key}">{html.escape(heading)}</h2>',
                      _figure(fig) if fig is not None else "", below]
    parts.append("</body></html>")
    return "\n".join(parts)

"""The report page: one self-contained HTML file (figures as base64 data URIs, no scripts, no
network), so it can be mailed, archived or opened from a cluster's shared disk as it is."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from optplan.plan.result import STOP_REASONS
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
p.unfinished { background: #fff3cd; border: 1px solid #e0c36a; padding: 0.5em 0.8em; font-weight: 600; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 0.6em; overflow-x: auto; }
"""

# What a validation score measures, per ``knee.metric`` (the names of
# :data:`optplan.train.engine.KNEE_METRICS`, and ``auto`` where a plan has not resolved it).
METRIC_MEANINGS = {
    "top1": "top-1 accuracy",
    "top135": "the mean of top-1, top-3 and top-5 accuracy (the paper's score)",
    "loss": "exp(-mean cross-entropy), the geometric mean of the true class's probability",
    "auto": "top-1 accuracy under 50 classes, else the mean of top-1, top-3 and top-5 accuracy",
}


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


def unfinished_line(data: ReportData) -> str | None:
    """'unfinished: N of M edges done' for a plan that has not finished, else None."""
    if data.unfinished is None:
        return None
    done, planned = data.unfinished
    return f"unfinished: {done} of {planned} edges done"


def summary_rows(data: ReportData) -> list[tuple[str, Any]]:
    """The numbers a reader wants first: the outcome (none yet for an unfinished plan), then
    what it cost and why the edges stopped."""
    counts: dict[str, int] = {}
    for edge in data.edges:
        counts[edge.status] = counts.get(edge.status, 0) + 1
    outcome: list[tuple[str, Any]] = [
        ("final state", next((n for n in reversed(data.path) if n in data.states), data.final)),
        ("chosen path", " \u2192 ".join([data.start, *data.path])),
        ("path score (validation, knee fit)", data.score),
    ]
    replay: list[tuple[str, Any]] = [
        ("epochs of the replayed schedule", data.schedule_epochs),
        ("training GFLOPs of the replayed schedule", data.replay_gflops),
    ]
    if data.unfinished is not None:
        outcome, replay = [("plan", unfinished_line(data))], []
    rows: list[tuple[str, Any]] = [
        *outcome,
        ("validation metric of the knee", data.knee_metric or "top135"),
        ("validation clip of the knee", data.score_clip or "state: each state's own clip setting"),
        *replay,
        ("search cost (epochs, all edges)", data.search_epochs),
        ("search cost (training GFLOPs, all edges)", data.search_gflops),
        ("search cost (wall seconds)", data.search_seconds),
        ("edges trained", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "0"),
        ("why edges stopped", ", ".join(f"{n} {s}" for s, n in data.stop_counts.items()) or "\u2014"),
    ]
    for key, value in (data.evaluation or {}).items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            rows.append((f"test {key}", value))
    return rows


def scores_text(data: ReportData) -> str:
    """What the numbers on the page measure: validation scores of the knee, test top-1."""
    metric = data.knee_metric or "top135"
    meaning = METRIC_MEANINGS.get(metric, metric)
    clip = data.score_clip or "state: each state's own clip setting"
    parts = [
        f"<p>Edge, node and path scores are <strong>validation</strong> scores: {html.escape(meaning)} "
        f"(<code>knee.metric: {html.escape(metric)}</code>) on the validation list, each clip "
        f"scored as <code>knee.score_clip</code> says ({html.escape(clip)}). An edge's score is "
        "its knee's: with the paper's rule the fitted curve's value f(x*) at the kept epoch, which "
        "can lie above the scores observed. They rank the states; they are not test results.</p>"]
    evaluation = data.evaluation or {}
    if "top1" in evaluation:
        views = evaluation.get("views")
        how = f", {views} views per video averaged" if isinstance(views, int) else ""
        parts.append(f"<p>Reported results (the <i>test</i> rows of the summary, the baselines and "
                     f"the confusion matrix) are <strong>test top-1</strong> accuracy of the final model on "
                     f"the {html.escape(str(evaluation.get('split', 'test')))} list{html.escape(how)}.</p>")
    else:
        parts.append("<p>Reported results are <strong>test top-1</strong> accuracy; this plan's final model has "
                     "not been tested yet (see <a href=\"#replay\">Replay and test</a>).</p>")
    return "".join(parts)


def replay_text(data: ReportData) -> str:
    """The commands that rebuild and test the planned model, ready to copy."""
    parts = []
    if data.replay_command:
        parts.append("<p>Train the planned schedule from scratch with the plan's config, then test "
                     "the model it ends with (OUT/test.json):</p>"
                     f'<pre id="replay-command"><code>{html.escape(data.replay_command)}</code></pre>')
    if data.eval_command:
        parts.append("<p>Test the plan's own final model; this report then shows its confusion "
                     "matrix:</p>"
                     f'<pre id="eval-command"><code>{html.escape(data.eval_command)}</code></pre>')
    if data.unfinished is not None:
        parts.append("<p>No schedule yet: the plan has not finished. Finish it (add "
                     "<code>--simulate</code> for a simulated plan), then report again:</p>"
                     f'<pre id="resume-command"><code>{html.escape(data.resume_command or "")}</code></pre>')
    return "".join(parts)


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
    kept model, with a beam), with why it stopped."""
    return [[e.source + (f" #{e.slot}" if e.slot else ""), e.target, e.status, e.stop, e.epochs,
             e.knee_epoch, e.knee_score, e.seconds] for e in data.edges]


def stop_rows(data: ReportData) -> list[list[Any]]:
    """How many edges stopped for each reason, and what the reason means."""
    return [[reason, STOP_REASONS.get(reason, ""), n] for reason, n in data.stop_counts.items()]


def confusion_rows(data: ReportData) -> list[list[Any]]:
    """Per class of the test: videos, correct ones, top-1 (recall) and the class most often
    predicted instead."""
    names, matrix = data.confusion or ([], [])
    rows = []
    for i, (name, row) in enumerate(zip(names, matrix)):
        videos = sum(row)
        wrong = max((n, j) for j, n in enumerate(row) if j != i) if len(row) > 1 else (0, i)
        rows.append([name, videos, row[i], row[i] / videos if videos else None,
                     f"{names[wrong[1]]} ({wrong[0]})" if wrong[0] else "\u2014"])
    return rows


def baseline_rows(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    """Baselines as given (name first, then every key any row has), the planned result last."""
    rows = data.comparison
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "name"))
    return ["name", *keys], [[r.get("name"), *(r.get(k) for k in keys)] for r in rows]


def _figure(fig: Figure) -> str:
    return (f'<figure><img src="{data_uri(fig.path)}" alt="{html.escape(fig.caption)}">'
            f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>")


def _sections(data: ReportData) -> list[tuple[str, str, str]]:
    """(figure key, heading, HTML shown under the figure) in page order."""
    header, rows = baseline_rows(data)
    return [
        ("scores", "What the scores mean", scores_text(data)),
        ("schedule", "Planned schedule",
         table("stages", ["stage", "state", "clip (frames)", "sampling", "frame step", "lr",
                          "batch\u00d7accum", "frozen BN", "epochs", "ends at epoch"],
               stage_rows(data), text_columns=2) if data.stages else ""),
        ("replay", "Replay and test", replay_text(data)),
        ("graph", "State graph", ""),
        ("curves", "Training curves", ""),
        ("losses", "Loss curves", ""),
        ("cost", "Edges: cost and why each stopped",
         table("edges", ["source", "target", "status", "stopped by", "epochs", "knee epoch",
                         "score", "seconds"],
               edge_rows(data), text_columns=4,
               highlight=[(e.source, e.target) in data.path_edges for e in data.edges])
         + table("stops", ["stopped by", "meaning", "edges"], stop_rows(data), text_columns=2)),
        ("confusion", "Test confusion matrix",
         table("confusion", ["class", "videos", "correct", "top-1", "most often predicted instead"],
               confusion_rows(data), text_columns=1) if data.confusion else ""),
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
    ]
    if data.unfinished is not None:
        parts.append(f'<p class="unfinished" id="unfinished">{html.escape(unfinished_line(data))}: '
                     "this report shows the edges recorded so far; no path is chosen yet.</p>")
    parts += ["<h2>Summary</h2>", table("summary", ["", "value"], summary_rows(data), text_columns=2)]
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

"""``build_report``: a run directory in, ``REPORT/index.html`` plus one PNG per figure out."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from optplan.report import plots
from optplan.report.data import ReportData
from optplan.report.html import Figure, render_html
from optplan.report.load import load_run

PlotFn = Callable[[ReportData, Path], Path]

# (file stem, plot, caption, drawn only when), in page order.
FIGURES: list[tuple[str, PlotFn, str, Callable[[ReportData], bool]]] = [
    ("schedule", plots.plot_schedule,
     "The replayable schedule: learning rate (log scale) and clip length per epoch.",
     lambda d: bool(d.stages)),
    ("graph", plots.plot_graph,
     "Each edge u\u2192v trained from u's kept model in v's state until its knee; labels give "
     "the knee score and the epochs trained. The chosen path is orange; dashed edges diverged, "
     "failed or are still running; dotted grey ones are not trained yet.", lambda d: True),
    ("curves", plots.plot_curves,
     "Validation score per epoch of every edge (epoch 0: the source model), the fitted curve "
     "f(x) = -a\u00b7exp(-b\u00b7x) - c\u00b7x - d\u00b7x\u00b2 + e and the knee (star) whose "
     "checkpoint is kept.", lambda d: bool(d.trained_edges)),
    ("losses", plots.plot_losses,
     "Training loss (mean over the epoch's steps) and validation loss (mean cross-entropy on the "
     "validation clips) per epoch of every edge, from each edge's log.jsonl; dotted: the knee "
     "epoch.", lambda d: any(e.has_losses for e in d.trained_edges)),
    ("cost", plots.plot_cost,
     "Epochs trained per edge (knee epoch marked) and wall seconds per edge.",
     lambda d: bool(d.trained_edges)),
    ("confusion", plots.plot_confusion,
     "The test of the final model: each row is a true class, each column the class predicted; "
     "a cell's colour is the share of the row's videos, its number the count.",
     lambda d: d.confusion is not None),
    ("pareto", plots.plot_pareto,
     "Pareto front of the complete searched paths: validation score vs training GFLOPs of "
     "replaying the path from scratch (dashed: the plan's GFLOPs budget). The chosen path is "
     "orange; a diamond gives its test top-1 when it was evaluated.",
     lambda d: bool(d.pareto)),
    ("baselines", plots.plot_baselines,
     "Test top-1 of the baseline schedules and of the planned schedule, with training epochs.",
     lambda d: bool(d.baselines)),
]


def write_report(data: ReportData, out_dir: str | Path) -> Path:
    """Draw every figure into ``out_dir`` and write ``out_dir/index.html``; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [Figure(key, plot(data, out / f"{key}.png"), caption)
               for key, plot, caption, wanted in FIGURES if wanted(data)]
    index = out / "index.html"
    index.write_text(render_html(data, figures), encoding="utf-8")
    return index


REPORT_DIR = "report"  # where a run's report goes by default: RUN/report/index.html


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Report on the plan in ``run_dir``, finished or not (an unfinished one gets a partial
    report of its edges so far, marked so); default output ``run_dir/report``.

    Raises :class:`~optplan.errors.OptplanError` when ``run_dir`` holds no plan.
    """
    run = Path(run_dir)
    return write_report(load_run(run), Path(out_dir) if out_dir is not None else run / REPORT_DIR)

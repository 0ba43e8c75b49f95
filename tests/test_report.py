"""The HTML report, checked the way a person sees it: its numbers against the plan's store, and
the page itself rendered in headless Chromium (every image loads, no console errors)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from optplan.cli import main
from optplan.errors import OptplanError
from optplan.plan import PlanResult, SQLiteStore, StateGraph
from optplan.report import ReportData, build_report, load_run
from optplan.report.html import render_html
from optplan.report.layout import grid_layout, layered_layout, node_positions
from optplan.train.state import State

BASELINES = [{"name": "cosine", "top1": 0.61, "epochs": 40}, {"name": "step <decay>", "top1": 0.58}]
EVAL = {"top1": 0.64, "top5": 0.93, "views": 30}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished simulated plan of the paper-ext graph (18 edges), with eval and baselines."""
    run = tmp_path_factory.mktemp("report") / "run"
    code = main(["plan", "--simulate", "--quiet", "--out", str(run), "plan.preset=paper-ext",
                 "knee.patience=5", "plan.simulate.noise=0.01", "plan.simulate.seed=3"])
    assert code == 0
    (run / "baselines.json").write_text(json.dumps(BASELINES))
    (run / "eval.json").write_text(json.dumps(EVAL))
    return run


@pytest.fixture(scope="module")
def report(run_dir: Path) -> Path:
    assert main(["report", str(run_dir)]) == 0
    return run_dir / "report" / "index.html"


class _Tables(HTMLParser):
    """Rows of cell texts of every ``<table id=...>`` in a page, and every ``<img src>``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(page: Path) -> _Tables:
    parser = _Tables()
    parser.feed(page.read_text())
    return parser


def number(cell: str) -> float | None:
    return None if cell == "\u2014" else float(cell)


def test_report_numbers_match_the_store(run_dir: Path, report: Path) -> None:
    page = parse(report)
    result = PlanResult.load(run_dir)
    store = SQLiteStore.in_run_dir(run_dir)
    stored = store.edges()
    store.close()
    assert len(stored) == 18  # paper-ext on 3 x 3: 14 base + 4 ext edges

    rows = page.tables["edges"][1:]
    assert len(rows) == len(stored)
    by_edge = {(r.source, r.target): r for r in stored}
    for source, target, status, epochs, knee_epoch, score, seconds in rows:
        rec = by_edge[source, target]
        assert status == rec.status
        assert int(epochs) == rec.epochs == len(rec.curve) - 1
        assert int(knee_epoch) == rec.knee.epoch
        assert number(score) == pytest.approx(rec.score, rel=1e-3)
        assert float(seconds) == pytest.approx(rec.seconds, rel=1e-3, abs=1e-4)

    summary = dict(page.tables["summary"][1:])
    assert summary["chosen path"] == " \u2192 ".join(["start", *result.nodes])
    assert summary["final state"] == result.nodes[-1] == result.path[-1].name
    assert float(summary["path score (validation, knee fit)"]) == pytest.approx(result.score, rel=1e-3)
    assert int(summary["search cost (epochs, all edges)"]) == sum(r.epochs for r in stored)
    assert int(summary["search cost (epochs, all edges)"]) == result.search_epochs
    assert int(summary["epochs of the replayed schedule"]) == result.replay_epochs
    assert float(summary["test top1"]) == EVAL["top1"] and summary["test views"] == "30"
    assert float(summary["training GFLOPs of the replayed schedule"]) == pytest.approx(result.replay_gflops, rel=1e-3)
    assert load_run(run_dir).pareto == result.pareto_gflops  # what the Pareto figure draws
    assert result.pareto_gflops[-1].gflops == pytest.approx(result.replay_gflops)

    stages = page.tables["stages"][1:]
    assert [(r[1], int(r[-2])) for r in stages] == [(s.state.name, s.epochs) for s in result.stages]
    assert int(stages[-1][-1]) == result.replay_epochs
    assert [r[0] for r in page.tables["baselines"][1:]] == ["cosine", "step <decay>",
                                                           "optplan (planned)"]


def test_report_files_and_embedded_figures(report: Path) -> None:
    """Six figures (schedule, graph, curves, cost, Pareto front, baselines) as PNGs beside the
    page and embedded byte for byte; nothing in the page reaches the network or runs a script."""
    out = report.parent
    page = parse(report)
    names = ["schedule", "graph", "curves", "cost", "pareto", "baselines"]  # in page order
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(names)
    assert len(page.images) == len(names)
    for src, name in zip(page.images, names):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == (out / f"{name}.png").read_bytes()
    text = report.read_text()
    assert "<script" not in text and not re.search(r"(src|href)=\"(https?:)?//", text)


def test_report_escapes_text() -> None:
    evil = "<img src=x onerror=alert(1)>"
    state = State(name="s&<b>", lr=0.1, clip_length=4)
    data = ReportData(start="start", final=state.name, states={state.name: state}, edges=[],
                      path=[state.name], stages=[], score=0.5, search_epochs=0,
                      search_seconds=0.0, title=evil, notes=[evil],
                      baselines=[{"name": evil, "top1": 0.5}])
    page = render_html(data, [])
    assert "<img" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "s&amp;&lt;b&gt;" in page


def test_graph_layout_follows_the_paper_grid() -> None:
    """Columns are clip settings, rows lr levels; a second sampling grid sits below the first,
    the start on the left, the choice node on the right."""
    graph = StateGraph.preset("paper-ext", clip_lengths=[4, 8, 16], base_lrs=[0.1, 0.1, 0.01],
                              sampling="both")
    pos = grid_layout(graph.start, graph.states, list(graph.choices))
    assert pos["c4_x1"] == (0.0, 0.0) and pos["c16_x0.01"] == (2.0, -2.0)
    assert pos["u8_x0.1"] == (1.0, -5.0)  # uniform rows start below a blank row
    assert pos["start"] == (-1.0, -2.0) and pos["final"] == (3.0, -4.0)
    assert len(set(pos.values())) == len(pos) == len(graph.nodes)


def test_layered_layout_for_other_graphs() -> None:
    edges = [("start", "a"), ("start", "b"), ("a", "c"), ("b", "c"), ("a", "d"), ("c", "d")]
    pos = layered_layout("start", ["start", "a", "b", "c", "d"], edges)
    assert {n: x for n, (x, _) in pos.items()} == {"start": 0, "a": 1, "b": 1, "c": 2, "d": 3}
    assert pos["a"][1] != pos["b"][1]
    # states sharing a grid cell (same clip, sampling and lr level) fall back to layers
    twins = {n: State(name=n, lr=0.1, clip_length=4, frame_step=k) for n, k in (("a", 1), ("b", 2))}
    assert node_positions("start", twins, [("start", "a"), ("a", "b")], grid=True)["b"][0] == 2.0


def test_missing_or_unfinished_run_is_a_clear_error(run_dir: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(OptplanError, match="does not exist"):
        build_report(tmp_path / "nope")
    with pytest.raises(OptplanError, match="not a plan's run directory"):
        build_report(tmp_path)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(run_dir / "plan.sqlite", partial / "plan.sqlite")
    assert main(["report", str(partial)]) == 2
    err = capsys.readouterr().err
    assert "has not finished" in err and "--resume" in err and "Traceback" not in err
    (partial / "result.json").write_text("{}")
    with pytest.raises(OptplanError, match="not a plan result"):
        load_run(partial)


def test_report_out_option(run_dir: Path, tmp_path: Path, capsys) -> None:
    (run_dir / "baselines.json").rename(run_dir / "baselines.off")
    try:
        assert main(["report", str(run_dir), "--out", str(tmp_path / "r")]) == 0
    finally:
        (run_dir / "baselines.off").rename(run_dir / "baselines.json")
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "index.html")
    assert not (tmp_path / "r" / "baselines.png").exists()  # no baselines, no comparison
    assert (tmp_path / "r" / "graph.png").stat().st_size > 10_000


# A probe added only to a test copy of the page: the page itself has no script. After load it
# writes whether each image decoded (naturalWidth > 0) and any error event into the title.
PROBE = """<script>
const errors = [];
window.addEventListener("error", e => errors.push(String(e.message || (e.target && e.target.src)
  || "error").slice(0, 200)), true);
window.addEventListener("load", () => {
  const images = [...document.images].map(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  document.title = "PROBE" + JSON.stringify({images, errors});
});
</script>"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def test_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    browser = chromium()
    page = tmp_path / "page.html"
    page.write_text(report.read_text().replace("<head>", "<head>" + PROBE, 1))
    proc = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    title = re.search(r"<title>PROBE(.*?)</title>", proc.stdout)
    assert title, "the page did not finish loading:\n" + proc.stdout[:500]
    probe = json.loads(title.group(1).replace("&quot;", '"'))
    assert probe["images"] == [True] * 6 and probe["errors"] == []
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []


def test_report_of_diverged_edges_and_a_sampling_choice(tmp_path: Path) -> None:
    """Both sampling grids joined by a choice node, every lr x1 state diverging: the report
    shows diverged edges as such, and the chosen path runs into the choice node."""
    run = tmp_path / "run"
    assert main(["plan", "--simulate", "--quiet", "--out", str(run), "plan.sampling=both",
                 "plan.clip_lengths=[4,8]", "plan.base_lrs=[0.1,0.1]", "plan.batch_sizes=[8,8]",
                 "plan.accumulation=[1,1]", "plan.lr_multipliers=[1,0.1]",
                 "plan.simulate.diverge_lr=0.05", "plan.simulate.speed=1.0",
                 "plan.simulate.overfit=0.01", "knee.patience=4"]) == 0
    result = PlanResult.load(run)
    data = load_run(run)
    assert data.path == [*result.nodes, "final"] and data.final == "final"
    assert {e.status for e in data.edges if e.target.endswith("_x1")} == {"diverged"}
    assert all(e.epochs == 0 for e in data.edges if e.target == "final")
    assert len(data.trained_edges) == len(data.edges) - 2  # the moves into the choice train nothing
    page = parse(build_report(run))
    statuses = {(r[0], r[1]): r[2] for r in page.tables["edges"][1:]}
    assert statuses == {(e.source, e.target): e.status for e in result.edges}
    assert "diverged" in statuses.values()

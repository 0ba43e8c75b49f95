"""The HTML report, checked the way a person sees it: its numbers against the plan's store, and
the page itself rendered in headless Chromium (every image loads, no console errors)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shlex
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from optplan.cli import build_parser, main
from optplan.config import load_config
from optplan.errors import OptplanError
from optplan.knee import Knee
from optplan.plan import EdgeRecord, PlanResult, SimulatedTrainer, SQLiteStore, StateGraph
from optplan.plan.result import STOP_REASONS, stop_reason
from optplan.plan.runner import replay_command, run_plan
from optplan.report import ReportData, build_report, load_run
from optplan.report.html import METRIC_MEANINGS, render_html
from optplan.report.layout import grid_layout, layered_layout, node_positions
from optplan.train.engine import KNEE_METRICS
from optplan.train.logging import read_log
from optplan.train.multiview import default_out
from optplan.train.state import State

BASELINES = [{"name": "cosine", "top1": 0.61, "epochs": 40}, {"name": "step <decay>", "top1": 0.58}]
EVAL = {"top1": 0.64, "top5": 0.93, "views": 30}
PAPER_EXT = ["plan.preset=paper-ext", "knee.patience=5", "plan.simulate.noise=0.01",
             "plan.simulate.seed=3"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished simulated plan of the paper-ext graph (18 edges), with eval and baselines."""
    run = tmp_path_factory.mktemp("report") / "run"
    code = main(["plan", "--simulate", "--quiet", "--out", str(run), *PAPER_EXT])
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
    for source, target, status, stopped, epochs, knee_epoch, score, seconds in rows:
        rec = by_edge[source, target]
        assert status == rec.status and stopped == result.stop_reasons[rec.id]
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


def test_missing_or_broken_run_is_a_clear_error(run_dir: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(OptplanError, match="does not exist"):
        build_report(tmp_path / "nope")
    with pytest.raises(OptplanError, match="not a plan's run directory"):
        build_report(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(run_dir / "plan.sqlite", broken / "plan.sqlite")
    (broken / "result.json").write_text("{}")
    with pytest.raises(OptplanError, match="not a plan result"):
        load_run(broken)
    SQLiteStore(tmp_path / "empty" / "plan.sqlite").close()  # a store that never planned
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "records no state graph" in err and "Traceback" not in err


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
    stopped = {(r[0], r[1]): r[3] for r in page.tables["edges"][1:]}
    assert {stopped[e.source, e.target] for e in data.edges if e.target.endswith("_x1")} == {"diverged"}
    assert {stopped[e.source, e.target] for e in data.edges if e.target == "final"} == {"choice"}


def _html_text(page: str, element_id: str) -> str:
    found = re.search(rf'<pre id="{element_id}"><code>(.*?)</code></pre>', page)
    assert found, f"no {element_id} in the page"
    return html.unescape(found.group(1))


@pytest.mark.parametrize("status, stop, reason", [
    ("done", "knee", "knee"), ("done", "max_epochs", "cap"), ("done", "race", "raced"),
    ("done", "gain", "gain"), ("done", "choice", "choice"), ("diverged", "diverged", "diverged"),
    ("failed", None, "failed"), ("skipped", None, "skipped"), ("running", None, "running")])
def test_why_an_edge_stopped(status: str, stop: str | None, reason: str) -> None:
    knee = None if stop is None else Knee(epoch=1, score=0.5, params=(), reached=True, stop=stop)
    assert stop_reason(EdgeRecord("a", "b", status=status, curve=[0.0, 0.5], knee=knee)) == reason
    assert reason in STOP_REASONS


def test_every_knee_metric_is_explained() -> None:
    assert set(METRIC_MEANINGS) == {*KNEE_METRICS, "auto"}


def test_report_says_why_edges_stopped_what_scores_mean_and_how_to_replay(
        run_dir: Path, report: Path) -> None:
    page, text = parse(report), report.read_text()
    result = PlanResult.load(run_dir)
    counts = Counter(result.stop_reasons.values())
    assert sum(counts.values()) == 18 and counts["knee"] > 0
    summary = dict(page.tables["summary"][1:])
    assert summary["why edges stopped"] == ", ".join(f"{counts[r]} {r}" for r in STOP_REASONS if counts[r])
    stops = page.tables["stops"][1:]
    assert {r[0]: int(r[2]) for r in stops} == dict(counts)
    assert all(r[1] == STOP_REASONS[r[0]] for r in stops)

    assert result.knee_metric == "auto"  # the simulated trainer resolves no metric
    assert html.escape(METRIC_MEANINGS["auto"]) in text and "knee.metric: auto" in text
    assert "<strong>test top-1</strong>" in text and "views per video" in text  # EVAL has 30 views

    command = _html_text(text, "replay-command")
    assert command == replay_command(run_dir)
    tokens = shlex.split(command)
    # the default data.root is relative: the command first goes where the plan was made
    assert tokens[0] == "cd" and Path(tokens[1]).is_dir() and tokens[2] == "&&"
    tokens = tokens[3:]
    assert tokens[:2] == ["optplan", "train"] and "eval-command" not in text  # eval.json exists
    args = build_parser().parse_args(tokens[1:])
    assert Path(args.config) == (run_dir / "config.yaml").resolve() and Path(args.config).is_file()
    assert args.schedule == (run_dir / "schedule.yaml").resolve() and args.schedule.is_file()
    assert args.out == run_dir.resolve().with_name("run-replay") and args.test


def test_an_old_result_json_still_reports(run_dir: Path, report: Path, tmp_path: Path) -> None:
    """A result.json from before results carried their graph: the graph comes from the store,
    a note says so, and every table reads as the new report's."""
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(run_dir / "plan.sqlite", old / "plan.sqlite")
    tree = json.loads((run_dir / "result.json").read_text())
    for key in ("graph", "chosen", "stop_reasons", "unfinished"):
        del tree[key]
    (old / "result.json").write_text(json.dumps(tree))
    assert main(["report", str(old)]) == 0
    page, new = parse(old / "report" / "index.html"), parse(report)
    assert page.tables["edges"] == new.tables["edges"] and page.tables["stops"] == new.tables["stops"]
    summary = dict(page.tables["summary"][1:])
    assert summary["chosen path"] == dict(new.tables["summary"][1:])["chosen path"]
    assert "written by an earlier optplan" in (old / "report" / "index.html").read_text()


class Killed(BaseException):
    """A kill in the middle of an epoch (not an Exception, so the planner lets it through)."""


class DiesAfter(SimulatedTrainer):
    """The simulated trainer, killed once it has trained ``epochs`` epochs in all."""

    def __init__(self, config, epochs: int) -> None:
        super().__init__(config)
        self.left = epochs

    def open(self, source, state):
        run = super().open(source, state)
        train = run.train_epoch

        def train_epoch() -> float:
            if self.left == 0:
                raise Killed
            self.left -= 1
            return train()
        run.train_epoch = train_epoch
        return run


def test_partial_report_of_a_plan_stopped_midway(run_dir: Path, tmp_path: Path, capsys) -> None:
    """Killed midway, the plan still gets a report of its edges so far, marked unfinished (and
    exit 1); resumed to the end, the same directory reports the whole plan."""
    cfg = load_config(None, PAPER_EXT)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        run_plan(cfg, run, trainer=DiesAfter(cfg.plan.simulate, epochs=60), progress=False)
    assert not (run / "result.json").exists()
    store = SQLiteStore.in_run_dir(run)
    stored = {(e.source, e.target): e for e in store.edges()}
    store.close()
    done = sum(e.finished for e in stored.values())
    assert 0 < done < 18 and [e.status for e in stored.values()].count("running") == 1

    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err
    line = f"unfinished: {done} of 18 edges done"
    assert line in err and f"optplan plan --resume --out {run}" in err and "Traceback" not in err
    index = run / "report" / "index.html"
    page, text = parse(index), index.read_text()
    assert f'<p class="unfinished" id="unfinished">{line}' in text and "(unfinished)</h1>" in text
    summary = dict(page.tables["summary"][1:])
    assert summary["plan"] == line and "chosen path" not in summary
    assert int(summary["search cost (epochs, all edges)"]) == sum(e.epochs for e in stored.values()) <= 60
    rows = {(r[0], r[1]): (r[2], r[3], int(r[4])) for r in page.tables["edges"][1:]}
    assert rows == {k: (e.status, stop_reason(e), e.epochs) for k, e in stored.items()}
    assert "running" in {stop for _, stop, _ in rows.values()}
    assert sorted(p.stem for p in index.parent.glob("*.png")) == ["cost", "curves", "graph"]
    assert "replay-command" not in text and "stages" not in page.tables
    assert f"optplan plan --resume --out {run.resolve()}</code>" in text  # the real run, ready to paste

    run_plan(cfg, run, trainer=DiesAfter(cfg.plan.simulate, epochs=10**6), progress=False)
    assert main(["report", str(run)]) == 0
    page, text = parse(index), index.read_text()
    assert 'class="unfinished"' not in text and len(page.tables["edges"]) == 1 + 18
    finished, reference = PlanResult.load(run), PlanResult.load(run_dir)
    assert finished.nodes == reference.nodes and finished.score == pytest.approx(reference.score)
    assert dict(page.tables["summary"][1:])["chosen path"] == " \u2192 ".join(["start", *finished.chosen])


def real_args(root: Path) -> list[str]:
    """One clip setting at two learning rates (2 edges of at most 2 epochs) on the built-in
    videos with the tiny model."""
    return [f"data.root={root}", f"data.val_list={root / 'trainlist01.txt'}", "data.crop_size=28",
            "data.short_side=32", "data.num_workers=0", "train.threads=1", "train.progress=false",
            "train.device=cpu", "model.dropout=0.0", "knee.patience=1", "knee.max_epochs=2",
            "plan.clip_lengths=[4]", "plan.base_lrs=[0.02]", "plan.lr_multipliers=[1,0.1]",
            "plan.batch_sizes=[8]", "plan.accumulation=[1]", "data.test_clips=1", "data.test_crops=1"]


@pytest.fixture(scope="module")
def real_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("real") / "run"
    assert main(["plan", "--out", str(run), "--quiet", *real_args(tiny_dataset)]) == 0
    return run


@pytest.mark.slow
def test_report_of_a_real_plan_shows_losses_and_the_tests_confusion(real_run: Path) -> None:
    """The loss curves are each edge's log, epoch by epoch; the page gives the command that
    tests the final model, and once it has run, its confusion matrix; its replay command trains
    the planned schedule as it is pasted."""
    result = PlanResult.load(real_run)
    data = load_run(real_run)
    assert len(data.edges) == 2 and data.confusion is None and data.eval_command
    for edge, record in zip(data.edges, result.edges):
        log = read_log(record.checkpoint.file(real_run).parent)
        assert edge.train_loss == tuple(r["loss"] for r in log) and len(log) == record.epochs > 0
        assert edge.val_loss == tuple(r["val_loss"] for r in log)
    assert data.knee_metric == "top1"  # knee.metric auto: top1 under 50 classes
    text = build_report(real_run).read_text()
    assert _html_text(text, "eval-command") == data.eval_command
    assert html.escape(METRIC_MEANINGS["top1"]) in text

    assert main(shlex.split(data.eval_command)[1:]) == 0  # as a user pastes it
    test = json.loads((real_run / "eval.json").read_text())
    index = build_report(real_run)
    page, text = parse(index), index.read_text()
    assert "eval-command" not in text and "replay-command" in text
    rows = page.tables["confusion"][1:]
    assert [r[0] for r in rows] == test["classes"]
    assert [int(r[1]) for r in rows] == [sum(row) for row in test["confusion"]]
    assert sum(int(r[2]) for r in rows) == round(test["top1"] * test["videos"])
    assert float(dict(page.tables["summary"][1:])["test top1"]) == pytest.approx(test["top1"], rel=1e-3)
    figures = {p.stem for p in index.parent.glob("*.png")}
    assert {"losses", "confusion", "curves", "schedule"} <= figures

    replay = shlex.split(_html_text(text, "replay-command"))
    assert main(replay[1:]) == 0
    out = Path(replay[replay.index("--out") + 1])
    trained = json.loads((out / "train.json").read_text())["schedule"]["stages"]
    assert [(s["state"]["name"], s["epochs"]) for s in trained] == \
        [(s.state.name, s.epochs) for s in result.stages]
    assert json.loads((out / "test.json").read_text())["videos"] == test["videos"]

    # `optplan eval --checkpoint MODEL` without --out writes beside the model: found there too
    (real_run / "eval.json").rename(default_out(result.model_path, "test"))
    assert load_run(real_run).evaluation == test

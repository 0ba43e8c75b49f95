"""``optplan demo`` end to end on real videos, and the README's two commands from a clean clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optplan.cli import main
from optplan.plan import PlanResult

REPO = Path(__file__).resolve().parents[1]
# The quick demo shrunk to seconds: tiny crops, 2-epoch states, one test view.
FAST = ["data.crop_size=28", "data.short_side=32", "data.test_clips=1", "data.num_workers=0",
        "knee.patience=1", "knee.max_epochs=2", "train.threads=1"]


@pytest.mark.slow
def test_demo_plans_tests_and_reports(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["demo", "--quick", "--json", "--data", str(tiny_dataset), "--out", str(run), *FAST]) == 0
    summary = json.loads(capsys.readouterr().out)

    result = PlanResult.load(run)
    evaluation = json.loads((run / "eval.json").read_text())
    assert summary["stages"] == [{"state": s.state.name, "clip_length": s.state.clip_length,
                                  "lr": s.state.lr, "sampling": s.state.sampling, "epochs": s.epochs}
                                 for s in result.stages]
    assert summary["replay_epochs"] == sum(s["epochs"] for s in summary["stages"]) == result.replay_epochs
    assert summary["search_epochs"] == sum(len(e.curve) - 1 for e in result.edges) > 0
    assert summary["edges"] == len(result.edges) == 6  # the 2 x 2 paper graph
    # val_score is what the final model reached on validation (a top-1 here), not the knee's fit
    assert summary["val_score"] == result.measured_score and 0.0 <= summary["val_score"] <= 1.0
    assert summary["knee_score"] == result.score
    assert summary["test_top1"] == evaluation["top1"] and evaluation["split"] == "test"
    assert evaluation["videos"] == sum(sum(row) for row in evaluation["confusion"]) > 0
    report = Path(summary["report"])
    assert report == run / "report" / "index.html" and result.nodes[-1] in report.read_text()
    assert json.loads((run / "demo.json").read_text())["test_top1"] == summary["test_top1"]

    # Again into the same run directory: resumes, trains nothing, finds the same.
    seconds = {(e.source, e.target): e.seconds for e in result.edges}
    assert main(["demo", "--quick", "--quiet", "--data", str(tiny_dataset), "--out", str(run), *FAST]) == 0
    text = capsys.readouterr().out
    again = PlanResult.load(run)
    assert {(e.source, e.target): e.seconds for e in again.edges} == seconds
    assert again.nodes == result.nodes and "Planned schedule" in text and "top-1" in text


def test_demo_refuses_a_directory_that_is_not_a_dataset(tmp_path: Path, capsys) -> None:
    data = tmp_path / "notes"
    data.mkdir()
    (data / "readme.txt").write_text("not videos")
    assert main(["demo", "--quick", "--quiet", "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "holds no annotation files" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "result.json").exists()


def test_demo_refuses_a_bad_override(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--quick", "--out", str(tmp_path / "run"), "knee.patience=0"]) == 2
    assert "knee.patience = 0" in capsys.readouterr().err


def _clean_clone(tmp_path: Path) -> Path:
    """The committed tree in a new directory, as a new user gets it (plus the working copy's
    uncommitted edits and new files, so a local run tests what is about to be committed)."""
    clone = tmp_path / "clone"
    if (REPO / ".git").exists() and shutil.which("git"):
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=REPO, check=True,
                              capture_output=True).stdout
        if diff:
            subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=clone, input=diff, check=True)
        new = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=REPO,
                             check=True, capture_output=True, text=True).stdout.split("\0")
        for name in filter(None, new):
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    else:
        shutil.copytree(REPO, clone, ignore=shutil.ignore_patterns(".venv", "data", "runs", "*.egg-info"))
    return clone


@pytest.mark.slow
def test_readme_commands_work_from_a_clean_clone(tiny_dataset: Path, tmp_path: Path) -> None:
    clone = _clean_clone(tmp_path)
    readme = (clone / "README.md").read_text()
    assert "./dev demo" in readme and "./dev test" in readme
    # Reuse this environment (installing torch again would only test pip); run the clone's code.
    env = {**os.environ, "OPTPLAN_VENV": sys.prefix, "PYTHONPATH": str(clone / "src")}
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    demo = subprocess.run(["./dev", "demo", "--quick", "--json", "--data", str(data), *FAST],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    summary = json.loads(demo.stdout)
    assert Path(summary["run_dir"]) == Path("runs/demo-quick")
    assert (clone / "runs" / "demo-quick" / "report" / "index.html").is_file()
    tests = subprocess.run(["./dev", "test", "--collect-only", "-q"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "tests collected" in tests.stdout

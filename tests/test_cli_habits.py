"""Command-line habits: ``python -m optplan``, overrides anywhere, a loadable ``config --defaults``
and a ``--quiet`` that silences every bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from optplan import __version__
from optplan.cli import main
from optplan.config import OptplanConfig, load_config

SRC = Path(__file__).resolve().parents[1] / "src"
BAR_MARKS = ("%|", "it/s", "clip/s", "edge/s")  # what a tqdm bar prints, whatever its unit
SMALL = ["plan.clip_lengths=[4,8]", "plan.base_lrs=[0.1,0.1]", "plan.lr_multipliers=[1,0.1]",
         "plan.batch_sizes=[8,4]", "plan.accumulation=[1,2]", "plan.simulate.speed=1.0"]


def test_python_dash_m_runs_the_command_line():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "optplan", "--version"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"optplan {__version__}"


def _planned_patience(run: Path) -> int:
    return yaml.safe_load((run / "config.yaml").read_text())["knee"]["patience"]


def test_overrides_are_taken_before_and_after_options(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"knee": {"patience": 6}}))
    after = tmp_path / "after"  # PySlowFast's habit: CONFIG, options, then the overrides
    assert main(["plan", str(config), "--out", str(after), "--simulate", *SMALL, "--quiet",
                 "knee.patience=3"]) == 0
    assert _planned_patience(after) == 3
    before = tmp_path / "before"  # no CONFIG, overrides first, then options, then more overrides
    assert main(["plan", "knee.patience=4", "--simulate", "--out", str(before), *SMALL,
                 "--quiet"]) == 0
    assert _planned_patience(before) == 4
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:  # a stray word is still refused
        main(["plan", str(config), "--out", str(after), "--simulate", "stray"])
    assert refused.value.code == 2 and "unrecognized arguments: stray" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # as is an override to a command that takes none
        main(["report", str(after), "--out", str(tmp_path / "r"), "knee.patience=3"])


def test_config_defaults_load_back_as_the_defaults(tmp_path, capsys):
    assert main(["config", "--defaults"]) == 0
    text = capsys.readouterr().out
    assert "PosixPath" not in text and "None" not in text.split("#")[0]
    written = tmp_path / "defaults.yaml"
    written.write_text(text)
    assert load_config(written) == OptplanConfig()
    assert "  patience: 10  # T: epochs past the knee before stopping." in text.splitlines()


def _tiny(root: Path) -> list[str]:
    """One-epoch training on the built-in videos; train.progress keeps its default (bars on)."""
    return [f"data.root={root}", f"data.val_list={root / 'trainlist01.txt'}", "data.crop_size=28",
            "data.short_side=32", "data.num_workers=0", "train.threads=1", "train.device=cpu",
            "train.tensorboard=false", "model.dropout=0.0", "knee.patience=1", "knee.max_epochs=1"]


def test_quiet_silences_every_bar_of_train_eval_and_plan(tiny_dataset, tmp_path, capsys):
    state = tmp_path / "s.yaml"
    state.write_text("name: s\nlr: 0.02\nclip_length: 4\nbatch_size: 8\n")
    assert main(["train", "--state", str(state), "--out", str(tmp_path / "loud"), *_tiny(tiny_dataset)]) == 0
    loud = capsys.readouterr()
    assert any(mark in loud.err + loud.out for mark in BAR_MARKS)  # the check below can see a bar

    assert main(["train", "--state", str(state), "--out", str(tmp_path / "quiet"), "--quiet",
                 *_tiny(tiny_dataset)]) == 0
    quiet = capsys.readouterr()
    assert not any(mark in quiet.err + quiet.out for mark in BAR_MARKS), quiet.err
    kept = json.loads((tmp_path / "quiet" / "result.json").read_text())["checkpoint"]
    test = [*_tiny(tiny_dataset), "data.test_clips=2", "data.test_crops=1", "--checkpoint", kept]
    assert main(["eval", *test, "--out", str(tmp_path / "loud.json")]) == 0
    loud = capsys.readouterr()
    assert "eval test" in loud.err and "%|" in loud.err and "video" in loud.err  # a bar over the test videos
    assert main(["eval", *test, "--out", str(tmp_path / "quiet.json"), "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert "top-1" in quiet.out and not any(mark in quiet.err + quiet.out for mark in BAR_MARKS), quiet.err
    one_edge = ["plan.preset=custom", "plan.states=[{name: s, lr: 0.02, clip_length: 4, batch_size: 8}]",
                "plan.edges=[[start, s]]"]
    assert main(["plan", "--out", str(tmp_path / "plan"), "--quiet", *_tiny(tiny_dataset), *one_edge]) == 0
    quiet = capsys.readouterr()
    assert not any(mark in quiet.err + quiet.out for mark in BAR_MARKS), quiet.err


def test_the_readmes_sample_config_is_a_valid_config(tmp_path):
    """The README's ``myplan.yaml`` loads as it is written (a copied sample must not fail on a
    renamed key) and says what it shows: the paper's graph over 16/32/64 frames."""
    import re

    readme = (SRC.parent / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if b.startswith("# myplan.yaml"))
    path = tmp_path / "myplan.yaml"
    path.write_text(block)
    cfg = load_config(path, [])
    assert cfg.model.name == "dg_p3d_r50" and cfg.plan.preset == "paper"
    assert list(cfg.plan.clip_lengths) == [16, 32, 64] and cfg.knee.patience == 10

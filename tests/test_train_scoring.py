"""knee.score_clip: every state scored on its own clip setting, or (the reference) on the longest."""

from __future__ import annotations

import pytest

from optplan.cli import main
from optplan.config import load_config
from optplan.data.sampling import ClipSpec
from optplan.errors import OptplanError
from optplan.plan import PlanResult
from optplan.train import State, train_state
from optplan.train.scoring import describe, scoring_clip
from optplan.train.session import TrainSession

SPACE = [State(name="c4", lr=0.02, clip_length=4, batch_size=4),
         State(name="c8", lr=0.02, clip_length=8, batch_size=4, frame_step=2),
         State(name="u4", lr=0.02, clip_length=4, sampling="uniform"),
         State(name="u16", lr=0.02, clip_length=16, sampling="uniform")]


def test_the_longest_clip_setting_of_the_same_sampling():
    c4, c8, u4, u16 = SPACE
    assert scoring_clip(c4, "state", SPACE) == ClipSpec(4)
    assert scoring_clip(c4, "longest", SPACE) == ClipSpec(8, frame_step=2)
    assert scoring_clip(u4, "longest", SPACE) == ClipSpec(16, "uniform", frames_per_segment=4)
    assert scoring_clip(c8, "longest") == ClipSpec.from_state(c8)  # no space: the state itself
    assert describe("state", SPACE).startswith("state")
    assert describe("longest", SPACE) == ("longest: every state scored on the longest clip setting "
                                          "(8 consecutive frames step 2, 16 uniform frames (4 segments x 4))")
    with pytest.raises(OptplanError, match="knee.score_clip"):
        load_config(overrides=["knee.score_clip=shortest"])


def config(root, **over):
    tree = {"data.root": root, "data.val_list": root / "trainlist01.txt", "data.crop_size": 28,
            "data.short_side": 32, "data.num_workers": 0, "train.threads": 1, "train.progress": False,
            "model.dropout": 0.0, "knee.patience": 1, "knee.max_epochs": 2, **over}
    return load_config(None, [f"{k}={v}" for k, v in tree.items()])


def test_a_short_clip_state_is_validated_on_the_longest_clip(tiny_dataset, tmp_path):
    """On real videos: with 'longest' the 4-frame state's epochs are scored on 8-frame clips
    (the validation loader cuts them, the cost counts them); a resume with the other setting
    is refused."""
    session = TrainSession(config(tiny_dataset))
    longest = config(tiny_dataset, **{"knee.score_clip": "longest", "knee.max_epochs": 1})
    result = train_state(None, SPACE[0], longest, tmp_path / "longest", session=session, space=SPACE)
    videos = len(session.splits.val)
    assert result.cost.eval_gflops == pytest.approx(session.flops(8) * videos)
    assert session.flops(8) > 1.5 * session.flops(4)
    own = train_state(None, SPACE[0], config(tiny_dataset, **{"knee.max_epochs": 1}), tmp_path / "own",
                      session=session, space=SPACE)
    assert own.cost.eval_gflops == pytest.approx(session.flops(4) * videos)

    def killed(curve, snapshot):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_state(None, SPACE[0], session.cfg, tmp_path / "killed", session=session, on_epoch=killed)
    with pytest.raises(OptplanError, match="knee.score_clip changed"):
        train_state(None, SPACE[0], longest, tmp_path / "killed", session=session, space=SPACE)


SMALL = ["plan.clip_lengths=[4,8]", "plan.base_lrs=[0.1,0.1]", "plan.lr_multipliers=[1,0.1]",
         "plan.batch_sizes=[8,4]", "plan.accumulation=[1,2]", "knee.patience=4", "plan.simulate.speed=1.0"]


def test_the_plan_records_it_and_refuses_a_resume_with_the_other(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL, "knee.score_clip=longest"]) == 0
    assert PlanResult.load(run).score_clip == ("longest: every state scored on the longest clip setting "
                                               "(8 consecutive frames)")
    assert main(["report", str(run)]) == 0
    html = (run / "report" / "index.html").read_text()
    assert "validation clip of the knee" in html and "8 consecutive frames" in html
    capsys.readouterr()
    assert main(["plan", "--simulate", "--out", str(run), "--quiet", *SMALL]) == 2
    assert 'config.knee.score_clip: run has "longest", now "state"' in capsys.readouterr().err

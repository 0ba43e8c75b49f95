"""Bad configs: each is refused by ``optplan plan`` with exit 2 and a message naming the field,
never a traceback and never a run directory."""

from __future__ import annotations

import pytest

from optplan.cli import main

# (overrides, YAML text of CONFIG or None, what the message must name)
BAD = {
    "lr zero": (["plan.base_lrs=[0,0.1]"], None, "plan.base_lrs.0"),
    "lr negative": (["plan.base_lrs=[0.1,-1]"], None, "plan.base_lrs.1"),
    "lr nan": (["plan.base_lrs=[.nan,0.1]"], None, "plan.base_lrs.0 = nan"),
    "lr inf": (["plan.base_lrs=[.inf,0.1]"], None, "plan.base_lrs.0 = inf"),
    "multiplier zero": (["plan.lr_multipliers=[1,0]"], None, "plan.lr_multipliers.1"),
    "clip zero": (["plan.clip_lengths=[0,8]"], None, "plan.clip_lengths.0"),
    "batch zero": (["plan.batch_sizes=[0,8]"], None, "plan.batch_sizes.0"),
    "accumulation zero": (["plan.accumulation=[1,0]"], None, "plan.accumulation.1"),
    "frame step zero": (["plan.frame_steps=[0,1]"], None, "plan.frame_steps.0"),
    "seed negative": (["train.seed=-1"], None, "train.seed"),
    "std zero": (["data.std=[0.2,0,0.2]"], None, "data.std.1"),
    "scale reversed": (["data.scale=[1.0,0.5]"], None, "data.scale"),
    "short side below crop": (["data.short_side=20"], None, "data.short_side = 20"),
    "bool patience": (["knee.patience=true"], None, "knee.patience"),
    "bool in a list": (["plan.clip_lengths=[true,8]"], None, "plan.clip_lengths"),
    "not utf-8": ([], b"train:\n  seed: 1  # caf\xe9\n", "not UTF-8"),
    "section twice": ([], b"train:\n  seed: 1\nknee:\n  patience: 2\ntrain:\n  threads: 1\n",
                      "'train' appears twice"),
    "key twice": ([], b"knee:\n  patience: 2\n  patience: 3\n", "'patience' appears twice"),
    "missing 2D weights": (["model.pretrained_2d=/nonexistent/resnet50.pth"], None, "model.pretrained_2d"),
    "clips longer than every video": (["plan.clip_lengths=[4,4096]"], None, "plan.clip_lengths"),
    "test crop above short side": (["data.test_crop_size=40"], None, "data.test_crop_size = 40"),
    "frames per segment zero": (["plan.sampling=uniform", "plan.frames_per_segment=[0,1]"], None,
                                "plan.frames_per_segment.0"),
    "uniform clip off the default segments": (["plan.sampling=uniform", "plan.clip_lengths=[2,8]"], None,
                                              "plan.frames_per_segment"),
    "augment probability above 1": (["data.augment.jitter=1.5"], None, "data.augment.jitter"),
    "bool knee clip": (["knee.score_clip=true"], None, "knee.score_clip"),
    "climb limit not a rise": (["plan.climb_limit=1.0"], None, "plan.climb_limit"),
    "climb window of one epoch": (["plan.climb_limit=1.2", "plan.climb_epochs=1"], None, "plan.climb_epochs"),
    "preset key under grid": (["plan.preset=grid", "plan.grid={lr: [0.1, 0.01]}", "plan.start_lr_levels=2"],
                              None, "plan.start_lr_levels=2 shapes only the presets' graphs"),
    "preset key under custom": (["plan.preset=custom", "plan.sampling=uniform",
                                 "plan.states=[{name: s, lr: 0.02, clip_length: 4, batch_size: 8}]",
                                 "plan.edges=[[start, s]]"], None, "plan.sampling='uniform'"),
}


@pytest.mark.parametrize("overrides, text, field", BAD.values(), ids=BAD.keys())
def test_a_bad_config_is_refused_naming_the_field(overrides, text, field, tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    args = [f"data.root={tiny_dataset}", "data.crop_size=28", "data.short_side=32", "train.threads=1",
            "data.num_workers=0", "plan.clip_lengths=[4,8]", "plan.base_lrs=[0.1,0.1]",
            "plan.batch_sizes=[8,8]", "plan.accumulation=[1,1]", *overrides]
    if text is not None:
        (tmp_path / "bad.yaml").write_bytes(text)
        args.insert(0, str(tmp_path / "bad.yaml"))
    assert main(["plan", "--out", str(run), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
    assert not run.exists()

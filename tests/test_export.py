"""``optplan export``: a known schedule against hand-written MMAction2 and PySlowFast fragments."""

from __future__ import annotations

import pytest
import yaml

from optplan.cli import main
from optplan.errors import OptplanError
from optplan.train.export import export_schedule
from optplan.train.schedule import load_schedule

# A planned path as schedule.yaml holds it: a skipped stage, a longer clip at the same lr, two
# decays of different ratio, frozen BN and accumulation in the last stage, a cosine rule.
SCHEDULE = {"stages": [
    {"state": {"name": "c8_lr1", "lr": 0.1, "clip_length": 8, "batch_size": 16}, "epochs": 20},
    {"state": {"name": "c8_lr2", "lr": 0.01, "clip_length": 8, "batch_size": 16}, "epochs": 0},
    {"state": {"name": "c16_lr1", "lr": 0.1, "clip_length": 16, "frame_step": 2, "batch_size": 8}, "epochs": 30},
    {"state": {"name": "c16_lr2", "lr": 0.01, "clip_length": 16, "frame_step": 2, "batch_size": 8}, "epochs": 10,
     "lr_schedule": {"kind": "cosine"}},
    {"state": {"name": "c32_lr3", "lr": 0.005, "clip_length": 32, "sampling": "uniform", "batch_size": 4,
               "accumulation": 2, "frozen_bn": True}, "epochs": 5},
]}

STAGES = """\
# optplan schedule: 4 stages, 65 epochs
# stage 1 'c8_lr1': epochs 0-20, lr 0.1: {c1}
# stage 2 'c16_lr1': epochs 20-50, lr 0.1: {c2}
# stage 3 'c16_lr2': epochs 50-60, lr 0.01: {c2}
# stage 4 'c32_lr3': epochs 60-65, lr 0.005: {c4}, frozen BN statistics
# Not expressed by this fragment:
# - the clip settings above change at stage boundaries; one run trains one setting, so train each stage as its own run loading the previous one's checkpoint
"""
REST = """\
# - stage 3's lr_schedule {'warmup': 0, 'kind': 'cosine', 'final': 0.0} (exported as its constant base lr)
# - the fresh optimiser (momentum reset) at every stage boundary
"""

MMACTION2 = STAGES.format(
    c1="dict(type='SampleFrames', clip_len=8, frame_interval=1, num_clips=1), batch_size=16, accumulative_counts=1",
    c2="dict(type='SampleFrames', clip_len=16, frame_interval=2, num_clips=1), batch_size=8, accumulative_counts=1",
    c4="dict(type='UniformSample', clip_len=32, num_clips=1), batch_size=4, accumulative_counts=2",
) + REST + """\
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=65, val_begin=1, val_interval=1)
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=65, milestones=[50], gamma=0.1),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=65, milestones=[60], gamma=0.5),
]
"""

PYSLOWFAST = STAGES.format(
    c1="DATA.NUM_FRAMES=8, DATA.SAMPLING_RATE=1, TRAIN.BATCH_SIZE=16",
    c2="DATA.NUM_FRAMES=16, DATA.SAMPLING_RATE=2, TRAIN.BATCH_SIZE=8",
    c4="DATA.NUM_FRAMES=32, DATA.SAMPLING_RATE=uniform over the video, TRAIN.BATCH_SIZE=8 (4 x 2 accumulated here)",
) + "# - MULTIGRID cycles clip shapes on its own rule, not at these epochs\n" + REST + """\
SOLVER:
  BASE_LR: 0.1
  LR_POLICY: steps_with_relative_lrs
  STEPS: [0, 20, 50, 60]
  LRS: [1.0, 1.0, 0.1, 0.05]
  MAX_EPOCH: 65
  WARMUP_EPOCHS: 0.0  # the planned stages start at their lr
"""


@pytest.mark.parametrize("framework, expected", [("mmaction2", MMACTION2), ("pyslowfast", PYSLOWFAST)])
def test_known_schedule_exports_the_hand_written_fragment(framework, expected):
    assert export_schedule(load_schedule(SCHEDULE), framework) == expected


def test_cli_reads_a_run_directory_and_writes_the_fragment(tmp_path, capsys):
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(SCHEDULE, sort_keys=False))
    assert main(["export", str(tmp_path), "--to", "pyslowfast"]) == 0
    out = capsys.readouterr().out
    assert out == PYSLOWFAST and yaml.safe_load(out)["SOLVER"]["LRS"] == [1.0, 1.0, 0.1, 0.05]
    assert main(["export", str(tmp_path / "schedule.yaml"), "--to", "mmaction2", "--out", str(tmp_path / "f.py")]) == 0
    assert (tmp_path / "f.py").read_text() == MMACTION2
    namespace: dict = {}
    exec(MMACTION2, namespace)  # the fragment is a valid MMAction2 (Python) config
    assert namespace["train_cfg"]["max_epochs"] == 65
    assert main(["export", str(tmp_path / "none.yaml"), "--to", "mmaction2"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(OptplanError, match="choose one of mmaction2, pyslowfast"):
        export_schedule(load_schedule(SCHEDULE), "detectron")

"""The built-in dataset: what is written decodes back to what was rendered."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from optplan.data.annotations import read_annotations
from optplan.data.synth import ORDERS, class_names, plan_videos, render_video, synthesize, target_path
from optplan.data.video import decode, probe
from optplan.errors import OptplanError

TINY = dict(videos_per_class=6, frames=32, size=32, seed=0)  # what the tiny_dataset fixture writes


def test_decoded_frames_match_rendered_frames(tiny_dataset):
    specs = plan_videos(**TINY)
    for spec in (specs[0], specs[-1]):
        rendered = render_video(spec).astype(np.int16)
        decoded = decode(tiny_dataset / spec.relpath).astype(np.int16)
        assert decoded.shape == rendered.shape == (32, 32, 32, 3)
        error = np.abs(decoded - rendered).mean()
        # the rendered Gaussian noise (sigma 6, mean |n| 4.8) is mostly what H.264 drops
        assert error < 7.5, f"codec error {error:.2f} grey levels"
        # the comparison can fail: the next frame of the same video is much further away
        assert np.abs(decoded[1:] - rendered[:-1]).mean() > 1.5 * error
    assert probe(tiny_dataset / specs[0].relpath).frames == 32


def test_render_is_deterministic_and_seeded():
    spec = plan_videos(**TINY)[7]
    assert np.array_equal(render_video(spec), render_video(spec))
    other = plan_videos(**{**TINY, "seed": 1})[7]
    assert np.abs(render_video(spec).astype(int) - render_video(other)).mean() > 5


def test_layout_and_lists_agree(tiny_dataset):
    names = class_names(12)
    assert (tiny_dataset / "classInd.txt").read_text().splitlines()[:2] == [f"1 {names[0]}", f"2 {names[1]}"]
    ucf_train = read_annotations(tiny_dataset / "trainlist01.txt", tiny_dataset)
    ucf_test = read_annotations(tiny_dataset / "testlist01.txt", tiny_dataset)
    kin_train = read_annotations(tiny_dataset / "train.csv", tiny_dataset)
    kin_test = read_annotations(tiny_dataset / "test.csv", tiny_dataset, classes=kin_train.classes)
    assert len(ucf_train.records) == 12 * 4 and len(ucf_test.records) == 12 * 2
    assert sorted(ucf_train.records, key=lambda r: r.path) == sorted(kin_train.records, key=lambda r: r.path)
    assert sorted(ucf_test.records, key=lambda r: r.path) == sorted(kin_test.records, key=lambda r: r.path)
    assert all(r.path.is_file() and r.path.parent.name == names[r.label] for r in ucf_train.records)
    assert json.loads((tiny_dataset / "synth.json").read_text())["videos"] == 72


def test_classes_combine_digit_and_movement_order():
    names = class_names(12)
    assert len(set(names)) == 12 and len(ORDERS) == 6
    assert names[0].startswith("digit0_") and names[6].startswith("digit1_")
    assert {n.split("_", 1)[1] for n in names[:6]} == {n.split("_", 1)[1] for n in names[6:]}


def test_target_moves_as_its_label_says():
    """Each part of the path oscillates along the axis its movement names (position ranges in px)."""
    specs = plan_videos(videos_per_class=2, frames=32, size=64)[::2][:6]
    assert {s.movements for s in specs} == set(ORDERS)
    for spec in specs:
        for seed in range(20):
            path, switch = target_path(spec, np.random.default_rng(seed), side=24)
            assert 7 <= switch <= 25  # the second movement starts well inside the video
            for part, movement in zip((path[:switch], path[switch:]), spec.movements):
                dy, dx = np.ptp(part, axis=0)
                if movement == "horizontal":
                    assert dx > 2.5 * dy
                elif movement == "vertical":
                    assert dy > 2.5 * dx
                else:
                    assert min(dy, dx) > 6


@pytest.mark.parametrize("kwargs", [dict(size=33), dict(frames=4), dict(videos_per_class=1), dict(num_classes=61)])
def test_bad_sizes_are_refused(tmp_path, kwargs):
    with pytest.raises(OptplanError):
        synthesize(tmp_path, **{**TINY, **kwargs})


def test_default_dataset_is_unchanged_by_regimes():
    """The default (mixed) dataset renders the very frames it rendered before regimes existed
    (digests taken from the pre-regime generator), and names them the same way."""
    specs = plan_videos()
    assert len(specs) == 360 and {s.regime for s in specs} == {"mixed"}
    assert plan_videos() == plan_videos(regime="mixed", test_share=0.25, num_classes=12)
    expected = {0: ("digit0_circle_then_horizontal/synth000000_000000_000002.mp4", "e4c8d7d3dcaff411"),
                359: ("digit1_vertical_then_horizontal/synth000359_000000_000002.mp4", "87ada9e1a00f355c")}
    for k, (relpath, digest) in expected.items():
        assert specs[k].relpath == relpath
        assert hashlib.sha256(render_video(specs[k]).tobytes()).hexdigest()[:16] == digest
    assert sum(s.split == "test" for s in specs) == 12 * 8


ENCODE_TWICE = """
import hashlib, sys
from optplan.data.synth import plan_videos, render_video
from optplan.data.video import encode
spec = plan_videos(regime="motion", videos_per_class=280, frames=32, size=32, test_share=0.7142857)[1449]
frames = render_video(spec)
for k in range(4):
    encode(sys.argv[1], frames)
    print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
"""


def test_the_same_frames_encode_to_the_same_bytes(tmp_path):
    """A regenerated dataset is the same files. x264's macroblock tree gave this video (one of
    three that differed between two generations of the benchmark's motion regime) other bytes
    in about half of fresh processes, mostly on their first encodes; so: fresh processes."""
    digests = set()
    for k in range(4):
        done = subprocess.run([sys.executable, "-c", ENCODE_TWICE, str(tmp_path / f"v{k}.mp4")],
                              capture_output=True, text=True, check=True)
        digests.update(done.stdout.split())
    assert len(digests) == 1, digests

"""Which frames a clip takes, in both sampling modes of the paper."""

from __future__ import annotations

import numpy as np
import pytest

from optplan.data.sampling import ClipSpec, sample_indices, view_positions
from optplan.train.state import State


def test_consecutive_centre_and_ends():
    spec = ClipSpec(8, frame_step=2)  # a 15-frame window
    assert sample_indices(32, spec).tolist() == [8, 10, 12, 14, 16, 18, 20, 22]  # centre: start (32-15)//2
    assert sample_indices(32, spec, position=0.0).tolist() == list(range(0, 15, 2))
    assert sample_indices(32, spec, position=1.0).tolist() == list(range(17, 32, 2))


def test_consecutive_random_start_covers_every_start():
    spec, rng = ClipSpec(4), np.random.default_rng(0)
    starts = {int(sample_indices(10, spec, rng=rng)[0]) for _ in range(300)}
    assert starts == set(range(7))
    ix = sample_indices(10, spec, rng=rng)
    assert np.array_equal(np.diff(ix), [1, 1, 1])


def test_uniform_one_frame_per_segment():
    spec = ClipSpec(4, sampling="uniform")  # segments of 8 frames in a 32-frame video
    assert sample_indices(32, spec).tolist() == [4, 12, 20, 28]  # centre of each segment (offset round(0.5*7))
    rng = np.random.default_rng(1)
    draws = np.stack([sample_indices(32, spec, rng=rng) for _ in range(400)])
    for s in range(4):  # random offsets stay inside their segment and reach both ends
        assert draws[:, s].min() == 8 * s and draws[:, s].max() == 8 * s + 7


def test_uniform_segments_of_several_frames():
    spec = ClipSpec(6, sampling="uniform", frames_per_segment=2, frame_step=2)
    ix = sample_indices(30, spec, position=0.0)
    assert ix.tolist() == [0, 2, 10, 12, 20, 22]
    assert spec.segments == 3 and spec.span == 9


def test_short_video_is_padded_with_its_last_frame():
    assert sample_indices(5, ClipSpec(8)).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    assert sample_indices(3, ClipSpec(4, sampling="uniform")).max() == 2


def test_clip_spec_from_state_and_validation():
    state = State(name="u", lr=0.1, clip_length=8, sampling="uniform", frame_step=2, frames_per_segment=2)
    assert ClipSpec.from_state(state) == ClipSpec(8, "uniform", 2, 2)
    with pytest.raises(ValueError):
        ClipSpec(6, sampling="uniform", frames_per_segment=4)
    with pytest.raises(ValueError, match="frames_per_segment"):
        State(name="u", lr=0.1, clip_length=6, sampling="uniform")  # the default 4 does not divide 6
    assert view_positions(3) == pytest.approx([1 / 6, 0.5, 5 / 6])


def test_a_uniform_state_takes_runs_of_four_frames_by_default(tiny_dataset):
    """The reference's sparse sampling: 16 frames = 4 segments x 4 consecutive frames, cut from
    a real decoded video (frames told apart by their pixels)."""
    from optplan.data.annotations import read_annotations
    from optplan.data.video import decode

    state = State(name="u16", lr=0.1, clip_length=16, sampling="uniform")
    assert state.frames_per_segment == 4
    assert State(name="c16", lr=0.1, clip_length=16).frames_per_segment == 1
    frames = decode(read_annotations(tiny_dataset / "trainlist01.txt", tiny_dataset).records[0].path)
    ix = sample_indices(len(frames), ClipSpec.from_state(state), rng=np.random.default_rng(0))
    runs = ix.reshape(4, 4)
    assert (np.diff(runs, axis=1) == 1).all()  # 4 runs of 4 consecutive frames ...
    assert (runs[:, 0] // (len(frames) // 4) == np.arange(4)).all()  # ... one in each quarter
    clip = frames[ix]
    assert all(np.array_equal(clip[4 * s + j], frames[runs[s, 0] + j]) for s in range(4) for j in range(4))
    single = State(name="u16", lr=0.1, clip_length=16, sampling="uniform", frames_per_segment=1)
    assert np.diff(sample_indices(len(frames), ClipSpec.from_state(single))).min() > 1  # still available

"""Public datasets as they ship: tiny copies of each layout, with real video files in the
layout's own containers and names, read by ``load_splits`` and ``optplan data check``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from optplan.cli import main
from optplan.data.config import DataConfig
from optplan.data.splits import load_splits
from optplan.errors import OptplanError

# The codec each container is written with: what the public copies hold is what is read.
CODECS = {".avi": ("avi", "mpeg4"), ".mp4": ("mp4", "libx264"), ".webm": ("webm", "libvpx-vp9")}


def write_video(path: Path, seed: int, frames: int = 6, size: int = 16) -> Path:
    """A few frames of noise in the container and codec the file name says."""
    fmt, codec = CODECS[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def check(*args: str | Path) -> int:
    return main(["data", "check", *map(str, args)])


def splits(root: Path, tmp_path: Path, **over) -> tuple:
    """(classes, {split: [(relative path, label)]}) as training would see them."""
    got = load_splits(DataConfig(root=root, cache_dir=tmp_path / "cache", val_fraction=0.5, **over))
    top = root.parent
    return got.classes, {name: sorted((str(r.path.relative_to(top)), r.label) for r in getattr(got, name))
                         for name in ("train", "val", "test")}


@pytest.fixture
def hmdb51(tmp_path: Path) -> Path:
    """``hmdb51_org/<class>/<video>.avi`` beside ``testTrainMulti_7030_splits/`` (splits 1-3)."""
    top = tmp_path / "hmdb51"
    flags = {1: ["1", "1", "2", "0"], 2: ["2", "1", "1", "0"], 3: ["1", "2", "1", "0"]}
    for c, label in enumerate(["brush_hair", "cartwheel"]):
        names = [f"{label}_{v}_u_nm_np1_fr_med_{v}.avi" for v in range(4)]
        for v, name in enumerate(names[:3]):  # the unused video is not even shipped
            write_video(top / "hmdb51_org" / label / name, seed=10 * c + v)
        for split, marks in flags.items():
            lines = "".join(f"{n} {m} \n" for n, m in zip(names, marks))  # the trailing space is HMDB's
            (top / "testTrainMulti_7030_splits").mkdir(exist_ok=True)
            (top / "testTrainMulti_7030_splits" / f"{label}_test_split{split}.txt").write_text(lines)
    return top / "hmdb51_org"


def test_hmdb51_split_files_name_the_class_and_the_half(hmdb51, tmp_path, capsys):
    classes, got = splits(hmdb51, tmp_path)
    assert classes == ["brush_hair", "cartwheel"]
    assert [p.split("/")[1:] for p, _ in got["test"]] == [
        ["brush_hair", "brush_hair_2_u_nm_np1_fr_med_2.avi"], ["cartwheel", "cartwheel_2_u_nm_np1_fr_med_2.avi"]]
    assert [label for _, label in got["test"]] == [0, 1] and len(got["train"] + got["val"]) == 4
    _, second = splits(hmdb51, tmp_path, split=2)
    assert [p.rsplit("_", 1)[1] for p, _ in second["test"]] == ["0.avi", "0.avi"]
    assert check(hmdb51) == 0 and "checked 6 files: no problems" in capsys.readouterr().out
    assert check(hmdb51, "data.split=3") == 0
    flags = hmdb51.parent / "testTrainMulti_7030_splits" / "cartwheel_test_split1.txt"
    flags.write_text(flags.read_text() + "cartwheel_9.avi train\n")
    with pytest.raises(OptplanError, match=r"cartwheel_test_split1.txt:5: expected 'video.avi 0\|1\|2'"):
        splits(hmdb51, tmp_path)


@pytest.fixture
def kinetics(tmp_path: Path) -> Path:
    """The public copies: ``annotations/{train,val}.csv`` beside ``train/`` and ``val/``."""
    root = tmp_path / "k400"
    (root / "annotations").mkdir(parents=True)
    rows = {"train": [("abseiling", "a1"), ("air drumming", "a2"), ("abseiling", "a3"), ("air drumming", "a4")],
            "val": [("abseiling", "b1"), ("air drumming", "b2")]}
    for split, videos in rows.items():
        lines = ["label,youtube_id,time_start,time_end,split"]
        for n, (label, youtube_id) in enumerate(videos):
            lines.append(f"{label},{youtube_id},{n},{n + 10},{split}")
            write_video(root / split / f"{youtube_id}_{n:06d}_{n + 10:06d}.mp4", seed=n)
        (root / "annotations" / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def test_kinetics_rows_follow_their_split_folder(kinetics, tmp_path, capsys):
    root = kinetics
    classes, got = splits(root, tmp_path)
    assert classes == ["abseiling", "air drumming"]
    assert got["test"] == [("k400/val/b1_000000_000010.mp4", 0), ("k400/val/b2_000001_000011.mp4", 1)]
    assert all(p.startswith("k400/train/") for p, _ in got["train"] + got["val"])
    assert check(root) == 0 and "checked 6 files: no problems" in capsys.readouterr().out
    (root / "annotations" / "val.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,b1,0\n")
    with pytest.raises(OptplanError, match=r"val.csv:2: the row does not have the header's 5 columns"):
        splits(root, tmp_path)


def test_ucf101_lists_beside_the_video_folder(tmp_path, capsys):
    top = tmp_path / "UCF101"
    lists = top / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    train, test = [], []
    for c, label in enumerate(["ApplyEyeMakeup", "Archery"], 1):
        for g in (1, 2, 8):
            rel = f"{label}/v_{label}_g{g:02d}_c01.avi"
            write_video(top / "UCF-101" / rel, seed=10 * c + g)
            (test.append(rel) if g == 1 else train.append(f"{rel} {c}"))
    (lists / "trainlist01.txt").write_text("\r\n".join(train) + "\r\n")  # UCF101 ships CRLF lists
    (lists / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    classes, got = splits(top / "UCF-101", tmp_path)
    assert classes == ["ApplyEyeMakeup", "Archery"]
    assert got["test"] == [("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0),
                           ("UCF-101/Archery/v_Archery_g01_c01.avi", 1)]
    assert check(top / "UCF-101") == 0 and "checked 6 files: no problems" in capsys.readouterr().out
    config = tmp_path / "ucf.yaml"  # the lists named as a plan's config names them
    config.write_text(f"data:\n  root: {top / 'UCF-101'}\n  train_list: {lists / 'trainlist01.txt'}\n"
                      f"  test_list: {lists / 'testlist01.txt'}\n")
    assert check("--config", config) == 0
    assert check(f"data.root={top / 'UCF-101'}", f"data.test_list={lists / 'trainlist01.txt'}") == 0
    assert "checked 6 files" in capsys.readouterr().out
    (lists / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi 2 extra\n")
    assert check(top / "UCF-101") == 2
    assert "testlist01.txt:1: expected 'Class/video.avi [INDEX]'" in capsys.readouterr().err


def test_something_something_v2_finds_its_video_folder(tmp_path, capsys):
    labels = tmp_path / "sthv2" / "labels"
    labels.mkdir(parents=True)
    templates = ["Pushing [something] from left to right", "Dropping [something]"]
    (labels / "something-something-v2-labels.json").write_text(
        json.dumps({t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}))
    for name, ids in (("train", [1, 2, 3, 4]), ("validation", [5, 6])):
        entries = [{"id": str(i), "label": "pushing a pen", "template": templates[i % 2],
                    "placeholders": ["a pen"]} for i in ids]
        (labels / f"something-something-v2-{name}.json").write_text(json.dumps(entries))
    (labels / "something-something-v2-test.json").write_text(json.dumps([{"id": "7"}]))
    with pytest.raises(OptplanError, match="20bn-something-something-v2'; point data.root"):
        splits(labels, tmp_path)
    for i in range(1, 7):
        write_video(labels / "20bn-something-something-v2" / f"{i}.webm", seed=i)
    classes, got = splits(labels, tmp_path)
    assert classes == ["Pushing something from left to right", "Dropping something"]
    assert got["test"] == [("labels/20bn-something-something-v2/5.webm", 1),
                           ("labels/20bn-something-something-v2/6.webm", 0)]
    assert check(labels) == 0 and "checked 6 files: no problems" in capsys.readouterr().out


def test_mmaction2_video_list_with_label_map_and_refused_rawframes(tmp_path, capsys):
    root = tmp_path / "videos_train"
    names = ["abseiling", "air drumming", "yoga"]
    lines = []
    for i, label in enumerate([2, 0, 2, 1]):
        write_video(root / f"clip{i}.mp4", seed=i)
        lines.append(f"clip{i}.mp4 {label}")
    (tmp_path / "train_list_videos.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "label_map.txt").write_text("\n".join(names) + "\n")
    over = [f"data.train_list={tmp_path / 'train_list_videos.txt'}"]
    classes, got = splits(root, tmp_path, train_list=tmp_path / "train_list_videos.txt",
                          class_names=tmp_path / "label_map.txt")
    assert classes == names and sorted(label for _, label in got["train"] + got["val"]) == [0, 1, 2, 2]
    assert check(root, *over, f"data.class_names={tmp_path / 'label_map.txt'}") == 0
    assert "checked 4 files: no problems" in capsys.readouterr().out
    (tmp_path / "short_map.txt").write_text("abseiling\nair drumming\n")
    assert check(root, *over, f"data.class_names={tmp_path / 'short_map.txt'}") == 2
    assert "train_list_videos.txt:1: label 2 is outside 0..1" in capsys.readouterr().err
    (tmp_path / "rawframes.txt").write_text("clip0 6 2\nclip1 6 0\n")
    assert check(root, f"data.train_list={tmp_path / 'rawframes.txt'}", "data.format=csv") == 2
    assert "rawframes.txt:1: 'clip0 6 2' looks like an MMAction2 rawframe list" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["hmdb51", "kinetics"])
def test_one_epoch_trains_on_a_public_layout(layout, request, tmp_path, capsys):
    """The whole path, lists to a kept model, on HMDB51's split files and Kinetics' split folders."""
    root = request.getfixturevalue(layout)
    state = tmp_path / "state.yaml"
    state.write_text("name: short\nlr: 0.01\nclip_length: 4\nbatch_size: 2\n")
    over = [f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", "data.val_fraction=0.5",
            "data.crop_size=16", "data.short_side=16", "data.num_workers=0", "train.threads=1",
            "train.progress=false", "knee.patience=1", "knee.max_epochs=1"]
    run = tmp_path / "run"
    assert main(["train", *over, "--state", str(state), "--out", str(run)]) == 0
    assert "knee at epoch" in capsys.readouterr().out
    assert json.loads((run / "result.json").read_text())["cost"]["epochs"] == 1
    assert "short: epoch=1 state=short loss=" in (run / "log.txt").read_text()  # the text log beside log.jsonl
    if layout == "kinetics":  # the same --out with another state or config trains nothing
        config = (run / "config.yaml").read_text()
        state.write_text("name: short\nlr: 0.02\nclip_length: 4\nbatch_size: 2\n")
        assert main(["train", *over, "data.crop_size=12", "--state", str(state), "--out", str(run)]) == 2
        err = capsys.readouterr().err
        assert "state.lr: run has 0.01, now 0.02" in err and "config.data.crop_size: run has 16, now 12" in err
        assert (run / "config.yaml").read_text() == config


def test_ucf101_paths_with_spaces(tmp_path, capsys):
    """Lists of home-made datasets name files with spaces, with and without a class index."""
    root = tmp_path / "home videos"
    (root / "classInd.txt").parent.mkdir(parents=True)
    (root / "classInd.txt").write_text("1 Birthday\n2 Garden\n")
    files = ["Birthday/cake and candles.avi", "Birthday/v 2.avi", "Garden/the lawn.mp4", "Garden/pond 2 b.mp4"]
    for n, rel in enumerate(files):
        write_video(root / rel, seed=n)
    (root / "trainlist01.txt").write_text(f"{files[0]} 1\n{files[1]} 1\n{files[2]} 2\n{files[3]} 2\n")
    (root / "testlist01.txt").write_text(f"{files[1]}\n{files[3]}\n")  # no index: the folder is the class
    classes, got = splits(root, tmp_path)
    assert classes == ["Birthday", "Garden"]
    assert got["test"] == [("home videos/Birthday/v 2.avi", 0), ("home videos/Garden/pond 2 b.mp4", 1)]
    assert sorted(got["train"] + got["val"]) == sorted((f"home videos/{rel}", n // 2) for n, rel in enumerate(files))
    assert check(root) == 0 and "checked 4 files: no problems" in capsys.readouterr().out
    (root / "testlist01.txt").write_text("Garden/the lawn.mp4 2 stray words\n")  # not a file name
    with pytest.raises(OptplanError, match=r"testlist01.txt:1: expected 'Class/video.avi \[INDEX\]'"):
        splits(root, tmp_path)


def test_quoted_csv_fields_keep_their_commas(tmp_path, capsys):
    """A quoted path or class name holding a comma stays one field: no bogus class, no shifted
    labels; a quoted header is a header."""
    root = tmp_path / "clips"
    rows = [("a, the first.mp4", "walk, fast"), ("b.mp4", "run"), ("c.mp4", "walk, fast"), ("d,e.mp4", "run")]
    for n, (rel, _) in enumerate(rows):
        write_video(root / rel, seed=n)
    lines = ['"path","label"'] + [f'"{rel}","{label}"' if "," in rel else f'{rel}, "{label}"' for rel, label in rows]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    (root / "test.csv").write_text('"a, the first.mp4","walk, fast"\nb.mp4,run\n')
    classes, got = splits(root, tmp_path)
    assert classes == ["run", "walk, fast"]
    assert sorted(got["train"] + got["val"]) == sorted((f"clips/{rel}", 1 if "walk" in label else 0)
                                                       for rel, label in rows)
    assert got["test"] == [("clips/a, the first.mp4", 1), ("clips/b.mp4", 0)]
    assert check(root) == 0 and "checked 4 files: no problems" in capsys.readouterr().out
    # a whitespace-separated list whose paths hold commas: the label is the last word
    (root / "list.txt").write_text("a, the first.mp4 1\nd,e.mp4 0\n")
    _, listed = splits(root, tmp_path, train_list=root / "list.txt", test_list=root / "list.txt")
    assert listed["test"] == [("clips/a, the first.mp4", 1), ("clips/d,e.mp4", 0)]


def test_paths_leaving_the_root_are_refused_unless_allowed(tmp_path, capsys):
    root, elsewhere = tmp_path / "set", tmp_path / "elsewhere"
    inside = [write_video(root / "walk" / f"{n}.mp4", seed=n) for n in range(2)]
    outside = [write_video(elsewhere / f"{n}.mp4", seed=5 + n) for n in range(2)]
    good = f"walk/0.mp4,walk\n{inside[1]},walk\n"  # an absolute path inside the root is fine
    (root / "train.csv").write_text(good + "../elsewhere/0.mp4,run\n")
    with pytest.raises(OptplanError, match=r"train.csv:3: video path '.*/set/\.\./elsewhere/0\.mp4' leaves "
                                           r"the dataset root .* data.allow_outside_root=true"):
        splits(root, tmp_path)
    assert check(root) == 2 and "data.allow_outside_root" in capsys.readouterr().err
    (root / "train.csv").write_text(good + f"{outside[1]},run\n")
    with pytest.raises(OptplanError, match=r"train.csv:3: video path .*elsewhere/1.mp4' leaves"):
        splits(root, tmp_path)
    (root / "ucf.txt").write_text("walk/../../elsewhere/0.mp4 1\n")  # UCF-style, '..' folded
    (root / "classInd.txt").write_text("1 walk\n")
    with pytest.raises(OptplanError, match=r"ucf.txt:1: video path"):
        splits(root, tmp_path, train_list=root / "ucf.txt")
    classes, got = splits(root, tmp_path, allow_outside_root=True)
    assert classes == ["run", "walk"] and ("elsewhere/1.mp4", 0) in got["train"] + got["val"]
    assert check(root, "data.allow_outside_root=true") == 0
    assert "checked 3 files: no problems" in capsys.readouterr().out


def phone_video(path: Path, rotation: int) -> np.ndarray:
    """A landscape-stored clip with rotation metadata as a phone writes it (``rotation``
    degrees counter-clockwise: -90 is a phone's 'rotate 90'); returns the stored frames."""
    from optplan.data.video import encode

    frames = np.full((4, 16, 32, 3), 30, dtype=np.uint8)
    frames[:, :8, :8] = 230  # a bright top-left corner and a grey top-right one, as stored
    frames[:, :8, -8:] = 130
    encode(path, frames, rotation=rotation)
    return frames


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_a_rotated_phone_video_decodes_upright(rotation, tmp_path):
    from optplan.data.cache import FrameCache
    from optplan.data.video import decode, probe

    stored = phone_video(tmp_path / "phone.mp4", rotation)
    upright = np.rot90(stored, rotation // 90, axes=(1, 2))  # as a player shows it
    frames = decode(tmp_path / "phone.mp4")
    assert frames.shape == upright.shape == ((4, 32, 16, 3) if rotation % 180 else (4, 16, 32, 3))
    assert np.abs(frames.astype(int) - upright).mean() < 4
    info = probe(tmp_path / "phone.mp4")
    assert (info.height, info.width) == upright.shape[1:3]
    assert decode(tmp_path / "phone.mp4", short_side=8).shape[1:3] == tuple(s // 2 for s in upright.shape[1:3])
    assert np.array_equal(FrameCache(tmp_path / "cache").frames(tmp_path / "phone.mp4"), frames)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to compare with")
def test_rotation_is_the_one_ffmpeg_shows(tmp_path):
    """The same turn as the ffmpeg command's own (auto-rotating) decoder."""
    from optplan.data.video import decode

    phone_video(tmp_path / "phone.mp4", -90)
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "phone.mp4"), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    ours = decode(tmp_path / "phone.mp4")
    theirs = np.frombuffer(out, dtype=np.uint8).reshape(ours.shape)
    assert np.abs(ours.astype(int) - theirs).mean() < 2

"""MMAction2 rawframe lists (folders of ``img_00001.jpg``...) read as videos, class names for
integer labels, and where the frame cache goes and how big it will be."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from optplan.cli import main
from optplan.data.cache import FrameCache, cache_path, human_bytes
from optplan.data.config import DataConfig
from optplan.data.source import decode, probe
from optplan.data.splits import load_splits
from optplan.data.video import BadVideo
from optplan.errors import OptplanError

FRAMES, SIZE = 32, 32  # what the tiny_dataset fixture writes
Usage = namedtuple("Usage", "total used free")


def write_frames(folder: Path, frames: np.ndarray, template: str = "img_%05d.jpg") -> Path:
    """uint8 RGB frames (T, H, W, 3) as numbered JPEGs from 1, as MMAction2's extraction writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(folder / template), mode="w", format="image2", options={"start_number": "1"}) as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuvj420p"
        stream.options = {"qmin": "1", "qmax": "2"}  # near-lossless, as extraction at high quality
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return folder


@pytest.fixture(scope="module")
def rawframes(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three videos of each of two classes of the built-in set, decoded into MMAction2 frame
    folders ``<class>/<video>/img_00001.jpg...`` under ``rawframes/``, with a rawframe list
    ``train_rawframes.txt`` (0-based labels) and its label map ``label_map.txt`` beside it."""
    top = tmp_path_factory.mktemp("mmaction2")
    by_class: dict[str, list[str]] = {}
    for line in (tiny_dataset / "trainlist01.txt").read_text().splitlines():
        rel = line.split()[0]
        by_class.setdefault(rel.split("/")[0], []).append(rel)
    chosen = {name: rels[:3] for name, rels in list(by_class.items())[:2]}
    rows = []
    for label, (name, rels) in enumerate(chosen.items()):
        for rel in rels:
            folder = Path(rel).with_suffix("")
            write_frames(top / "rawframes" / folder, decode(tiny_dataset / rel))
            rows.append(f"{folder} {FRAMES} {label}")
    (top / "train_rawframes.txt").write_text("\n".join(rows) + "\n")
    (top / "label_map.txt").write_text("\n".join(chosen) + "\n")
    return top


def test_a_frame_folder_is_read_as_its_video(tiny_dataset, rawframes, tmp_path):
    folder = next((rawframes / "rawframes").glob("*/*"))
    video = tiny_dataset / folder.relative_to(rawframes / "rawframes").with_suffix(".mp4")
    frames, original = decode(folder), decode(video)
    assert frames.shape == original.shape == (FRAMES, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert np.abs(frames.astype(int) - original.astype(int)).mean() < 4  # JPEG at q 1-2: a few grey levels
    assert decode(folder, short_side=16, max_frames=5).shape == (5, 16, 16, 3)
    assert probe(folder).frames == FRAMES and (probe(folder).height, probe(folder).width) == (SIZE, SIZE)
    # the other templates; flow files beside the frames are not frames
    for name, template in (("plain", "%05d.jpg"), ("image", "image_%05d.jpg")):
        other = write_frames(tmp_path / name, original[:4], template)
        write_frames(other, original[:2], "flow_x_%05d.jpg")
        assert decode(other).shape == (4, SIZE, SIZE, 3)
    (tmp_path / "plain" / "00003.jpg").unlink()
    with pytest.raises(BadVideo, match=r"00003.jpg is missing \(frames 1..4\)") as gap:
        decode(tmp_path / "plain")
    assert gap.value.kind == "truncated"
    (tmp_path / "none").mkdir()
    with pytest.raises(BadVideo, match="no frame files") as empty:
        probe(tmp_path / "none")
    assert empty.value.kind == "empty"


def test_without_the_cache_a_clip_decodes_only_its_own_jpegs(rawframes, tmp_path, monkeypatch):
    """MMAction2 reads the sampled frames of a folder, not the folder: so does optplan without
    the frame cache (a 16-frame clip of a 300-frame folder was 300 JPEG decodes before)."""
    from optplan.data import video
    from optplan.data.dataset import VideoDataset
    from optplan.data.sampling import ClipSpec
    from optplan.data.source import decode_at

    folder = next((rawframes / "rawframes").glob("*/*"))
    whole, real, opened = decode(folder), video.decode, []
    monkeypatch.setattr(video, "decode", lambda path, **kw: opened.append(path) or real(path, **kw))
    got = decode_at(folder, np.array([5, 2, 5, 99]))  # any order, repeats, past the end: the last
    assert np.array_equal(got, whole[[5, 2, 5, FRAMES - 1]]) and len(opened) == 3
    cfg = dict(root=rawframes / "rawframes", train_list=rawframes / "train_rawframes.txt", val_fraction=0.5,
               cache_dir=tmp_path / "cache", test_clips=2, test_crops=1, crop_size=16, short_side=16)
    records = load_splits(DataConfig(**cfg)).val
    clip = ClipSpec(4, frame_step=2)
    cached, uncached = (VideoDataset(records, DataConfig(**cfg, cache=c), mode="test", clip=clip) for c in (True, False))
    opened.clear()
    views, label = uncached[0]
    assert len(opened) == 2 * 4  # two test clips of 4 frames, nothing else decoded
    assert views.shape == (2, 3, 4, 16, 16) and label == cached[0][1]
    assert torch.allclose(views, cached[0][0])  # the same clips as from the frame cache


def test_rawframe_list_takes_class_names_and_refuses_a_line_that_does_not_fit(rawframes, tmp_path):
    root, listed = rawframes / "rawframes", rawframes / "train_rawframes.txt"
    cfg = dict(root=root, train_list=listed, cache_dir=tmp_path / "cache", val_fraction=0.5)
    numbered = load_splits(DataConfig(**cfg))
    assert numbered.classes == ["0", "1"]
    named = load_splits(DataConfig(**cfg, class_names=rawframes / "label_map.txt"))
    assert named.classes == (rawframes / "label_map.txt").read_text().split()
    records = named.train + named.val
    assert sorted(r.label for r in records) == [0, 0, 0, 1, 1, 1] and all(r.path.is_dir() for r in records)
    assert set(named.frames.values()) == {FRAMES}  # counted from the folders
    names = named.classes[::-1]  # the names as a list: a different order is a different labelling
    assert load_splits(DataConfig(**cfg, class_names=names)).classes == names
    with pytest.raises(OptplanError, match="data.class_names names a class twice"):
        load_splits(DataConfig(**cfg, class_names=["a", "a"]))
    bad = tmp_path / "bad_rawframes.txt"
    bad.write_text(listed.read_text() + "some/dir 32 0 4\n")  # a multi-label line
    with pytest.raises(OptplanError, match=r"bad_rawframes.txt:7: expected an MMAction2 rawframe line"):
        load_splits(DataConfig(**{**cfg, "train_list": bad}))


def test_video_list_labels_named_by_a_list(tiny_dataset, tmp_path):
    rows = [line.split() for line in (tiny_dataset / "trainlist01.txt").read_text().splitlines()][:8]
    (tmp_path / "videos.txt").write_text("".join(f"{p} {int(i) - 1}\n" for p, i in rows))
    names = (tiny_dataset / "classInd.txt").read_text().split()[1::2]
    used = max(int(i) for _, i in rows)
    splits = load_splits(DataConfig(root=tiny_dataset, train_list=tmp_path / "videos.txt", format="csv",
                                    cache_dir=tmp_path / "cache", class_names=names[:used]))
    assert splits.classes == names[:used]
    assert sorted({r.label for r in splits.train + splits.val}) == sorted({int(i) - 1 for _, i in rows})


def test_data_check_reads_frame_folders_and_names_a_missing_frame(rawframes, tmp_path, capsys):
    top = tmp_path / "copy"
    shutil.copytree(rawframes, top)
    args = ["data", "check", str(top / "rawframes"), f"data.train_list={top / 'train_rawframes.txt'}",
            f"data.class_names={top / 'label_map.txt'}"]
    assert main(args) == 0
    assert "checked 6 files: no problems" in capsys.readouterr().out
    folder = next((top / "rawframes").glob("*/*"))
    (folder / "img_00007.jpg").unlink()
    assert main(args) == 1
    out = capsys.readouterr().out
    assert str(folder) in out and "img_00007.jpg is missing (frames 1..32)" in out and "1 truncated" in out


@pytest.mark.slow
def test_one_epoch_trains_on_rawframes(rawframes, tmp_path, capsys):
    state = tmp_path / "state.yaml"
    state.write_text("name: short\nlr: 0.01\nclip_length: 4\nbatch_size: 2\n")
    over = [f"data.root={rawframes / 'rawframes'}", f"data.train_list={rawframes / 'train_rawframes.txt'}",
            f"data.class_names={rawframes / 'label_map.txt'}", f"data.cache_dir={tmp_path / 'cache'}",
            "data.val_fraction=0.5", "data.crop_size=16", "data.short_side=16", "data.num_workers=0",
            "train.threads=1", "train.progress=false", "knee.patience=1", "knee.max_epochs=1"]
    run = tmp_path / "run"
    assert main(["train", *over, "--state", str(state), "--out", str(run)]) == 0
    assert "knee at epoch" in capsys.readouterr().out
    assert json.loads((run / "result.json").read_text())["cost"]["epochs"] == 1
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 6  # every folder decoded into the cache


def test_frame_cache_goes_outside_the_dataset(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("OPTPLAN_CACHE", str(tmp_path / "home"))
    default = cache_path(DataConfig(root=tiny_dataset))
    assert default.parent == tmp_path / "home" / "frames" and default.name.startswith(f"{tiny_dataset.name}-")
    assert cache_path(DataConfig(root=tiny_dataset, decode_short_side=16)) != default  # one folder per decode size
    load_splits(DataConfig(root=tiny_dataset))
    assert (default / "probe.json").is_file() and not (tiny_dataset / ".cache").exists()
    monkeypatch.delenv("OPTPLAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path(DataConfig(root=tiny_dataset)).parent == tmp_path / "xdg" / "optplan" / "frames"
    kept = tiny_dataset / ".cache"  # an earlier version's cache keeps working where the config points
    assert cache_path(DataConfig(root=tiny_dataset, cache_dir=kept)) == kept


def test_frame_cache_size_is_announced_and_checked_against_the_disk(rawframes, tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    shutil.copytree(rawframes, root)
    monkeypatch.setenv("OPTPLAN_CACHE", str(tmp_path / "home"))
    cfg = DataConfig(root=root / "rawframes", train_list=root / "train_rawframes.txt", val_fraction=0.5)
    directory, per_video = cache_path(cfg), FRAMES * SIZE * SIZE * 3
    (root / "rawframes" / ".cache").mkdir()
    (root / "rawframes" / ".cache" / "0123-4567.npy").write_bytes(b"")  # as an earlier version left it
    splits = load_splits(cfg)
    err = capsys.readouterr().err
    assert f"frame cache: decoding 6 videos into {directory} (about {human_bytes(6 * per_video)};" in err
    assert f"{root / 'rawframes' / '.cache'} holds a cache of an earlier optplan" in err
    load_splits(cfg)  # loading the splits again (another session of the process) says it once only
    assert "frame cache" not in capsys.readouterr().err
    entry = FrameCache(directory).entry(splits.train[0].path)
    FrameCache(directory).frames(splits.train[0].path)
    assert 0 < entry.stat().st_size - per_video < 200  # the estimate is what one entry takes (+ its header)
    for record in splits.train + splits.val:
        FrameCache(directory).frames(record.path)
    load_splits(cfg)
    assert "frame cache" not in capsys.readouterr().err  # a warm cache says nothing

    small = cfg.model_copy(update={"decode_short_side": 16})  # another folder, 6 videos at 16x16 to decode
    assert load_splits(small).train and f"(about {human_bytes(6 * per_video // 4)};" in capsys.readouterr().err
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OptplanError) as full:
        load_splits(small)
    message = str(full.value)
    assert (f"needs about {human_bytes(6 * per_video // 4)} for 6 videos in {str(cache_path(small))!r}, "
            "but only 1 kB are free there") in message
    assert "data.cache_dir" in message and "OPTPLAN_CACHE" in message and "data.cache=false" in message
    assert load_splits(small.model_copy(update={"cache": False})).train  # no cache: nothing to hold

"""Annotation readers: UCF101/HMDB51 lists, Kinetics CSV, path,label CSV, Something-Something JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optplan.data.annotations import detect_format, read_annotations
from optplan.data.config import DataConfig
from optplan.data.splits import find_lists, hold_out, load_splits
from optplan.errors import OptplanError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_ucf101_lists_with_and_without_indices(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (tmp_path / "trainlist01.txt").write_text("Archery/v_Archery_g01_c01.avi 2\nApplyEyeMakeup/v_A_g01_c01.avi 1\n")
    (tmp_path / "testlist01.txt").write_text("Archery/v_Archery_g02_c01.avi\n")
    train = read_annotations(tmp_path / "trainlist01.txt", tmp_path)
    test = read_annotations(tmp_path / "testlist01.txt", tmp_path)
    assert train.classes == ["ApplyEyeMakeup", "Archery"]
    assert [(r.path.name, r.label) for r in train.records] == [("v_Archery_g01_c01.avi", 1), ("v_A_g01_c01.avi", 0)]
    assert [(r.path, r.label) for r in test.records] == [(tmp_path / "Archery/v_Archery_g02_c01.avi", 1)]
    assert detect_format(tmp_path / "trainlist01.txt") == "ucf101"
    (tmp_path / "bad.txt").write_text("Archery/x.avi 3\n")
    with pytest.raises(OptplanError, match="outside 1..2"):
        read_annotations(tmp_path / "bad.txt", tmp_path)
    # a 0-based list (MMAction2's) beside classInd.txt whose labels happen to lie in 1..n: refused,
    # not read shifted by one
    (tmp_path / "zero_based.txt").write_text("ApplyEyeMakeup/v_A_g01_c01.avi 1\nArchery/v_Archery_g01_c01.avi 0\n")
    (tmp_path / "shifted.txt").write_text("Archery/v_Archery_g01_c01.avi 1\n")
    with pytest.raises(OptplanError, match=r"shifted.txt:1: .*folder 'Archery' \(index 2\).*data.format=csv"):
        read_annotations(tmp_path / "shifted.txt", tmp_path)
    with pytest.raises(OptplanError, match="outside 1..2"):
        read_annotations(tmp_path / "zero_based.txt", tmp_path)


def test_kinetics_csv_finds_by_label_spaced_and_flat_files(tmp_path):
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "air drumming,abc,10,20,train\nabseiling,def,0,10,train\nabseiling,ghi,5,15,train\n")
    spaced = touch(tmp_path / "air drumming" / "abc_000010_000020.mp4")
    underscored = touch(tmp_path / "abseiling" / "def_000000_000010.webm")
    ann = read_annotations(tmp_path / "train.csv", tmp_path)
    assert ann.classes == ["abseiling", "air drumming"]
    assert [(r.path, r.label) for r in ann.records][:2] == [(spaced, 1), (underscored, 0)]
    assert ann.records[2].path == tmp_path / "abseiling" / "ghi_000005_000015.mp4"  # missing: canonical name
    flat = touch(tmp_path / "ghi_000005_000015.mp4")
    assert read_annotations(tmp_path / "train.csv", tmp_path).records[2].path == flat
    assert detect_format(tmp_path / "train.csv") == "kinetics"


def test_path_label_csv_with_names_or_indices(tmp_path):
    (tmp_path / "names.csv").write_text("path,label\na/1.mp4,walk\nb/2.mp4,run\n")
    ann = read_annotations(tmp_path / "names.csv", tmp_path)
    assert ann.classes == ["run", "walk"] and [r.label for r in ann.records] == [1, 0]
    (tmp_path / "ints.csv").write_text("a/1.mp4,2\nb/2.mp4,0\n")
    ann = read_annotations(tmp_path / "ints.csv", tmp_path, format="csv")
    assert ann.classes == ["0", "1", "2"] and [r.label for r in ann.records] == [2, 0]
    (tmp_path / "mmaction.txt").write_text("a/1.mp4 1\nb/2.mp4 0\n")  # no classInd.txt: 0-based
    assert detect_format(tmp_path / "mmaction.txt", tmp_path) == "csv"
    ann = read_annotations(tmp_path / "mmaction.txt", tmp_path)
    assert [(r.path, r.label) for r in ann.records] == [(tmp_path / "a/1.mp4", 1), (tmp_path / "b/2.mp4", 0)]
    with pytest.raises(OptplanError, match="'jump' is not among"):
        (tmp_path / "test.csv").write_text("c/3.mp4,jump\n")
        read_annotations(tmp_path / "test.csv", tmp_path, classes=["run", "walk"])


def test_something_something_json(tmp_path):
    entries = [{"id": "7", "template": "Pushing [something] from left to right", "label": "pushing a pen"},
               {"id": "9", "template": "Dropping [something]"}]
    (tmp_path / "train.json").write_text(json.dumps(entries))
    mp4 = touch(tmp_path / "9.mp4")
    ann = read_annotations(tmp_path / "train.json", tmp_path)
    assert ann.classes == ["Dropping something", "Pushing something from left to right"]
    assert [(r.path, r.label) for r in ann.records] == [(tmp_path / "7.webm", 1), (mp4, 0)]
    (tmp_path / "labels.json").write_text(json.dumps({"Pushing something from left to right": "0",
                                                      "Dropping something": "1"}))
    assert [r.label for r in read_annotations(tmp_path / "train.json", tmp_path).records] == [0, 1]
    (tmp_path / "test.json").write_text(json.dumps([{"id": "3"}]))
    with pytest.raises(OptplanError, match="no 'template'"):
        read_annotations(tmp_path / "test.json", tmp_path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(OptplanError, match="does not exist"):
        read_annotations(tmp_path / "nope.txt", tmp_path)
    with pytest.raises(OptplanError, match="no annotation file found"):
        find_lists(tmp_path)


def test_hold_out_is_stratified_and_seeded(tiny_dataset):
    train = read_annotations(tiny_dataset / "trainlist01.txt", tiny_dataset).records
    rest, val = hold_out(train, 0.25, seed=0)
    assert len(val) == 12 and sorted(r.label for r in val) == list(range(12))
    assert not {r.path for r in val} & {r.path for r in rest}
    assert hold_out(train, 0.25, seed=0) == (rest, val) and hold_out(train, 0.25, seed=1)[1] != val


def test_unwritable_cache_dir_names_the_setting(tiny_dataset, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OptplanError, match="set data.cache_dir"):
        load_splits(DataConfig(root=tiny_dataset, cache_dir=tmp_path / "file" / "cache"))


def test_load_splits_finds_the_built_in_lists(tiny_dataset, tmp_path, monkeypatch):
    cfg = DataConfig(root=tiny_dataset, cache_dir=tmp_path, val_fraction=0.25)
    splits = load_splits(cfg)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 12, 24)
    assert len(splits.classes) == 12 and not splits.bad
    monkeypatch.setattr("optplan.data.check.probe", lambda path: pytest.fail(f"probed {path} again"))
    assert load_splits(cfg) == splits  # probe results come from cache_dir/probe.json

"""``optplan data synth`` and ``optplan data check`` through the real command line."""

from __future__ import annotations

from optplan.cli import main


def test_synth_then_check(tmp_path, capsys):
    root = tmp_path / "set"
    args = ["data", "synth", str(root), "--videos-per-class", "2", "--frames", "8", "--size", "16",
            "--classes", "3", "--seed", "4"]
    assert main(args) == 0
    assert "wrote 6 videos (3 classes, 3 train / 3 test" in capsys.readouterr().out
    assert len(list(root.glob("*/*.mp4"))) == 6 and (root / "classInd.txt").is_file()
    assert main(["data", "check", str(root)]) == 0
    assert "checked 6 files: no problems" in capsys.readouterr().out
    assert main([*args[:2], str(tmp_path / "again"), *args[3:]]) == 0  # same seed: same bytes
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix != ".json")
    assert files and all((root / f).read_bytes() == (tmp_path / "again" / f).read_bytes() for f in files)

    broken = root / (root / "trainlist01.txt").read_text().split()[0]
    broken.write_bytes(broken.read_bytes()[:100])
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert str(broken) in out and "truncated" in out and "1 with problems" in out
    # only the file named: the Kinetics test list does not hold the broken (train) video
    assert main(["data", "check", str(root), "--annotations", str(root / "test.csv")]) == 0


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path)]) == 2
    assert "no annotation file found" in capsys.readouterr().err
    assert main(["data", "synth", str(tmp_path / "x"), "--size", "15"]) == 2
    assert "size must be an even number" in capsys.readouterr().err


def test_check_reports_conflicting_labels_and_classes_without_training_videos(tmp_path, capsys):
    root = tmp_path / "set"
    assert main(["data", "synth", str(root), "--videos-per-class", "2", "--frames", "8", "--size", "16",
                 "--classes", "3", "--seed", "4", "--test-share", "0.5"]) == 0
    classes = [line.split()[1] for line in (root / "classInd.txt").read_text().splitlines()]
    train = {line.split()[0].split("/")[0]: line.split()[0] for line in (root / "trainlist01.txt").read_text().splitlines()}
    video = train[classes[0]]
    # the third class has no training video; the first video is listed under all three classes
    (root / "mine.txt").write_text(f"{video} 1\n{train[classes[1]]} 2\n{video} 2\n")
    (root / "mytest.txt").write_text(f"{video} 3\n")
    args = ["data", "check", str(root), f"data.train_list={root / 'mine.txt'}",
            f"data.test_list={root / 'mytest.txt'}"]
    assert main(args) == 1
    captured = capsys.readouterr()
    rows = {line.split()[1]: line for line in captured.out.splitlines()[1:-1]}
    listed = sorted([(classes[0], "mine.txt"), (classes[1], "mine.txt"), (classes[2], "mytest.txt")])
    assert rows["conflicting-labels"].startswith(str(root / video))
    assert rows["conflicting-labels"].endswith("listed as " + " and as ".join(f"{n!r} ({w})" for n, w in listed))
    assert rows["no-training-videos"].startswith(str(root / "mine.txt"))
    assert rows["no-training-videos"].endswith(f"class {classes[2]!r} has no video in it")
    assert "checked 2 files: 2 with problems (1 conflicting-labels, 1 no-training-videos)" in captured.out
    assert "data check" in captured.err  # the progress bar, on stderr
    assert main([*args, "--quiet"]) == 1 and capsys.readouterr().err == ""

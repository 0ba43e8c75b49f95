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

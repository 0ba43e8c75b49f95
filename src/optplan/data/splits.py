"""Train / val / test lists of a dataset, from a ``DataConfig``, with bad files weeded out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from optplan.data.annotations import Annotations, VideoRecord, read_annotations
from optplan.data.cache import cache_dir, reserve
from optplan.data.check import Problem, list_problems, probe_records
from optplan.data.config import DataConfig
from optplan.errors import OptplanError

log = logging.getLogger("optplan.data")

# (folder, train list, test list) looked for from the root, in order: what `optplan data synth`
# writes first, then where the public datasets ship their lists (UCF101's ucfTrainTestlist/ and
# HMDB51's split folder unpack beside the video folder, Kinetics copies keep annotations/ next
# to train/ and val/). "{split}" is data.split; "." is the folder itself (HMDB51: one folder
# holds the train and the test half).
DEFAULT_LISTS = (
    (".", "trainlist0{split}.txt", "testlist0{split}.txt"),
    ("ucfTrainTestlist", "trainlist0{split}.txt", "testlist0{split}.txt"),
    ("../ucfTrainTestlist", "trainlist0{split}.txt", "testlist0{split}.txt"),
    ("testTrainMulti_7030_splits", ".", "."),
    ("../testTrainMulti_7030_splits", ".", "."),
    (".", "train.csv", "test.csv"),
    (".", "train.csv", "validate.csv"),
    ("annotations", "train.csv", "val.csv"),
    (".", "train.json", "validation.json"),
    (".", "something-something-v2-train.json", "something-something-v2-validation.json"),
)


@dataclass
class Splits:
    """Records per split (labels index ``classes``) and the files dropped as bad."""

    train: list[VideoRecord]
    val: list[VideoRecord]
    test: list[VideoRecord]
    classes: list[str]
    bad: list[Problem] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)
    """Declared frame count per usable file (0: unknown), as the probe found it."""

    def longest(self) -> int | None:
        """Frames of the longest usable video, or None when some container does not say."""
        counts = [self.frames.get(str(r.path), 0) for r in self.train + self.val + self.test]
        return max(counts) if counts and all(counts) else None


class Lists(NamedTuple):
    """What a dataset's annotation files say, before the validation hold-out and the probe."""

    train: Annotations
    val: Annotations | None
    test: Annotations | None


def find_lists(root: str | Path, split: int = 1) -> tuple[Path, Path | None]:
    """The (train, test) annotation files of a dataset root (test may be None)."""
    root = Path(root)
    for folder, train, test in DEFAULT_LISTS:
        base = root.absolute().parent / folder[3:] if folder.startswith("../") else root / folder
        train_path, test_path = (base / name.format(split=split) for name in (train, test))
        if train_path.is_file() or (train == "." and train_path.is_dir()):
            return train_path, (test_path if test_path.exists() else None)
    names = ", ".join(sorted({str(Path(f, n.format(split=split))) for f, *pair in DEFAULT_LISTS for n in pair}))
    raise OptplanError(f"no annotation file found from {str(root)!r} (looked for {names}); set "
                       "data.train_list, or create the built-in dataset with 'optplan data synth DIR'")


def read_class_names(names: Path | list[str]) -> list[str]:
    """``data.class_names``: a label map file (one class name per line, line 1 = label 0, as
    MMAction2's label_map files) or the names themselves, in label order."""
    where = f"data.class_names {str(names)!r}" if isinstance(names, Path) else "data.class_names"
    if isinstance(names, Path):
        try:
            names = [line.strip() for line in names.read_text().splitlines() if line.strip()]
        except OSError as err:
            raise OptplanError(f"{where} cannot be read: {err.strerror}") from None
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise OptplanError(f"{where} names a class twice ({', '.join(map(repr, twice))})")
    return list(names)


def read_lists(cfg: DataConfig) -> Lists:
    """Read the configured (or found) training, validation and test lists, the latter two
    with the training list's classes."""
    root = Path(cfg.root)
    train_list, test_list = cfg.train_list, cfg.test_list
    if train_list is None:
        train_list, found_test = find_lists(root, cfg.split)
        test_list = test_list or found_test
    names = read_class_names(cfg.class_names) if cfg.class_names is not None else None
    read = partial(read_annotations, root=root, format=cfg.format, split=cfg.split,
                   allow_outside_root=cfg.allow_outside_root)
    train = read(train_list, classes=names)
    val, test = (read(path, classes=train.classes, subset="test") if path is not None else None
                 for path in (cfg.val_list, test_list))
    return Lists(train, val, test)


def hold_out(records: list[VideoRecord], fraction: float, seed: int) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Split records into (train, val), taking ``fraction`` of every class (at least one video
    of classes with two or more) at random but reproducibly for a seed."""
    rng = np.random.default_rng([seed, 7919])
    by_class: dict[int, list[int]] = {}
    for i, record in enumerate(records):
        by_class.setdefault(record.label, []).append(i)
    val_idx: set[int] = set()
    for label in sorted(by_class):
        members = by_class[label]
        take = min(len(members) - 1, max(1, round(len(members) * fraction)))
        val_idx.update(rng.permutation(members)[:take].tolist())
    return ([r for i, r in enumerate(records) if i not in val_idx],
            [r for i, r in enumerate(records) if i in val_idx])


def _without(records: list[VideoRecord], paths: set[str]) -> list[VideoRecord]:
    return [r for r in records if str(r.path) not in paths]


def load_splits(cfg: DataConfig, seed: int = 0) -> Splits:
    """Read the configured lists, hold out the validation share, probe every file.

    The lists' own problems (a video under two classes, a class without training videos) are
    logged. Bad files are logged with their path and dropped; if more than
    ``cfg.max_bad_fraction`` of the listed files are bad, raises :class:`OptplanError` before
    any training starts. With ``data.cache``, the frame cache's growth is then announced and
    checked against the free disk (:func:`optplan.data.cache.reserve`).
    """
    root = Path(cfg.root)
    if not root.is_dir():
        raise OptplanError(f"data.root {str(root)!r} is not a directory; create the built-in "
                           f"dataset with 'optplan data synth {root}' or point data.root at yours")
    train, val_list, test = read_lists(cfg)
    for problem in list_problems([part for part in (train, val_list, test) if part is not None], train):
        # trained on as listed (the lists are the user's to fix), but not in silence
        log.warning("%s: %s (%s); 'optplan data check' lists every problem", problem.path, problem.kind,
                    problem.detail)
    if val_list is not None:
        train_records, val = train.records, val_list.records
    else:
        train_records, val = hold_out(train.records, cfg.val_fraction, seed)
    splits = Splits(train_records, val, test.records if test else [], train.classes)

    listed = splits.train + splits.val + splits.test
    problems = probe_records(listed, cache_dir(cfg), frames=splits.frames)
    bad_paths = {p.path for p in problems}
    share = len(problems) / max(1, len({str(r.path) for r in listed}))
    for problem in problems:
        log.warning("skipping %s: %s (%s)", problem.path, problem.kind, problem.detail)
    if share > cfg.max_bad_fraction:
        shown = "\n".join(f"  {p.path}: {p.kind} ({p.detail})" for p in problems[:5])
        raise OptplanError(
            f"{len(problems)} of the listed videos ({share:.0%}) are unusable, more than "
            f"data.max_bad_fraction={cfg.max_bad_fraction}:\n{shown}\n"
            f"run 'optplan data check {root}' for the full list")
    splits.train, splits.val, splits.test = (_without(part, bad_paths)
                                             for part in (splits.train, splits.val, splits.test))
    splits.bad = problems
    if cfg.cache:
        reserve(cfg, [r.path for r in splits.train + splits.val + splits.test])
    return splits

"""Train / val / test lists of a dataset, from a ``DataConfig``, with bad files weeded out."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from optplan.data.annotations import Annotations, VideoRecord, read_annotations
from optplan.data.check import Problem, probe_records
from optplan.data.config import DataConfig
from optplan.errors import OptplanError

log = logging.getLogger("optplan.data")

# (train, test) file names looked for in the root, in order: what `optplan data synth` writes
# first, then the names the public datasets ship with.
DEFAULT_LISTS = (
    ("trainlist01.txt", "testlist01.txt"),
    ("train.csv", "test.csv"),
    ("train.csv", "validate.csv"),
    ("train.json", "validation.json"),
    ("something-something-v2-train.json", "something-something-v2-validation.json"),
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


def find_lists(root: str | Path) -> tuple[Path, Path | None]:
    """The (train, test) annotation files of a dataset root (test may be None)."""
    root = Path(root)
    for train, test in DEFAULT_LISTS:
        if (root / train).is_file():
            return root / train, (root / test if (root / test).is_file() else None)
    names = ", ".join(sorted({n for pair in DEFAULT_LISTS for n in pair}))
    raise OptplanError(f"no annotation file found in {str(root)!r} (looked for {names}); set "
                       "data.train_list, or create the built-in dataset with 'optplan data synth DIR'")


def read_dataset(root: str | Path, train_list: Path | None = None, test_list: Path | None = None,
                 format: str = "auto") -> tuple[Annotations, Annotations | None]:
    """Read the training list and the test list (with the training list's classes)."""
    if train_list is None:
        train_list, found_test = find_lists(root)
        test_list = test_list or found_test
    train = read_annotations(train_list, root, format)
    test = read_annotations(test_list, root, format, classes=train.classes) if test_list else None
    return train, test


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


def cache_dir(cfg: DataConfig) -> Path:
    """Where decoded frames and probe results live, created if needed; refuses a directory
    that cannot be written (a read-only dataset root) with the setting that fixes it."""
    path = Path(cfg.cache_dir) if cfg.cache_dir is not None else Path(cfg.root) / ".cache"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OptplanError(f"cache directory {str(path)!r} cannot be created ({err.strerror}); "
                           "set data.cache_dir to a writable place") from None
    if not os.access(path, os.W_OK):
        raise OptplanError(f"cache directory {str(path)!r} is not writable; set data.cache_dir "
                           "to a writable place")
    return path


def load_splits(cfg: DataConfig, seed: int = 0) -> Splits:
    """Read the configured lists, hold out the validation share, probe every file.

    Bad files are logged with their path and dropped; if more than ``cfg.max_bad_fraction`` of
    the listed files are bad, raises :class:`OptplanError` before any training starts.
    """
    root = Path(cfg.root)
    if not root.is_dir():
        raise OptplanError(f"data.root {str(root)!r} is not a directory; create the built-in "
                           f"dataset with 'optplan data synth {root}' or point data.root at yours")
    train, test = read_dataset(root, cfg.train_list, cfg.test_list, cfg.format)
    if cfg.val_list is not None:
        val = read_annotations(cfg.val_list, root, cfg.format, classes=train.classes).records
        train_records = train.records
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
    return splits

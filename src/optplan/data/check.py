"""Finding bad videos before training: a cheap cached probe, a full decode for ``data check``,
and the lists' own contradictions (one video under two classes, classes no training video has)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from optplan.data.annotations import Annotations, VideoRecord
from optplan.data.source import decode, probe
from optplan.data.video import BadVideo
from optplan.records_io import write_atomic

PROBE_FILE = "probe.json"


@dataclass(frozen=True)
class Problem:
    """One unusable (or suspicious) file: ``kind`` is missing, empty, unreadable, no-video,
    truncated or short; ``detail`` says what was seen. The lists' problems are rows too:
    ``conflicting-labels`` (``path`` the video) and ``no-training-videos`` (``path`` the list)."""

    path: str
    kind: str
    detail: str

    @classmethod
    def from_error(cls, err: BadVideo) -> "Problem":
        return cls(err.path, err.kind, err.detail)


def _unique_paths(records: Iterable[VideoRecord]) -> list[Path]:
    return list(dict.fromkeys(Path(r.path) for r in records))


def _signature(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def probe_records(records: Iterable[VideoRecord], cache_dir: str | Path | None = None, *,
                  frames: dict[str, int] | None = None) -> list[Problem]:
    """Probe every listed file (open it, decode its first frame) and return the problems.

    Results are kept in ``cache_dir/probe.json`` keyed by path, size and mtime, so a second
    ``load_splits`` over unchanged files costs one ``stat`` per file. ``frames``, if given,
    receives the frame count each good file's container declares (0: it does not say; an
    entry cached before counts were kept is left out).
    """
    store = Path(cache_dir) / PROBE_FILE if cache_dir is not None else None
    known: dict = {}
    if store is not None and store.is_file():
        try:
            known = json.loads(store.read_text())
        except (OSError, json.JSONDecodeError):
            known = {}
    problems, changed = [], False
    for path in _unique_paths(records):
        signature, key = _signature(path), str(path.absolute())
        cached = known.get(key)
        if signature is not None and cached is not None and cached[0] == signature:
            result, count = cached[1], (cached[2] if len(cached) > 2 else None)
        else:
            try:
                result, count = None, probe(path).frames
            except BadVideo as err:
                result, count = [err.kind, err.detail], None
            if signature is not None:
                known[key], changed = [signature, result, count], True
        if result is not None:
            problems.append(Problem(str(path), *result))
        elif frames is not None and count is not None:
            frames[str(path)] = count
    if store is not None and changed:
        write_atomic(store, json.dumps(known))
    return problems


def check_records(records: Iterable[VideoRecord], *, short_side: int | None = None,
                  min_frames: int = 1, progress: bool = False) -> tuple[int, list[Problem]]:
    """Decode every listed file completely; return (files checked, problems).

    A file with fewer than ``min_frames`` frames is reported as ``short`` (training pads it).
    ``progress`` draws a bar over the files on stderr (a real dataset takes hours to decode).
    """
    from tqdm.auto import tqdm

    paths = _unique_paths(records)
    problems = []
    for path in tqdm(paths, desc="data check", unit="video", disable=not progress, leave=False):
        try:
            frames = decode(path, short_side=short_side, strict=True)
        except BadVideo as err:
            problems.append(Problem.from_error(err))
            continue
        if len(frames) < min_frames:
            problems.append(Problem(str(path), "short", f"{len(frames)} frames < {min_frames}"))
    return len(paths), problems


def list_problems(lists: Iterable[Annotations], train: Annotations | None = None) -> list[Problem]:
    """What the annotation files get wrong before any video is opened.

    A video listed under two classes (in one list or across lists; compared by class *name*,
    so lists read with their own class lists compare) trains on a contradiction, or scores a
    model against another label than it learnt: ``conflicting-labels``, naming the classes and
    the lists. A class of ``train`` (the training list) with no video in it can never be
    learnt, yet counts in every accuracy: ``no-training-videos``, one row per class.
    """
    lists = list(lists)
    seen: dict[str, dict[str, set[str]]] = {}  # video -> class name -> lists naming it so
    for annotations in lists:
        where = annotations.source.name if annotations.source is not None else "a list"
        for record in annotations.records:
            video = os.path.normpath(Path(record.path).absolute())
            seen.setdefault(video, {}).setdefault(annotations.classes[record.label], set()).add(where)
    problems = [Problem(video, "conflicting-labels", "listed as " + " and as ".join(
                    f"{name!r} ({', '.join(sorted(where))})" for name, where in sorted(labels.items())))
                for video, labels in seen.items() if len(labels) > 1]
    if train is not None:
        used = {record.label for record in train.records}
        source = str(train.source) if train.source is not None else "the training list"
        problems += [Problem(source, "no-training-videos", f"class {name!r} has no video in it")
                     for label, name in enumerate(train.classes) if label not in used]
    return problems


def format_problems(problems: list[Problem], checked: int) -> str:
    """A plain-text table: one row per file, then the count per kind."""
    if not problems:
        return f"checked {checked} files: no problems"
    width = max(len("file"), *(len(p.path) for p in problems))
    kind_width = max(len("problem"), *(len(p.kind) for p in problems))
    rows = [f"{'file':<{width}}  {'problem':<{kind_width}}  detail"]
    rows += [f"{p.path:<{width}}  {p.kind:<{kind_width}}  {p.detail}" for p in problems]
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(Counter(p.kind for p in problems).items()))
    rows.append(f"checked {checked} files: {len(problems)} with problems ({counts})")
    return "\n".join(rows)

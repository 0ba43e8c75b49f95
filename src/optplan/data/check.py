"""Finding bad videos before training: a cheap cached probe, and a full decode for ``data check``."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from optplan.data.annotations import VideoRecord
from optplan.data.source import decode, probe
from optplan.data.video import BadVideo

PROBE_FILE = "probe.json"


@dataclass(frozen=True)
class Problem:
    """One unusable (or suspicious) file: ``kind`` is missing, empty, unreadable, no-video,
    truncated or short; ``detail`` says what was seen."""

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


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(data, out)
    os.replace(tmp, path)


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
        _write_json(store, known)
    return problems


def check_records(records: Iterable[VideoRecord], *, short_side: int | None = None,
                  min_frames: int = 1) -> tuple[int, list[Problem]]:
    """Decode every listed file completely; return (files checked, problems).

    A file with fewer than ``min_frames`` frames is reported as ``short`` (training pads it).
    """
    paths = _unique_paths(records)
    problems = []
    for path in paths:
        try:
            frames = decode(path, short_side=short_side, strict=True)
        except BadVideo as err:
            problems.append(Problem.from_error(err))
            continue
        if len(frames) < min_frames:
            problems.append(Problem(str(path), "short", f"{len(frames)} frames < {min_frames}"))
    return len(paths), problems


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

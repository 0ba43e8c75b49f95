"""Annotation files of real datasets, read into ``VideoRecord(path, label)`` lists.

Formats (``DataConfig.format``; ``auto`` tells them apart by extension and first line):

- ``ucf101``: UCF101 / HMDB51 split lists: ``classInd.txt`` (``1 ApplyEyeMakeup``) next to the
  list or in the root; list lines ``Class/v_x.avi 1`` (1-based class index) or just the path,
  whose first directory is then the class name (as in UCF101's ``testlist01.txt``).
- ``kinetics``: CSV with ``label,youtube_id,time_start,time_end[,split]``; the file is
  ``{youtube_id}_{start:06d}_{end:06d}.mp4`` (the name Kinetics downloaders write) under
  ``root/label/`` (spaces kept or turned into ``_``) or directly under ``root``.
- ``csv``: ``path,label`` lines (header optional), or ``path label`` as MMAction-style lists
  write them; labels are names or 0-based indices. A ``.txt`` list with no ``classInd.txt``
  is read this way.
- ``ssv2``: Something-Something JSON list of ``{"id", "template" | "label"}``; the class is
  the template without brackets, the file ``{id}.webm`` (or ``.mp4``) under the root. A
  ``labels.json`` / ``something-something-v2-labels.json`` next to it fixes class indices.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from optplan.errors import OptplanError

FORMATS = ("ucf101", "kinetics", "csv", "ssv2")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov")
SSV2_LABEL_FILES = ("labels.json", "something-something-v2-labels.json")


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video: its file and its class index (0-based)."""

    path: Path
    label: int


class Annotations(NamedTuple):
    """What one annotation file says: the records and the class names, index = label."""

    records: list[VideoRecord]
    classes: list[str]


def detect_format(path: Path, root: Path | None = None) -> str:
    """Guess the annotation format of ``path`` from its extension, first line and whether a
    ``classInd.txt`` lies next to it (or in ``root``)."""
    if path.suffix.lower() == ".json":
        return "ssv2"
    first = next((line for line in _lines(path)), "")
    header = [c.strip().lower() for c in first.split(",")]
    if "youtube_id" in header:
        return "kinetics"
    if "," in first:
        return "csv"
    class_ind = [path.parent / "classInd.txt"] + ([Path(root) / "classInd.txt"] if root else [])
    return "ucf101" if any(c.is_file() for c in class_ind) else "csv"


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as err:
        raise OptplanError(f"annotation file {str(path)!r} cannot be read: {err}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _class_index(name: str, classes: list[str], where: str) -> int:
    try:
        return classes.index(name)
    except ValueError:
        raise OptplanError(f"{where}: class {name!r} is not among the {len(classes)} known classes "
                           f"(first: {classes[:3]}); is the list from the same dataset?") from None


def _find_class_ind(path: Path, root: Path) -> Path:
    for candidate in (path.parent / "classInd.txt", root / "classInd.txt"):
        if candidate.is_file():
            return candidate
    raise OptplanError(f"UCF101-style list {str(path)!r} needs a classInd.txt next to it or in "
                       f"{str(root)!r} ('1 ClassName' per line)")


def read_class_ind(path: Path) -> list[str]:
    """``classInd.txt`` lines ``index name`` (1-based) -> names in index order."""
    pairs = []
    for n, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise OptplanError(f"{path}:{n}: expected 'INDEX NAME', got {line!r}")
        pairs.append((int(parts[0]), parts[1]))
    return [name for _, name in sorted(pairs)]


def _read_ucf(path: Path, root: Path, classes: list[str] | None) -> Annotations:
    classes = classes or read_class_ind(_find_class_ind(path, root))
    records = []
    for n, line in enumerate(_lines(path), 1):
        parts = line.split()
        rel = parts[0]
        if len(parts) > 1:
            index = int(parts[1]) - 1 if parts[1].isdigit() else -1
            if not 0 <= index < len(classes):
                raise OptplanError(f"{path}:{n}: class index {parts[1]} is outside 1..{len(classes)}")
        else:
            index = _class_index(Path(rel).parts[0], classes, f"{path}:{n}")
        records.append(VideoRecord(root / rel, index))
    return Annotations(records, classes)


def kinetics_file(root: Path, label: str, youtube_id: str, start: float, end: float) -> Path:
    """The file of a Kinetics row: the first existing of the usual layouts (by-label or flat,
    common extensions); the canonical by-label ``.mp4`` if none exists (reported as missing)."""
    stem = f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"
    folders = [root / label, root / label.replace(" ", "_"), root]
    candidates = [folder / (stem + ext) for folder in folders for ext in VIDEO_EXTENSIONS]
    return next((c for c in candidates if c.exists()), candidates[0])


def _read_kinetics(path: Path, root: Path, classes: list[str] | None) -> Annotations:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    need = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not need <= set(rows[0]):
        raise OptplanError(f"Kinetics CSV {str(path)!r} needs the columns {sorted(need)}")
    classes = classes or sorted({r["label"] for r in rows})
    records = [VideoRecord(kinetics_file(root, r["label"], r["youtube_id"], r["time_start"], r["time_end"]),
                           _class_index(r["label"], classes, f"{path}:{n + 2}"))
               for n, r in enumerate(rows)]
    return Annotations(records, classes)


def _read_csv(path: Path, root: Path, classes: list[str] | None) -> Annotations:
    rows = [line.split(",") if "," in line else line.rsplit(maxsplit=1) for line in _lines(path)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    if any(len(r) < 2 for r in rows):
        raise OptplanError(f"list {str(path)!r} needs 'path,label' or 'path label' on every line")
    labels = [r[1].strip() for r in rows]
    numeric = all(label.lstrip("-").isdigit() for label in labels)
    if classes is None:
        classes = ([str(i) for i in range(max(map(int, labels)) + 1)] if numeric and labels
                   else sorted(set(labels)))
    records = []
    for n, (row, label) in enumerate(zip(rows, labels), 1):
        index = int(label) if numeric else _class_index(label, classes, f"{path}:{n}")
        if not 0 <= index < len(classes):
            raise OptplanError(f"{path}:{n}: label {label} is outside 0..{len(classes) - 1}")
        records.append(VideoRecord(root / row[0].strip(), index))
    return Annotations(records, classes)


def _ssv2_class(entry: dict) -> str | None:
    text = entry.get("template") or entry.get("label")
    return re.sub(r"[\[\]]", "", text) if text else None


def _read_ssv2(path: Path, root: Path, classes: list[str] | None) -> Annotations:
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OptplanError(f"Something-Something JSON {str(path)!r} cannot be read: {err}") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "id" in e for e in entries):
        raise OptplanError(f"{path}: expected a JSON list of objects with 'id' and 'template'/'label'")
    if classes is None:
        label_file = next((path.parent / n for n in SSV2_LABEL_FILES if (path.parent / n).is_file()), None)
        if label_file is not None:
            mapping = json.loads(label_file.read_text())
            classes = [name for name, _ in sorted(mapping.items(), key=lambda kv: int(kv[1]))]
        else:
            classes = sorted({c for c in map(_ssv2_class, entries) if c})
    records = []
    for n, entry in enumerate(entries):
        name = _ssv2_class(entry)
        if name is None:
            raise OptplanError(f"{path}: entry {n} (id {entry['id']}) has no 'template' or 'label'; "
                               "unlabelled test lists cannot be used for training or scoring")
        stem = root / str(entry["id"])
        candidates = [stem.with_name(stem.name + ext) for ext in (".webm", ".mp4")]
        file = next((c for c in candidates if c.exists()), candidates[0])
        records.append(VideoRecord(file, _class_index(name, classes, f"{path}: entry {n}")))
    return Annotations(records, classes)


READERS = {"ucf101": _read_ucf, "kinetics": _read_kinetics, "csv": _read_csv, "ssv2": _read_ssv2}


def read_annotations(path: str | Path, root: str | Path, format: str = "auto",
                     classes: list[str] | None = None) -> Annotations:
    """Read one annotation file; video paths are resolved against ``root``.

    ``classes`` (from the training list) fixes the label indices so that a test list uses the
    same ones; without it the classes come from the file (or its ``classInd.txt``).
    """
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise OptplanError(f"annotation file {str(path)!r} does not exist")
    fmt = detect_format(path, root) if format == "auto" else format
    if fmt not in READERS:
        raise OptplanError(f"annotation format {format!r} is unknown; use one of auto, {', '.join(FORMATS)}")
    annotations = READERS[fmt](path, root, list(classes) if classes else None)
    if not annotations.records:
        raise OptplanError(f"annotation file {str(path)!r} lists no videos")
    return annotations

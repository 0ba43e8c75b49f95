"""Annotation files of real datasets, read into ``VideoRecord(path, label)`` lists.

Formats (``DataConfig.format``; ``auto`` tells them apart by extension and first line):

- ``ucf101``: UCF101-style split lists: ``classInd.txt`` (``1 ApplyEyeMakeup``) next to the
  list or in the root; list lines ``Class/v_x.avi 1`` (1-based class index) or just the path,
  whose first directory is then the class name (as in UCF101's ``testlist01.txt``).
- ``hmdb51``: HMDB51's ``testTrainMulti_7030_splits`` folder: one ``<class>_test_split<N>.txt``
  per class and split N (1-3), lines ``name.avi F`` with F = 1 train, 2 test, 0 unused; the
  class is the file name's, the video ``<class>/name.avi`` under the root (or ``hmdb51_org/``).
- ``kinetics``: CSV with ``label,youtube_id,time_start,time_end[,split]``; the file is
  ``{youtube_id}_{start:06d}_{end:06d}.mp4`` (the name Kinetics downloaders write) under the
  row's split folder (``train/``, ``val/``, ``videos_train/``...) or the root, in a label folder
  (spaces kept or turned into ``_``) or flat.
- ``csv``: ``path,label`` lines (header optional), or ``path label`` as MMAction2's video lists
  write them; labels are names or 0-based indices (named by ``classes``, e.g. from a label map).
  A ``.txt`` list with no ``classInd.txt`` is read this way.
- ``rawframes``: MMAction2 rawframe lists, ``frame_dir total_frames label``; each folder of
  numbered JPEGs is read as one video (:mod:`optplan.data.rawframes`; the folder's frames,
  not ``total_frames``, say how long it is). Labels as in ``csv``.
- ``ssv2``: Something-Something JSON list of ``{"id", "template" | "label"}``; the class is
  the template without brackets, the file ``{id}.webm`` (or ``.mp4``) under the root or its
  ``20bn-something-something-v2/`` folder. A ``labels.json`` /
  ``something-something-v2-labels.json`` next to it fixes class indices.

Any line a reader does not understand is refused with its file and line number: a list
mislabelled in silence trains a useless model for days.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple

from optplan.errors import OptplanError

FORMATS = ("ucf101", "hmdb51", "kinetics", "csv", "ssv2", "rawframes")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov")
SSV2_LABEL_FILES = ("labels.json", "something-something-v2-labels.json")
SSV2_VIDEO_FOLDER = "20bn-something-something-v2"
HMDB_SPLIT_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<split>[1-3])\.txt$")
HMDB_VIDEO_FOLDER = "hmdb51_org"
HMDB_FLAG = {"train": "1", "test": "2"}  # 0: the video is in neither half of that split
# Folder names of a Kinetics split column value, as the public copies lay them out.
KINETICS_SPLIT_FOLDERS = {"train": ("train", "videos_train"), "val": ("val", "videos_val"),
                          "validate": ("val", "videos_val"), "test": ("test", "videos_test")}
Subset = Literal["train", "test"]


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
    ``classInd.txt`` lies next to it (or in ``root``); HMDB51 split files (or their folder) by
    their names."""
    if HMDB_SPLIT_FILE.match(path.name) or (path.is_dir() and any(path.glob("*_test_split*.txt"))):
        return "hmdb51"
    if path.suffix.lower() == ".json":
        return "ssv2"
    first = next((line for line in _lines(path)), "")
    header = [c.strip().lower() for c in first.split(",")]
    if "youtube_id" in header:
        return "kinetics"
    if "," in first:
        return "csv"
    if _is_rawframe_line(first.split()):
        return "rawframes"
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
        if len(parts) > 2:
            raise OptplanError(f"{path}:{n}: expected 'Class/video.avi [INDEX]', got {line!r}")
        rel = parts[0]
        if len(parts) > 1:
            index = int(parts[1]) - 1 if parts[1].isdigit() else -1
            if not 0 <= index < len(classes):
                raise OptplanError(f"{path}:{n}: class index {parts[1]} is outside 1..{len(classes)}")
        else:
            index = _class_index(Path(rel).parts[0], classes, f"{path}:{n}")
        records.append(VideoRecord(root / rel, index))
    return Annotations(records, classes)


def kinetics_file(root: Path, label: str, youtube_id: str, start: float, end: float,
                  split: str = "") -> Path:
    """The file of a Kinetics row: the first existing of the usual layouts (the row's split
    folder or the root; by-label or flat; common extensions); the canonical by-label ``.mp4``
    under the split folder if none exists (reported as missing)."""
    stem = f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"
    bases = [root / name for name in KINETICS_SPLIT_FOLDERS.get(split.strip().lower(), ())]
    bases = [b for b in bases if b.is_dir()] + [root]
    folders = [folder for base in bases for folder in (base / label, base / label.replace(" ", "_"), base)]
    candidates = [folder / (stem + ext) for folder in folders for ext in VIDEO_EXTENSIONS]
    return next((c for c in candidates if c.exists()), candidates[0])


def _read_kinetics(path: Path, root: Path, classes: list[str] | None) -> Annotations:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    need = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not need <= set(rows[0]):
        raise OptplanError(f"Kinetics CSV {str(path)!r} needs the columns {sorted(need)}")
    bad = next((n for n, r in enumerate(rows, 2) if None in r or None in r.values()), None)
    if bad is not None:
        raise OptplanError(f"{path}:{bad}: the row does not have the header's {len(rows[0])} columns")
    classes = classes or sorted({r["label"] for r in rows})
    records = [VideoRecord(kinetics_file(root, r["label"], r["youtube_id"], r["time_start"],
                                         r["time_end"], r.get("split") or ""),
                           _class_index(r["label"], classes, f"{path}:{n + 2}"))
               for n, r in enumerate(rows)]
    return Annotations(records, classes)


def _is_rawframe_line(row: list[str]) -> bool:
    """``frame_dir total_frames label``: MMAction2's rawframe list line."""
    return len(row) == 3 and row[1].isdigit() and row[2].lstrip("-").isdigit()


def _rawframe_row(path: Path, n: int, line: str) -> list[str]:
    """``frame_dir total_frames label`` -> ``[frame_dir, label]``; anything else (a multi-label
    line, an offset column) is refused with its line."""
    row = line.split()
    if not _is_rawframe_line(row):
        raise OptplanError(f"{path}:{n}: expected an MMAction2 rawframe line 'frame_dir total_frames "
                           f"label' (one label), got {line!r}")
    return [row[0], row[2]]


def _csv_row(path: Path, n: int, line: str) -> list[str]:
    """``path,label`` or ``path label``; anything else (an MMAction2 rawframe list above all,
    whose frame count would be read as a path part) is refused with its line."""
    row = [c.strip() for c in line.split(",")] if "," in line else line.split()
    if _is_rawframe_line(row):
        raise OptplanError(f"{path}:{n}: {line!r} looks like an MMAction2 rawframe list "
                           "('frame_dir num_frames label'); read it with data.format=rawframes (or auto)")
    if len(row) != 2:
        raise OptplanError(f"{path}:{n}: expected 'path,label' or 'path label', got {line!r}")
    return row


def _read_csv(path: Path, root: Path, classes: list[str] | None, *, parse=_csv_row) -> Annotations:
    """``path label`` lists, each line cut into ``[path, label]`` by ``parse``."""
    rows = [parse(path, n, line) for n, line in enumerate(_lines(path), 1)]
    first = 1
    if rows and [c.lower() for c in rows[0]] == ["path", "label"]:
        rows, first = rows[1:], 2
    labels = [r[1] for r in rows]
    numeric = all(label.lstrip("-").isdigit() for label in labels)
    if classes is None:
        classes = ([str(i) for i in range(max(map(int, labels)) + 1)] if numeric and labels
                   else sorted(set(labels)))
    records = []
    for n, (row, label) in enumerate(zip(rows, labels), first):
        index = int(label) if numeric else _class_index(label, classes, f"{path}:{n}")
        if not 0 <= index < len(classes):
            raise OptplanError(f"{path}:{n}: label {label} is outside 0..{len(classes) - 1}")
        records.append(VideoRecord(root / row[0], index))
    return Annotations(records, classes)


def _read_hmdb51(path: Path, root: Path, classes: list[str] | None, *, subset: Subset,
                 split: int) -> Annotations:
    """HMDB51's split files: ``path`` is their folder (split ``split``) or one of them (its split)."""
    match = HMDB_SPLIT_FILE.match(path.name)
    folder, split = (path.parent, int(match["split"])) if match else (path, split)
    files = sorted(folder.glob(f"*_test_split{split}.txt"))
    if not files:
        raise OptplanError(f"no HMDB51 split files '*_test_split{split}.txt' in {str(folder)!r}")
    names = [HMDB_SPLIT_FILE.match(f.name)["label"] for f in files]
    classes = classes or names
    videos = root / HMDB_VIDEO_FOLDER if (root / HMDB_VIDEO_FOLDER).is_dir() else root
    records = []
    for file, name in zip(files, names):
        for n, line in enumerate(_lines(file), 1):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise OptplanError(f"{file}:{n}: expected 'video.avi 0|1|2' (unused, train, test), "
                                   f"got {line!r}")
            if parts[1] == HMDB_FLAG[subset]:
                records.append(VideoRecord(videos / name / parts[0], _class_index(name, classes, f"{file}:{n}")))
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
    names = [_ssv2_class(entry) for entry in entries]
    if None in names:
        n = names.index(None)
        raise OptplanError(f"{path}: entry {n} (id {entries[n]['id']}) has no 'template' or 'label'; "
                           "unlabelled test lists cannot be used for training or scoring")
    if classes is None:
        label_file = next((path.parent / n for n in SSV2_LABEL_FILES if (path.parent / n).is_file()), None)
        if label_file is not None:
            mapping = json.loads(label_file.read_text())
            classes = [name for name, _ in sorted(mapping.items(), key=lambda kv: int(kv[1]))]
        else:
            classes = sorted(set(names))
    videos = _ssv2_video_folder(path, root, [str(e["id"]) for e in entries])
    records = []
    for n, (entry, name) in enumerate(zip(entries, names)):
        stem = videos / str(entry["id"])
        candidates = [stem.with_name(stem.name + ext) for ext in (".webm", ".mp4")]
        file = next((c for c in candidates if c.exists()), candidates[0])
        records.append(VideoRecord(file, _class_index(name, classes, f"{path}: entry {n}")))
    return Annotations(records, classes)


def _ssv2_video_folder(path: Path, root: Path, ids: list[str]) -> Path:
    """The folder holding the listed ``{id}.webm`` files: the root, or the video folder the
    download unpacks to, inside the root or beside it; refused, naming them all, if none does."""
    folders = [root, root / SSV2_VIDEO_FOLDER, root.parent / SSV2_VIDEO_FOLDER]
    for folder in folders:
        if any((folder / (i + ext)).exists() for i in ids for ext in (".webm", ".mp4")):
            return folder
    raise OptplanError(f"none of the {len(ids)} videos of {str(path)!r} ('<id>.webm') is in "
                       f"{', '.join(repr(str(f)) for f in folders)}; point data.root at the folder "
                       "that holds them or the one with the JSON files")


READERS = {"ucf101": _read_ucf, "kinetics": _read_kinetics, "csv": _read_csv, "ssv2": _read_ssv2,
           "rawframes": partial(_read_csv, parse=_rawframe_row)}


def read_annotations(path: str | Path, root: str | Path, format: str = "auto",
                     classes: list[str] | None = None, *, subset: Subset = "train",
                     split: int = 1) -> Annotations:
    """Read one annotation file; video paths are resolved against ``root``.

    ``classes`` (from the training list, or a label map) fixes the label indices so that a test
    list uses the same ones; without it the classes come from the file (or its ``classInd.txt``).
    ``subset`` and ``split`` pick the half and the split of an HMDB51 split folder, where train
    and test videos share one set of files; other formats have one file per list.
    """
    path, root = Path(path), Path(root)
    if not path.exists():
        raise OptplanError(f"annotation file {str(path)!r} does not exist")
    fmt = detect_format(path, root) if format == "auto" else format
    if fmt not in FORMATS:
        raise OptplanError(f"annotation format {format!r} is unknown; use one of auto, {', '.join(FORMATS)}")
    if path.is_dir() and fmt != "hmdb51":
        raise OptplanError(f"annotation file {str(path)!r} is a folder; only HMDB51's split folder "
                           "is read as a whole")
    reader = partial(_read_hmdb51, subset=subset, split=split) if fmt == "hmdb51" else READERS[fmt]
    annotations = reader(path, root, list(classes) if classes else None)
    if not annotations.records:
        raise OptplanError(f"annotation file {str(path)!r} lists no videos"
                           + (f" for {subset} in split {split}" if fmt == "hmdb51" else ""))
    return annotations

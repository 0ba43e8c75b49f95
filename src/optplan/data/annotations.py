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
mislabelled in silence trains a useless model for days. Paths may hold spaces (``Class/v_My
Clip.avi 3``; such a path must then end with a video extension, so that stray words on a line are
still refused) and CSV fields may be quoted (``"a, b.mp4",walk``). A video path that leaves the
dataset root (``../x.avi``, an absolute path elsewhere) is refused unless ``allow_outside_root``
(``data.allow_outside_root``): a list pointing outside its dataset is more often a list of
another dataset, or a copy-paste slip, than a wish.
"""

from __future__ import annotations

import csv
import json
import os
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
    """What one annotation file says: the records and the class names, index = label, and the
    file (or HMDB51 split folder) it was read from, for reports that name it."""

    records: list[VideoRecord]
    classes: list[str]
    source: Path | None = None


def detect_format(path: Path, root: Path | None = None) -> str:
    """Guess the annotation format of ``path`` from its extension, first line and whether a
    ``classInd.txt`` lies next to it (or in ``root``); HMDB51 split files (or their folder) by
    their names."""
    if HMDB_SPLIT_FILE.match(path.name) or (path.is_dir() and any(path.glob("*_test_split*.txt"))):
        return "hmdb51"
    if path.suffix.lower() == ".json":
        return "ssv2"
    first = next((line for _, line in _lines(path)), "")
    header = [c.strip().lower() for c in next(csv.reader([first]), [])]
    if "youtube_id" in header:
        return "kinetics"
    if "," in first:
        return "csv"
    if _is_rawframe_line(first.split()):
        return "rawframes"
    class_ind = [path.parent / "classInd.txt"] + ([Path(root) / "classInd.txt"] if root else [])
    return "ucf101" if any(c.is_file() for c in class_ind) else "csv"


def _lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of ``path``, stripped, with their 1-based line numbers (messages
    name the line as an editor counts it, blank lines included)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise OptplanError(f"annotation file {str(path)!r} cannot be read: {err}") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _path_then_word(line: str) -> tuple[str, str | None]:
    """``(path, last word)`` of a whitespace-separated ``path [word]`` line; the path keeps its
    inner spaces. A one-word line is ``(line, None)``."""
    parts = line.rsplit(maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (line, None)


def _spaced_path_ok(path: str) -> bool:
    """A path with whitespace in it must name a video file: otherwise the line more likely holds
    stray words than a file name with spaces, and is refused."""
    return not any(c.isspace() for c in path) or path.lower().endswith(VIDEO_EXTENSIONS)


def _inside(base: Path, file: Path, where: str, allowed: bool) -> Path:
    """``file`` (a listed path already joined to ``base``), refused when it lies outside ``base``
    (unless ``allowed``). The check is on the written path (``..`` folded, symlinks not
    followed): a dataset root made of symlinks into other storage is common and fine; a list
    naming ``../other/x.avi`` is not, by default."""
    if allowed:
        return file
    folded = Path(os.path.normpath(Path(file).absolute()))
    if not folded.is_relative_to(os.path.normpath(Path(base).absolute())):
        raise OptplanError(f"{where}: video path {str(file)!r} leaves the dataset root {str(base)!r}; "
                           "fix the list or data.root, or set data.allow_outside_root=true if the "
                           "videos really live elsewhere")
    return file


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
    for n, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise OptplanError(f"{path}:{n}: expected 'INDEX NAME', got {line!r}")
        pairs.append((int(parts[0]), parts[1]))
    return [name for _, name in sorted(pairs)]


def _read_ucf(path: Path, root: Path, classes: list[str] | None, *,
              allow_outside_root: bool = False) -> Annotations:
    """``Class/video.avi [INDEX]`` lines; without an index (a last word that is a number) the
    whole line is the path, spaces and all."""
    classes = classes or read_class_ind(_find_class_ind(path, root))
    records, named = [], []  # named: (line, index word, index of the class folder the video is in)
    for n, line in _lines(path):
        rel, word = _path_then_word(line)
        if word is None or not _is_int(word):
            rel, word = line, None
        if not _spaced_path_ok(rel):
            raise OptplanError(f"{path}:{n}: expected 'Class/video.avi [INDEX]', got {line!r}")
        if word is not None:
            index = int(word) - 1
            if not 0 <= index < len(classes):
                raise OptplanError(f"{path}:{n}: class index {word} is outside 1..{len(classes)}")
            folder = Path(rel).parts[0] if len(Path(rel).parts) > 1 else None
            if folder in classes:
                named.append((n, word, classes.index(folder)))
        else:
            index = _class_index(Path(rel).parts[0], classes, f"{path}:{n}")
        records.append(VideoRecord(_inside(root, root / rel, f"{path}:{n}", allow_outside_root), index))
    if named and all(int(word) == folder for _, word, folder in named):
        # every index one below its folder's class: a 0-based list (MMAction2's) beside a
        # classInd.txt, which would read shifted by one class (a single disagreeing line is a
        # label conflict for `data check` to report, not a format)
        n, word, folder = named[0]
        raise OptplanError(f"{path}:{n}: index {word} names class {classes[int(word) - 1]!r} in classInd.txt, "
                           f"but the video is in folder {classes[folder]!r} (index {folder + 1}), and so on "
                           "for every line: the list counts classes from 0 (MMAction2's), UCF101's from 1; "
                           "set data.format=csv to read it as 0-based")
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


def _read_kinetics(path: Path, root: Path, classes: list[str] | None, *,
                   allow_outside_root: bool = False) -> Annotations:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    need = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not need <= set(rows[0]):
        raise OptplanError(f"Kinetics CSV {str(path)!r} needs the columns {sorted(need)}")
    bad = next((n for n, r in enumerate(rows, 2) if None in r or None in r.values()), None)
    if bad is not None:
        raise OptplanError(f"{path}:{bad}: the row does not have the header's {len(rows[0])} columns")
    classes = classes or sorted({r["label"] for r in rows})
    records = [VideoRecord(_inside(root, kinetics_file(root, r["label"], r["youtube_id"], r["time_start"],
                                                      r["time_end"], r.get("split") or ""),
                                   f"{path}:{n + 2}", allow_outside_root),
                           _class_index(r["label"], classes, f"{path}:{n + 2}"))
               for n, r in enumerate(rows)]
    return Annotations(records, classes)


def _is_rawframe_line(row: list[str]) -> bool:
    """``frame_dir total_frames label``: MMAction2's rawframe list line."""
    return len(row) == 3 and row[1].isdigit() and _is_int(row[2])


def _rawframe_rows(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, frame_dir, label)`` of ``frame_dir total_frames label`` lines; anything
    else (a multi-label line, an offset column) is refused with its line."""
    rows = []
    for n, line in _lines(path):
        row = line.split()
        if not _is_rawframe_line(row):
            raise OptplanError(f"{path}:{n}: expected an MMAction2 rawframe line 'frame_dir total_frames "
                               f"label' (one label), got {line!r}")
        rows.append((n, row[0], row[2]))
    return rows


def _comma_fields(line: str) -> list[str]:
    return [c.strip() for c in next(csv.reader([line], skipinitialspace=True), [])]


def _names_videos(rows: list[list[str | None]]) -> int:
    """How many rows' first field names a video file (a reading that splits paths apart names fewer)."""
    return sum(1 for row in rows if row[0] and row[0].lower().endswith(VIDEO_EXTENSIONS))


def _csv_rows(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, path, label)`` of a ``path,label`` CSV or a ``path label`` list.

    The whole file is read one way: comma-separated (quoted fields honoured, so a quoted path
    or class name with a comma stays one field), or whitespace-separated with the label the
    last word (so a path may hold spaces or commas). Comma-separated needs a comma on every
    line; when both readings fit, the one whose paths name more video files wins (ties: comma).
    Deciding per line, as before, split a listed path that held a comma and made a bogus class
    of its tail. Anything else (an MMAction2 rawframe list above all, whose frame count would be
    read as a path part) is refused with its line.
    """
    lines = _lines(path)
    spaced = [list(_path_then_word(line)) for _, line in lines]
    comma = [_comma_fields(line) for _, line in lines] if all("," in line for _, line in lines) else None
    use_comma = bool(lines) and comma is not None and _names_videos(comma) >= _names_videos(spaced)
    rows = []
    for (n, line), row in zip(lines, comma if use_comma else spaced):
        if _is_rawframe_line(line.split()):
            raise OptplanError(f"{path}:{n}: {line!r} looks like an MMAction2 rawframe list "
                               "('frame_dir num_frames label'); read it with data.format=rawframes (or auto)")
        if len(row) != 2 or not all(row) or (not use_comma and not _spaced_path_ok(row[0])):
            raise OptplanError(f"{path}:{n}: expected 'path,label' or 'path label', got {line!r}")
        rows.append((n, row[0], row[1]))
    return rows


def _read_csv(path: Path, root: Path, classes: list[str] | None, *, allow_outside_root: bool = False,
              read_rows=_csv_rows) -> Annotations:
    """``path label`` lists, cut into ``(line number, path, label)`` rows by ``read_rows``."""
    rows = read_rows(path)
    if rows and [rows[0][1].lower(), rows[0][2].lower()] == ["path", "label"]:
        rows = rows[1:]
    labels = [label for _, _, label in rows]
    numeric = all(map(_is_int, labels))
    if classes is None:
        classes = ([str(i) for i in range(max(map(int, labels)) + 1)] if numeric and labels
                   else sorted(set(labels)))
    records = []
    for n, rel, label in rows:
        index = int(label) if numeric else _class_index(label, classes, f"{path}:{n}")
        if not 0 <= index < len(classes):
            raise OptplanError(f"{path}:{n}: label {label} is outside 0..{len(classes) - 1}")
        records.append(VideoRecord(_inside(root, root / rel, f"{path}:{n}", allow_outside_root), index))
    return Annotations(records, classes)


def _read_hmdb51(path: Path, root: Path, classes: list[str] | None, *, subset: Subset,
                 split: int, allow_outside_root: bool = False) -> Annotations:
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
        for n, line in _lines(file):
            video, flag = _path_then_word(line)
            if flag not in ("0", "1", "2") or not _spaced_path_ok(video):
                raise OptplanError(f"{file}:{n}: expected 'video.avi 0|1|2' (unused, train, test), "
                                   f"got {line!r}")
            if flag == HMDB_FLAG[subset]:
                records.append(VideoRecord(_inside(root, videos / name / video, f"{file}:{n}", allow_outside_root),
                                           _class_index(name, classes, f"{file}:{n}")))
    return Annotations(records, classes)


def _ssv2_class(entry: dict) -> str | None:
    text = entry.get("template") or entry.get("label")
    return re.sub(r"[\[\]]", "", text) if text else None


def _read_ssv2(path: Path, root: Path, classes: list[str] | None, *,
               allow_outside_root: bool = False) -> Annotations:
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
        # the video folder may lie beside the root (where the download unpacks): the ids must
        # stay in it
        records.append(VideoRecord(_inside(videos, file, f"{path}: entry {n}", allow_outside_root),
                                   _class_index(name, classes, f"{path}: entry {n}")))
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
           "rawframes": partial(_read_csv, read_rows=_rawframe_rows)}


def read_annotations(path: str | Path, root: str | Path, format: str = "auto",
                     classes: list[str] | None = None, *, subset: Subset = "train",
                     split: int = 1, allow_outside_root: bool = False) -> Annotations:
    """Read one annotation file; video paths are resolved against ``root``.

    ``classes`` (from the training list, or a label map) fixes the label indices so that a test
    list uses the same ones; without it the classes come from the file (or its ``classInd.txt``).
    ``subset`` and ``split`` pick the half and the split of an HMDB51 split folder, where train
    and test videos share one set of files; other formats have one file per list. A video path
    outside ``root`` is refused with its line unless ``allow_outside_root``.
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
    annotations = reader(path, root, list(classes) if classes else None,
                         allow_outside_root=allow_outside_root)._replace(source=path)
    if not annotations.records:
        raise OptplanError(f"annotation file {str(path)!r} lists no videos"
                           + (f" for {subset} in split {split}" if fmt == "hmdb51" else ""))
    return annotations

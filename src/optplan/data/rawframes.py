"""MMAction2 rawframe folders read as videos: ``frame_dir/img_00001.jpg``, ``img_00002.jpg``...

MMAction2's ``RawframeDataset`` lists ``frame_dir total_frames label`` and reads each folder's
JPEGs by a file name template: ``img_{:05d}.jpg`` by default; ``image_{:05d}.jpg`` and
``{:05d}.jpg`` are what other extraction scripts write. Here such a folder is one more kind of
video (see :mod:`optplan.data.source`): :func:`probe`, :func:`decode` and :func:`frame_count`
answer as :mod:`optplan.data.video` does for a file, with the same :class:`BadVideo` kinds, so
sampling, the frame cache, ``data check`` and training read it unchanged.

The folder, not the list, says how long the video is: its frames are counted from the first
index found (MMAction2 starts at 1) and must follow without a gap; a missing JPEG makes the
folder ``truncated`` rather than a video silently shortened. Optical-flow files that share the
folder (``flow_x_00001.jpg``) are not frames of the template and are left alone. Each JPEG is
decoded by :func:`optplan.data.video.decode` (PyAV), resized to the same short side as a video.
The frame cache and the probe tell a changed folder by the folder's own size and mtime: frames
added, removed or renamed are noticed, a JPEG rewritten in place is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optplan.data import video
from optplan.data.video import BadVideo, VideoInfo

TEMPLATES = ("img_{:05d}.jpg", "image_{:05d}.jpg", "{:05d}.jpg")
"""Frame file names tried in this order; the first with any file in a folder is its template."""
_NAMES = [(t, re.compile(re.escape(t.split("{")[0]) + r"(\d{5})" + re.escape(t.split("}")[1]))) for t in TEMPLATES]


@dataclass(frozen=True)
class FrameFolder:
    """The numbered JPEGs of one folder: files ``template.format(i)`` for i in
    ``first .. first + count - 1``."""

    path: Path
    template: str
    first: int
    count: int

    def files(self, limit: int | None = None) -> list[Path]:
        """The frame files in order, the first ``limit`` only if given."""
        count = self.count if limit is None else min(limit, self.count)
        return [self.path / self.template.format(self.first + i) for i in range(count)]


def frame_folder(path: str | Path) -> FrameFolder:
    """List the frames of the folder ``path`` (one directory read, nothing decoded).

    Raises :class:`BadVideo`: ``missing`` (no such folder), ``empty`` (no file of any template)
    or ``truncated`` (a gap in the numbering, naming the first missing file).
    """
    path = Path(path)
    try:
        names = [entry.name for entry in path.iterdir()]
    except FileNotFoundError:
        raise BadVideo(path, "missing", "no such folder") from None
    except OSError as err:
        raise BadVideo(path, "unreadable", f"folder cannot be listed: {err.strerror}") from None
    for template, pattern in _NAMES:
        indices = sorted(int(m[1]) for m in map(pattern.fullmatch, names) if m)
        if indices:
            break
    else:
        raise BadVideo(path, "empty", f"no frame files ({', '.join(t.format(1) for t in TEMPLATES)}...)")
    first = indices[0]
    gap = next((first + k for k, index in enumerate(indices) if index != first + k), None)
    if gap is not None:
        raise BadVideo(path, "truncated", f"{template.format(gap)} is missing (frames {first}..{indices[-1]})")
    return FrameFolder(path, template, first, len(indices))


def frame_count(path: str | Path) -> int:
    """Frames of the folder (listed, not decoded)."""
    return frame_folder(path).count


def probe(path: str | Path) -> VideoInfo:
    """The folder's frame count and the size of its first frame (the only one decoded)."""
    folder = frame_folder(path)
    first = _decode_frames(folder, folder.files(1), None)[0]
    return VideoInfo(frames=folder.count, height=first.shape[0], width=first.shape[1])


def decode(path: str | Path, *, short_side: int | None = None, max_frames: int | None = None,
           strict: bool = False) -> np.ndarray:
    """The folder's frames as uint8 RGB (T, H, W, 3), as :func:`optplan.data.video.decode`
    returns a video's: resized to ``short_side``, the first ``max_frames`` only if given.
    A JPEG that does not decode, or one of another size than the first, makes the folder
    ``truncated``; ``strict`` changes nothing (the numbering is always checked)."""
    folder = frame_folder(path)
    return np.stack(_decode_frames(folder, folder.files(max_frames), short_side))


def decode_at(path: str | Path, indices: np.ndarray, *, short_side: int | None = None) -> np.ndarray:
    """The frames at ``indices`` (0-based, any order, repeats allowed; past the end: the last
    frame), shape (len(indices), H, W, 3). Only those JPEGs are decoded: a 16-frame clip of a
    300-frame folder reads 16 files, where :func:`decode` would read up to the clip's last one."""
    folder = frame_folder(path)
    ix = np.minimum(np.asarray(indices, dtype=np.int64), folder.count - 1)
    wanted = np.unique(ix)
    files = [folder.path / folder.template.format(folder.first + int(i)) for i in wanted]
    frames = np.stack(_decode_frames(folder, files, short_side))
    return frames[np.searchsorted(wanted, ix)]


def _decode_frames(folder: FrameFolder, files: list[Path], short_side: int | None) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    for file in files:
        try:
            frame = video.decode(file, short_side=short_side)[0]
        except BadVideo as err:
            raise BadVideo(folder.path, "truncated", f"{file.name}: {err.kind} ({err.detail})") from None
        if frames and frame.shape != frames[0].shape:
            raise BadVideo(folder.path, "truncated", f"{file.name} is {frame.shape[1]}x{frame.shape[0]}, "
                                                     f"the first frame {frames[0].shape[1]}x{frames[0].shape[0]}")
        frames.append(frame)
    return frames

"""What a listed path is read with: a video file, or a folder of frames.

:func:`probe`, :func:`decode` and :func:`frame_count` take any path an annotation list gives:
a directory is an MMAction2 rawframe folder (:mod:`optplan.data.rawframes`), anything else a
video file (:mod:`optplan.data.video`). Both answer alike (same shapes, same
:class:`~optplan.data.video.BadVideo` kinds), so the frame cache, sampling, the probe and
``data check`` read either without knowing which.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from optplan.data import rawframes, video
from optplan.data.video import VideoInfo


def _reader(path: str | Path) -> ModuleType:
    return rawframes if Path(path).is_dir() else video


def probe(path: str | Path) -> VideoInfo:
    """Frame count and size of a video or frame folder, decoding only its first frame."""
    return _reader(path).probe(path)


def decode(path: str | Path, *, short_side: int | None = None, max_frames: int | None = None,
           strict: bool = False) -> np.ndarray:
    """uint8 RGB frames (T, H, W, 3) of a video or frame folder (see :func:`optplan.data.video.decode`)."""
    return _reader(path).decode(path, short_side=short_side, max_frames=max_frames, strict=strict)


def decode_at(path: str | Path, indices: np.ndarray, *, short_side: int | None = None) -> np.ndarray:
    """uint8 RGB frames (len(indices), H, W, 3) at the 0-based ``indices`` of a video or frame
    folder; an index past the last decodable frame gives the last one. A folder decodes only
    the JPEGs asked for; a video file decodes up to the last index (streams have no cheap seek
    to an exact frame)."""
    if Path(path).is_dir():
        return rawframes.decode_at(path, indices, short_side=short_side)
    ix = np.asarray(indices, dtype=np.int64)
    frames = video.decode(path, short_side=short_side, max_frames=int(ix.max()) + 1)
    return frames[np.minimum(ix, len(frames) - 1)]


def frame_count(path: str | Path) -> int:
    """Frames a video declares (0: it does not say) or a frame folder holds."""
    return _reader(path).frame_count(path)

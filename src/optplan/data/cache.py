"""Decoded-frame cache: decode each video once, then read its uint8 frames from a memory map.

One ``.npy`` file per video, named ``{hash(path)}-{hash(size, mtime, short side)}.npy``: a file
that changes on disk gets a new name (so it is decoded again) and the stale entry of the same
path is removed. Entries are written to a temporary name and moved into place with
``os.replace``, so DataLoader workers that decode the same video at once never read a partial
file. Reading is ``np.load(mmap_mode='r')``: a clip touches only the pages of its frames and the
OS page cache is shared by all workers. An entry found damaged is named and rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from optplan.data.video import BadVideo, decode
from optplan.errors import space_for

log = logging.getLogger("optplan.data")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class FrameCache:
    """A directory of decoded videos. ``short_side`` is the decode-time resize (None: as stored)."""

    def __init__(self, directory: str | Path, short_side: int | None = None, keep_open: int = 256) -> None:
        self.directory = Path(directory)
        self.short_side = short_side
        # the last ``keep_open`` maps stay open: np.load re-parses the header each time, which
        # costs as much as cutting and cropping a small clip (each map holds a file descriptor)
        self.keep_open = keep_open
        self._open: OrderedDict[Path, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": OrderedDict()}  # maps stay in their process

    def entry(self, path: str | Path) -> Path:
        """The cache file for ``path`` as it is on disk now (raises OSError if it is missing)."""
        path = Path(path).absolute()
        stat = path.stat()
        version = _digest(f"{stat.st_size}|{stat.st_mtime_ns}|{self.short_side}")
        return self.directory / f"{_digest(str(path))}-{version}.npy"

    def frames(self, path: str | Path) -> np.ndarray:
        """uint8 (T, H, W, 3) frames of ``path``, memory-mapped; decoded and stored on first use.

        Raises :class:`~optplan.data.video.BadVideo` for unusable files (nothing is stored).
        """
        path = Path(path)
        if not path.is_file():
            raise BadVideo(path, "missing", "no such file")
        entry = self.entry(path)
        if entry in self._open:
            self._open.move_to_end(entry)
            return self._open[entry]
        if not entry.exists():
            self._store(entry, decode(path, short_side=self.short_side))
        frames = self._open[entry] = self._load(entry, path)
        if len(self._open) > self.keep_open:
            self._open.popitem(last=False)
        return frames

    def _load(self, entry: Path, path: Path) -> np.ndarray:
        """The memory map of ``entry``. A damaged entry (cut short by a full disk or a crash of
        something else than us, or overwritten) is named in a warning, decoded again and
        replaced, rather than failing every clip of the video without saying which file."""
        try:
            frames = np.load(entry, mmap_mode="r")
            if frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3:
                return frames
            damage = f"it holds {frames.dtype} frames of shape {frames.shape}"
        except (ValueError, OSError, EOFError) as err:
            damage = f"{type(err).__name__}: {err}"
        log.warning("frame cache entry %s of %s is damaged (%s); decoding the video again", entry, path, damage)
        entry.unlink(missing_ok=True)
        self._store(entry, decode(path, short_side=self.short_side))
        return np.load(entry, mmap_mode="r")

    def _store(self, entry: Path, frames: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".npy")
        try:
            with space_for(entry), os.fdopen(handle, "wb") as out:
                np.save(out, frames)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        stem = entry.name.split("-")[0]
        for stale in self.directory.glob(f"{stem}-*.npy"):
            if stale != entry:
                stale.unlink(missing_ok=True)

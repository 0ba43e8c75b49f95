"""Decoded-frame cache: decode each video once, then read its uint8 frames from a memory map.

One ``.npy`` file per video, named ``{hash(path)}-{hash(size, mtime, short side, decoder)}.npy``:
a file that changes on disk, or a decoder that now decodes it differently (:data:`DECODER`),
gets a new name (so it is decoded again) and the stale entry of the same path is removed. Entries are written to a temporary name and moved into place with
``os.replace``, so DataLoader workers that decode the same video at once never read a partial
file. Reading is ``np.load(mmap_mode='r')``: a clip touches only the pages of its frames and the
OS page cache is shared by all workers. An entry found damaged is named and rebuilt.

Where it lives (:func:`cache_path`): decoded uint8 frames take tens of times the space of the
compressed videos, so by default they go to a per-dataset folder of the user's cache
(``$OPTPLAN_CACHE``, else ``$XDG_CACHE_HOME/optplan``, else ``~/.cache/optplan``), never into
the dataset; ``data.cache_dir`` names the exact folder instead (an earlier version's
``ROOT/.cache`` keeps working when set there). Before decoding, :func:`reserve` prints how much
the videos not yet cached will take and refuses when the disk cannot hold it, rather than
filling it halfway through a plan.
"""

from __future__ import annotations

import hashlib
import logging
import os
import resource
import shutil
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import numpy as np

from optplan.data.config import DataConfig
from optplan.data.source import decode, probe
from optplan.data.video import BadVideo
from optplan.errors import OptplanError, space_for

log = logging.getLogger("optplan.data")

CACHE_ENV = "OPTPLAN_CACHE"
"""Environment variable naming the folder under which every dataset's frame cache goes."""
SIZE_SAMPLE = 16
"""Videos probed to estimate a cache's size (the rest are assumed alike)."""
OLD_DEFAULT = ".cache"
"""Where earlier versions put the cache: inside the dataset root."""
DECODER = 2
"""What the decoder's frames look like; raised when a change makes them differ, so entries of the
old decoder are decoded again (2: frames turned upright by the video's rotation metadata)."""


MAX_OPEN_MAPS = 8192
"""Most memory maps a :class:`FrameCache` keeps open (see :func:`open_map_limit`)."""


def open_map_limit() -> int:
    """How many memory maps a :class:`FrameCache` keeps open: a quarter of the process's file
    descriptor limit (each map holds one), between 256 and :data:`MAX_OPEN_MAPS`.

    A dataset with more videos than open maps reopens a map on nearly every clip in shuffled
    order (header parse, stat, mmap): with 256 maps and 768 training videos of 16 px that was
    57% of the loader's time and a sixth of a 4-frame epoch. The soft limit is raised towards the
    hard one first (as Ray does), since the usual soft limit of 1,024 would allow only 256."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * MAX_OPEN_MAPS
    if soft != resource.RLIM_INFINITY and soft < want and (hard == resource.RLIM_INFINITY or soft < hard):
        raised = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):  # not allowed here: keep the limit we have
            pass
    if soft == resource.RLIM_INFINITY:
        return MAX_OPEN_MAPS
    return max(256, min(MAX_OPEN_MAPS, soft // 4))


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class FrameCache:
    """A directory of decoded videos. ``short_side`` is the decode-time resize (None: as stored)."""

    def __init__(self, directory: str | Path, short_side: int | None = None, keep_open: int | None = None) -> None:
        self.directory = Path(directory)
        self.short_side = short_side
        # the last ``keep_open`` maps stay open: np.load re-parses the header each time, which
        # costs as much as cutting and cropping a small clip (each map holds a file descriptor)
        self.keep_open = open_map_limit() if keep_open is None else keep_open
        self._open: OrderedDict[Path, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": OrderedDict()}  # maps stay in their process

    def entry(self, path: str | Path) -> Path:
        """The cache file for ``path`` as it is on disk now (raises OSError if it is missing)."""
        path = Path(path).absolute()
        stat = path.stat()
        version = _digest(f"{stat.st_size}|{stat.st_mtime_ns}|{self.short_side}|{DECODER}")
        return self.directory / f"{_digest(str(path))}-{version}.npy"

    def frames(self, path: str | Path) -> np.ndarray:
        """uint8 (T, H, W, 3) frames of ``path``, memory-mapped; decoded and stored on first use.

        Raises :class:`~optplan.data.video.BadVideo` for unusable files (nothing is stored).
        """
        path = Path(path)
        if not path.exists():  # (a folder is a video too: MMAction2 rawframes)
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


def cache_home() -> Path:
    """The folder every dataset's cache goes under by default: ``$OPTPLAN_CACHE``, else
    ``$XDG_CACHE_HOME/optplan``, else ``~/.cache/optplan``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "optplan"


def cache_path(cfg: DataConfig) -> Path:
    """Where decoded frames and probe results live: ``data.cache_dir`` when set, else
    ``cache_home()/frames/<root name>-<hash of the root and the decode size>`` (one folder per
    dataset and decode setting, so one can be deleted without touching the others)."""
    if cfg.cache_dir is not None:
        return Path(cfg.cache_dir)
    root = os.path.abspath(cfg.root)
    return cache_home() / "frames" / f"{Path(root).name}-{_digest(f'{root}|{cfg.decode_short_side}')}"


def cache_dir(cfg: DataConfig) -> Path:
    """:func:`cache_path`, created if needed; refuses a directory that cannot be written (a
    read-only dataset root) with the setting that fixes it."""
    path = cache_path(cfg)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OptplanError(f"cache directory {str(path)!r} cannot be created ({err.strerror}); "
                           f"set data.cache_dir (or {CACHE_ENV}) to a writable place") from None
    if not os.access(path, os.W_OK):
        raise OptplanError(f"cache directory {str(path)!r} is not writable; set data.cache_dir "
                           f"(or {CACHE_ENV}) to a writable place")
    return path


def estimate_bytes(paths: list[Path], short_side: int | None) -> int | None:
    """Decoded uint8 frames (frames x H x W x 3 bytes) of all ``paths`` at the decode size,
    extrapolated from the first :data:`SIZE_SAMPLE` that probe; None when none does."""
    sizes = []
    for path in paths[:SIZE_SAMPLE]:
        try:
            info = probe(path)
        except BadVideo:
            continue
        scale = 1.0 if short_side is None else short_side / min(info.height, info.width)
        sizes.append(info.frames * round(info.height * scale) * round(info.width * scale) * 3)
    return None if not sizes else round(sum(sizes) / len(sizes) * len(paths))


def free_bytes(path: Path) -> int | None:
    """Free space on the filesystem that will hold ``path`` (its nearest existing parent)."""
    for parent in [path, *path.parents]:
        if parent.exists():
            return shutil.disk_usage(parent).free
    return None


def human_bytes(n: float) -> str:
    """``n`` bytes as a short figure: '812 kB', '35.2 MB', '1.4 GB'."""
    for unit, size in (("GB", 2**30), ("MB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**10:.0f} kB"


_ANNOUNCED: set[tuple[Path, int]] = set()  # (folder, videos missing) this process has told of


def reserve(cfg: DataConfig, paths: Iterable[Path]) -> int:
    """Say how much the frame cache will grow to hold ``paths`` and make sure the disk can hold it.

    Only the videos with no entry yet count (a warm cache says nothing). Prints the estimate,
    the folder and how to move it on stderr, once per process, before anything is decoded; raises
    :class:`OptplanError` naming the folder, the size and the settings to change when
    ``shutil.disk_usage`` shows less free space than that. Returns the estimate in bytes.
    """
    directory = cache_dir(cfg)
    cache = FrameCache(directory, cfg.decode_short_side)
    missing = []
    for path in dict.fromkeys(Path(p) for p in paths):
        try:
            if not cache.entry(path).exists():
                missing.append(path)
        except OSError:  # gone since the probe: training skips it
            continue
    if not missing:
        return 0
    need = estimate_bytes(missing, cfg.decode_short_side) or 0
    free = free_bytes(directory)
    if free is not None and need > free:
        raise OptplanError(f"the frame cache needs about {human_bytes(need)} for {len(missing)} videos in "
                           f"{str(directory)!r}, but only {human_bytes(free)} are free there; set "
                           f"data.cache_dir (or the {CACHE_ENV} environment variable) to a disk with room, "
                           "or data.cache=false to decode every clip on the fly")
    if (directory, len(missing)) in _ANNOUNCED:  # every split loaded in a process would repeat it
        return need
    _ANNOUNCED.add((directory, len(missing)))
    print(f"frame cache: decoding {len(missing)} videos into {directory} (about {human_bytes(need)}"
          + ("" if free is None else f"; {human_bytes(free)} free") + f"); data.cache_dir or {CACHE_ENV} "
          "puts it elsewhere, data.cache=false decodes every clip on the fly", file=sys.stderr, flush=True)
    old = Path(cfg.root) / OLD_DEFAULT
    if cfg.cache_dir is None and next(old.glob("*-*.npy"), None) is not None:
        print(f"frame cache: {old} holds a cache of an earlier optplan that is no longer used; set "
              f"data.cache_dir={old} to keep using it, or delete it", file=sys.stderr, flush=True)
    return need

"""Reading and writing video files with PyAV, and saying clearly why a file is unusable.

Every decoder failure is turned into :class:`BadVideo` with a short ``kind`` (``missing``,
``empty``, ``unreadable`` (not a video), ``no-video`` (no video stream), ``truncated``) so callers can count problems by kind
and report them by path without knowing PyAV's exception zoo.

Frames come out as they are meant to be seen: a phone video held upright is stored sideways
with a display matrix (rotation side data) saying so, and FFmpeg hands each decoded frame that
matrix; :func:`decode` and :func:`probe` turn the frame by its rotation (multiples of 90
degrees), as players do. Mirroring in the matrix is not applied (cameras do not write it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter


class BadVideo(Exception):
    """A file that cannot be used as a video. ``kind`` names the problem, the message the detail."""

    def __init__(self, path: Path | str, kind: str, detail: str = "") -> None:
        super().__init__(f"{path}: {kind}" + (f" ({detail})" if detail else ""))
        self.path, self.kind, self.detail = str(path), kind, detail


@dataclass(frozen=True)
class VideoInfo:
    """What a cheap probe learns: declared frame count (0 if the container does not say), size."""

    frames: int
    height: int
    width: int


def _reason(err: Exception) -> str:
    """FFmpeg's message without the file name PyAV appends (the report names the file already)."""
    return getattr(err, "strerror", None) or str(err)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise BadVideo(path, "missing", "no such file")
    if path.stat().st_size == 0:
        raise BadVideo(path, "empty", "0 bytes")


def _has_container_header(path: Path) -> bool:
    """True if the file starts like an MP4/MOV, Matroska/WebM or AVI file."""
    with path.open("rb") as handle:
        head = handle.read(12)
    return head[4:8] == b"ftyp" or head[:4] in (b"\x1a\x45\xdf\xa3", b"RIFF")


def _open(path: Path) -> av.container.InputContainer:
    _check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        if _has_container_header(path):  # a real container whose index or data is cut off
            raise BadVideo(path, "truncated", f"container does not open: {_reason(err)}") from None
        raise BadVideo(path, "unreadable", f"not a video container: {_reason(err)}") from None
    if not container.streams.video:
        container.close()
        raise BadVideo(path, "no-video", "container has no video stream")
    return container


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that make ``frame`` upright (0-3), from the display
    matrix FFmpeg attaches to it (``frame.rotation``: degrees counter-clockwise, -180..180)."""
    return round(frame.rotation / 90) % 4


def _upright(image: np.ndarray, turns: int) -> np.ndarray:
    """An (H, W, C) image turned counter-clockwise by ``turns`` quarter turns (as displayed:
    row 0 at the top)."""
    return np.rot90(image, turns) if turns else image


def _scaled_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(height, width) after resizing the shorter side to ``short_side`` (even sizes kept)."""
    if short_side is None or min(height, width) == short_side:
        return height, width
    ratio = short_side / min(height, width)
    return max(1, round(height * ratio)), max(1, round(width * ratio))


def probe(path: Path | str) -> VideoInfo:
    """Open ``path`` and decode its first frame: catches missing, empty, non-video and most
    truncated files (an MP4 cut before its index) in a few milliseconds."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as err:
            raise BadVideo(path, "truncated", f"first frame does not decode: {_reason(err)}") from None
        if first is None:
            raise BadVideo(path, "truncated", "no decodable frame")
        height, width = (first.width, first.height) if _quarter_turns(first) % 2 else (first.height, first.width)
        return VideoInfo(frames=int(stream.frames or 0), height=height, width=width)
    finally:
        container.close()


def decode(path: Path | str, *, short_side: int | None = None, max_frames: int | None = None,
           strict: bool = False) -> np.ndarray:
    """Decode a video into uint8 RGB frames of shape (T, H, W, 3), upright as its rotation
    metadata says (H and W are the displayed ones).

    ``short_side`` resizes at decode time (cheaper than afterwards, and what the cache stores);
    ``max_frames`` stops after that many frames. A decoding error raises ``BadVideo``
    (``truncated``) even after some frames, so that a damaged file is skipped rather than
    silently shortened; with ``strict``, a video that yields fewer frames than its container
    declares is reported as truncated too (what ``optplan data check`` uses).
    """
    path = Path(path)
    container = _open(path)
    frames: list[np.ndarray] = []
    try:
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        size: tuple[int, int] | None = None
        # one reformatter for all frames: frame.to_ndarray(format=...) sets up a new scaler per
        # frame, which costs 3x the decoding itself on small videos
        reformatter = VideoReformatter()
        try:
            for frame in container.decode(stream):
                if size is None:
                    size = _scaled_size(frame.height, frame.width, short_side)
                # a quarter turn keeps the short side short: resize as stored, then turn
                rgb = reformatter.reformat(frame, width=size[1], height=size[0], format="rgb24")
                frames.append(_upright(rgb.to_ndarray(), _quarter_turns(frame)))
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except av.FFmpegError as err:
            raise BadVideo(path, "truncated", f"decoding stopped after {len(frames)} frames: {_reason(err)}") from None
    finally:
        container.close()
    if not frames:
        raise BadVideo(path, "truncated", "no decodable frame")
    if strict and max_frames is None and declared and len(frames) < declared:
        raise BadVideo(path, "truncated", f"decoded {len(frames)} of {declared} declared frames")
    return np.stack(frames)


def encode(path: Path | str, frames: np.ndarray, *, fps: int = 25, crf: int = 18,
           faststart: bool = False, rotation: int = 0) -> None:
    """Write uint8 RGB frames (T, H, W, 3), H and W even, as an H.264 MP4 (yuv420p).

    ``crf`` 18 keeps the codec error small (a few grey levels) so tests can compare decoded
    pixels with what was rendered. ``faststart`` puts the index first, as web videos do (a
    cut-off file then still opens and fails only where its data ends). ``rotation`` (degrees
    counter-clockwise, a multiple of 90) writes a display matrix, as a phone does: players (and
    :func:`decode`) show the frames turned by it.
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    t, h, w, c = frames.shape
    if c != 3 or h % 2 or w % 2:
        raise ValueError(f"encode needs (T, H, W, 3) frames with even H and W, got {frames.shape}")
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        # x264's macroblock tree (rate control from the lookahead) made the same frames encode
        # to other bytes now and then, mostly in a process's first encodes (3 of 1,680 videos of a
        # regime differed between two generations, enough to change a benchmark plan); without
        # it the bytes are a function of the frames
        stream.options = {"crf": str(crf), "preset": "medium", "tune": "fastdecode", "x264-params": "no-mbtree=1"}
        stream.thread_type = "NONE"
        if rotation:
            stream.set_display_rotation(rotation)
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def frame_count(path: Path | str) -> int:
    """Frames the container declares (0 when it does not say); opens the file, decodes nothing."""
    container = _open(Path(path))
    try:
        return int(container.streams.video[0].frames or 0)
    finally:
        container.close()

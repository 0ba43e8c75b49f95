"""The built-in dataset: real H.264 videos of handwritten digits that move.

Why it looks like this. The paper's state space (short clips first, long clips later) only
matters when a label needs long-range temporal structure, and its dual head only has work when
a label needs appearance too. So a class is *(digit, first movement, second movement)*: a
handwritten digit (from scikit-learn's bundled 8x8 digits, 1797 real samples, upscaled)
oscillates with one movement in the first part of the video and another in the second part.

- Appearance: which digit (the first ``ceil(num_classes / 6)`` digits of ``DIGITS``); train
  and test videos use disjoint handwriting samples.
- Long-range order: movements are horizontal, vertical or circular oscillations around a
  randomly placed, slowly drifting centre, so neither position nor a short window tells which
  movement came first; the switch falls at a whole cycle between 35% and 65% of the video.
  A one-frame model is at chance among the 6 orders (1/6), a window inside one half sees one
  movement (at best 1/4), a clip spanning the switch sees the order.
- Nuisance: varying oscillation period (6-12 frames) with jittered speed, amplitude and
  size, one or two smaller, dimmer distractor digits drifting across, a coloured
  low-frequency clutter background and per-frame Gaussian noise.

Labels do not depend on left/right (a mirrored horizontal oscillation is still horizontal),
so flipping is harmless, but the default config keeps it off as for any direction-bearing set.
Every video is a pure function of ``(seed, class, index)``: :func:`render_video` re-creates the
frames of any single video without writing anything (tests compare decoded files with it).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np

from optplan.errors import OptplanError

DIGITS = (0, 1, 7, 4, 3, 5, 2, 6, 8, 9)  # most distinct shapes first
MOVEMENTS = ("horizontal", "vertical", "circle")
ORDERS = tuple(permutations(MOVEMENTS, 2))  # 6 ordered pairs of distinct movements
FPS = 25
TEST_SHARE = 0.25  # share of each class written to the test list


@dataclass(frozen=True)
class VideoSpec:
    """One video to render: its class, its index within the class and where it goes."""

    label: int
    index: int
    digit: int
    movements: tuple[str, str]  # (first half, second half)
    split: str  # "train" | "test"
    youtube_id: str
    relpath: str  # "{class}/{youtube_id}_{start:06d}_{end:06d}.mp4", as Kinetics downloaders name files
    frames: int
    size: int
    seed: int


def class_table(num_classes: int = 12) -> list[tuple[str, int, str, str]]:
    """(name, digit, first movement, second movement) per class, in label order.

    The first ``num_classes`` of digit-major (``DIGITS``) x ``ORDERS``, sorted by name, so that
    the classInd.txt order and the alphabetical order that Kinetics-style readers use agree.
    """
    limit = len(DIGITS) * len(ORDERS)
    if not 1 <= num_classes <= limit:
        raise OptplanError(f"num_classes must be in 1..{limit}, got {num_classes}")
    chosen = [(d, a, b) for d in DIGITS for a, b in ORDERS][:num_classes]
    return sorted((f"digit{d}_{a}_then_{b}", d, a, b) for d, a, b in chosen)


def class_names(num_classes: int = 12) -> list[str]:
    """Class names in label order (see :func:`class_table`)."""
    return [row[0] for row in class_table(num_classes)]


def plan_videos(*, videos_per_class: int = 30, frames: int = 32, size: int = 64, seed: int = 0,
                num_classes: int | None = None) -> list[VideoSpec]:
    """The list of videos :func:`synthesize` writes, in order (no rendering)."""
    if videos_per_class < 2:
        raise OptplanError(f"videos_per_class must be >= 2 (one train, one test), got {videos_per_class}")
    if frames < 8:
        raise OptplanError(f"frames must be >= 8 so both movements show, got {frames}")
    if size < 16 or size % 2:
        raise OptplanError(f"size must be an even number >= 16 (H.264 needs even sizes), got {size}")
    table = class_table(12 if num_classes is None else num_classes)
    n_test = min(videos_per_class - 1, max(1, round(videos_per_class * TEST_SHARE)))
    end = math.ceil(frames / FPS)
    specs = []
    for label, (name, digit, first, second) in enumerate(table):
        for index in range(videos_per_class):
            youtube_id = f"synth{label * videos_per_class + index:06d}"
            specs.append(VideoSpec(
                label=label, index=index, digit=digit, movements=(first, second),
                split="test" if index < n_test else "train", youtube_id=youtube_id,
                relpath=f"{name}/{youtube_id}_{0:06d}_{end:06d}.mp4", frames=frames, size=size, seed=seed))
    return specs


@lru_cache(maxsize=1)
def _digit_images() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32) / 16.0, digits.target


def _handwriting(digit: int, split: str, rng: np.random.Generator) -> np.ndarray:
    """One real 8x8 sample of ``digit``, from the even samples for train, odd ones for test."""
    images, targets = _digit_images()
    pool = np.flatnonzero(targets == digit)[0 if split == "train" else 1::2]
    return images[rng.choice(pool)]


def _upscale(image: np.ndarray, side: int) -> np.ndarray:
    """Bilinear upscale of a (8, 8) image in 0..1 to (side, side)."""
    from scipy.ndimage import zoom

    return np.clip(zoom(image, side / image.shape[0], order=1), 0.0, 1.0)


def _clutter(size: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured low-frequency background (size, size, 3) in 0..255, a few dim blobs."""
    from scipy.ndimage import zoom

    coarse = rng.uniform(0, 70, size=(5, 5, 3)).astype(np.float32)
    return zoom(coarse, (size / 5, size / 5, 1), order=3)[:size, :size]


def _oscillation(movement: str, phase: np.ndarray, amplitude: float) -> np.ndarray:
    """(len(phase), 2) offsets (dy, dx) in pixels; all three are 0 at whole cycles."""
    s, c = np.sin(phase), 1.0 - np.cos(phase)
    zero = np.zeros_like(phase)
    dy, dx = {"horizontal": (zero, s), "vertical": (s, zero), "circle": (c, s)}[movement]
    return amplitude * np.stack([dy, dx], axis=1)


def target_path(spec: VideoSpec, rng: np.random.Generator, side: int) -> tuple[np.ndarray, int]:
    """(T, 2) top-left (y, x) positions of the target digit, drift plus the two oscillations
    of ``spec.movements`` in order, and the first frame of the second movement."""
    (first, second), t, size = spec.movements, spec.frames, spec.size
    period = rng.uniform(6.0, 12.0)
    speed = 1.0 + 0.3 * np.sin(np.arange(t) * rng.uniform(0.1, 0.4) + rng.uniform(0, 2 * np.pi))
    phase = np.concatenate([[0.0], np.cumsum(2 * np.pi / period * speed)[:-1]])
    # switch at the whole cycle nearest to a random point between 35% and 65% of the video
    cycles = max(1, round(phase[int(t * rng.uniform(0.35, 0.65))] / (2 * np.pi)))
    in_first = phase < cycles * 2 * np.pi
    if in_first.all() or not in_first.any():  # too few cycles: split the frames in halves
        in_first = np.arange(t) < t // 2
    amplitude = size * rng.uniform(0.1, 0.16)
    offsets = np.where(in_first[:, None], _oscillation(first, phase, amplitude),
                       _oscillation(second, phase - phase[~in_first][0], amplitude))
    span = size - side
    drift = rng.uniform(-0.08, 0.08, size=2) * size * np.linspace(-0.5, 0.5, t)[:, None]
    reach = np.abs(offsets).max(axis=0) + np.abs(drift).max(axis=0)
    centre = np.array([rng.uniform(min(r, span / 2), max(span - r, span / 2)) for r in reach])
    return np.clip(centre + offsets + drift, 0, span), int(in_first.sum())


def _paste(frame: np.ndarray, mask: np.ndarray, colour: np.ndarray, top: float, left: float) -> None:
    """Alpha-blend a (h, w) mask in 0..1 with an RGB colour onto frame (H, W, 3) at (top, left)."""
    h, w = mask.shape
    y, x = int(round(top)), int(round(left))
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + h, frame.shape[0]), min(x + w, frame.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    alpha = mask[y0 - y:y1 - y, x0 - x:x1 - x, None]
    region = frame[y0:y1, x0:x1]
    region *= 1.0 - alpha
    region += alpha * colour


def render_video(spec: VideoSpec) -> np.ndarray:
    """The frames of one video, uint8 (T, H, W, 3): a pure function of ``spec``."""
    rng = np.random.default_rng([spec.seed, spec.label, spec.index])
    t, size = spec.frames, spec.size

    side = max(8, round(size * rng.uniform(0.32, 0.42)))
    target = _upscale(_handwriting(spec.digit, spec.split, rng), side)
    colour = rng.uniform(170, 255, size=3)
    path, _ = target_path(spec, rng, side)

    distractors = []
    for _ in range(rng.integers(1, 3)):
        d_side = max(6, round(side * rng.uniform(0.45, 0.7)))
        mask = _upscale(_handwriting(int(rng.integers(10)), spec.split, rng), d_side)
        start = rng.uniform(0, size - d_side, size=2)
        velocity = rng.uniform(-1.0, 1.0, size=2) * size / t
        track = np.abs((start + np.arange(t)[:, None] * velocity) % (2 * (size - d_side)))
        track = np.where(track > size - d_side, 2 * (size - d_side) - track, track)  # bounce
        distractors.append((mask, rng.uniform(60, 150, size=3), track))

    background = _clutter(size, rng)
    noise = rng.normal(0.0, 6.0, size=(t, size, size, 3)).astype(np.float32)
    video = np.empty((t, size, size, 3), dtype=np.uint8)
    for i in range(t):
        frame = background.copy()
        for mask, d_colour, track in distractors:
            _paste(frame, mask, d_colour, *track[i])
        _paste(frame, target, colour, *path[i])
        video[i] = np.clip(frame + noise[i], 0, 255).astype(np.uint8)
    return video


def write_annotations(root: Path, specs: list[VideoSpec], names: list[str]) -> None:
    """UCF101-style ``classInd.txt`` / ``trainlist01.txt`` / ``testlist01.txt`` and
    Kinetics-style ``train.csv`` / ``test.csv`` over the same files."""
    (root / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    end = math.ceil(specs[0].frames / FPS) if specs else 0
    for split in ("train", "test"):
        rows = [s for s in specs if s.split == split]
        # UCF101: train lines carry the 1-based class index, test lines only the path
        lines = [f"{s.relpath} {s.label + 1}\n" if split == "train" else f"{s.relpath}\n" for s in rows]
        (root / f"{split}list01.txt").write_text("".join(lines))
        csv = ["label,youtube_id,time_start,time_end,split\n"]
        csv += [f"{names[s.label]},{s.youtube_id},0,{end},{split}\n" for s in rows]
        (root / f"{split}.csv").write_text("".join(csv))


def synthesize(out_dir: str | Path, *, videos_per_class: int = 30, frames: int = 32, size: int = 64,
               seed: int = 0, num_classes: int | None = None) -> dict[str, Any]:
    """Write the built-in dataset into ``out_dir`` and return a summary.

    Defaults (12 classes x 30 videos, 32 frames of 64x64, about 6 MB) keep one epoch of the
    tiny model on 2 CPU cores in seconds while leaving 8-frame clips clearly short of the
    whole story. ``synth.json`` records the arguments, so the set can be made again.
    """
    from optplan.data.video import encode

    started = time.perf_counter()
    root = Path(out_dir)
    specs = plan_videos(videos_per_class=videos_per_class, frames=frames, size=size, seed=seed,
                        num_classes=num_classes)
    names = class_names(12 if num_classes is None else num_classes)
    for spec in specs:
        target = root / spec.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        encode(target, render_video(spec), fps=FPS)
    write_annotations(root, specs, names)
    summary = {
        "root": str(root), "classes": names, "videos": len(specs),
        "train": sum(s.split == "train" for s in specs), "test": sum(s.split == "test" for s in specs),
        "videos_per_class": videos_per_class, "frames": frames, "size": size, "fps": FPS, "seed": seed,
    }
    (root / "synth.json").write_text(json.dumps(summary, indent=1) + "\n")
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


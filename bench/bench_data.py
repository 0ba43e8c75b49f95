"""Loader throughput: clips/s of the default clip setting with and without the frame cache,
against a naive loader that decodes the whole video for every clip; with ``--augment``, the
cached loader with and without the reference's augmentation instead.

    .venv/bin/python bench/bench_data.py [--root DIR] [--epochs 3] [--accuracy-epochs 30] [--out FILE]
    .venv/bin/python bench/bench_data.py --augment [--epochs 5] [--out FILE]
    .venv/bin/python bench/bench_data.py --open-maps [--root DIR] [--epochs 2] [--out FILE]

Without ``--root`` the built-in dataset (default size) is written to a temporary directory.
Each figure is the fastest of ``--epochs`` passes over the training split (batch 8); the cached
loader is timed after one warm-up pass that fills the cache (its cold pass is reported too).
Torch runs single-threaded, as the DataLoader workers do. ``--open-maps`` times a training
epoch and its validation in the benchmark's setting (bench.yaml's ``config``; without ``--root``
its appearance regime is generated) with the frame cache keeping 256 maps open, as it did, and
as many as the descriptor limit allows, alternating epoch by epoch.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from optplan.data import AugmentConfig, ClipSpec, DataConfig, VideoDataset, load_splits, make_loader, synthesize
from optplan.data.sampling import sample_indices
from optplan.data.transforms import train_transform
from optplan.data.video import decode


class NaiveDataset(Dataset):
    """The baseline: decode every frame of the video, then cut one clip from it."""

    def __init__(self, records, cfg: DataConfig, clip: ClipSpec) -> None:
        self.records, self.cfg, self.clip = records, cfg, clip

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        rng = np.random.default_rng(i)
        frames = decode(self.records[i].path)
        clip = frames[sample_indices(len(frames), self.clip, rng=rng)]
        cfg = self.cfg
        return train_transform(clip, crop_size=cfg.crop_size, scale=cfg.scale, flip=cfg.flip,
                               mean=cfg.mean, std=cfg.std, rng=rng), self.records[i].label


def clips_per_second(loader: DataLoader, epochs: int, dataset=None) -> float:
    """Clips/s of the fastest of ``epochs`` passes (the machine is shared: the best pass is the
    one least disturbed by other jobs)."""
    rates = []
    for epoch in range(epochs):
        if dataset is not None:
            dataset.set_epoch(epoch)
        clips, started = 0, time.perf_counter()
        for x, _ in loader:
            clips += len(x)
        rates.append(clips / (time.perf_counter() - started))
    return max(rates)


def accuracy_by_clip(root: Path, work: Path, clip: ClipSpec, epochs: int, seed: int = 0) -> float:
    """Top-1 on val+test (one centre clip) of ``dg_p3d_tiny`` trained ``epochs`` epochs on ``clip``
    (SGD, Nesterov momentum 0.9, lr 0.05 cosine, batch 16, 1 loader worker): does the dataset
    reward seeing the whole video?"""
    from optplan.models import classification_loss, create_model

    torch.manual_seed(seed)
    cfg = DataConfig(root=root, cache_dir=work / "cache_acc")
    splits = load_splits(cfg, seed=seed)
    train = VideoDataset(splits.train, cfg, mode="train", clip=clip, seed=seed)
    held = VideoDataset(splits.val + splits.test, cfg, mode="val", clip=clip)
    model = create_model("dg_p3d_tiny", num_classes=len(splits.classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    loader = make_loader(train, batch_size=16, shuffle=True, num_workers=1, seed=seed)
    for epoch in range(epochs):
        train.set_epoch(epoch)
        model.train()
        for x, y in loader:
            loss = classification_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in make_loader(held, batch_size=32, shuffle=False, num_workers=0):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / len(held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="dataset root (default: synthesize one)")
    parser.add_argument("--epochs", type=int, default=3, help="timed passes per loader (best is kept)")
    parser.add_argument("--clip-length", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="write a markdown section here")
    parser.add_argument("--accuracy-epochs", type=int, default=0,
                        help="also train the tiny model this many epochs on 8 consecutive vs 8 uniform "
                             "frames and report held-out accuracy (0: skip)")
    parser.add_argument("--augment", action="store_true",
                        help="time the cached loader with the defaults against the reference's augmentation")
    parser.add_argument("--open-maps", action="store_true",
                        help="time benchmark epochs with 256 open frame maps against the default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_data_") as work:
        (run_augment if args.augment else run_open_maps if args.open_maps else run)(args, Path(work))


def run_open_maps(args: argparse.Namespace, work: Path) -> None:
    """Seconds of one training epoch plus its validation, at the benchmark's shortest and
    longest clip, with 256 open maps and with the default (:func:`open_map_limit`); the two
    alternate epoch by epoch (the model trains on), each timed after a warm-up epoch that
    opens its maps, and the fastest of ``--epochs`` is kept."""
    from optplan.bench.config import load_bench_config
    from optplan.bench.schedules import clip_state
    from optplan.data.cache import open_map_limit
    from optplan.train.session import TrainSession

    torch.set_num_threads(1)
    root = args.root or work / "appearance"
    bench = load_bench_config()
    if args.root is None:
        synthesize(root, **bench.regimes["appearance"].synth.model_dump())
    cfg = bench.base([f"data.root={root}", f"data.cache_dir={work / 'cache'}", "train.progress=false"])
    session, default, load = TrainSession(cfg), open_map_limit(), os.getloadavg()
    rows = []
    for i in (0, len(cfg.plan.clip_lengths) - 1):
        state = clip_state(cfg, i, f"c{cfg.plan.clip_lengths[i]}")
        clip = ClipSpec.from_state(state)
        optimizer, net = session.prepare(session.new_model(), state)
        best, epoch = {}, 0
        for _ in range(args.epochs):
            for keep in (256, default):
                for ds in session._datasets.values():
                    ds.cache.keep_open = keep
                    ds.cache._open.clear()
                for timed in (False, True):
                    epoch += 1
                    start = time.perf_counter()
                    session.train_one_epoch(net, optimizer, state, epoch)
                    session.score(net, clip)
                    if timed:
                        best[keep] = min(best.get(keep, math.inf), time.perf_counter() - start)
        rows.append((state.clip_length, best[256], best[default]))
        print(f"clip {state.clip_length}: 256 maps {best[256]:.2f} s, {default} maps {best[default]:.2f} s")
    end = os.getloadavg()
    if args.out:
        lines = section(
            "Open frame maps in the benchmark's setting",
            f"--open-maps{f' --root {args.root}' if args.root else ''} --epochs {args.epochs} --out {args.out}",
            [f"Dataset: {'the benchmark appearance regime' if args.root is None else root}, "
             f"{len(session.splits.train)} training and {len(session.splits.val)} validation videos; "
             f"bench.yaml's config (crop {cfg.data.crop_size}, batch {state.batch_size}, `{cfg.model.name}`); "
             f"torch 1 thread; fastest of {args.epochs} epochs each, alternating.",
             f"Machine: {os.cpu_count()} cores, load average {load[0]:.2f} at start, {end[0]:.2f} at the end."],
            ["clip", "256 maps: epoch + val, s", f"{default} maps: epoch + val, s", "ratio"], "---:|---:|---:|---:",
            [f"| {c} | {a:.2f} | {b:.2f} | {b / a:.2f} |" for c, a, b in rows])
        args.out.write_text("\n".join(lines))


def section(title: str, command: str, facts: list[str], columns: list[str], align: str,
            rows: list[str]) -> list[str]:
    """A RESULTS.md section: title, the command, one line per fact (the machine's load among
    them, since every figure here moves with it), then the table (``align``: its markdown
    alignment cells, e.g. '---:|---')."""
    return [f"## {title}", "", f"Command: `.venv/bin/python bench/bench_data.py {command}`  ",
            *[f"{fact}  " for fact in facts[:-1]], facts[-1], "",
            "| " + " | ".join(columns) + " |", f"|{align}|", *rows, ""]


REFERENCE_AUGMENT = {"scale": (0.2, 1.0), "flip": True,
                     "augment": AugmentConfig(jitter=0.8, grayscale=0.2, blur=0.5)}
"""configs/reference.yaml's training augmentation (the mean/std change nothing to the cost)."""


def run_augment(args: argparse.Namespace, work: Path) -> None:
    """Clips/s of the cached loader with today's default augmentation (crop area 0.5..1, no
    flip, no colour) and with the reference's, side by side: per worker count, the passes
    alternate between the two so that both see the same machine load."""
    torch.set_num_threads(1)
    root = args.root or work / "synth"
    if args.root is None:
        synthesize(root)
    clip, load = ClipSpec(args.clip_length), os.getloadavg()
    rows = []
    for workers in (0, 1):
        base = DataConfig(root=root, cache_dir=work / "cache", num_workers=workers)
        records = load_splits(base).train
        loaders = {}
        for name, cfg in (("defaults", base), ("reference", base.model_copy(update=REFERENCE_AUGMENT))):
            ds = VideoDataset(records, cfg, mode="train", clip=clip)
            loaders[name] = (make_loader(ds, batch_size=args.batch_size, shuffle=True, num_workers=workers), ds)
            clips_per_second(loaders[name][0], 1, ds)  # warm-up: fills the cache, starts the workers
        best = {name: 0.0 for name in loaders}
        for epoch in range(args.epochs):
            for name, (loader, ds) in loaders.items():
                ds.set_epoch(epoch)
                best[name] = max(best[name], clips_per_second(loader, 1))
        rows.append((workers, best["defaults"], best["reference"]))
        print(f"workers={workers}  defaults {best['defaults']:8.1f}  reference {best['reference']:8.1f} clips/s")
    end = os.getloadavg()
    if args.out:
        lines = section(
            "Loader throughput with the reference's augmentation (issue 12)",
            f"--augment --epochs {args.epochs} --out {args.out}",
            [f"Dataset: {'built-in default (32 frames of 64x64)' if args.root is None else root}, train split "
             f"{len(records)} videos, frame cache warm; clip {clip.clip_length} consecutive frames, crop "
             f"{base.crop_size}x{base.crop_size}, batch {args.batch_size}; torch 1 thread; best of {args.epochs} "
             "passes, the two settings alternating pass by pass.",
             f"Machine: {os.cpu_count()} cores, load average {load[0]:.2f} at start, {end[0]:.2f} at the end "
             "(shared with other jobs).",
             "defaults: random resized crop area (0.5, 1), no flip, no colour. reference: area (0.2, 1), flip, "
             "colour jitter p 0.8, grayscale p 0.2, Gaussian blur p 0.5."],
            ["workers", "defaults, clips/s", "reference, clips/s", "reference / defaults"], "---:|---:|---:|---:",
            [f"| {w} | {a:.1f} | {b:.1f} | {b / a:.2f} |" for w, a, b in rows])
        args.out.write_text("\n".join(lines))


def run(args: argparse.Namespace, work: Path) -> None:
    """Time the loaders (and train the accuracy check) with caches and data under ``work``."""
    torch.set_num_threads(1)

    root = args.root or work / "synth"
    if args.root is None:
        synthesize(root)
    clip = ClipSpec(args.clip_length)
    load = os.getloadavg()
    rows = []
    for workers in (0, 1):
        cfg = DataConfig(root=root, cache_dir=work / f"cache{workers}", num_workers=workers)
        records = load_splits(cfg).train
        variants = {}
        for name, cached in (("cache", True), ("no cache", False)):
            ds = VideoDataset(records, cfg.model_copy(update={"cache": cached}), mode="train", clip=clip)
            loader = make_loader(ds, batch_size=args.batch_size, shuffle=True, num_workers=workers)
            if cached:
                variants["cache, cold (1st pass)"] = clips_per_second(loader, 1, ds)
            variants[name] = clips_per_second(loader, args.epochs, ds)
        naive = DataLoader(NaiveDataset(records, cfg, clip), batch_size=args.batch_size, shuffle=True,
                           num_workers=workers, persistent_workers=workers > 0)
        variants["naive (decode whole video per clip)"] = clips_per_second(naive, args.epochs)
        for name, rate in variants.items():
            rows.append((workers, name, rate, rate / variants["naive (decode whole video per clip)"]))
            print(f"workers={workers}  {name:<38} {rate:8.1f} clips/s")

    accuracy = {}
    if args.accuracy_epochs:
        for name, spec in (("8 consecutive frames (a quarter of the video)", ClipSpec(8)),
                           ("8 uniform frames (the whole video)", ClipSpec(8, "uniform"))):
            started = time.perf_counter()
            accuracy[name] = (accuracy_by_clip(root, work, spec, args.accuracy_epochs),
                              time.perf_counter() - started)
            print(f"{name:<45} top-1 {accuracy[name][0]:.3f} in {accuracy[name][1]:.0f} s")

    if args.out:
        lines = section(
            "Data loader throughput (bench/bench_data.py)",
            f"--epochs {args.epochs} --accuracy-epochs {args.accuracy_epochs} --out {args.out}",
            [f"Dataset: {'built-in default (12 classes x 30 videos, 32 frames of 64x64)' if args.root is None else root}, "
             f"train split {len(records)} videos; clip {clip.clip_length} consecutive frames, random resized "
             f"crop to {cfg.crop_size}x{cfg.crop_size}, batch {args.batch_size}; torch 1 thread.",
             f"Machine: {os.cpu_count()} cores, load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
             "(shared with other jobs)."],
            ["workers", "loader", "clips/s", "x naive"], "---:|---|---:|---:",
            [f"| {w} | {name} | {rate:.1f} | {ratio:.1f} |" for w, name, rate, ratio in rows])
        if accuracy:
            lines += [
                f"Does the dataset need long clips? `dg_p3d_tiny` from scratch, {args.accuracy_epochs} epochs "
                "(SGD lr 0.05 cosine, batch 16), top-1 on the held-out val+test videos (one centre clip, chance 1/12):",
                "",
                "| training and test clip | top-1 | train time |",
                "|---|---:|---:|",
                *[f"| {name} | {acc:.3f} | {sec:.0f} s |" for name, (acc, sec) in accuracy.items()],
                "",
            ]
        args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()

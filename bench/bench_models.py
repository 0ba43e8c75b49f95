"""Benchmark the registered 3D backbones on CPU.

1. Training-step throughput (clips/s: forward, loss, backward, SGD step) of each model at its
   default input (``optplan models`` shows it), batch 8 for the tiny CPU models, 2 otherwise.
2. The default model (``model.name``) at each clip setting of the default plan (T, batch).
3. Forward and forward+backward time of DG-P3D-ResNet-50 at 16x224x224, batch 2, with GFLOPs.

Prints a markdown section; e.g.
    .venv/bin/python bench/bench_models.py --threads 2
    .venv/bin/python bench/bench_models.py --threads 1 --models dg_p3d_tiny r3d_tiny
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from optplan.config import OptplanConfig
from optplan.models import classification_loss, create_model, list_models, model_info
from optplan.models.flops import model_cost


def train_step_seconds(name: str, batch: int, steps: int, warmup: int,
                       input_size: tuple[int, int, int] | None = None) -> float:
    """Median seconds per training step over ``steps`` after ``warmup`` untimed ones (the median
    shrugs off other processes' bursts on a shared machine)."""
    model = create_model(name).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.randn(batch, 3, *(input_size or model_info(name).input_size))
    y = torch.randint(0, model.num_classes, (batch,))
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        classification_loss(model(x), y).backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_backward_seconds(name: str, input_size: tuple[int, int, int], batch: int,
                             steps: int) -> tuple[float, float]:
    """Median seconds of a training-mode forward, and of forward+backward (one warm-up)."""
    model = create_model(name).train()
    x = torch.randn(batch, 3, *input_size)
    y = torch.randint(0, model.num_classes, (batch,))
    fwd, both = [], []
    for i in range(steps + 1):
        start = time.perf_counter()
        loss = classification_loss(model(x), y)
        mid = time.perf_counter()
        loss.backward()
        end = time.perf_counter()
        model.zero_grad(set_to_none=True)
        if i:
            fwd.append(mid - start)
            both.append(end - start)
    return statistics.median(fwd), statistics.median(both)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (cores used)")
    parser.add_argument("--models", nargs="*", default=None, help="models for part 1 (default: all)")
    parser.add_argument("--steps", type=int, default=9, help="timed steps per tiny model (3 for large)")
    parser.add_argument("--skip-r50", action="store_true", help="skip part 3")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average at start {load:.2f}\n")
    print("| model | input TxHxW | batch | params | GFLOPs/clip | s/step | clips/s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models or list_models():
        info = model_info(name)
        tiny = info.input_size[1] <= 64
        batch, steps = (8, args.steps) if tiny else (2, 3)
        sec = train_step_seconds(name, batch, steps, warmup=2 if tiny else 1)
        cost = model_cost(name)
        print(f"| {name} | {'x'.join(map(str, info.input_size))} | {batch} | {cost.params / 1e6:.2f}M | "
              f"{cost.gflops:.2f} | {sec:.3f} | {batch / sec:.1f} |", flush=True)
    cfg = OptplanConfig()
    print(f"\n{cfg.model.name} at the default plan's clip settings ({cfg.data.crop_size} px crops):\n")
    print("| T | batch | s/step | clips/s |")
    print("|---|---|---|---|")
    for t, batch in zip(cfg.plan.clip_lengths, cfg.plan.batch_sizes):
        size = (t, cfg.data.crop_size, cfg.data.crop_size)
        sec = train_step_seconds(cfg.model.name, batch, args.steps, warmup=2, input_size=size)
        print(f"| {t} | {batch} | {sec:.3f} | {batch / sec:.1f} |", flush=True)
    if not args.skip_r50:
        size, batch = (16, 224, 224), 2
        fwd, both = forward_backward_seconds("dg_p3d_r50", size, batch, steps=3)
        gflops = model_cost("dg_p3d_r50", size).gflops
        print(f"\ndg_p3d_r50, 16x224x224, batch {batch}, train mode: forward {fwd:.2f} s, "
              f"forward+backward {both:.2f} s; {gflops:.1f} GFLOPs per clip forward "
              f"({batch * gflops / fwd:.0f} GFLOP/s forward)")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

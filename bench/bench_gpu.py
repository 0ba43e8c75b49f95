"""GPU paths, measured for real on one CUDA device (nothing here runs in CI or the tests).

1. DG-P3D-ResNet-50 training-step time at 16x224x224: fp32, bf16 / fp16 autocast (fp16 with the
   gradient scaler, as ``train.amp=fp16`` does), each with and without ``channels_last_3d``, in
   eager mode and under ``torch.compile``. The step is the project's: the model, loss, SGD
   (Nesterov) and gradient clipping that ``TrainSession`` builds, on inputs laid out as
   ``Precision.to_device`` lays them out. Median of timed steps after warm-up, with a CUDA
   synchronise around each step; peak memory and achieved TFLOP/s (3 x forward GFLOPs per clip).
2. Frozen BatchNorm under ``SyncBatchNorm``: the session's conversion and freezing in a
   one-process NCCL group with a 2-rank ``DistInfo`` view; reports whose running statistics
   moved in a training step (none with ``frozen_bn=all``, the stem's alone with ``stats``).
3. Two-process NCCL DDP (``torchrun --nproc_per_node=2``) on however many GPUs are visible.

Prints a markdown section; e.g. ``python bench/bench_gpu.py --batch 8 --steps 20``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from optplan.models import classification_loss, create_model, set_frozen_bn
from optplan.models.flops import model_cost
from optplan.train.engine import Precision

MODEL = "dg_p3d_r50"
_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
INPUT = (16, 224, 224)


def step_time(precision: Precision, batch: int, steps: int, warmup: int, compiled: bool,
              frozen_bn: bool = False, compile_mode: str = "default") -> tuple[float, float]:
    """Median seconds per training step and peak GiB of one precision/layout/compile setting."""
    torch.manual_seed(0)
    model = create_model(MODEL, num_classes=400).to(precision.device).train()
    set_frozen_bn(model, frozen_bn)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01,
                          momentum=0.9, nesterov=True, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.amp_dtype == torch.float16)
    forward = torch.compile(model, mode=compile_mode) if compiled else model
    x, y = precision.to_device(torch.randn(batch, 3, *INPUT), torch.randint(0, 400, (batch,)))
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with precision.autocast():
            loss = classification_loss(forward(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 40.0)
        scaler.step(opt)
        scaler.update()
        torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    if not torch.isfinite(loss):
        raise RuntimeError(f"non-finite loss {loss.item()} ({precision}, compiled={compiled})")
    return statistics.median(times), torch.cuda.max_memory_allocated() / 2**30


def step_table(batch: int, steps: int, warmup: int, compile_warmup: int,
               modes: tuple[str, ...], compile_mode: str = "default",
               precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")) -> list[str]:
    dev = torch.device("cuda")
    gflops = model_cost(MODEL, INPUT, num_classes=400).gflops
    rows = ["| precision | layout | mode | ms/step | clips/s | TFLOP/s | peak GiB |",
            "|---|---|---|---:|---:|---:|---:|"]
    settings = [(None, False), (None, True), (torch.bfloat16, False), (torch.bfloat16, True),
                (torch.float16, True)]
    for compiled in [m == "compile" for m in modes]:
        for dtype, cl in settings:
            if _NAMES[dtype] not in precisions:
                continue
            if compiled and not cl:
                continue  # compile is measured on the layout that wins in eager mode
            prec = Precision(dev, dtype, cl)
            try:
                sec, mem = step_time(prec, batch, steps, compile_warmup if compiled else warmup, compiled,
                                     compile_mode=compile_mode)
            except Exception as exc:  # a setting that fails is a result, not the end of the table
                rows.append(f"| {dtype} | {'cl3d' if cl else 'ncdhw'} | "
                            f"{'compile' if compiled else 'eager'} | failed: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:80]} | | | |")
                continue
            rows.append(f"| {_NAMES[dtype]} | {'channels_last_3d' if cl else 'NCDHW'} | "
                        f"{f'compile ({compile_mode})' if compiled else 'eager'} | {sec * 1e3:.1f} | {batch / sec:.1f} | "
                        f"{3 * gflops * batch / sec / 1e3:.1f} | {mem:.1f} |")
            print(rows[-1], flush=True)
    return [f"DG-P3D-R50, 16x224x224, batch {batch}, {gflops:.2f} forward GFLOPs per clip; "
            f"median of {steps} steps", ""] + rows


def syncbn_frozen_check() -> str:
    """Does frozen BatchNorm stay frozen through the session's SyncBN path (``sync_batchnorm``,
    then ``set_frozen_bn``, as ``TrainSession.prepare`` does), in a one-process NCCL group with a
    2-rank ``DistInfo`` view? Reports, per ``train.frozen_bn`` mode, whose statistics moved."""
    import torch.distributed as dist

    from optplan.train.distributed import DistInfo, sync_batchnorm

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1)
    dev = torch.device("cuda", 0)
    lines = []
    for mode in ("all", "stats"):
        torch.manual_seed(0)
        model = sync_batchnorm(create_model("dg_p3d_tiny").to(dev), DistInfo(rank=0, world_size=2), dev)
        set_frozen_bn(model, True, mode)
        layers = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.SyncBatchNorm)]
        before = {n: m.running_mean.clone() for n, m in layers}
        model.train()  # as the engine does at the start of every epoch
        x = torch.randn(4, 3, 8, 32, 32, device=dev) * 3 + 1
        classification_loss(model(x), torch.randint(0, 10, (4,), device=dev)).backward()
        moved = [n for n, m in layers if not torch.equal(before[n], m.running_mean)]
        lines.append(f"frozen_bn={mode}: {len(layers)} SyncBatchNorm layers, running statistics moved in "
                     f"{len(moved)} {moved[:2]} after one training step")
    dist.destroy_process_group()
    return "; ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile-warmup", type=int, default=8)
    parser.add_argument("--part", choices=("steps", "syncbn", "all"), default="all")
    parser.add_argument("--modes", nargs="+", choices=("eager", "compile"), default=["eager", "compile"])
    parser.add_argument("--precisions", nargs="+", choices=tuple(_NAMES.values()), default=list(_NAMES.values()))
    parser.add_argument("--compile-mode", default="default", choices=("default", "reduce-overhead", "max-autotune"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA device")
    torch.backends.cudnn.benchmark = True
    print(f"## GPU paths: {torch.cuda.get_device_name()} (torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})\n", flush=True)
    if args.part in ("syncbn", "all"):
        print("SyncBN + frozen BN:", syncbn_frozen_check(), "\n", flush=True)
    if args.part in ("steps", "all"):
        print("\n".join(step_table(args.batch, args.steps, args.warmup, args.compile_warmup,
                                    tuple(args.modes), args.compile_mode,
                                    tuple(args.precisions))), flush=True)


if __name__ == "__main__":
    main()

"""``optplan models``: list the registered backbones with their size and cost for a clip size."""

from __future__ import annotations

import argparse
import json
import re

from optplan.errors import OptplanError


def parse_input(text: str) -> tuple[int, int, int]:
    """``16x224x224`` -> (T, H, W); ``8x56`` -> (8, 56, 56)."""
    match = re.fullmatch(r"(\d+)x(\d+)(?:x(\d+))?", text.strip().lower())
    if not match:
        raise OptplanError(f"--input {text!r}: expected TxHxW frames x pixels, e.g. 16x224x224")
    t, h, w = match.groups()
    return int(t), int(h), int(w or h)


def _input_sizes(args: argparse.Namespace, default: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """One clip size per ``--clip`` value (or the one of ``--input`` / the model's default)."""
    t, h, w = parse_input(args.input) if args.input else default
    return [(clip, args.size or h, args.size or w) for clip in args.clip or [t]]


def run(args: argparse.Namespace) -> int:
    from optplan.models import list_models, model_info
    from optplan.models.flops import model_cost

    names = args.names or list_models()
    rows = []
    for name in names:
        info = model_info(name)
        for size in _input_sizes(args, info.input_size):
            cost = model_cost(name, size, args.num_classes)
            rows.append(dict(name=name, family=info.family, heads=2 if info.dual_head else 1,
                             params=cost.params, input="x".join(map(str, cost.input_size)),
                             gflops=cost.gflops, min_t=cost.min_clip_length, description=info.description))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':20s} {'family':9s} {'heads':>5s} {'params':>9s} {'input TxHxW':>12s} "
          f"{'GFLOPs':>8s} {'min T':>5s}  description")
    for r in rows:
        gflops = f"{r['gflops']:8.2f}" if r["gflops"] is not None else f"{'T<' + str(r['min_t']):>8s}"
        print(f"{r['name']:20s} {r['family']:9s} {r['heads']:5d} {r['params'] / 1e6:8.2f}M "
              f"{r['input']:>12s} {gflops} {r['min_t']:5d}  {r['description']}")
    print("GFLOPs: one forward of one clip, FlopCounterMode (a multiply-accumulate = 2 FLOPs).")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the 3D backbones with parameters and GFLOPs",
                       description="List registered models (or the NAMES given) with parameter "
                                   "count and forward GFLOPs for one clip; each model's default "
                                   "input unless --input/--clip/--size is given; several --clip "
                                   "values give one row each.")
    p.add_argument("names", nargs="*", metavar="NAME", help="models to show (default: all)")
    p.add_argument("--input", metavar="TxHxW", help="clip size, e.g. 16x224x224 (frames x pixels)")
    p.add_argument("--clip", type=int, nargs="+", metavar="T",
                   help="frames per clip, one row per value, e.g. --clip 16 32 64 (overrides --input's T)")
    p.add_argument("--size", type=int, metavar="S", help="crop side in pixels (overrides H and W)")
    p.add_argument("--num-classes", type=int, default=None, metavar="K",
                   help="classifier outputs (default: each model's own)")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.set_defaults(func=run)

"""``optplan knee CURVE.csv``: fit a recorded validation curve and say where its knee is."""

from __future__ import annotations

import argparse
from pathlib import Path

from optplan.knee import METHODS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "knee", help="fit a validation curve (CSV) and show its knee point",
        description="Fit f(x) = -a*exp(-b*x) - c*x - d*x^2 + e to a curve of validation scores "
                    "(first row = epoch 0, the starting model), print the knee and whether the "
                    "stopping rule has decided, and the epoch at which it first would have.")
    p.add_argument("curve", metavar="CURVE.csv", type=Path,
                   help="a 'score' column (e.g. curve.csv of a run) or one number per line")
    p.add_argument("--method", choices=list(METHODS), default="paper",
                   help="stopping rule (default: paper)")
    p.add_argument("--patience", type=int, default=10, help="T, epochs past the knee (default 10)")
    p.add_argument("--max-epochs", type=int, default=None, help="hard cap of epochs per state")
    p.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                   help="save the curve with the fit and the knee marked")
    p.set_defaults(func=run)


def _describe(label: str, knee) -> str:
    if knee is None:
        return f"{label}: not reached"
    why = {"knee": "", "max_epochs": " (max_epochs cap)", "diverged": " (diverged)", "gain": " (fitted gain below min_gain)",
           "plateau": " (best measured score T epochs old)"}.get(knee.stop, "")
    return (f"{label}: knee at epoch {knee.epoch}, score {knee.score:.4f}, "
            f"decided after {knee.epochs} epochs{why}")


def run(args: argparse.Namespace) -> int:
    from optplan.errors import OptplanError
    from optplan.knee import KneeFitError, first_stop, fit_knee, knee_reached, read_curve

    if not args.curve.is_file():
        raise OptplanError(f"curve file {str(args.curve)!r} does not exist")
    if args.patience < 1:
        raise OptplanError(f"--patience must be at least 1 epoch, got {args.patience}")
    try:
        scores = read_curve(args.curve)
    except ValueError as err:
        raise OptplanError(str(err)) from None
    rule = dict(patience=args.patience, method=args.method, max_epochs=args.max_epochs)
    print(f"{args.curve}: {len(scores)} points ({len(scores) - 1} epochs), "
          f"best observed {max(scores):.4f} at epoch {scores.index(max(scores))}")
    fit = None
    try:
        fit = fit_knee(scores)
        a, b, c, d, e = fit.params
        print(f"fit: f(x) = -{a:.4g}*exp(-{b:.4g}*x) - ({c:.4g})*x - {d:.4g}*x^2 + {e:.4g}")
        print(f"fitted maximum over x=0..999: epoch {fit.epoch}, f = {fit.score:.4f}")
    except KneeFitError as err:
        print(f"fit: failed ({err})")
    print(_describe(f"{args.method} rule now", knee_reached(scores, **rule)))
    print(_describe(f"{args.method} rule replayed", first_stop(scores, **rule)))
    if args.plot is not None:
        _plot(args.plot, scores, fit, first_stop(scores, **rule))
        print(f"plot written to {args.plot}")
    return 0


def _plot(out: Path, scores: list[float], fit, knee) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from optplan.knee import curve

    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(scores))
    ax.plot(x, scores, "s", ms=4, label="validation score")
    if fit is not None:
        xs = np.linspace(0, max(len(scores) - 1, fit.epoch), 400)
        ax.plot(xs, curve(xs, *fit.params), "r-", label="fit")
    if knee is not None:
        ax.axvline(knee.epoch, color="k", ls="--", lw=1, label=f"knee (epoch {knee.epoch})")
        ax.axvline(knee.epochs, color="gray", ls=":", lw=1, label=f"stop (epoch {knee.epochs})")
    ax.set_xlabel("epoch in state")
    ax.set_ylabel("score")
    ax.legend(loc="lower right")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)

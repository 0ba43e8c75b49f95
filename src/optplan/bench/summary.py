"""The benchmark's tables: per regime, every row's test top-1 over seeds, its cost, and its
paired difference to the planned row with a 95% interval over seeds."""

from __future__ import annotations

import math
import statistics
from typing import Any

from optplan.bench.rows import row_label


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paired_interval(diffs: list[float]) -> dict[str, float | None]:
    """Mean of paired differences and its 95% t-interval over seeds (None with one seed)."""
    mean, std = _mean_std(diffs)
    if mean is None or len(diffs) < 2:
        return {"mean": mean, "lo": None, "hi": None}
    from scipy.stats import t

    half = t.ppf(0.975, len(diffs) - 1) * std / math.sqrt(len(diffs))
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


def summarize(rows: dict[str, dict[int, dict[str, Any]]], tolerance: float) -> list[dict[str, Any]]:
    """One entry per row name (in order) from ``rows[name][seed]`` row results."""
    planned = rows.get("planned", {})
    out = []
    for name, by_seed in rows.items():
        seeds = sorted(by_seed)
        top1 = {s: by_seed[s]["top1"] for s in seeds}
        mean, std = _mean_std(list(top1.values()))
        paired = [s for s in seeds if s in planned]
        entry = {
            "name": name, "label": row_label(name), "seeds": seeds, "top1": top1,
            "top5": {s: by_seed[s]["top5"] for s in seeds},
            "train_gflops": {s: by_seed[s]["train_gflops"] for s in seeds},
            "search_gflops": {s: by_seed[s].get("search_gflops", 0.0) for s in seeds},
            "wall_seconds": {s: by_seed[s]["wall_seconds"] for s in seeds},
            "top1_mean": mean, "top1_std": std,
            # none while no seed of the row has its planned row (deleted to plan that seed again)
            "diff_to_planned": paired_interval([by_seed[s]["top1"] - planned[s]["top1"] for s in paired])
            if name != "planned" and paired else None,
            "equal_compute": all(by_seed[s].get("within_budget", True) for s in seeds),
        }
        out.append(entry)
    return out


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(regimes: dict[str, dict[str, Any]]) -> str:
    """``table.md``: one table per regime."""
    lines = []
    for regime, info in regimes.items():
        lines += [f"### {regime}", "",
                  f"{info.get('about', '')}".strip(), "",
                  "| row | seeds | test top-1 (mean ± std) | per seed | Δ vs planned [95% CI] | "
                  "train GFLOPs | search GFLOPs | wall s | equal compute |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in info["rows"]:
            per_seed = " / ".join(f"{r['top1'][s]:.3f}" for s in r["seeds"])
            d = r["diff_to_planned"]
            diff = "-" if d is None else (f"{d['mean']:+.3f}" + (
                f" [{d['lo']:+.3f}, {d['hi']:+.3f}]" if d["lo"] is not None else ""))
            mean = lambda field: statistics.fmean(r[field].values()) if r[field] else None  # noqa: E731
            lines.append(
                f"| {r['label']} | {len(r['seeds'])} | {_fmt(r['top1_mean'])} ± {_fmt(r['top1_std'])} | "
                f"{per_seed} | {diff} | {_fmt(mean('train_gflops'), ',.0f')} | "
                f"{_fmt(mean('search_gflops'), ',.0f')} | {_fmt(mean('wall_seconds'), '.0f')} | "
                f"{'yes' if r['equal_compute'] else 'NO'} |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["markdown", "paired_interval", "summarize"]

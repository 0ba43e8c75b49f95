"""``optplan demo``: the whole method on the built-in dataset, in one call.

Generates the dataset when it is absent, plans a state graph scaled for CPU (tiny DG-P3D,
clip settings x lr multipliers, a short patience; the settings that won the benchmark, see
``configs/demo.yaml``), tests the final model with the
multi-view protocol on the test split, writes the HTML report and returns a summary.
Running it again into the same run directory resumes the plan (nothing is trained twice).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optplan.config import OptplanConfig, apply_overrides, read_yaml, validate
from optplan.configs import config_path
from optplan.errors import OptplanError


@dataclass(frozen=True)
class DemoPreset:
    """A shipped config plus the size of the built-in dataset it is planned on."""

    config: str
    synth: dict[str, int]


PRESETS = {
    # 12 classes x 30 videos: a quarter for test, a fifth of the rest held out for validation.
    # Both share the dataset (data/synth), so a quick run first leaves it for the full one.
    "full": DemoPreset("demo", {"videos_per_class": 30, "frames": 32, "size": 64}),
    "quick": DemoPreset("demo-quick", {"videos_per_class": 30, "frames": 32, "size": 64}),
}


@dataclass
class DemoSummary:
    """What the demo found: the plan, the test of its final model and where the report is."""

    run_dir: Path
    result: Any  # optplan.plan.PlanResult
    test: dict[str, Any]
    report: Path
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable summary (``optplan demo --json``)."""
        r = self.result
        return {
            "run_dir": str(self.run_dir),
            "stages": [{"state": s.state.name, "clip_length": s.state.clip_length, "lr": s.state.lr,
                        "sampling": s.state.sampling, "epochs": s.epochs} for s in r.stages],
            "val_score": r.measured_score,  # observed at the kept epoch
            "knee_score": r.score,  # the knee rule's (the paper's: a fitted value, may exceed 1)
            "test_top1": self.test["top1"],
            "test_top5": self.test["top5"],
            "replay_epochs": r.replay_epochs,
            "search_epochs": r.search_epochs,
            "search_seconds": round(r.search_seconds, 1),
            "edges": len(r.edges),
            "report": str(self.report),
            "seconds": round(self.seconds, 1),
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }

    def text(self) -> str:
        """The human summary: the path as a table of stages, test accuracy, cost, report."""
        r = self.result
        return "\n".join([
            "Planned schedule (replay with: optplan train CONFIG --schedule "
            f"{self.run_dir / 'schedule.yaml'}):",
            r.table(),
            f"test (multi-view, {self.test['views']} views/video, {self.test['videos']} videos): "
            f"top-1 {self.test['top1']:.1%}, top-5 {self.test['top5']:.1%}",
            f"search cost: {r.search_epochs} epochs over {len(r.edges)} edges, "
            f"{r.search_seconds:.0f} s; whole demo {self.seconds:.0f} s",
            f"report: {self.report}",
        ])


def demo_config(quick: bool = False, *, data_dir: str | Path | None = None,
                out: str | Path | None = None, overrides: list[str] | None = None) -> OptplanConfig:
    """The shipped demo config with the data directory, run directory and overrides applied."""
    tree = read_yaml(config_path(PRESETS["quick" if quick else "full"].config))
    extra = list(overrides or [])
    if data_dir is not None:
        extra.append(f"data.root={data_dir}")
    if out is not None:
        extra.append(f"out={out}")
    return validate(apply_overrides(tree, extra), source="demo config")


def ensure_dataset(root: Path, synth: dict[str, int], *, quiet: bool = False) -> bool:
    """Write the built-in dataset into ``root`` unless annotation files are already there.

    Returns True when it was generated. A directory holding something else is refused rather
    than written into.
    """
    from optplan.data.splits import find_lists
    from optplan.data.synth import synthesize

    try:
        find_lists(root)
        return False
    except OptplanError:
        if root.exists() and any(root.iterdir()):
            raise OptplanError(f"{str(root)!r} exists but holds no annotation files; pass an empty "
                               f"or new --data directory, or a dataset in a supported format") from None
    if not quiet:
        print(f"generating the built-in dataset in {root} ...", flush=True)
    summary = synthesize(root, **synth)
    if not quiet:
        print(f"  {summary.get('videos', '')} videos written", flush=True)
    return True


def run_demo(quick: bool = False, *, data_dir: str | Path | None = None, out: str | Path | None = None,
             overrides: list[str] | None = None, quiet: bool = False) -> DemoSummary:
    """Generate (if needed), plan, test, report. See the module docstring."""
    from optplan.plan.runner import EVAL_FILE, run_plan
    from optplan.report import build_report
    from optplan.train.multiview import evaluate

    started = time.perf_counter()
    cfg = demo_config(quick, data_dir=data_dir, out=out,
                      overrides=[*(overrides or []), *(["train.progress=false"] if quiet else [])])
    run_dir = Path(cfg.out)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    ensure_dataset(Path(cfg.data.root), PRESETS["quick" if quick else "full"].synth, quiet=quiet)
    timings["data"] = time.perf_counter() - t

    t = time.perf_counter()
    result = run_plan(cfg, run_dir, progress=not quiet)
    timings["plan"] = time.perf_counter() - t
    if result.model_path is None:
        raise OptplanError(f"the plan in {run_dir} produced no final model: "
                           + ("; ".join(result.notes) or "every edge failed"))

    t = time.perf_counter()
    test = evaluate(cfg, result.model_path, split="test", out=run_dir / EVAL_FILE)
    timings["test"] = time.perf_counter() - t

    t = time.perf_counter()
    report = build_report(run_dir)
    timings["report"] = time.perf_counter() - t
    summary = DemoSummary(run_dir, result, test, report, time.perf_counter() - started, timings)
    (run_dir / "demo.json").write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
    return summary

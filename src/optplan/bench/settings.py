"""What each finished row of a benchmark unit was measured with, so a resumed benchmark never
puts rows of other settings into one table.

A benchmark resumes row by row: a row whose file exists is not measured again. Without a record,
``optplan bench --out OUT config.knee.patience=4`` into an OUT made with patience 3 would keep the
old rows and add new ones beside them, one table silently mixing two benchmarks. Each unit
(``OUT/<regime>/seed<s>``) therefore keeps ``runs/settings.json``: the optplan config its rows
train from, and per row the bench settings that row alone depends on (a planner row's replay
draw and variant overrides, a searcher row's search settings). A run whose settings differ from
those of a finished row is refused before anything trains; rows not finished yet take the
current settings, so adding rows or variants to an OUT stays free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optplan.bench.config import SEARCHER_KINDS, BenchConfig, SearchSpec
from optplan.config import OptplanConfig, validate
from optplan.errors import OptplanError
from optplan.plan.runner import result_config
from optplan.plan.store import config_diff
from optplan.records_io import write_atomic

SETTINGS_FILE = "settings.json"


def config_record(cfg: OptplanConfig) -> dict[str, Any]:
    """The config as a plan fingerprints it, with what changes only replays (free to change for
    a plan, but it changes every schedule row): the lr shape ``plan.replay_lr`` and the weight
    averaging ``train.average_last``."""
    tree = result_config(cfg)
    tree["plan"]["replay_lr"] = cfg.plan.replay_lr
    tree["train"]["average_last"] = cfg.train.average_last
    return tree


def row_settings(bench: BenchConfig, name: str) -> dict[str, Any]:
    """The bench settings (beyond the config) that row ``name``'s result depends on."""
    kind, _, variant = name.partition(":")
    if kind == "planned":
        return {"replay_draw": bench.replay_draw, **({"variant": bench.variants[variant]} if variant else {})}
    if kind.partition("@")[0] in SEARCHER_KINDS:
        return {"search": bench.search.model_dump(mode="json")}
    return {}


def _defaults() -> dict[str, Any]:
    """What a key a record lacks meant: options added since a unit was measured count as their
    defaults (which keep the earlier behaviour), as for a resumed plan."""
    return {"config": config_record(validate({})), "replay_draw": 0,
            "search": SearchSpec().model_dump(mode="json")}


def check_unit(unit: Path, bench: BenchConfig, cfg: OptplanConfig, names: list[str],
               finished: set[str]) -> None:
    """Refuse to resume ``unit`` when a finished row (``finished``) was measured with other
    settings than ``bench`` and ``cfg`` give now; else record the settings of ``names`` (the rows
    this run may measure) beside those of the finished rows."""
    path = unit / "runs" / SETTINGS_FILE
    stored = json.loads(path.read_text()) if path.is_file() else {}
    config = json.loads(json.dumps(config_record(cfg), default=str))
    settings = {name: row_settings(bench, name) for name in names}
    problems = []
    if finished and "config" in stored:
        problems += config_diff({"config": stored["config"]}, {"config": config}, defaults=_defaults())
    for name in sorted(finished & settings.keys() & stored.get("rows", {}).keys()):
        problems += [f"row {name}: {line}" for line in
                     config_diff(stored["rows"][name], settings[name], defaults=_defaults())]
    if problems:
        raise OptplanError(f"{unit} holds rows measured with other settings:\n  " + "\n  ".join(problems)
                           + f"\nuse a new --out, the settings those rows were measured with, or delete "
                             f"{unit} (or the differing rows' files) to measure them again")
    # the config equals the stored one (up to options added since); a unit measured before this
    # record existed is adopted as it is, its finished rows with today's settings
    rows = dict(stored.get("rows", {}))
    rows.update({name: s for name, s in settings.items() if name not in finished or name not in rows})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"config": config, "rows": rows}, indent=1) + "\n")

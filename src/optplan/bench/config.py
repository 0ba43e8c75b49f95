"""The benchmark's config: the base optplan config every row shares, the data regimes, the rows.

A YAML file::

    config: {...}              # an optplan config tree (model, data, knee, plan, train)
    regimes:                   # one table each; a built-in regime or a dataset of your own
      appearance: {synth: {regime: appearance, videos_per_class: 40, ...}}
      ucf: {root: /data/ucf101}            # (overrides data.root; lists as in the config)
    rows: [planned, search_model, cosine, linear, ...]
    variants: {top1: [knee.metric=top1]}   # extra planner rows ("planned:top1"), as ablations

Rows are described in :mod:`optplan.bench.rows`. Every field has a default, so ``{}`` is a
valid (built-in, three-regime) benchmark.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optplan.config import OptplanConfig, apply_overrides, format_validation_error, read_yaml, validate
from optplan.errors import ConfigError

ROW_KINDS = ("planned", "search_model", "cosine", "step", "plateau", "linear", "short_long",
             "multigrid", "pbt", "asha", "random", "random_x3")
"""Every row the benchmark knows (see :mod:`optplan.bench.rows` for what each trains)."""
SEARCHER_KINDS = ("pbt", "asha", "random", "random_x3")
"""Rows that search at the planner's search GFLOPs (times :data:`SEARCH_FACTOR`)."""
SEARCH_FACTOR = {"random_x3": 3.0}
"""Searcher rows that spend a multiple of the planner's search GFLOPs (the others spend 1x):
random search at 3x asks whether the planner needs <= 1/3 of what random search needs."""
SINGLE_CLIP = ("cosine", "step", "plateau", "linear")
"""Row kinds that train one clip setting: ``KIND`` is a row per clip setting, ``KIND@CLIP`` one
clip setting at its base lr, ``KIND@CLIPxM`` that clip setting at M times its base lr (a
hand-tuned row at the lr the planner chose, to tell how much of its margin is the lr)."""


def parse_row(name: str) -> tuple[str, int | None, float | None]:
    """``(kind, clip, lr multiplier)`` of a row name: ``cosine@16x0.3`` gives ``("cosine", 16,
    0.3)``, ``linear@16`` ``("linear", 16, None)``, ``planned:top1`` ``("planned:top1", None,
    None)``. A name the benchmark does not know raises ValueError saying what it takes."""
    kind, at, rest = name.partition("@")
    if not at:
        if kind in ROW_KINDS or (kind.startswith("planned:") and len(kind) > len("planned:")):
            return kind, None, None
    else:
        clip, x, scale = rest.partition("x")
        try:
            multiplier = float(scale) if x else None
        except ValueError:
            multiplier = -1.0
        if kind in SINGLE_CLIP and clip.isdigit() and int(clip) > 0 and (
                multiplier is None or (math.isfinite(multiplier) and multiplier > 0)):
            return kind, int(clip), multiplier
    raise ValueError(f"unknown row {name!r}; choose from {list(ROW_KINDS)} (the single-clip kinds "
                     f"{list(SINGLE_CLIP)} also as KIND@CLIP, e.g. linear@16, or KIND@CLIPxM at M times "
                     f"the clip's base lr, e.g. cosine@16x0.3)")


class SynthSpec(BaseModel):
    """Arguments of :func:`optplan.data.synth.synthesize` for a built-in regime."""

    model_config = ConfigDict(extra="forbid")

    regime: str = "mixed"
    videos_per_class: int = Field(30, ge=2)
    frames: int = Field(32, ge=8)
    size: int = Field(64, ge=16)
    seed: int = 0
    num_classes: int | None = None
    test_share: float = Field(0.25, gt=0.0, lt=1.0)


class RegimeSpec(BaseModel):
    """One data regime: a built-in dataset to generate (``synth``) or a dataset ``root``."""

    model_config = ConfigDict(extra="forbid")

    synth: SynthSpec | None = None
    root: Path | None = None
    overrides: list[str] = Field(default_factory=list, description="Config overrides for this regime.")

    @model_validator(mode="after")
    def _one_source(self) -> "RegimeSpec":
        if (self.synth is None) == (self.root is None):
            raise ValueError("give exactly one of 'synth' (a built-in regime) or 'root' (your dataset)")
        return self


class SearchSpec(BaseModel):
    """Settings of the peer searchers (all run at the planner's search GFLOPs)."""

    model_config = ConfigDict(extra="forbid")

    pbt_population: int = Field(4, ge=2, description="PBT: trials alive at once.")
    pbt_interval: int = Field(2, ge=1, description="PBT: epochs between exploit/explore steps.")
    asha_reduction: int = Field(3, ge=2, description="ASHA: reduction factor between rungs.")
    asha_grace: float = Field(0.2, gt=0.0, le=1.0,
                              description="ASHA: first rung, as a share of one schedule's budget.")
    random_max_schedules: int = Field(8, ge=1, description="Random search: most schedules tried "
                                                           "(times the row's budget factor).")


def _default_regimes() -> dict[str, RegimeSpec]:
    size = {"videos_per_class": 40, "frames": 24, "size": 32, "test_share": 0.5}
    return {name: RegimeSpec(synth=SynthSpec(regime=name, **size)) for name in ("appearance", "motion", "mixed")}


class BenchConfig(BaseModel):
    """What one benchmark measures (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(default_factory=dict, description="Base optplan config tree.")
    regimes: dict[str, RegimeSpec] = Field(default_factory=_default_regimes)
    rows: list[str] = Field(default_factory=lambda: [k for k in ROW_KINDS if k not in SEARCH_FACTOR],
                            description="Rows to run (random_x3 only when named: it triples the search).")
    variants: dict[str, list[str]] = Field(
        default_factory=dict, description="Extra planner rows 'planned:NAME' with these overrides.")
    search: SearchSpec = Field(default_factory=SearchSpec)
    replay_draw: int = Field(
        0, ge=0, description="The draw of the training randomness (train.draw) that the planner "
                             "rows' replays train: 0 rebuilds the search's own run of the path (on CPU "
                             "bit for bit, so the replay row then repeats the search's-model row); 1 "
                             "trains an independent run of the planned schedule, as every hand-tuned "
                             "row is one run of its schedule.")
    budget_tolerance: float = Field(0.05, gt=0.0, lt=1.0,
                                    description="Equal compute: rows within this share of the budget.")

    @field_validator("rows")
    @classmethod
    def _known_rows(cls, rows: list[str]) -> list[str]:
        for row in rows:
            if ":" in row:
                raise ValueError(f"row {row!r}: planner variants are named in 'variants' "
                                 f"({{NAME: [overrides]}}), each runs as row 'planned:NAME'")
            parse_row(row)
        if "planned" not in rows:
            raise ValueError("'planned' must be a row: every other row's budget comes from it")
        return rows

    def base(self, extra: list[str] = ()) -> OptplanConfig:
        """The base optplan config with ``extra`` dotted overrides."""
        return validate(apply_overrides(_deep_copy(self.config), list(extra)), source="bench config 'config'")


def _deep_copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def load_bench_config(path: str | Path | None = None, overrides: list[str] | None = None) -> BenchConfig:
    """A :class:`BenchConfig` from YAML (None: the shipped ``bench`` config); ``overrides`` are
    dotted keys into the file (``config.knee.patience=3``, ``rows=[planned,cosine]``)."""
    from optplan.configs import config_path

    source = Path(path) if path is not None else config_path("bench")
    tree = apply_overrides(read_yaml(source), list(overrides or []))
    try:
        bench = BenchConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, f"bench config {str(source)!r}")) from None
    bench.base()  # the base config must itself be valid (errors name its fields)
    return bench

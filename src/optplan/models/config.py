"""The ``model`` section: which registered backbone, and what to change about it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from optplan.section import Section


class ModelConfig(Section):
    """A registry name plus overrides; see ``optplan models`` for the names."""

    name: str = Field("dg_p3d_tiny", description="Registered model name (optplan models lists them).")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Overrides passed to the builder.")
    head_weight: float = Field(1.0, gt=0.0, description="Weight of the summed dual-head cross-entropy.")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout before each classifier.")
    pretrained_2d: Path | None = Field(None, description="Local 2D ResNet state dict to inflate from.")

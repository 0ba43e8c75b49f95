"""The ``data`` section: where the videos are, how annotations are read, how clips are made."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from optplan.section import PositiveFinite, Section


class DataConfig(Section):
    """Videos and annotations. Defaults point at the built-in dataset (``optplan data synth``)."""

    root: Path = Field(Path("data/synth"), description="Directory the annotation paths are relative to.")
    format: Literal["auto", "ucf101", "kinetics", "csv", "ssv2"] = Field(
        "auto", description="Annotation format; 'auto' detects it from the files in root.")
    train_list: Path | None = Field(None, description="Training annotation file (None: found in root).")
    val_list: Path | None = Field(
        None, description="Validation list. None: hold out val_fraction of the training list.")
    test_list: Path | None = Field(None, description="Test list used only for final evaluation.")
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Share of training videos held out.")
    crop_size: int = Field(56, ge=8, description="Training/test crop side in pixels.")
    short_side: int = Field(64, ge=8, description="Test-time resize of the shorter side in pixels.")
    scale: tuple[PositiveFinite, PositiveFinite] = Field(
        (0.5, 1.0), description="Random-resized-crop area range (shares of the frame, low <= high <= 1).")
    flip: bool = Field(False, description="Horizontal flip in training (off when labels depend on direction).")
    mean: tuple[float, float, float] = Field((0.45, 0.45, 0.45), description="Normalisation mean (RGB, 0..1).")
    std: tuple[PositiveFinite, PositiveFinite, PositiveFinite] = Field((0.225, 0.225, 0.225), description="Normalisation std (RGB).")
    num_workers: int = Field(1, ge=0, description="DataLoader worker processes (0: main process).")
    cache: bool = Field(True, description="Keep decoded uint8 frames in a memory-mapped cache.")
    cache_dir: Path | None = Field(None, description="Cache location (None: ROOT/.cache).")
    decode_short_side: int | None = Field(
        None, ge=8, description="Resize frames to this shorter side while decoding, before the cache "
                                "(e.g. 128 for Kinetics); None keeps the stored size.")
    max_bad_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="Refuse to train when more than this share of files is bad.")
    test_clips: int = Field(10, ge=1, description="Clips per video in the multi-view test.")
    test_crops: int = Field(3, ge=1, le=3, description="Spatial crops per clip in the multi-view test.")

    @field_validator("scale")
    @classmethod
    def _ordered(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not scale[0] <= scale[1] <= 1.0:
            raise ValueError("the area range must be low <= high <= 1, e.g. [0.5, 1.0]")
        return scale

    @field_validator("short_side")
    @classmethod
    def _crop_fits(cls, short_side: int, info: ValidationInfo) -> int:
        crop = info.data.get("crop_size")
        if crop is not None and short_side < crop:
            raise ValueError(f"smaller than data.crop_size = {crop}, so the test crop does not fit; "
                             "raise short_side or lower crop_size")
        return short_side

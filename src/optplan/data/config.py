"""The ``data`` section: where the videos are, how annotations are read, how clips are made."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AugmentConfig(BaseModel):
    """Colour augmentation of training clips (``optplan.data.augment``). Off by default: colour
    can be what tells classes apart (the built-in dataset's appearance classes are coloured
    shapes). The reference's: ``jitter: 0.8, grayscale: 0.2, blur: 0.5`` (``configs/reference.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jitter: float = Field(0.0, ge=0.0, le=1.0, description="Probability of colour jitter per clip (reference: 0.8).")
    brightness: float = Field(0.4, ge=0.0, description="Jitter: brightness factor in [1 - b, 1 + b].")
    contrast: float = Field(0.4, ge=0.0, description="Jitter: contrast factor in [1 - c, 1 + c].")
    saturation: float = Field(0.4, ge=0.0, description="Jitter: saturation factor in [1 - s, 1 + s].")
    hue: float = Field(0.1, ge=0.0, le=0.5, description="Jitter: hue turned by up to this share of the wheel.")
    grayscale: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a grey clip (reference: 0.2).")
    blur: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a Gaussian blur (reference: 0.5).")
    blur_sigma: tuple[float, float] = Field(
        (0.1, 2.0), description="Blur sigma range in pixels of the training crop (reference: 0.1..2 at 224).")

    @field_validator("blur_sigma")
    @classmethod
    def _ordered(cls, sigma: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < sigma[0] <= sigma[1]:
            raise ValueError(f"needs 0 < low <= high, got {list(sigma)}")
        return sigma

    @property
    def strengths(self) -> tuple[float, float, float]:
        """Jitter strengths of brightness, contrast and saturation, in that order."""
        return self.brightness, self.contrast, self.saturation

    @property
    def active(self) -> bool:
        """Whether any colour operation can happen."""
        return max(self.jitter, self.grayscale, self.blur) > 0.0


class DataConfig(BaseModel):
    """Videos and annotations. Defaults point at the built-in dataset (``optplan data synth``)."""

    model_config = ConfigDict(extra="forbid")

    root: Path = Field(Path("data/synth"), description="Directory the annotation paths are relative to.")
    format: Literal["auto", "ucf101", "kinetics", "csv", "ssv2"] = Field(
        "auto", description="Annotation format; 'auto' detects it from the files in root.")
    train_list: Path | None = Field(None, description="Training annotation file (None: found in root).")
    val_list: Path | None = Field(
        None, description="Validation list. None: hold out val_fraction of the training list.")
    test_list: Path | None = Field(None, description="Test list used only for final evaluation.")
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Share of training videos held out.")
    crop_size: int = Field(56, ge=8, description="Training and validation crop side in pixels.")
    short_side: int = Field(64, ge=8, description="Test-time resize of the shorter side in pixels.")
    scale: tuple[float, float] = Field((0.5, 1.0), description="Random-resized-crop area range.")
    flip: bool = Field(False, description="Horizontal flip in training (off when labels depend on direction).")
    augment: AugmentConfig = Field(default_factory=AugmentConfig,
                                   description="Colour jitter, grayscale and blur of training clips.")
    mean: tuple[float, float, float] = Field((0.45, 0.45, 0.45), description="Normalisation mean (RGB, 0..1).")
    std: tuple[float, float, float] = Field((0.225, 0.225, 0.225), description="Normalisation std (RGB).")
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
    test_crop_size: int | None = Field(
        None, ge=8, description="Crop side of the multi-view test (None: crop_size). The reference "
                                "trains on 224 crops and tests 256 crops of a 256 short side.")
    test_average: Literal["softmax", "logits"] = Field(
        "softmax", description="What the multi-view test averages over a video's views: class "
                               "probabilities, or raw logits (the reference's).")

    @property
    def test_crop(self) -> int:
        """The crop side of the multi-view test in pixels."""
        return self.test_crop_size or self.crop_size

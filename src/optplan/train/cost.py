"""What training costs: epochs, wall seconds, clips and GFLOPs.

Comparing schedules at equal *epochs* is unfair when an epoch of 16-frame clips costs about 4x
an epoch of 4-frame clips, so every epoch also records its compute: the model's forward FLOPs
for one clip at the state's clip setting (``T x crop x crop``, counted on the meta device by
:func:`optplan.models.flops.model_cost`) x clips trained x :data:`TRAIN_FLOPS_FACTOR` (forward
plus backward, the usual 1 + 2 rule). Validation and test passes are forward-only and are
counted apart (``eval_gflops``), since a schedule's training budget should not depend on how
often someone chose to look at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optplan.records_io import JsonRecord

TRAIN_FLOPS_FACTOR = 3
"""Training FLOPs per forward FLOP: the backward pass costs about twice the forward."""


@dataclass
class Cost(JsonRecord):
    """What a run spent: epochs trained, wall seconds (training and validation), clips seen,
    training GFLOPs and validation GFLOPs (forward only). Records written before GFLOPs were
    counted read as 0."""

    epochs: int = 0
    seconds: float = 0.0
    clips: int = 0
    gflops: float = 0.0
    eval_gflops: float = 0.0


class ClipFlops:
    """Forward GFLOPs of one clip of a model, by clip length (cached: one meta-device count each).

    ``model`` is the config's model section; ``crop`` the square training crop in pixels (a call
    may name another, as the multi-view test does).
    """

    def __init__(self, model_name: str, num_classes: int, crop: int, kwargs: dict[str, Any]) -> None:
        self.model_name, self.num_classes, self.crop, self.kwargs = model_name, num_classes, crop, kwargs
        self._cache: dict[tuple[int, int], float] = {}

    def __call__(self, clip_length: int, crop: int | None = None) -> float:
        key = (clip_length, crop or self.crop)
        if key not in self._cache:
            from optplan.models.flops import model_cost

            cost = model_cost(self.model_name, (clip_length, key[1], key[1]),
                              num_classes=self.num_classes, **self.kwargs)
            self._cache[key] = cost.gflops or 0.0
        return self._cache[key]

    def train(self, clip_length: int, clips: int) -> float:
        """Training GFLOPs of ``clips`` clips of ``clip_length`` frames (forward + backward)."""
        return TRAIN_FLOPS_FACTOR * self(clip_length) * clips

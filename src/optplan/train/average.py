"""Weight averaging over a schedule's last epochs (stochastic weight averaging, SWA).

A planned schedule ends on stages at constant learning rates, where the validation score of
consecutive epochs swings by several points (0.60-0.85 on one benchmark replay at lr x0.3): the
last epoch's model is one noisy draw from that walk. Izmailov et al. (UAI 2018) average the
weights the run passes through at a constant rate instead, which lands nearer the centre of
the region it walks in. ``train.average_last`` asks a replay for that: the uniform average of
the models at the end of each of its last epochs (within its last stage), with BatchNorm
statistics measured again on the training clips for the averaged weights (averaged statistics
belong to no model).

The average lives in the replay's resume checkpoint, so a killed replay resumes it exactly.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from optplan.train.checkpoint import unwrap
from optplan.train.engine import Precision


def averaged_epochs(epochs: int, share: float, last_stage: int) -> int:
    """How many of a schedule's ``epochs`` end in the average: the last ``share`` of them,
    rounded up, but none before its last stage (of ``last_stage`` epochs), as SWA averages one
    phase at one learning rate: a window reaching back into an 8-frame stage averaged a model
    that could not yet tell the order of movements into the 16-frame one (bench/RESULTS.md).
    0 where that leaves fewer than two epochs: one model is no average."""
    count = min(last_stage, math.ceil(share * epochs - 1e-9))
    return count if count >= 2 else 0


class WeightAverage:
    """The running uniform average of a model's floating-point weights and buffers.

    Integer buffers (BatchNorm's batch counters) are taken from the last model added."""

    def __init__(self, weights: dict[str, torch.Tensor] | None = None, count: int = 0) -> None:
        self.weights = weights or {}
        self.count = count

    def add(self, model: nn.Module) -> None:
        """Fold the model as it is now into the average."""
        self.count += 1
        for name, value in unwrap(model).state_dict().items():
            value = value.detach()
            if name not in self.weights or not value.is_floating_point():
                self.weights[name] = value.clone()
            else:
                self.weights[name] += (value - self.weights[name]) / self.count

    def apply(self, model: nn.Module) -> None:
        """Load the average into ``model``."""
        unwrap(model).load_state_dict(self.weights)

    def to_dict(self) -> dict[str, object]:
        return {"weights": self.weights, "count": self.count}

    @classmethod
    def from_dict(cls, data: dict[str, object] | None) -> "WeightAverage":
        data = data or {}
        return cls(dict(data.get("weights") or {}), int(data.get("count") or 0))


@torch.no_grad()
def refresh_batchnorm(net: nn.Module, batches: Iterable, precision: Precision) -> int:
    """Measure the running statistics of every BatchNorm layer that trains (frozen ones keep
    theirs) as the plain mean over ``batches``, as ``torch.optim.swa_utils.update_bn`` does;
    ``net`` is the module that runs forward (a DDP wrapper synchronises SyncBatchNorm). Returns
    the clips seen by this process."""
    layers = [m for m in unwrap(net).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
              and m.track_running_stats and not hasattr(m, "_frozen_bn_hook")]
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative mean over the pass
    net.train()
    clips = 0
    try:
        for x, y in batches:
            x, _ = precision.to_device(x, y)
            with precision.autocast():
                net(x)
            clips += len(x)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
    return clips

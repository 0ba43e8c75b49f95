"""Model cost: parameter count and FLOPs of one forward pass for a given clip size.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which counts a
multiply-accumulate as 2 FLOPs (papers that quote "GFLOPs" for ResNets often mean GMACs, half
this figure). The count runs on the ``meta`` device: shapes only, no memory, no compute, so a
ResNet-50 at 16x224x224 costs well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class ModelCost:
    """Size and forward cost of one model for one clip ``(T, H, W)`` (batch 1, eval mode)."""

    name: str
    params: int
    flops: float | None  # None when the clip is too short for the model
    input_size: tuple[int, int, int]
    min_clip_length: int

    @property
    def gflops(self) -> float | None:
        return None if self.flops is None else self.flops / 1e9


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_size: tuple[int, int, int], batch: int = 1) -> int:
    """FLOPs of one eval-mode forward of ``batch`` clips of ``(3, T, H, W)`` on the model's device."""
    device = next(model.parameters()).device
    x = torch.zeros(batch, 3, *input_size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops()


def model_cost(name: str, input_size: tuple[int, int, int] | None = None, num_classes: int | None = None,
               **overrides) -> ModelCost:
    """Parameters and FLOPs of registered model ``name`` (default input: its default config)."""
    from optplan.models.registry import create_model, model_info

    input_size = tuple(input_size or model_info(name).input_size)
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, **overrides)
    flops = count_flops(model, input_size) if input_size[0] >= model.min_clip_length else None
    return ModelCost(name, count_params(model), flops, input_size, model.min_clip_length)

"""Classifier heads, the shared network interface, and the (dual-head) classification loss.

Output contract (every registered model): ``forward(x)`` takes ``(N, C, T, H, W)``. In training
mode a dual-head model returns ``(temporal_logits, spatial_logits)``, each ``(N, K)``; a
single-head model returns ``(N, K)``. In eval mode every model returns one ``(N, K)`` tensor, the
dual head the mean of its two logits (the paper's test score).
"""

from __future__ import annotations

from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn

from optplan.models.layers import check_clip

Logits = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]


class ClassifierHead(nn.Module):
    """Global average pool over T, H, W -> dropout -> linear: ``(N, C, T, H, W) -> (N, K)``."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.in_features = in_features
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(x.mean(dim=(2, 3, 4)))
        return x if pre_logits else self.fc(x)

    def reset(self, num_classes: int) -> None:
        """Fresh classifier for ``num_classes`` (fine-tuning on another label set)."""
        self.fc = nn.Linear(self.in_features, num_classes).to(self.fc.weight.device)


class VideoNet(nn.Module):
    """Interface of every backbone: ``forward_features`` (feature maps) then ``forward_head``.

    Subclasses set ``heads`` (one :class:`ClassifierHead`, or two for a dual head: temporal then
    spatial), ``min_clip_length`` (frames; a class whose shortest clip depends on its arguments
    overrides :meth:`shortest_clip` and sets it from there), ``stem_modules`` (names of the
    children before the first residual stage, whose BatchNorm frozen-BN mode ``stats`` leaves
    training) and implement ``_features``; ``name`` is set by :func:`optplan.models.create_model`.
    """

    heads: nn.ModuleList
    min_clip_length: int = 1
    stem_modules: tuple[str, ...] = ()
    name: str = "model"

    @classmethod
    def shortest_clip(cls, **args: Any) -> int:
        """The shortest clip (frames) a model built with ``args`` accepts, known before building
        it (what :func:`optplan.models.clip_length_problem` checks states against)."""
        return cls.min_clip_length

    @property
    def dual_head(self) -> bool:
        return len(self.heads) == 2

    @property
    def num_classes(self) -> int:
        return self.heads[0].fc.out_features

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Clips ``(N, 3, T, H, W)`` -> one final feature map per head, ``(N, C, T', H', W')``."""
        check_clip(x, self.name, self.min_clip_length)
        return self._features(x)

    def forward_head(self, features: list[torch.Tensor], pre_logits: bool = False) -> Logits:
        """Feature maps -> logits per the output contract; with ``pre_logits`` the pooled
        ``(N, C)`` features instead (a tuple, temporal then spatial, for a dual head)."""
        outs = [head(f, pre_logits=pre_logits) for head, f in zip(self.heads, features)]
        if len(outs) == 1:
            return outs[0]
        if self.training or pre_logits:
            return outs[0], outs[1]
        return (outs[0] + outs[1]) / 2

    def forward(self, x: torch.Tensor) -> Logits:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        for head in self.heads:
            head.reset(num_classes)


def classification_loss(output: Logits, target: torch.Tensor, head_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy of a model's output; a dual-head output gives
    ``head_weight * (CE(temporal) + CE(spatial))`` as in the paper."""
    if isinstance(output, (tuple, list)):
        return head_weight * sum(F.cross_entropy(o, target) for o in output)
    return F.cross_entropy(output, target)

"""Baseline 3D ResNets with basic blocks: R3D (full 3x3x3 convs) and R(2+1)D (each 3x3x3
factorised into 1x3x3 then 3x1x1, with the intermediate width that keeps the parameter count),
as in Tran et al., CVPR 2018 and torchvision's ``video.r3d_18`` / ``r2plus1d_18``.

Stages res3..res5 halve T as well as H and W; every conv is padded in time, so any T >= 1 runs.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from optplan.models.heads import ClassifierHead, VideoNet
from optplan.models.layers import conv1x1x1
from optplan.models.registry import build, register_model

ConvKind = Literal["r3d", "r2plus1d"]


def conv3x3x3(cin: int, cout: int, kind: ConvKind, mid: int, stride: int = 1) -> nn.Module:
    """A 3x3x3 conv (``r3d``) or its (2+1)D factorisation through ``mid`` channels with a BN-ReLU
    between the two."""
    if kind == "r3d":
        return nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False)
    return nn.Sequential(
        nn.Conv3d(cin, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
        nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
        nn.Conv3d(mid, cout, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
    )


class BasicBlock3d(nn.Module):
    """Two 3x3x3 (or (2+1)D) convs with a shortcut: ``(N, cin, T, H, W) -> (N, cout, T/s, H/s, W/s)``."""

    def __init__(self, cin: int, cout: int, kind: ConvKind, stride: int = 1):
        super().__init__()
        # (2+1)D width that gives a 3x3x3 conv's parameter count; one value for both convs of
        # the block, as in torchvision (so r2plus1d_18 has its 31.5 M parameters).
        mid = (cin * cout * 27) // (cin * 9 + 3 * cout)
        self.conv1 = conv3x3x3(cin, cout, kind, mid, stride)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = conv3x3x3(cout, cout, kind, mid)
        self.bn2 = nn.BatchNorm3d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(conv1x1x1(cin, cout, stride, stride), nn.BatchNorm3d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


def _stem(kind: ConvKind, width: int) -> nn.Sequential:
    """3x7x7 conv (R3D) or 1x7x7 then 3x1x1 (R(2+1)D, 45 = 64*45/64 mid channels), spatial stride 2."""
    if kind == "r3d":
        return nn.Sequential(nn.Conv3d(3, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                             nn.BatchNorm3d(width), nn.ReLU(inplace=True))
    mid = width * 45 // 64
    return nn.Sequential(
        nn.Conv3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, (3, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width), nn.ReLU(inplace=True),
    )


class ResNet3d(VideoNet):
    """R3D / R(2+1)D with basic blocks and a single head.

    Args:
        num_classes: classifier outputs K.
        kind: ``"r3d"`` or ``"r2plus1d"``.
        depths: blocks per stage res2..res5 ((2, 2, 2, 2) is the 18-layer net).
        width: stem and res2 channels (64 in the 18-layer net); stage i has width*2**i.
        dropout: dropout before the classifier.
    """

    stem_modules = ("stem",)

    def __init__(self, num_classes: int = 400, kind: ConvKind = "r3d", depths: Sequence[int] = (2, 2, 2, 2),
                 width: int = 64, dropout: float = 0.5):
        super().__init__()
        if kind not in ("r3d", "r2plus1d"):
            raise ValueError(f"kind must be 'r3d' or 'r2plus1d', got {kind!r}")
        self.stem = _stem(kind, width)
        cin = width
        for i, depth in enumerate(depths):
            cout = width * 2 ** i
            blocks = [BasicBlock3d(cin if j == 0 else cout, cout, kind, 2 if i and j == 0 else 1)
                      for j in range(depth)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.heads = nn.ModuleList([ClassifierHead(cin, num_classes, dropout)])
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        return [self.layer4(self.layer3(self.layer2(self.layer1(x))))]


# --- registered variants ------------------------------------------------------------------------
_TINY = dict(depths=(1, 1, 1, 1), width=16)


@register_model(family="r3d", input_size=(16, 112, 112), first_conv="stem.0")
def r3d_18(**kwargs) -> ResNet3d:
    """3D ResNet-18 (R3D-18), 3x3x3 convs throughout."""
    return build(ResNet3d, dict(kind="r3d"), kwargs)


@register_model(family="r2plus1d", input_size=(16, 112, 112), first_conv="stem.0")
def r2plus1d_18(**kwargs) -> ResNet3d:
    """R(2+1)D-18: every 3x3x3 conv factorised into 1x3x3 then 3x1x1."""
    return build(ResNet3d, dict(kind="r2plus1d"), kwargs)


@register_model(family="r3d", input_size=(8, 56, 56), num_classes=10, first_conv="stem.0")
def r3d_tiny(**kwargs) -> ResNet3d:
    """Scaled-down R3D for CPU comparisons with dg_p3d_tiny."""
    return build(ResNet3d, dict(_TINY, kind="r3d"), kwargs)


@register_model(family="r2plus1d", input_size=(8, 56, 56), num_classes=10, first_conv="stem.0")
def r2plus1d_tiny(**kwargs) -> ResNet3d:
    """Scaled-down R(2+1)D for CPU comparisons with dg_p3d_tiny."""
    return build(ResNet3d, dict(_TINY, kind="r2plus1d"), kwargs)

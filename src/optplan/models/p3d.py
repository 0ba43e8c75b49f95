"""Pseudo-3D ResNets: P3D bottleneck blocks (A, B, C) and DG-P3D with its dual head.

A P3D block factorises the 3x3x3 conv of a 3D bottleneck into a spatial 1x3x3 conv and a
temporal 3x1x1 conv, combined three ways (type cycles A, B, C by global block index):

- A: temporal after spatial, in series (temporal conv initialised to the identity);
- B: both on the same input, summed (temporal conv initialised to zero);
- C: temporal applied to the spatial output and added back to it (initialised to zero).

So a fresh block treats every frame as a 2D ResNet block would, and ImageNet 2D weights inflate
into it without changing what it computes (see :mod:`optplan.models.inflate`).

DG-P3D (Qiu et al., ICML 2021) adds, in every block, a global-context residual (its last FC's
weight zero-initialised), and a dual head after res4: the *temporal* head (res5 with spatial
stride 2 on all frames) and the *spatial* head (a temporal max-pool, then its own res5 with
stride 1). The reference pools res4 over windows of 4 frames at stride 4, so the spatial head
keeps 1 / 2 / 4 positions for 16 / 32 / 64-frame clips at the paper's stem stride;
``spatial_time_pool="all"`` pools all frames into one instead (see :class:`P3DResNet`). Module
names follow torchvision's 2D ResNet (``conv1``, ``bn1``, ``layer1.0.conv2`` ...) so 2D state
dicts map by name; the spatial head's res5 is ``layer4_spatial``.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence, get_args

import torch
import torch.nn.functional as F
from torch import nn

from optplan.models.heads import ClassifierHead, VideoNet
from optplan.models.layers import (GlobalContext, conv1x1x1, conv1x3x3, conv3x1x1,
                                   init_temporal_identity)
from optplan.models.registry import build, register_model

P3D_KINDS = "ABC"
EXPANSION = 4
SPATIAL_TIME_WINDOW = 4  # res4 frames per max-pooled position of the spatial head (the reference's)
SpatialTimePool = Literal["reference", "all"]


class P3DBottleneck(nn.Module):
    """1x1x1 reduce -> P3D spatial/temporal pair (type A, B or C) -> 1x1x1 expand, plus shortcut
    and (DG-P3D) a global-context bias. ``(N, cin, T, H, W) -> (N, 4*planes, T, H/s, W/s)``."""

    def __init__(self, cin: int, planes: int, kind: str, stride: int = 1, global_context: bool = True,
                 gc_reduction: int = 16):
        super().__init__()
        if kind not in P3D_KINDS:
            raise ValueError(f"P3D block kind must be one of {P3D_KINDS!r}, got {kind!r}")
        self.kind = kind
        cout = planes * EXPANSION
        self.conv1 = conv1x1x1(cin, planes)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv1x3x3(planes, planes, stride)
        # B sees the block input directly, so its temporal conv also carries the spatial stride.
        self.conv2_t = conv3x1x1(planes, planes, spatial_stride=stride if kind == "B" else 1)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = conv1x1x1(planes, cout)
        self.bn3 = nn.BatchNorm3d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(conv1x1x1(cin, cout, stride), nn.BatchNorm3d(cout))
        self.gc = GlobalContext(cout, gc_reduction) if global_context else None
        if kind == "A":
            init_temporal_identity(self.conv2_t)
        else:
            nn.init.zeros_(self.conv2_t.weight)

    def extra_repr(self) -> str:
        return f"kind={self.kind}"

    def _pseudo3d(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "A":
            return F.relu(self.bn2(self.conv2_t(self.conv2(x))))
        if self.kind == "B":
            return F.relu(self.bn2(self.conv2(x) + self.conv2_t(x)))
        s = F.relu(self.bn2(self.conv2(x)))
        return F.relu(s + self.conv2_t(s))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self._pseudo3d(out)))
        if self.gc is not None:
            out = out + self.gc(out)
        return F.relu(out + identity)


class P3DResNet(VideoNet):
    """P3D ResNet with bottleneck blocks; DG-P3D when ``global_context`` and ``dual_head``.

    Args:
        num_classes: classifier outputs K.
        depths: blocks per stage res2..res5 ((3, 4, 6, 3) is ResNet-50).
        width: stem channels and res2 bottleneck width (64 in ResNet-50); stage i uses width*2**i.
        stem_kernel_t / stem_stride_t: temporal kernel and stride of the 7x7 stem (4/4 in the
            paper); the stem has no temporal padding, so the shortest clip is ``stem_kernel_t``.
        global_context: the global-context residual in every block.
        dual_head: add the spatial head (temporal max-pool + its own res5 at stride 1).
        dropout: dropout before each classifier.
        gc_reduction: channel reduction r of the global-context FC (C -> C/r).
        spatial_time_pool: how the spatial head pools res4 over time. ``"reference"`` (default):
            max over windows of 4 frames at stride 4, as the reference code, so its res5 sees
            T/16 positions at the paper's stem (and costs 94.50 / 189.0 GFLOPs for DG-P3D-R50 at
            32 / 64 frames of 224 px); frames past the last whole window are left out, as there,
            and a res4 shorter than 4 frames (tiny models, short clips) is pooled whole.
            ``"all"``: max over all frames, one position whatever the clip (cheaper on long
            clips: 87.72 / 168.6 GFLOPs). Both agree at 16 frames for DG-P3D-R50.
    """

    inflatable_2d = True  # its keys follow a 2D ResNet's (optplan.models.inflate)
    stem_modules = ("conv1", "bn1")

    def __init__(self, num_classes: int = 400, depths: Sequence[int] = (3, 4, 6, 3), width: int = 64,
                 stem_kernel_t: int = 4, stem_stride_t: int = 4, global_context: bool = True,
                 dual_head: bool = True, dropout: float = 0.5, gc_reduction: int = 16,
                 spatial_time_pool: SpatialTimePool = "reference"):
        super().__init__()
        if len(depths) != 4 or min(depths) < 1:
            raise ValueError(f"depths must be 4 positive block counts (res2..res5), got {depths}")
        if spatial_time_pool not in get_args(SpatialTimePool):
            raise ValueError(f"spatial_time_pool must be 'reference' or 'all', got {spatial_time_pool!r}")
        self.spatial_time_pool = spatial_time_pool
        self.min_clip_length = self.shortest_clip(stem_kernel_t=stem_kernel_t)
        self.conv1 = nn.Conv3d(3, width, (stem_kernel_t, 7, 7), stride=(stem_stride_t, 2, 2),
                               padding=(0, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        starts = [sum(depths[:i]) for i in range(4)]  # global index of each stage's first block
        block = dict(global_context=global_context, gc_reduction=gc_reduction)
        cin = width
        for i, (depth, start) in enumerate(zip(depths, starts)):
            planes = width * 2 ** i
            stage = self._stage(cin, planes, depth, start, stride=1 if i == 0 else 2, **block)
            self.add_module(f"layer{i + 1}", stage)
            cin = planes * EXPANSION
        heads = [ClassifierHead(cin, num_classes, dropout)]
        if dual_head:
            res4_channels = width * 4 * EXPANSION
            self.layer4_spatial = self._stage(res4_channels, width * 8, depths[3], starts[3], stride=1,
                                              **block)
            heads.append(ClassifierHead(cin, num_classes, dropout))
        self.heads = nn.ModuleList(heads)
        self._init_weights()

    @classmethod
    def shortest_clip(cls, stem_kernel_t: int = 4, **args: Any) -> int:
        """``stem_kernel_t`` frames: the stem has no temporal padding."""
        return stem_kernel_t

    @staticmethod
    def _stage(cin: int, planes: int, depth: int, start: int, stride: int, **block) -> nn.Sequential:
        blocks = []
        for j in range(depth):
            kind = P3D_KINDS[(start + j) % 3]
            blocks.append(P3DBottleneck(cin, planes, kind, stride if j == 0 else 1, **block))
            cin = planes * EXPANSION
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for m in self.modules():
            # Temporal 3x1x1 convs keep the identity/zero init their block gave them.
            if isinstance(m, nn.Conv3d) and m.kernel_size != (3, 1, 1):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        temporal = self.layer4(x)
        if not self.dual_head:
            return [temporal]
        return [temporal, self.layer4_spatial(self._pool_time(x))]

    def _pool_time(self, res4: torch.Tensor) -> torch.Tensor:
        """The spatial head's input: res4 ``(N, C, T, H, W)`` max-pooled over time to
        ``(N, C, T', H, W)`` with ``T' = T // 4`` (``reference``, at least 1) or 1 (``all``)."""
        t = res4.shape[2]
        if self.spatial_time_pool == "all":
            return res4.amax(dim=2, keepdim=True)
        window = min(SPATIAL_TIME_WINDOW, t)
        return F.max_pool3d(res4, kernel_size=(window, 1, 1), stride=(window, 1, 1))


# --- registered variants ------------------------------------------------------------------------
# The tiny variants keep every structural element (A/B/C cycling over >= 3 blocks, global context,
# strided stem, both heads) at a width and depth that trains at ~290 clips/s on 2 CPU cores for
# 8x56x56 clips, batch 8 (bench/RESULTS.md, "Models"). Their stem strides time by 2 (not 4), so a
# 4-frame clip still leaves 2 frames for the temporal convs; the shortest clip is 2 frames.
_R50 = dict(depths=(3, 4, 6, 3), width=64, stem_kernel_t=4, stem_stride_t=4)
_TINY = dict(depths=(1, 1, 1, 1), width=16, stem_kernel_t=2, stem_stride_t=2)
_R50_INPUT, _TINY_INPUT = (16, 224, 224), (8, 56, 56)
_DUAL = ("heads.0.fc", "heads.1.fc")


@register_model(family="dg_p3d", input_size=_R50_INPUT, dual_head=True, classifier=_DUAL)
def dg_p3d_r50(**kwargs) -> P3DResNet:
    """DG-P3D ResNet-50 (paper): P3D A/B/C, global context, dual head; 50,382,288 params at K=400."""
    return build(P3DResNet, _R50, kwargs)


@register_model(family="dg_p3d", input_size=_R50_INPUT)
def dg_p3d_r50_single(**kwargs) -> P3DResNet:
    """DG-P3D ResNet-50 with the temporal head only (what the dual head adds)."""
    return build(P3DResNet, dict(_R50, dual_head=False), kwargs)


@register_model(family="p3d", input_size=_R50_INPUT)
def p3d_r50(**kwargs) -> P3DResNet:
    """P3D ResNet-50 baseline: no global context, single head."""
    return build(P3DResNet, dict(_R50, dual_head=False, global_context=False), kwargs)


@register_model(family="dg_p3d", input_size=_TINY_INPUT, num_classes=10, dual_head=True, classifier=_DUAL)
def dg_p3d_tiny(**kwargs) -> P3DResNet:
    """Scaled-down DG-P3D for CPU (default of the built-in dataset); min T = 2."""
    return build(P3DResNet, _TINY, kwargs)


@register_model(family="dg_p3d", input_size=_TINY_INPUT, num_classes=10)
def dg_p3d_tiny_single(**kwargs) -> P3DResNet:
    """Scaled-down DG-P3D with the temporal head only."""
    return build(P3DResNet, dict(_TINY, dual_head=False), kwargs)


@register_model(family="p3d", input_size=_TINY_INPUT, num_classes=10)
def p3d_tiny(**kwargs) -> P3DResNet:
    """Scaled-down P3D baseline: no global context, single head."""
    return build(P3DResNet, dict(_TINY, dual_head=False, global_context=False), kwargs)

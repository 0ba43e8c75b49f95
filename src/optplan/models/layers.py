"""Small building blocks shared by every 3D backbone: factorised convs, BatchNorm freezing,
the global-context residual, and the clip-length check.

Every tensor here is a clip batch ``(N, C, T, H, W)``. Nothing loops over frames in Python:
temporal structure lives entirely in the conv kernels, so ``channels_last_3d`` and autocast
apply unchanged.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F
from torch import nn

from optplan.errors import OptplanError
from optplan.defaults import FrozenBN


def conv1x1x1(cin: int, cout: int, spatial_stride: int = 1, temporal_stride: int = 1) -> nn.Conv3d:
    """Pointwise conv (bottleneck reduce/expand and projection shortcuts)."""
    return nn.Conv3d(cin, cout, 1, stride=(temporal_stride, spatial_stride, spatial_stride), bias=False)


def conv1x3x3(cin: int, cout: int, spatial_stride: int = 1) -> nn.Conv3d:
    """Spatial conv: the 3x3 of a 2D ResNet lifted to 3D, so 2D weights load into it directly."""
    return nn.Conv3d(cin, cout, (1, 3, 3), stride=(1, spatial_stride, spatial_stride),
                     padding=(0, 1, 1), bias=False)


def conv3x1x1(cin: int, cout: int, spatial_stride: int = 1, temporal_stride: int = 1) -> nn.Conv3d:
    """Temporal conv over neighbouring frames (zero padding keeps T unchanged at stride 1)."""
    return nn.Conv3d(cin, cout, (3, 1, 1), stride=(temporal_stride, spatial_stride, spatial_stride),
                     padding=(1, 0, 0), bias=False)


def init_temporal_identity(conv: nn.Conv3d) -> None:
    """Make a 3x1x1 conv (C -> C) pass every frame through unchanged: centre tap = identity."""
    cout, cin, kt = conv.weight.shape[:3]
    if cout != cin or kt % 2 == 0:
        raise ValueError(f"identity init needs a square conv with odd kernel, got {tuple(conv.weight.shape)}")
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, :, kt // 2, 0, 0] = torch.eye(cout, dtype=conv.weight.dtype)


FROZEN_BN_MODES: tuple[str, ...] = get_args(FrozenBN)


def _use_running_statistics(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook of a frozen BatchNorm: normalise with running statistics, never update."""
    module.training = False


def set_frozen_bn(model: nn.Module, frozen: bool, mode: FrozenBN = "stats") -> int:
    """Freeze (or, with ``frozen=False``, unfreeze) the BatchNorm layers of ``model`` (any
    ``_BatchNorm``, SyncBatchNorm too). Returns how many layers it froze.

    The paper freezes BatchNorm in the longest-clip state, whose per-step batch is too small for
    good batch statistics. ``mode`` says how:

    - ``"stats"`` (the reference code): running statistics fixed, affine weights still trained,
      and the stem's BN (in the layers a model names in ``stem_modules``) left training entirely,
      as the reference leaves the network's first BN;
    - ``"all"``: every BN, the stem's too, with statistics fixed and its affine parameters
      excluded from gradients (``requires_grad``), so SGD (weight decay, momentum) skips them.

    A forward pre-hook puts each frozen layer in eval mode before every forward, so freezing
    survives the trainer's ``model.train()`` calls. Converting to SyncBatchNorm replaces the
    layers and drops their hooks: freeze after converting.
    """
    if mode not in FROZEN_BN_MODES:
        raise ValueError(f"frozen BN mode must be one of {', '.join(FROZEN_BN_MODES)}, got {mode!r}")
    stem = {id(m) for name in getattr(model, "stem_modules", ()) for m in model.get_submodule(name).modules()}
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            freeze = frozen and (mode == "all" or id(module) not in stem)
            _set_bn(module, freeze_stats=freeze, freeze_affine=freeze and mode == "all",
                    training=model.training)
            count += freeze
    return count


def _set_bn(module: nn.modules.batchnorm._BatchNorm, *, freeze_stats: bool, freeze_affine: bool,
            training: bool) -> None:
    handle = getattr(module, "_frozen_bn_hook", None)
    if handle is not None:
        handle.remove()
        del module._frozen_bn_hook
    if freeze_stats:
        module._frozen_bn_hook = module.register_forward_pre_hook(_use_running_statistics)
    module.train(training and not freeze_stats)
    for p in (module.weight, module.bias):
        if p is not None:
            p.requires_grad_(not freeze_affine)


class GlobalContext(nn.Module):
    """DG-P3D's global-context residual: clip-level average -> FC C->C/r -> ReLU -> FC back to C.

    Returns an ``(N, C, 1, 1, 1)`` bias that the block adds to its residual branch, broadcast over
    T, H, W. The last FC's weight is zero-initialised and its bias keeps PyTorch's random init, as
    in the reference code: a fresh block adds a constant per-channel bias, the same for every
    clip, and learns from there which clip-level context to add.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)
        nn.init.zeros_(self.fc2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3, 4)))))
        return context[:, :, None, None, None]


def check_clip(x: torch.Tensor, model_name: str, min_clip_length: int) -> None:
    """Refuse anything but ``(N, C, T, H, W)`` with ``T >= min_clip_length``, naming the model."""
    if x.dim() != 5:
        raise ValueError(f"{model_name} expects clips shaped (N, C, T, H, W), got {tuple(x.shape)}")
    t = x.shape[2]
    if t < min_clip_length:
        raise OptplanError(f"{model_name}: a clip of T={t} frames is too short; this model needs "
                           f"T >= {min_clip_length} (raise the clip length of the state)")

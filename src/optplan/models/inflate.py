"""2D-to-3D initialisation: load a local 2D ResNet state dict (e.g. an ImageNet ResNet-50) into
a P3D / DG-P3D network.

Mapping, by torchvision's 2D key names: the 7x7 stem kernel goes into the middle temporal slot
of the ``kt x 7 x 7`` stem (zeros elsewhere); every 1x1 and 3x3 conv goes into its 1x1x1 /
1x3x3 twin; BatchNorm parameters and statistics copy as they are; the 2D res5 (``layer4``) fills
both res5 copies of a dual head. What has no 2D twin keeps its initialisation: temporal 3x1x1
convs (identity in A, zero in B and C), global-context FCs (a zero last weight, so a constant
output: the last FC's random bias, as in the reference) and the classifiers (2D ``fc.*`` keys are
ignored: video classes differ). With those, the inflated network computes on a clip of identical
frames what the 2D network computes on one frame, plus those per-channel global-context biases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from optplan.errors import OptplanError
from optplan.models.weights import read_state_dict, strip_prefixes

IGNORED_2D_PREFIXES = ("fc.",)


def twin_2d_key(key: str) -> str | None:
    """The 2D ResNet key a P3D key is loaded from, or None when it has no 2D twin."""
    if key.startswith("heads.") or ".conv2_t." in key or ".gc." in key:
        return None
    return key.replace("layer4_spatial.", "layer4.", 1)


def inflate_state_dict(model: nn.Module, state_2d: Mapping[str, torch.Tensor],
                       source: str = "2D state dict") -> dict[str, torch.Tensor]:
    """The 3D state dict of ``model`` with every 2D-twinned tensor replaced from ``state_2d``.

    Raises OptplanError naming the first key that is missing, has the wrong shape, or is left
    over in the 2D file (a different depth or width), so a wrong file is never half-loaded.
    """
    name = getattr(model, "name", type(model).__name__)
    # A class flag, not isinstance(P3DResNet): the registry imports this module, and p3d the registry.
    if not getattr(model, "inflatable_2d", False):
        raise OptplanError(f"{name} cannot be initialised from a 2D ResNet (only P3D / DG-P3D models)")
    target = model.state_dict()
    out, used = {}, set()
    for key, tensor in target.items():
        key_2d = twin_2d_key(key)
        # Old checkpoints (e.g. torchvision's first ImageNet weights) lack BN step counters.
        if key_2d is None or (key_2d.endswith("num_batches_tracked") and key_2d not in state_2d):
            out[key] = tensor
            continue
        if key_2d not in state_2d:
            raise OptplanError(f"{source} does not fit {name}: first mismatched key {key_2d!r} is "
                               "missing (expected a torchvision-style 2D ResNet state dict)")
        value = state_2d[key_2d]
        out[key] = _inflate(value, tensor.shape)
        if out[key] is None:
            raise OptplanError(f"{source} does not fit {name}: first mismatched key {key_2d!r} has "
                               f"shape {tuple(value.shape)}, {name} needs {_expected_2d(tensor.shape)} "
                               "(a 2D ResNet of the same depth and width)")
        used.add(key_2d)
    extra = [k for k in state_2d if k not in used and not k.startswith(IGNORED_2D_PREFIXES)]
    if extra:
        raise OptplanError(f"{source} does not fit {name}: first mismatched key {extra[0]!r} has no "
                           f"place in {name} ({len(extra)} such keys; is it a deeper ResNet?)")
    return out


def _expected_2d(shape: torch.Size) -> tuple[int, ...]:
    return (shape[0], shape[1], shape[3], shape[4]) if len(shape) == 5 else tuple(shape)


def _inflate(value: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """2D tensor -> tensor of 3D ``shape`` (conv kernel in the middle temporal slot), or None."""
    if tuple(value.shape) != _expected_2d(shape):
        return None
    if len(shape) != 5:
        return value.clone()
    kernel = value.new_zeros(shape)
    kernel[:, :, shape[2] // 2] = value
    return kernel


def inflate_from_2d(model: nn.Module, path: str | Path) -> nn.Module:
    """Initialise ``model`` in place from the 2D ResNet state-dict file at ``path``; returns it."""
    state_2d, _ = read_state_dict(path, "model.pretrained_2d")
    state_2d = {strip_prefixes(k, {}): v for k, v in state_2d.items()}  # no 2D ResNet name has one
    state = inflate_state_dict(model, state_2d, source=f"model.pretrained_2d {path}")
    model.load_state_dict(state)
    return model

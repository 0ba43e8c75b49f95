"""3D ConvNets the planner trains: DG-P3D (dual head), P3D, R3D and R(2+1)D, from one registry.

``create_model(name, num_classes=..., **overrides)`` builds any registered model
(``list_models()``); every model takes clips ``(N, C, T, H, W)`` with ``T >= model.min_clip_length``.
In training a dual-head model returns ``(temporal_logits, spatial_logits)``, and
:func:`classification_loss` sums their cross-entropies; in eval mode it returns their mean.

Names are imported on first use (PEP 562): ``optplan.config`` imports ``optplan.models.config``,
and the command line must not pay for torch just to print ``--help``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClassifierHead": "heads", "VideoNet": "heads", "classification_loss": "heads",
    "BatchNorm3d": "layers", "set_frozen_bn": "layers",
    "ModelInfo": "registry", "create_model": "registry", "create_model_from_config": "registry",
    "list_models": "registry", "model_info": "registry", "register_model": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'optplan.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"optplan.models.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__

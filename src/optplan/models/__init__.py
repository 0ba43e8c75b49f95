"""3D ConvNets the planner trains: DG-P3D (dual head), P3D, R3D and R(2+1)D, from one registry.

``create_model(name, num_classes=..., **overrides)`` builds any registered model
(``list_models()``); every model takes clips ``(N, C, T, H, W)`` with ``T >= model.min_clip_length``.
In training a dual-head model returns ``(temporal_logits, spatial_logits)``, and
:func:`classification_loss` sums their cross-entropies; in eval mode it returns their mean.

Each family module registers its models when imported (``@register_model``); this package
imports every family, as timm's ``models/__init__`` does, so the registry itself imports none.
"""

from __future__ import annotations

from optplan.models import p3d, resnet3d  # noqa: F401  (the families register themselves)
from optplan.models.heads import ClassifierHead, VideoNet, classification_loss
from optplan.models.layers import FROZEN_BN_MODES, set_frozen_bn
from optplan.models.registry import (Architecture, ModelInfo, architecture, clip_length_problem, config_overrides,
                                     create_model, create_model_from_config, list_models, model_info,
                                     register_model)

__all__ = ["Architecture", "ClassifierHead", "ModelInfo", "VideoNet", "architecture", "classification_loss",
           "clip_length_problem", "config_overrides", "create_model", "create_model_from_config", "list_models",
           "model_info", "register_model", "set_frozen_bn", "FROZEN_BN_MODES"]

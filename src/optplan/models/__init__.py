"""3D ConvNets the planner trains: DG-P3D (dual head), P3D, R3D and R(2+1)D, from one registry.

``create_model(name, num_classes=..., **overrides)`` builds any registered model
(``list_models()``); every model takes clips ``(N, C, T, H, W)`` with ``T >= model.min_clip_length``.
In training a dual-head model returns ``(temporal_logits, spatial_logits)``, and
:func:`classification_loss` sums their cross-entropies; in eval mode it returns their mean.

Names are imported on first use (PEP 562): ``optplan.config`` imports ``optplan.models.config``,
and the command line must not pay for torch just to print ``--help``.
"""

from __future__ import annotations

from optplan._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "heads": ["ClassifierHead", "VideoNet", "classification_loss"],
    "layers": ["FROZEN_BN_MODES", "set_frozen_bn"],
    "registry": ["ModelInfo", "create_model", "create_model_from_config", "list_models",
                 "model_info", "register_model"],
})

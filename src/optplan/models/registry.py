"""The model registry: named variants, their default configs as data, and ``create_model``.

A public model is a small function decorated with :func:`register_model`, which records its
default input and classes; the function only picks an architecture (depths, widths, options)
and calls :func:`build`, the one shared builder. ``create_model(name, num_classes=..., **overrides)``
is the single entry point; overrides are checked against the architecture's arguments so a typo
in ``model.kwargs`` is refused by name. As timm's ``_registry.py``, this module imports no model
family: each family registers itself when imported, and ``optplan.models`` imports them all.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from torch import nn

from optplan.errors import OptplanError

if TYPE_CHECKING:
    from optplan.defaults import ModelConfig

log = logging.getLogger("optplan.models")


@dataclass(frozen=True)
class ModelInfo:
    """Default config of a registered model (what data transforms, the CLI and loaders use).

    ``input_size`` is the default clip ``(T, H, W)`` in frames and pixels; ``family`` groups
    variants of one architecture; ``dual_head`` says whether training returns two logits.
    """

    name: str
    family: str
    input_size: tuple[int, int, int]
    num_classes: int
    dual_head: bool
    description: str
    first_conv: str
    classifier: tuple[str, ...]


_REGISTRY: dict[str, tuple[ModelInfo, Callable[..., nn.Module]]] = {}

_DRAFT: ContextVar[bool] = ContextVar("optplan_models_draft", default=False)
"""Set by :func:`architecture`: :func:`build` then returns what it would build instead of building."""


@dataclass(frozen=True)
class Architecture:
    """What a registered model is built from: its class and every argument the class gets.

    Known without building the model, so questions about a model (the shortest clip it takes)
    cost nothing and load no weights. ``built``: the model itself, for a registered function
    that builds without :func:`build` (which is then asked instead)."""

    cls: type[nn.Module]
    args: dict[str, Any]
    built: nn.Module | None = None

    @property
    def min_clip_length(self) -> int:
        """The shortest clip (frames) the model accepts: the class's ``shortest_clip`` of these
        arguments (see :meth:`optplan.models.VideoNet.shortest_clip`); 1 for a class without one."""
        if self.built is not None:
            return int(getattr(self.built, "min_clip_length", 1))
        shortest = getattr(self.cls, "shortest_clip", None)
        return 1 if shortest is None else int(shortest(**self.args))


def register_model(*, family: str, input_size: tuple[int, int, int], num_classes: int = 400,
                   dual_head: bool = False, first_conv: str = "conv1",
                   classifier: tuple[str, ...] = ("heads.0.fc",)) -> Callable:
    """Decorator: register ``fn(num_classes, **overrides) -> nn.Module`` under its name; the first
    docstring line is the description shown by ``optplan models``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = (fn.__doc__ or "").strip().splitlines()
        info = ModelInfo(fn.__name__, family, tuple(input_size), num_classes, dual_head,
                         doc[0] if doc else "", first_conv, tuple(classifier))
        if info.name in _REGISTRY:
            raise ValueError(f"model {info.name!r} registered twice")
        _REGISTRY[info.name] = (info, fn)
        return fn

    return wrap


def build(cls: type[nn.Module], arch: dict[str, Any], overrides: dict[str, Any]) -> nn.Module:
    """The shared builder: ``cls(**arch, **overrides)`` after checking every override is one of
    ``cls``'s arguments (ConfigError-style message otherwise). Under :func:`architecture`
    it returns the :class:`Architecture` instead of building it."""
    allowed = [p for p in inspect.signature(cls).parameters if p != "self"]
    for key in overrides:
        if key not in allowed:
            raise OptplanError(f"model.kwargs: {key!r} is not an option of {cls.__name__}; "
                               f"allowed: {', '.join(allowed)}")
    if _DRAFT.get():
        return Architecture(cls, {**arch, **overrides})
    return cls(**{**arch, **overrides})


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names (sorted), optionally only those containing ``pattern``."""
    return sorted(n for n in _REGISTRY if pattern is None or pattern in n)


def model_info(name: str) -> ModelInfo:
    """The default config of ``name``; unknown names raise OptplanError with close matches."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise OptplanError(f"unknown model {name!r}{hint}; `optplan models` lists the "
                           f"{len(_REGISTRY)} registered models")
    return _REGISTRY[name][0]


def create_model(name: str, num_classes: int | None = None, *, pretrained: str | Path | None = None,
                 pretrained_2d: str | Path | None = None, **overrides: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: registered name (``list_models()``).
        num_classes: classifier outputs (default: the model's default config).
        pretrained: a local video weights file to fine-tune from (any container
            :mod:`optplan.models.weights` reads); a classifier of another class count is re-created.
        pretrained_2d: a local 2D ResNet state-dict file to inflate from (nothing downloads).
        **overrides: architecture arguments (e.g. ``dropout=0.2``, ``depths=(2, 2, 2, 2)``).

    The returned module carries ``name``, ``min_clip_length`` and ``default_cfg`` (a dict of
    :class:`ModelInfo`).
    """
    info = model_info(name)
    model = _REGISTRY[name][1](num_classes=info.num_classes if num_classes is None else num_classes,
                               **overrides)
    model.name = name
    model.default_cfg = asdict(info)
    if pretrained_2d is not None:
        from optplan.models.inflate import inflate_from_2d

        inflate_from_2d(model, pretrained_2d)
    if pretrained is not None:
        from optplan.models.weights import load_weights

        log.info(load_weights(model, pretrained, "model.pretrained", fine_tune=True).describe(pretrained))
    return model


def architecture(name: str, num_classes: int | None = None, **overrides: Any) -> Architecture:
    """What ``create_model(name, num_classes, **overrides)`` would build, without building it
    (unknown names and overrides are refused as there). A registered function that builds its
    model without :func:`build` is answered from the model it builds."""
    info = model_info(name)
    token = _DRAFT.set(True)
    try:
        built = _REGISTRY[name][1](num_classes=info.num_classes if num_classes is None else num_classes,
                                   **overrides)
    finally:
        _DRAFT.reset(token)
    if isinstance(built, Architecture):
        return built
    return Architecture(type(built), {}, built)


def clip_length_problem(clip_length: int, cfg: "ModelConfig") -> str | None:
    """Why the model of a config's ``model`` section cannot take clips of ``clip_length`` frames
    (None: it can). The one check of the shortest clip: the planner asks it of every state of
    the graph before training, a training session of every state it enters. It builds no model."""
    shortest = architecture(cfg.name, **config_overrides(cfg)).min_clip_length
    if clip_length < shortest:
        return f"clip_length {clip_length} is shorter than model {cfg.name!r} accepts ({shortest} frames)"
    return None


def config_overrides(cfg: "ModelConfig") -> dict[str, Any]:
    """The builder arguments a ``model`` section sets: ``cfg.kwargs`` wins over ``cfg.dropout``
    when both set dropout."""
    return {"dropout": cfg.dropout, **cfg.kwargs}


def create_model_from_config(cfg: "ModelConfig", num_classes: int, *, pretrained: bool = True) -> nn.Module:
    """Build the model a config's ``model`` section describes (name, overrides, pretrained_2d, and
    with ``pretrained`` the ``model.pretrained`` weights when set)."""
    return create_model(cfg.name, num_classes, pretrained=cfg.pretrained if pretrained else None,
                        pretrained_2d=cfg.pretrained_2d, **config_overrides(cfg))

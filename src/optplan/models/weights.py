"""Weights from a file: optplan checkpoints and the containers other video frameworks write.

Fine-tuning starts from someone else's checkpoint more often than from ours, so one reader
takes them all, with ``torch.load(weights_only=True)`` (no pickled code runs):

- a plain state dict ``{name: tensor}``;
- optplan's checkpoint ``{"model": ...}``, MMAction2's ``{"state_dict": ..., "meta": ...}``,
  PySlowFast's ``{"model_state": ..., "cfg": ...}``;
- with the prefixes those wrappers add to every name (``module.`` from DataParallel,
  ``backbone.`` from MMAction2's recognisers, ``_orig_mod.`` from ``torch.compile``).

:func:`load_weights` then fits the tensors to a model: every tensor must find its parameter
with its shape. When fine-tuning, the classifier (``default_cfg["classifier"]`` of a registered
model) is the exception: it is kept freshly initialised when the file's has another class count
(Kinetics -> UCF101) or belongs to another framework's head. Anything else is refused with the
first mismatched key, so a wrong file is never half-loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from optplan.errors import OptplanError

# (key holding the state dict, whose container it is), looked for in this order
CONTAINERS = (("model", "optplan"), ("state_dict", "MMAction2"), ("model_state", "PySlowFast"))
PREFIXES = ("module.", "backbone.", "_orig_mod.")
# classifier heads of other frameworks' recognisers: MMAction2's cls_head, PySlowFast's head
FOREIGN_HEADS = ("cls_head.", "head.")


@dataclass(frozen=True)
class LoadedWeights:
    """What :func:`load_weights` did: the container it read, how many tensors it loaded, and
    whether the classifier was re-created (``reset_classifier``) rather than loaded."""

    container: str
    loaded: int
    reset_classifier: bool

    def describe(self, path: str | Path) -> str:
        head = "; classifier re-created for the new classes" if self.reset_classifier else ""
        return f"loaded {self.loaded} tensors from {self.container} weights {path}{head}"


def read_state_dict(path: str | Path, setting: str = "weights") -> tuple[dict[str, torch.Tensor], str]:
    """The state dict in ``path`` and the name of its container (``plain`` when unwrapped).

    ``setting`` names the option the file came from in error messages.
    """
    path = Path(path)
    if not path.is_file():
        raise OptplanError(f"{setting}: no file {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip or unsafe-type errors all mean "not plain weights"
        raise OptplanError(f"{setting}: {path} is not a loadable state dict ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''})") from None
    container = "plain"
    for key, name in CONTAINERS:
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data, container = data[key], name
            break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        kind = (f"a dict with keys {sorted(map(str, data))[:6]}" if isinstance(data, Mapping)
                else f"a {type(data).__name__}")
        raise OptplanError(f"{setting}: {path} holds {kind}, not a state dict (nor one under "
                           f"{', '.join(repr(k) for k, _ in CONTAINERS)})")
    return dict(data), container


def strip_prefixes(key: str, known: Mapping[str, object]) -> str:
    """``key`` without the wrapper prefixes in front of it, stopping as soon as ``known`` has it
    (so a model whose own names start with one of them keeps it)."""
    while key not in known:
        prefix = next((p for p in PREFIXES if key.startswith(p)), None)
        if prefix is None:
            break
        key = key[len(prefix):]
    return key


def _is_classifier(key: str, classifier: tuple[str, ...]) -> bool:
    return any(key.startswith(name + ".") for name in classifier)


def fit_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, *,
                   fine_tune: bool) -> tuple[dict[str, torch.Tensor], int, bool]:
    """``model``'s state dict with every tensor of ``state`` put in place, how many were, and
    whether the classifier kept its fresh weights (only when ``fine_tune``).

    Raises OptplanError naming the first key that fits nowhere, has another shape (outside the
    classifier when fine-tuning), or is missing from ``source``.
    """
    name = getattr(model, "name", type(model).__name__)
    classifier = tuple(getattr(model, "default_cfg", {}).get("classifier", ())) if fine_tune else ()
    target = model.state_dict()
    fitted = dict(target)
    taken, reset = set(), False
    for raw, tensor in state.items():
        key = strip_prefixes(raw, target)
        if key not in target:
            if classifier and key.startswith(FOREIGN_HEADS):
                reset = True
                continue
            raise OptplanError(f"{source} does not fit {name}: first mismatched key {raw!r} has no "
                               f"counterpart in the model (e.g. {next(iter(target))!r})")
        if tuple(tensor.shape) != tuple(target[key].shape):
            if _is_classifier(key, classifier):
                reset = True
                continue
            raise OptplanError(f"{source} does not fit {name}: first mismatched key {raw!r} has shape "
                               f"{tuple(tensor.shape)}, the model's {key!r} {tuple(target[key].shape)}")
        fitted[key] = tensor
        taken.add(key)
    missing = [k for k in target if k not in taken and not k.endswith("num_batches_tracked")]
    if any(not _is_classifier(k, classifier) for k in missing):
        first = next(k for k in missing if not _is_classifier(k, classifier))
        raise OptplanError(f"{source} does not fit {name}: first mismatched key {first!r} is missing "
                           f"from the file")
    return fitted, len(taken), reset or bool(missing)


def load_weights(model: nn.Module, path: str | Path, setting: str = "weights", *,
                 fine_tune: bool = False) -> LoadedWeights:
    """Load the weights file ``path`` into ``model`` in place (see the module docstring);
    ``fine_tune`` lets a classifier of another class count (or framework) be re-created."""
    state, container = read_state_dict(path, setting)
    fitted, loaded, reset = fit_state_dict(model, state, f"{setting} {path}", fine_tune=fine_tune)
    model.load_state_dict(fitted)
    return LoadedWeights(container, loaded, reset)

"""Checkpoints that survive a kill at any moment and load without unpickling code.

A checkpoint is one ``torch.save`` dict with these keys:

``model``      the model's state dict (DDP/compile wrappers stripped)
``optimizer``  the optimiser's state dict, or None (a kept knee model needs none)
``state``      the :class:`~optplan.train.State` it was trained in (JSON dict), or None
``epoch``      epochs trained in that state (0 = the source model)
``rng``        torch CPU (and CUDA) generator states, to continue bit-for-bit
``config``     the whole run config (JSON dict), so ``optplan eval`` can rebuild the model
``classes``    the class names, index = label (as MMAction2's ``dataset_meta``), or None
``meta``       JSON values: the curve so far, cost counters, anything the caller adds

Files are written to a temporary name in the same directory, flushed to disk and renamed, so
a reader sees either the old file or the complete new one; they are read with
``weights_only=True``, so only tensors and plain containers are accepted.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optplan.errors import OptplanError, space_for

KEYS = ("model", "optimizer", "state", "epoch", "rng", "config", "classes", "meta")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def rng_state() -> dict[str, Any]:
    """Generator states of torch (CPU and every CUDA device) as tensors."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only where CUDA exists)."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_checkpoint(model: nn.Module, *, optimizer: torch.optim.Optimizer | None = None,
                    state: dict[str, Any] | None = None, epoch: int = 0,
                    config: dict[str, Any] | None = None, classes: list[str] | None = None,
                    meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint dict (see the module docstring) of a model as it is now."""
    return {
        "model": unwrap(model).state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "state": state,
        "epoch": int(epoch),
        "rng": rng_state(),
        "config": config,
        "classes": None if classes is None else list(classes),
        "meta": dict(meta or {}),
    }


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, rename); returns the path.

    The bytes are made in memory first, so a full disk surfaces as an ``OSError`` of the write
    (torch's writer reports it as a bare position mismatch) and becomes
    :class:`~optplan.errors.DiskFull` naming ``path``; the temp file is removed on any error.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with space_for(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def is_intact(path: str | Path) -> bool:
    """Whether ``path`` is a whole checkpoint file: it exists and the zip directory that
    ``torch.save`` writes last can be read, so a truncated file fails (tensors are not read)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a missing or damaged file is an OptplanError."""
    path = Path(path)
    if not path.is_file():
        raise OptplanError(f"checkpoint {str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated/foreign files
        raise OptplanError(f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {err}); "
                           f"it is damaged or not an optplan checkpoint") from None
    if not isinstance(data, dict) or "model" not in data:
        raise OptplanError(f"checkpoint {str(path)!r} holds no 'model' entry; "
                           f"it is not an optplan checkpoint")
    return data

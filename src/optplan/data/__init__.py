"""Video files on disk -> training clips.

``synthesize`` writes the built-in dataset; ``read_annotations`` / ``load_splits`` read
UCF101/HMDB51 lists, Kinetics CSVs, ``path,label`` CSVs and Something-Something JSON;
``VideoDataset`` + ``make_loader`` cut clips (``ClipSpec``: consecutive or uniform sampling)
from PyAV-decoded, cached frames.

Names are imported on first use (PEP 562): ``optplan.config`` imports ``optplan.data.config``,
and the command line must not pay for torch and PyAV just to print ``--help``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Annotations": "annotations", "VideoRecord": "annotations", "read_annotations": "annotations",
    "Problem": "check", "check_records": "check", "probe_records": "check",
    "DataConfig": "config",
    "ClipKey": "dataset", "ClipSampler": "dataset", "VideoDataset": "dataset", "make_loader": "dataset",
    "ClipSpec": "sampling", "sample_indices": "sampling",
    "Splits": "splits", "find_lists": "splits", "load_splits": "splits",
    "render_video": "synth", "synthesize": "synth",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'optplan.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"optplan.data.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__

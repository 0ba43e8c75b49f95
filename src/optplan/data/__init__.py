"""Video files on disk -> training clips.

``synthesize`` writes the built-in dataset; ``read_annotations`` / ``load_splits`` read
UCF101/HMDB51 lists, Kinetics CSVs, ``path,label`` CSVs, MMAction2 rawframe lists and
Something-Something JSON; ``VideoDataset`` + ``make_loader`` cut clips (``ClipSpec``: consecutive
or uniform sampling) from PyAV-decoded, cached frames of video files or frame folders
(``optplan.data.source``).

Names are imported on first use (PEP 562): the command line must not pay for torch and PyAV
just to print ``--help``.
"""

from __future__ import annotations

from optplan._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "annotations": ["Annotations", "VideoRecord", "read_annotations"],
    "augment": ["colour_augment"],
    "check": ["Problem", "check_records", "list_problems", "probe_records"],
    "config": ["AugmentConfig", "DataConfig"],
    "dataset": ["ClipKey", "ClipSampler", "VideoDataset", "make_loader"],
    "sampling": ["ClipSpec", "sample_indices"],
    "splits": ["Splits", "find_lists", "load_splits", "read_lists"],
    "synth": ["render_video", "synthesize"],
})

"""Shared fixtures: one small built-in dataset per test session, made with the real generator."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def frame_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every frame cache a test does not place itself goes under a temporary folder
    (``OPTPLAN_CACHE``), never into the real home; set for the session (and the processes
    it starts) so datasets shared by tests share their cache too."""
    home = tmp_path_factory.mktemp("optplan-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTPLAN_CACHE", str(home))
        yield home


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real MP4 dataset (UCF-style lists and Kinetics-style CSV) written by
    ``optplan data synth``; the directory is its root."""
    from optplan.data.synth import synthesize

    root = tmp_path_factory.mktemp("synth")
    synthesize(root, videos_per_class=6, frames=32, size=32, seed=0)
    return root

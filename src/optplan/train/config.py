"""The ``train`` and ``knee`` sections' public path; the classes live in :mod:`optplan.defaults`."""

from optplan.defaults import KneeConfig, TrainConfig

__all__ = ["KneeConfig", "TrainConfig"]

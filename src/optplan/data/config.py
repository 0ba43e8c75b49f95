"""The ``data`` section's public path; the class lives in :mod:`optplan.defaults` with every key."""

from optplan.defaults import DataConfig

__all__ = ["DataConfig"]

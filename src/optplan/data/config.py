"""The ``data`` section's public path; the classes live in :mod:`optplan.defaults` with every key."""

from optplan.defaults import AugmentConfig, DataConfig

__all__ = ["AugmentConfig", "DataConfig"]

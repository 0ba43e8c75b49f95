"""The ``model`` section's public path; the class lives in :mod:`optplan.defaults` with every key."""

from optplan.defaults import ModelConfig

__all__ = ["ModelConfig"]

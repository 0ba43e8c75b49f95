"""Exceptions that mean "the user asked for something we cannot do".

The CLI prints these as one clear message (no traceback) and exits with status 2; anything
else is a bug and keeps its traceback.
"""


class OptplanError(Exception):
    """A user-facing error: bad input, bad config, missing file. The message says the fix."""


class ConfigError(OptplanError):
    """A configuration value was refused before any work started."""

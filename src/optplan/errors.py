"""Exceptions that mean "the user asked for something we cannot do".

The CLI prints these as one clear message (no traceback) and exits with status 2; anything
else is a bug and keeps its traceback.
"""

import errno
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class OptplanError(Exception):
    """A user-facing error: bad input, bad config, missing file. The message says the fix."""


class ConfigError(OptplanError):
    """A configuration value was refused before any work started."""


class DiskFull(OptplanError):
    """A write found no space. Not a failure of the edge being trained: the plan stops, and
    resumes once space is freed."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"no space left on device at {path}; free some space and run again to resume")
        self.path = str(path)

    def __reduce__(self):  # rebuilt from the path when it crosses from a worker process
        return type(self), (self.path,)


@contextmanager
def space_for(path: str | Path) -> Iterator[None]:
    """Turn running out of space while writing ``path`` into :class:`DiskFull` naming it
    (torch and SQLite say nothing about where)."""
    try:
        yield
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(path) from None
        raise

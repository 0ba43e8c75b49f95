"""One writer per run directory: an exclusive ``flock`` on ``RUN/plan.lock`` for as long as a
plan (or an ``optplan train``) runs in it.

Two plans writing one store would both train every edge and overwrite each other's records
and checkpoints; two trainings into one ``--out`` would overwrite each other's snapshots. The kernel drops the lock when its holder dies, however it dies, so a lock
left by a killed plan is simply taken over; the holder's pid is written into the file only to
name it when a second writer is refused.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from optplan.errors import OptplanError

LOCK_FILE = "plan.lock"


@contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory's lock inside the ``with`` block, or refuse naming the holder."""
    path = Path(run_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "(pid not yet written)"
            raise OptplanError(f"{run_dir} is in use by another plan or training run, process {holder}; "
                               "wait for it to end or stop it, or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock

"""How many intra-op threads torch should use on a machine that others share.

With ``train.threads=2`` and one busy process on the same 2 cores an epoch ran 17x slower than
alone: OpenMP threads spin at every barrier, and one of them always waits for a core the other
process holds. So ``train.threads: null`` (auto) uses the cores that are idle *now* (sampled
from /proc/stat over a fifth of a second, which, unlike the load average, does not lag a minute
behind), at least 1, at most the cores this process may run on.

Passive OpenMP waiting (``OMP_WAIT_POLICY=PASSIVE``) was measured and rejected as a default:
beside a busy process it helped 2 threads (2.9 s vs 4.5 s an epoch) but 1 thread was faster
still (1.9 s), and alone it made 2 threads slower than 1 (168 vs 264 clips/s at 16x28x28):
the tiny models run many short parallel regions, and a sleeping thread wakes too late for each.
"""

from __future__ import annotations

import os
import time


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; all cores where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(idle + iowait, total) jiffies over all cores, or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0.0), sum(fields[:8])


def idle_cores(interval: float = 0.2) -> float | None:
    """Cores idle on average over the next ``interval`` seconds (None when unknown)."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(interval)
    second = _cpu_times()
    busy_total = second[1] - first[1] if second else 0.0
    if second is None or busy_total <= 0:
        return None
    return (second[0] - first[0]) / busy_total * (os.cpu_count() or 1)


def auto_threads() -> int:
    """Threads for this process: the idle cores now (rounded up from 0.7 of a core), at least
    1, at most :func:`usable_cores`."""
    cores = usable_cores()
    idle = idle_cores()
    if idle is None:
        return cores
    return max(1, min(cores, int(idle + 0.3)))
